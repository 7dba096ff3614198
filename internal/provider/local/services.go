package local

// Services on the local compute: the runtime runs the replicas as
// processes from the service records; an operation records the desired
// spec (a new generation) and waits until the service answers ready
// through the local front end.

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"sort"
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
	timeout := p.ReadyTimeout
	if timeout == 0 {
		timeout = 2 * time.Minute
	}
	deadline := time.Now().Add(timeout)
	url := fmt.Sprintf("https://%s/v2/models/%s/ready", c.Endpoint, sv.Name)
	for {
		if err := p.runtime.StartFailure(sv.ID, sv.Generation); err != nil {
			code := api.CodeReplicasNotReady
			if errors.As(err, new(unpackError)) {
				code = api.CodeModelUnpackFailed
			}
			return operation.Fail(code, fmt.Sprintf("no replica of %s can start: %v", sv.Name, err))
		}
		if gen, ready, ok := p.runtime.Status(sv.ID); ok && gen == sv.Generation && ready > 0 {
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
					base := fmt.Sprintf("https://%s/api/v1/service/%s", c.Endpoint, fresh.Name)
					fresh.ScoringURI, fresh.SwaggerURI = base+"/score", base+"/swagger.json"
					fresh.ReadyReplicas = max(1, fresh.ReadyReplicas)
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

// ServiceLogs returns the last lines of the replicas' log files.
func (p *Provider) ServiceLogs(_ context.Context, _ *store.Compute, sv *store.Service, replica string, tail int) (string, error) {
	files, _ := filepath.Glob(filepath.Join(p.runtime.DataDir, "services", sv.ID, "*.log"))
	sort.Strings(files)
	var b strings.Builder
	found := false
	for _, f := range files {
		rep := strings.TrimSuffix(filepath.Base(f), ".log")
		if replica != "" && rep != replica {
			continue
		}
		found = true
		data, err := os.ReadFile(f)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(&b, "==> %s <==\n%s\n", rep, lastLines(string(data), tail))
	}
	if !found {
		return "", problem.NotFound("service %s has no replica logs%s yet", sv.Name, map[bool]string{true: " for " + replica}[replica != ""])
	}
	return b.String(), nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
