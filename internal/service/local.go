package service

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/berth-ml/berth/api"
	"github.com/berth-ml/berth/internal/frontend"
	"github.com/berth-ml/berth/internal/operation"
	"github.com/berth-ml/berth/internal/problem"
	"github.com/berth-ml/berth/internal/store"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Services on the local compute: the server's local runtime (package
// localrt) runs the replicas as processes from the service records; the
// operation records the desired spec and waits until the service answers
// ready through the local front end.

func (m *Manager) localPlan(op *store.Operation) (*operation.Plan, error) {
	switch op.Kind {
	case api.OpDeploy, api.OpUpdate:
		return &operation.Plan{Steps: []operation.Step{
			{Name: "record", Run: m.localRecord},
			{Name: "wait for replicas", Run: m.localWait},
		}, Finish: m.finish}, nil
	case api.OpDelete:
		// The runtime stops the replicas once the record is gone.
		return &operation.Plan{Steps: []operation.Step{{Name: "stop", Run: func(context.Context, *operation.Run) error { return nil }}}, Finish: m.finish}, nil
	}
	return nil, fmt.Errorf("services have no %s operation", op.Kind)
}

// localRecord stores the desired spec (an update's) for the runtime.
func (m *Manager) localRecord(ctx context.Context, r *operation.Run) error {
	sv, err := r.Store.GetServiceByID(ctx, r.Op.TargetID)
	if err != nil {
		return err
	}
	if err := desired(r, sv); err != nil {
		return err
	}
	sv.Generation++
	r.Event("Replicas of %s will run here as processes: %v", sv.Name, sv.Command)
	return r.Store.UpdateService(ctx, sv)
}

// LocalRoute is the route the local runtime serves for a service.
func (m *Manager) LocalRoute(ctx context.Context, sv *store.Service) (*frontend.Route, error) {
	return m.route(ctx, sv)
}

// localWait asks the local front end whether the service is ready, with
// the service's own credentials, until it is.
func (m *Manager) localWait(ctx context.Context, r *operation.Run) error {
	sv, err := r.Store.GetServiceByID(ctx, r.Op.TargetID)
	if err != nil {
		return err
	}
	c, err := r.Store.GetComputeByID(ctx, sv.ComputeID)
	if err != nil {
		return err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM([]byte(c.Secrets["caCert"]))
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	auth := ""
	switch sv.Auth {
	case api.AuthKey:
		auth = "Bearer " + sv.Secrets["primaryKey"]
	case api.AuthToken:
		k, err := signingKey(ctx, m.Store)
		if err != nil {
			return err
		}
		tok, _, err := SignToken(k, sv.Name, time.Now())
		if err != nil {
			return err
		}
		auth = "Bearer " + tok
	}
	timeout := m.ReadyTimeout
	if timeout == 0 {
		timeout = 2 * time.Minute
	}
	deadline := time.Now().Add(timeout)
	url := fmt.Sprintf("https://%s/v2/models/%s/ready", c.Endpoint, sv.Name)
	for {
		if m.LocalStatus != nil {
			if gen, ready, ok := m.LocalStatus(sv.ID); !ok || gen != sv.Generation || ready == 0 {
				if time.Now().After(deadline) {
					return operation.Fail(api.CodeReplicasNotReady, fmt.Sprintf("no replica of %s became ready within %s; see its logs in the data directory (services/%s)", sv.Name, timeout, sv.ID))
				}
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-time.After(200 * time.Millisecond):
				}
				continue
			}
		}
		req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := hc.Do(req)
		if err == nil {
			var body struct{ Replicas int }
			json.NewDecoder(resp.Body).Decode(&body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				fresh, err := r.Store.GetServiceByID(ctx, sv.ID)
				if err != nil {
					return err
				}
				fresh.ScoringURI, fresh.SwaggerURI = uris(c, fresh)
				fresh.ReadyReplicas = max(1, fresh.ReadyReplicas)
				r.Event("Service %s answers ready at %s", sv.Name, fresh.ScoringURI)
				return r.Store.UpdateService(ctx, fresh)
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

// Logs returns the last lines of a service's replica logs: the log files
// of the local runtime, or the pods' logs on a cluster.
func (m *Manager) Logs(ctx context.Context, ws *api.Workspace, name, replica string, tail int, dataDir string) (string, error) {
	sv, err := m.Get(ctx, ws, name)
	if err != nil {
		return "", err
	}
	if tail <= 0 {
		tail = 100
	}
	c, err := m.Store.GetComputeByID(ctx, sv.ComputeID)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	if c.Type == api.ComputeLocal {
		files, _ := filepath.Glob(filepath.Join(dataDir, "services", sv.ID, "*.log"))
		sort.Strings(files)
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
	cl, err := connect(c)
	if err != nil {
		return "", err
	}
	pods, err := cl.Client.CoreV1().Pods(sv.Namespace).List(ctx, metav1.ListOptions{LabelSelector: frontend.ServiceLabel + "=" + sv.Name})
	if err != nil {
		return "", problem.New(http.StatusBadGateway, api.CodeClusterUnreachable, "%v", cl.Explain(err))
	}
	n := int64(tail)
	for _, p := range pods.Items {
		if replica != "" && p.Name != replica {
			continue
		}
		raw, err := cl.Client.CoreV1().Pods(sv.Namespace).GetLogs(p.Name, &corev1.PodLogOptions{TailLines: &n}).DoRaw(ctx)
		if err != nil {
			fmt.Fprintf(&b, "==> %s <==\n(no logs: %v)\n", p.Name, cl.Explain(err))
			continue
		}
		fmt.Fprintf(&b, "==> %s <==\n%s\n", p.Name, raw)
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
