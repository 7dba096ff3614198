package local

// Services on the local compute: the runtime runs the replicas as
// processes from the service records; an operation records the desired
// spec (a new generation) and waits until the service answers ready
// through the local front end.

import (
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/berth-ml/berth/api"
	"github.com/berth-ml/berth/internal/frontend"
	"github.com/berth-ml/berth/internal/operation"
	"github.com/berth-ml/berth/internal/problem"
	"github.com/berth-ml/berth/internal/provider"
	"github.com/berth-ml/berth/internal/store"
)

// CheckService: replicas are processes of this machine, given their
// models by the runtime.
func (*Provider) CheckService(_ *store.Compute, s *api.ServiceSpec) []api.ErrorDetail {
	out := provider.CheckReplicas(s, MaxServiceReplicas(), "this machine")
	if len(s.Command) == 0 {
		out = append(out, problem.Detail(api.CodeCommandRequired, "command", "the local compute runs each replica as a process of this machine: give `command` (images need a cluster)"))
	}
	if s.ModelDelivery == api.ModelDeliveryImage {
		out = append(out, problem.Detail(api.CodeInvalidValue, "modelDelivery", "the local compute hands models to its replicas itself; `modelDelivery` image needs a cluster"))
	}
	return out
}

// CommandsNeedOwner: a replica runs its command on the server's machine,
// so deploying one is an owner's call unless an owner allowed contributors
// when creating the compute (settings.allowContributorCommands).
func (*Provider) CommandsNeedOwner(c *store.Compute) bool {
	return !provider.Read[Settings](c.Settings).AllowContributorCommands
}

// MaxServiceReplicas bounds a service's replicas on the local compute:
// four processes per CPU of this machine, at least 16 (above the default
// autoscale maximum, 10).
func MaxServiceReplicas() int { return max(16, 4*runtime.NumCPU()) }

// ServiceSteps: deploy and update record the spec for the runtime and
// wait; the runtime stops a deleted service's replicas once its record is
// gone.
func (p *Provider) ServiceSteps(kind api.OperationKind) []provider.ServiceStep {
	switch kind {
	case api.OpDeploy, api.OpUpdate:
		return []provider.ServiceStep{{Name: "record", Run: record}, {Name: "wait for replicas", Run: p.waitService}}
	case api.OpDelete:
		return []provider.ServiceStep{{Name: "stop", Run: func(context.Context, *operation.Run, *provider.ServiceTarget) error { return nil }}}
	}
	return nil
}

// PublishRoute: the runtime picks a changed route up from the record
// within a second.
func (*Provider) PublishRoute(context.Context, *store.Compute, *store.Service, *frontend.Route) error {
	return nil
}

// PublishEndpoint hands the route to the compute's running front end at
// once (the runtime also picks endpoints up from the store each tick).
func (p *Provider) PublishEndpoint(_ context.Context, c *store.Compute, name string, rt *frontend.EndpointRoute) error {
	p.runtime.mu.Lock()
	defer p.runtime.mu.Unlock()
	if in := p.runtime.running[c.ID]; in != nil {
		if rt == nil {
			in.fe.DeleteEndpoint(name)
		} else {
			in.fe.SetEndpoint(rt)
		}
	}
	return nil
}

// ScoringBase: the local front end on its loopback port, with the local CA.
func (*Provider) ScoringBase(c *store.Compute) string { return "https://" + c.Endpoint }

// record stores the desired spec as a new generation for the runtime.
func record(ctx context.Context, r *operation.Run, t *provider.ServiceTarget) error {
	sv := t.Service
	sv.Generation++
	r.Event("Replicas of %s will run here as processes: %v", sv.Name, sv.Command)
	return r.Store.UpdateService(ctx, sv)
}

// waitService waits until the runtime serves the new generation, then
// asks the local front end whether the service is ready, with the
// service's own credentials.
func (p *Provider) waitService(ctx context.Context, r *operation.Run, t *provider.ServiceTarget) error {
	sv, c := t.Service, t.Compute
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM([]byte(c.Secrets[SecretCA]))
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	auth, err := t.Credential(ctx)
	if err != nil {
		return err
	}
	timeout := cmp.Or(p.ReadyTimeout, 2*time.Minute)
	deadline := time.Now().Add(timeout)
	url := fmt.Sprintf("https://%s/v2/models/%s/ready", c.Endpoint, sv.Name)
	seen := map[string]int{} // exits reported, by replica
	for {
		if err := p.replicaExits(r, sv, seen); err != nil {
			return err
		}
		if err := p.runtime.StartFailure(sv.ID, sv.Generation); err != nil {
			code := api.CodeReplicasNotReady
			if errors.As(err, new(unpackError)) {
				code = api.CodeModelUnpackFailed
			}
			return operation.Fail(code, fmt.Sprintf("no replica of %s can start: %v", sv.Name, err))
		}
		if gen, ready, ok := p.runtime.Status(sv.ID); ok && gen == sv.Generation && ready >= wanted(sv) {
			req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
			if auth != "" {
				req.Header.Set("Authorization", auth)
			}
			if resp, err := hc.Do(req); err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					fresh, err := r.Store.GetServiceByID(ctx, sv.ID)
					if err != nil {
						return err
					}
					base := p.ScoringBase(c) + "/api/v1/service/" + fresh.Name
					fresh.ScoringURI, fresh.SwaggerURI = base+"/score", base+"/swagger.json"
					fresh.ReadyReplicas = ready
					r.Event("Service %s answers ready at %s", sv.Name, fresh.ScoringURI)
					return r.Store.UpdateService(ctx, fresh)
				}
			}
		}
		if time.Now().After(deadline) {
			return operation.Fail(api.CodeReplicasNotReady, fmt.Sprintf("no replica of %s became ready within %s; see its logs in the data directory (services/%s)", sv.Name, timeout, sv.ID))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// wanted is how many replicas a deploy or update waits for: all it asks
// for, or the autoscaler's minimum.
func wanted(sv *store.Service) int {
	if a := sv.Autoscale; a != nil && a.Enabled {
		return max(1, a.MinReplicas)
	}
	return max(1, sv.Replicas)
}

// replicaExits records each new exit of the service's replicas as an
// event, and fails the operation once one exited CrashLoopExits times in a
// row: waiting longer would not make it serve.
func (p *Provider) replicaExits(r *operation.Run, sv *store.Service, seen map[string]int) error {
	for _, e := range p.runtime.Exits(sv.ID, sv.Generation) {
		if e.Seq <= seen[e.Replica] {
			continue
		}
		seen[e.Replica] = e.Seq
		r.Warn("Replica %s exited (%s); its last lines:\n%s", e.Replica, e.Status, e.Lines)
		if e.InRow >= provider.CrashLoopExits {
			return operation.Fail(api.CodeReplicaCrashLoop, fmt.Sprintf("replica %s of %s exited %d times in a row (last: %s); its last lines:\n%s",
				e.Replica, sv.Name, e.InRow, e.Status, e.Lines))
		}
	}
	return nil
}

// ServiceLogs writes the last lines of the log files of the replicas of
// the service's generation (of the earlier ones with Previous) and, to
// follow them, what they print next, until ctx ends or the service is
// deleted.
func (p *Provider) ServiceLogs(ctx context.Context, _ *store.Compute, sv *store.Service, o provider.LogOptions, w io.Writer) error {
	files := p.logFiles(sv, o)
	if len(files) == 0 {
		which := map[bool]string{true: "previous ", false: ""}[o.Previous && o.Replica == ""]
		return problem.NotFound("service %s has no %sreplica logs%s yet", sv.Name, which, map[bool]string{true: " for " + o.Replica}[o.Replica != ""])
	}
	lw := &provider.LogWriter{W: w}
	offsets := map[string]int64{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		offsets[f] = int64(len(data))
		if err := lw.Write(replicaOf(f), lastLines(string(data), o.Tail)+"\n"); err != nil {
			return err
		}
	}
	for o.Follow {
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(250 * time.Millisecond):
		}
		if _, err := os.Stat(p.runtime.serviceDir(sv.ID)); err != nil {
			return nil // deleted
		}
		for _, f := range p.logFiles(sv, o) { // new replicas too
			if err := followFile(f, offsets, lw); err != nil {
				return err
			}
		}
	}
	return nil
}

// followFile writes what a log file gained since its offset.
func followFile(path string, offsets map[string]int64, lw *provider.LogWriter) error {
	data := readFrom(path, offsets[path])
	if len(data) == 0 {
		return nil
	}
	offsets[path] += int64(len(data))
	return lw.Write(replicaOf(path), string(data))
}

// logFiles are a service's replicas' log files (NAME-gGEN-I.log): one
// replica's, or those of its current generation, or of the earlier ones.
func (p *Provider) logFiles(sv *store.Service, o provider.LogOptions) []string {
	all, _ := filepath.Glob(filepath.Join(p.runtime.serviceDir(sv.ID), "*.log"))
	sort.Strings(all)
	var out []string
	for _, f := range all {
		rep := replicaOf(f)
		gen, _, _ := strings.Cut(strings.TrimPrefix(rep, sv.Name+"-g"), "-")
		g, err := strconv.Atoi(gen)
		switch {
		case o.Replica != "" && rep != o.Replica:
		case o.Replica == "" && err != nil:
		case o.Replica == "" && o.Previous != (g < sv.Generation):
		default:
			out = append(out, f)
		}
	}
	return out
}

func replicaOf(logFile string) string { return strings.TrimSuffix(filepath.Base(logFile), ".log") }

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
