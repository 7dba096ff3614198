// Package fixedhosts shows what adding a compute type takes: this file,
// and one registration line (server.Config.Providers in the test; the
// built-in types are listed in the server's builtinProviders). Its
// services run on a fixed list of hosts that already serve models; the
// type's front end, in this process, routes each service's requests to
// them. Nothing in the generic layers (compute, service, server) knows
// about it.
package fixedhosts

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/berth-ml/berth/api"
	"github.com/berth-ml/berth/client"
	"github.com/berth-ml/berth/internal/frontend"
	"github.com/berth-ml/berth/internal/operation"
	"github.com/berth-ml/berth/internal/problem"
	"github.com/berth-ml/berth/internal/provider"
	"github.com/berth-ml/berth/internal/server"
	"github.com/berth-ml/berth/internal/store"
	"github.com/berth-ml/berth/internal/testenv"
	"github.com/berth-ml/berth/internal/testenv/servertest"
)

// Type is the compute type name.
const Type = "fixedhosts"

// Provider hosts services on Hosts (host:port of running model servers)
// behind Frontend, which serves at Address.
type Provider struct {
	Hosts    []string
	Frontend *frontend.Frontend
	Address  string
}

var (
	_ provider.Provider    = (*Provider)(nil)
	_ provider.ServiceHost = (*Provider)(nil)
)

func (p *Provider) Type() string      { return Type }
func (p *Provider) Origins() []string { return []string{api.OriginAttached} }

func (p *Provider) Validate(_ context.Context, _ *api.Workspace, req *api.ComputeRequest) []api.ErrorDetail {
	if req.Credentials != "" {
		return []api.ErrorDetail{problem.Detail(api.CodeInvalidValue, "credentials", "a fixed-hosts compute takes no credentials")}
	}
	return nil
}

func (p *Provider) ValidateUpdate(context.Context, *store.Compute, *api.ComputeUpdateRequest) []api.ErrorDetail {
	return []api.ErrorDetail{problem.Detail(api.CodeOperationNotSupported, "", "a fixed-hosts compute has nothing to update")}
}

func (p *Provider) ValidateScale(context.Context, *store.Compute, int) []api.ErrorDetail { return nil }

// Steps: attaching records the front end's address; detaching has nothing
// to remove but the routes.
func (p *Provider) Steps(kind api.OperationKind, _ *store.Compute) []operation.Step {
	switch kind {
	case api.OpAttach:
		return []operation.Step{{Name: "record front end", Run: func(ctx context.Context, r *operation.Run) error {
			c, err := r.Store.GetComputeByID(ctx, r.Op.TargetID)
			if err != nil {
				return err
			}
			c.Endpoint, c.NodeCount, c.Health = p.Address, len(p.Hosts), api.HealthHealthy
			r.Event("Services will run on %s", strings.Join(p.Hosts, ", "))
			return r.Store.UpdateCompute(ctx, c)
		}}}
	case api.OpDetach:
		return []operation.Step{{Name: "forget routes", Run: func(context.Context, *operation.Run) error { return nil }}}
	}
	return nil
}

func (p *Provider) CheckService(_ *store.Compute, s *api.ServiceSpec) []api.ErrorDetail {
	if s.Replicas > len(p.Hosts) {
		return []api.ErrorDetail{problem.Detail(api.CodeInvalidValue, "replicas", "this compute has %d hosts, not %d", len(p.Hosts), s.Replicas)}
	}
	return nil
}

func (p *Provider) ServiceSteps(kind api.OperationKind) []provider.ServiceStep {
	switch kind {
	case api.OpDeploy, api.OpUpdate:
		return []provider.ServiceStep{{Name: "route to the hosts", Run: p.route}}
	case api.OpDelete:
		return []provider.ServiceStep{{Name: "remove the route", Run: func(_ context.Context, _ *operation.Run, t *provider.ServiceTarget) error {
			p.Frontend.DeleteRoute(t.Service.Name)
			return nil
		}}}
	}
	return nil
}

func (p *Provider) route(ctx context.Context, r *operation.Run, t *provider.ServiceTarget) error {
	sv := t.Service
	p.Frontend.SetRoute(t.Route)
	var reps []frontend.Replica
	for i, h := range p.Hosts[:max(1, sv.Replicas)] {
		reps = append(reps, frontend.Replica{Name: fmt.Sprintf("%s-%d", sv.Name, i), Addr: h, Slots: sv.MaxConcurrentRequests})
	}
	p.Frontend.SetReplicas(sv.Name, reps, "")
	sv.ReadyReplicas = len(reps)
	sv.ScoringURI = "http://" + p.Address + "/api/v1/service/" + sv.Name + "/score"
	r.Event("Routed %s to %d host(s)", sv.Name, len(reps))
	return r.Store.UpdateService(ctx, sv)
}

func (p *Provider) PublishRoute(_ context.Context, _ *store.Compute, _ *store.Service, rt *frontend.Route) error {
	p.Frontend.SetRoute(rt)
	return nil
}

func (p *Provider) ServiceLogs(_ context.Context, _ *store.Compute, sv *store.Service, _ provider.LogOptions, _ io.Writer) error {
	return problem.NotFound("service %s runs on fixed hosts, which keep their own logs (%s)", sv.Name, strings.Join(p.Hosts, ", "))
}

// env is a server with the fixed-hosts type, its front end and hosts.
type env struct {
	t       *testing.T
	owner   *client.Client
	feURL   string
	p       *Provider
	dataDir string
}

// start runs model-server stand-ins on hosts, the type's front end, and a
// server that has the type: the one registration line.
func start(t *testing.T, hosts int, workspaces ...string) *env {
	var addrs []string
	for i := range hosts {
		h := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, `{"host":%d,"path":%q}`, i, r.URL.Path)
		}))
		t.Cleanup(h.Close)
		addrs = append(addrs, strings.TrimPrefix(h.URL, "http://"))
	}
	fe := frontend.New(slog.New(slog.NewTextHandler(io.Discard, nil)))
	fe.SetReady(true)
	feSrv := httptest.NewServer(fe)
	t.Cleanup(feSrv.Close)
	p := &Provider{Hosts: addrs, Frontend: fe, Address: strings.TrimPrefix(feSrv.URL, "http://")}
	dataDir := t.TempDir()
	srv := servertest.Start(t, server.Config{DataDir: dataDir, Poll: 50 * time.Millisecond,
		Providers: []provider.Provider{p}}) // the one registration line
	owner, _ := client.New(srv.URL, srv.Token)
	e := &env{t: t, owner: owner, feURL: feSrv.URL, p: p, dataDir: dataDir}
	ctx := context.Background()
	for _, ws := range workspaces {
		if _, err := owner.CreateWorkspace(ctx, api.WorkspaceCreateRequest{Name: ws, Region: "westus2"}); err != nil {
			t.Fatal(err)
		}
		e.wait(owner.CreateCompute(ctx, ws, api.ComputeRequest{Name: "racks", Type: Type, Origin: api.OriginAttached}))
		if _, err := owner.RegisterModel(ctx, ws, client.ModelUpload{Name: "iris", FileName: "model.json", Format: "file",
			Body: strings.NewReader(`{}`), Size: 2}); err != nil {
			t.Fatal(err)
		}
	}
	return e
}

// wait waits for an operation to succeed.
func (e *env) wait(op *api.Operation, err error) {
	e.t.Helper()
	if err != nil {
		e.t.Fatal(err)
	}
	if op, err = e.owner.Wait(context.Background(), op.ID, client.WaitOptions{}); err != nil || op.State != api.OpSucceeded {
		e.t.Fatalf("operation %s: %v %+v", op.Kind, err, op.Error)
	}
}

// TestAComputeTypeInOneFile attaches a fixed-hosts compute, deploys a
// service to it and scores it through the type's front end with the
// service's key, regenerates the key, and deletes the service: the whole
// service life cycle over a type the generic layers never heard of.
func TestAComputeTypeInOneFile(t *testing.T) {
	ctx := context.Background()
	e := start(t, 2, "ml-team")
	owner, wait := e.owner, e.wait
	// Validation is the type's too, reported with the generic checks.
	_, err := owner.DeployService(ctx, "ml-team", api.ServiceRequest{Name: "iris-svc", ServiceSpec: api.ServiceSpec{
		Compute: "racks", Models: []string{"iris"}, Command: []string{"serve"}, Replicas: 3}})
	if ce := new(client.Error); !errors.As(err, &ce) || ce.StatusCode != 400 || len(ce.Body.Details) != 1 || ce.Body.Details[0].Target != "replicas" ||
		!strings.Contains(ce.Body.Details[0].Message, "this compute has 2 hosts, not 3") {
		t.Fatalf("3 replicas on 2 hosts: %v", err)
	}
	wait(owner.DeployService(ctx, "ml-team", api.ServiceRequest{Name: "iris-svc", ServiceSpec: api.ServiceSpec{
		Compute: "racks", Models: []string{"iris"}, Command: []string{"serve"}, Replicas: 2}}))
	sv, err := owner.GetService(ctx, "ml-team", "iris-svc")
	if err != nil || sv.State != api.ServiceHealthy || sv.ReadyReplicas != 2 || sv.ScoringURI != e.feURL+"/api/v1/service/iris-svc/score" {
		t.Fatalf("service: %+v %v", sv, err)
	}
	keys, err := owner.ServiceKeys(ctx, "ml-team", "iris-svc")
	if err != nil {
		t.Fatal(err)
	}
	score := func(key string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest("POST", sv.ScoringURI, bytes.NewReader([]byte(`{"data":[[1,2,3,4]]}`)))
		req.Header.Set("Content-Type", "application/json")
		if key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		return testenv.Send(http.DefaultClient, req)
	}
	if code, body := score(keys.PrimaryKey); code != 200 || !strings.Contains(body, `"path":"/score"`) {
		t.Fatalf("score with the key: %d %s", code, body)
	}
	if code, _ := score(""); code != 401 {
		t.Fatalf("score without a key: %d, want 401", code)
	}
	// A new key reaches the front end through PublishRoute at once.
	if _, err := owner.RegenServiceKey(ctx, "ml-team", "iris-svc", api.RegenKeyRequest{Key: "primary"}); err != nil {
		t.Fatal(err)
	}
	if code, _ := score(keys.PrimaryKey); code != 401 {
		t.Fatalf("the old key still works: %d", code)
	}
	if _, err := owner.ServiceLogs(ctx, "ml-team", "iris-svc", "", 10); err == nil || !strings.Contains(err.Error(), "keep their own logs") {
		t.Fatalf("logs: %v", err)
	}
	wait(owner.DeleteService(ctx, "ml-team", "iris-svc"))
	if code, _ := score(keys.SecondaryKey); code != 404 {
		t.Fatalf("score after delete: %d, want 404", code)
	}
	wait(owner.DetachCompute(ctx, "ml-team", "racks", api.DetachRequest{}))
}

// A scoring token names its service's workspace and unique id: a token
// for service iris in one workspace does not open the service iris of
// another (both behind the same front end, signed by the same key), nor
// the service deployed again under the same name after a delete.
func TestTokensAreBoundToWorkspaceAndService(t *testing.T) {
	ctx := context.Background()
	e := start(t, 1, "team-a", "team-b")
	owner, wait := e.owner, e.wait
	deploy := func(ws string) {
		wait(owner.DeployService(ctx, ws, api.ServiceRequest{Name: "iris", ServiceSpec: api.ServiceSpec{
			Compute: "racks", Models: []string{"iris"}, Command: []string{"serve"}, Auth: api.AuthToken}}))
	}
	token := func(ws string) string {
		tok, err := owner.ServiceToken(ctx, ws, "iris")
		if err != nil {
			t.Fatal(err)
		}
		return tok.AccessToken
	}
	score := func(ws, tok string) int { // the front end serves one route per name: the last deployed
		req, _ := http.NewRequest("POST", e.feURL+"/api/v1/service/iris/score", strings.NewReader(`{}`))
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	deploy("team-a")
	tokA := token("team-a")
	if code := score("team-a", tokA); code != 200 {
		t.Fatalf("team-a's token on team-a's iris: %d", code)
	}
	deploy("team-b") // now the front end serves team-b's iris
	if code := score("team-b", tokA); code != 401 {
		t.Fatalf("team-a's token on team-b's iris: %d, want 401", code)
	}
	if code := score("team-b", token("team-b")); code != 200 {
		t.Fatalf("team-b's token: %d", code)
	}
	tokB := token("team-b")
	wait(owner.DeleteService(ctx, "team-b", "iris"))
	deploy("team-b")
	if code := score("team-b", tokB); code != 401 {
		t.Fatalf("a token of the deleted iris on the new one: %d, want 401", code)
	}
}

// A server rewrites every service's route as it starts, so front ends
// holding a route of an older release (no token audience: no token
// accepted) serve this release's again.
func TestServerRepublishesRoutesAtStart(t *testing.T) {
	ctx := context.Background()
	e := start(t, 1, "team-a")
	e.wait(e.owner.DeployService(ctx, "team-a", api.ServiceRequest{Name: "iris", ServiceSpec: api.ServiceSpec{
		Compute: "racks", Models: []string{"iris"}, Command: []string{"serve"}, Auth: api.AuthToken}}))
	tok, err := e.owner.ServiceToken(ctx, "team-a", "iris")
	if err != nil {
		t.Fatal(err)
	}
	score := func() int {
		req, _ := http.NewRequest("POST", e.feURL+"/api/v1/service/iris/score", strings.NewReader(`{}`))
		req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	var old *frontend.Route
	for _, rt := range e.p.Frontend.Services() {
		if rt.Service == "iris" {
			c := *rt
			c.TokenAudience = "" // as an older release wrote it
			old = &c
		}
	}
	e.p.Frontend.SetRoute(old)
	if code := score(); code != 401 {
		t.Fatalf("a token on an old route: %d, want 401", code)
	}
	servertest.Start(t, server.Config{DataDir: e.dataDir, Poll: 50 * time.Millisecond, Providers: []provider.Provider{e.p}})
	for deadline := time.Now().Add(10 * time.Second); score() != 200; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the route was not written again when a server started")
		}
	}
}
