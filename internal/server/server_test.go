package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/berth-ml/berth/internal/testenv/servertest"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-ml/berth/api"
	"github.com/berth-ml/berth/client"
	"github.com/berth-ml/berth/internal/provider"
	"github.com/berth-ml/berth/internal/server"
	"github.com/berth-ml/berth/internal/testenv/testdb"
	"github.com/berth-ml/berth/internal/testenv/testprovider"
)

type env struct {
	t       testing.TB
	url     string
	dataDir string
	owner   *client.Client
	log     *servertest.Log
	srv     *server.Server
	effects string
}

// start runs a server in-process on a loopback port over a fresh database.
func start(t testing.TB, kind testdb.Kind) *env {
	t.Helper()
	dir := t.TempDir()
	srv := servertest.Start(t, server.Config{DataDir: dir, DatabaseURL: kind.URL(t, dir), Lease: 3 * time.Second,
		Poll: 100 * time.Millisecond, Providers: []provider.Provider{testprovider.Provider{}}})
	owner, _ := client.New(srv.URL, srv.Token)
	effects := filepath.Join(dir, "cloud")
	os.Mkdir(effects, 0o755)
	return &env{t: t, url: srv.URL, dataDir: dir, owner: owner, log: srv.Log, srv: srv.Server, effects: effects}
}

func sqlite() testdb.Kind { return testdb.Kinds[0] }

func (e *env) workspace(name string) {
	e.t.Helper()
	if _, err := e.owner.CreateWorkspace(context.Background(), api.WorkspaceCreateRequest{Name: name, Region: "westus2"}); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) testCompute(name string, settings map[string]any) api.ComputeRequest {
	s := map[string]any{"effectsDir": e.effects}
	for k, v := range settings {
		s[k] = v
	}
	b, _ := json.Marshal(s)
	return api.ComputeRequest{Name: name, Type: testprovider.Type, Origin: api.OriginAttached, Settings: b}
}

func (e *env) client(token string) *client.Client {
	c, _ := client.New(e.url, token)
	return c
}

func (e *env) tokenFor(role, ws string) string {
	e.t.Helper()
	tc, err := e.owner.CreateToken(context.Background(), api.TokenCreateRequest{Role: role, Workspace: ws})
	if err != nil {
		e.t.Fatal(err)
	}
	return tc.Secret
}

func wait(t *testing.T, c *client.Client, op *api.Operation) *api.Operation {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	final, err := c.Wait(ctx, op.ID, client.WaitOptions{})
	var oe *client.OperationError
	if err != nil && !errors.As(err, &oe) {
		t.Fatalf("wait %s: %v", op.ID, err)
	}
	return final
}

func raw(t *testing.T, method, url, token, body string) (int, api.ErrorResponse, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var er api.ErrorResponse
	json.Unmarshal(data, &er)
	return resp.StatusCode, er, string(data)
}

func TestAuthentication(t *testing.T) {
	e := start(t, sqlite())
	e.workspace("wsa1")
	e.workspace("wsa2")
	for _, tc := range []struct{ token, want string }{
		{"", "needs a bearer token"},
		{"bth_not-a-real-token", "not valid"},
	} {
		code, er, body := raw(t, "GET", e.url+"/api/v1/workspaces", tc.token, "")
		if code != 401 || er.Error.Code != api.CodeUnauthorized || !strings.Contains(er.Error.Message, tc.want) {
			t.Errorf("token %q: %d %s", tc.token, code, body)
		}
	}
	// Every API route needs a token, not only the one above.
	code, _, _ := raw(t, "POST", e.url+"/api/v1/workspaces/ws1/computes", "", `{}`)
	if code != 401 {
		t.Errorf("create compute without token: %d", code)
	}

	ctx := context.Background()
	reader := e.client(e.tokenFor(api.RoleReader, ""))
	if _, err := reader.ListWorkspaces(ctx); err != nil {
		t.Fatalf("reader list: %v", err)
	}
	_, err := reader.CreateWorkspace(ctx, api.WorkspaceCreateRequest{Name: "ws3"})
	var ce *client.Error
	if !errors.As(err, &ce) || ce.StatusCode != 403 || !strings.Contains(ce.Body.Message, "needs the contributor role") {
		t.Fatalf("reader create: %v", err)
	}

	contrib := e.client(e.tokenFor(api.RoleContributor, ""))
	op, err := contrib.CreateCompute(ctx, "wsa1", api.ComputeRequest{Name: "cmp1", Type: "test", Origin: "attached", Credentials: "kubeconfig",
		Settings: provider.Encode(testprovider.Settings{EffectsDir: e.effects})})
	if err != nil {
		t.Fatal(err)
	}
	wait(t, contrib, op)
	if _, err := contrib.GetCredentials(ctx, "wsa1", "cmp1"); !errors.Is(err, client.ErrForbidden) {
		t.Fatalf("contributor reads credentials: %v", err)
	}
	if cred, err := e.owner.GetCredentials(ctx, "wsa1", "cmp1"); err != nil || cred != "kubeconfig" {
		t.Fatalf("owner reads credentials: %q %v", cred, err)
	}
	if _, err := contrib.ListTokens(ctx); !errors.Is(err, client.ErrForbidden) {
		t.Fatalf("contributor lists tokens: %v", err)
	}

	// A token limited to ws2 sees only ws2.
	scopedSecret := e.tokenFor(api.RoleOwner, "wsa2")
	scoped := e.client(scopedSecret)
	wss, err := scoped.ListWorkspaces(ctx)
	if err != nil || len(wss) != 1 || wss[0].Name != "wsa2" {
		t.Fatalf("scoped list: %+v %v", wss, err)
	}
	if _, err := scoped.GetCompute(ctx, "wsa1", "cmp1"); !errors.Is(err, client.ErrForbidden) {
		t.Fatalf("scoped token reads another workspace: %v", err)
	}
	if _, err := scoped.GetOperation(ctx, op.ID); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("scoped token reads another workspace's operation: %v", err)
	}

	// Revoked tokens stop working.
	tokens, _ := e.owner.ListTokens(ctx)
	for _, tk := range tokens {
		if tk.Workspace == "wsa2" {
			if err := e.owner.RevokeToken(ctx, tk.ID); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := scoped.ListWorkspaces(ctx); !errors.Is(err, client.ErrUnauthorized) {
		t.Fatalf("revoked token: %v", err)
	}
	// The owner token file is private.
	st, _ := os.Stat(filepath.Join(e.dataDir, server.AdminTokenFile))
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("admin.token mode %v", st.Mode().Perm())
	}
}

func TestValidationReportsEverythingAndChangesNothing(t *testing.T) {
	e := start(t, sqlite())
	e.workspace("wsa")
	ctx := context.Background()
	_, err := e.owner.CreateCompute(ctx, "wsa", api.ComputeRequest{Name: "9-bad_name", Type: "test", Origin: "attached",
		ClusterPurpose: "Prod", LoadBalancerType: "Public", Settings: json.RawMessage(`{"steps": "many"}`),
		SSL: &api.SSLRequest{Cname: "x.example.com", LeafDomainLabel: "x"}})
	var ce *client.Error
	if !errors.As(err, &ce) || ce.StatusCode != 400 {
		t.Fatalf("want 400, got %v", err)
	}
	want := []string{
		`compute name "9-bad_name" may only contain letters, digits and '-' (found '_')`,
		`compute name "9-bad_name" must start with a letter`,
		`clusterPurpose "Prod" is not valid: use one of FastProd, DevTest`,
		`loadBalancerType "Public" is not valid: use one of PublicIp, InternalLoadBalancer`,
		"a custom certificate needs the certificate, the key and the cname together",
		"not both",
		"an automatic certificate needs the workspace's DNS zone",
		"settings.steps must be an integer",
		"settings.effectsDir is required",
	}
	var got []string
	for _, d := range ce.Details() {
		got = append(got, d.Message)
	}
	all := strings.Join(got, "\n")
	for _, w := range want {
		if !strings.Contains(all, w) {
			t.Errorf("missing %q in:\n%s", w, all)
		}
	}
	if len(got) != len(want) {
		t.Errorf("got %d details, want %d:\n%s", len(got), len(want), all)
	}
	if list, _ := e.owner.ListComputes(ctx, "wsa"); len(list) != 0 {
		t.Fatalf("a rejected request created %d computes", len(list))
	}

	for name, rule := range map[string]string{
		"ab":                         "must be 3 to 24 characters long",
		"a-very-long-compute-name-x": "must be 3 to 24 characters long (it has 26)",
		"abc-":                       "must end with a letter or digit",
		"1abc":                       "must start with a letter",
		"local":                      "is reserved",
	} {
		_, err := e.owner.CreateCompute(ctx, "wsa", e.testCompute(name, nil))
		if !errors.As(err, &ce) || ce.Code() != api.CodeInvalidComputeName || !strings.Contains(ce.Body.Message, rule) || !strings.Contains(ce.Body.Message, fmt.Sprintf("%q", name)) {
			t.Errorf("name %q: %v, want %s naming the name", name, err, rule)
		}
	}

	// Names are unique regardless of case.
	op, err := e.owner.CreateCompute(ctx, "wsa", e.testCompute("Prod-1", nil))
	if err != nil {
		t.Fatal(err)
	}
	wait(t, e.owner, op)
	_, err = e.owner.CreateCompute(ctx, "wsa", e.testCompute("prod-1", nil))
	if !errors.As(err, &ce) || ce.StatusCode != 409 || ce.Code() != api.CodeNameInUse {
		t.Fatalf("same name in another case: %v", err)
	}

	// Malformed bodies get 4xx with the JSON error shape, never 5xx.
	for body, want := range map[string]string{
		`{"name":"abc","type":"test","origin":"attached","bogus":true}`: `unknown field "bogus"`,
		`{"name": 12}`:             `field "name" must be a string`,
		`{"name":"abc"`:            "ends too early",
		``:                         "needs a JSON body",
		`{"name":"x"}{"name":"y"}`: "single JSON object",
	} {
		code, er, raw := raw(t, "POST", e.url+"/api/v1/workspaces/wsa/computes", tokenOf(e.owner, e), body)
		if code != 400 || !strings.Contains(er.Error.Message, want) {
			t.Errorf("body %q: %d %s", body, code, raw)
		}
	}
	big := `{"name":"` + strings.Repeat("a", 2<<20) + `"}`
	if code, er, _ := raw(t, "POST", e.url+"/api/v1/workspaces/wsa/computes", tokenOf(e.owner, e), big); code != 413 || er.Error.Code != api.CodePayloadTooLarge {
		t.Errorf("oversized body: %d %+v", code, er)
	}
	if code, er, _ := raw(t, "PUT", e.url+"/api/v1/workspaces/wsa", tokenOf(e.owner, e), ""); code != 405 || er.Error.Code != api.CodeMethodNotAllowed {
		t.Errorf("wrong method: %d %+v", code, er)
	}
	if code, er, _ := raw(t, "GET", e.url+"/api/v1/nothing", tokenOf(e.owner, e), ""); code != 404 || er.Error.Code != api.CodeNotFound {
		t.Errorf("unknown path: %d %+v", code, er)
	}
}

func tokenOf(_ *client.Client, e *env) string {
	b, _ := os.ReadFile(filepath.Join(e.dataDir, server.AdminTokenFile))
	return strings.TrimSpace(string(b))
}

func TestOperationLifecycle(t *testing.T) {
	for _, kind := range testdb.Kinds {
		t.Run(kind.Name, func(t *testing.T) {
			t.Parallel()
			e := start(t, kind)
			e.workspace("wsa")
			ctx := context.Background()

			op, err := e.owner.CreateCompute(ctx, "wsa", e.testCompute("slow-1", map[string]any{"stepDelay": "300ms", "steps": 3}))
			if err != nil {
				t.Fatal(err)
			}
			if op.State != api.OpPending || op.Kind != api.OpAttach {
				t.Fatalf("new operation %+v", op)
			}
			c, _ := e.owner.GetCompute(ctx, "wsa", "slow-1")
			if c.ProvisioningState != api.StateAttaching || c.CurrentOperation != op.ID {
				t.Fatalf("compute while attaching: %+v", c)
			}
			// A second operation on the same target is refused, naming the first.
			_, err = e.owner.DetachCompute(ctx, "wsa", "slow-1", api.DetachRequest{})
			var ce *client.Error
			if !errors.As(err, &ce) || ce.StatusCode != 409 || ce.Code() != api.CodeOperationInProgress ||
				!strings.Contains(ce.Body.Message, op.ID) || !strings.Contains(ce.Body.Message, "attach") {
				t.Fatalf("second operation: %v", err)
			}
			// Events stream live.
			var streamed []string
			final, err := e.owner.Wait(ctx, op.ID, client.WaitOptions{OnEvent: func(ev api.Event) { streamed = append(streamed, ev.Message) }})
			if err != nil || final.State != api.OpSucceeded {
				t.Fatalf("wait: %+v %v", final, err)
			}
			joined := strings.Join(streamed, "\n")
			for _, w := range []string{"Started attach of slow-1", "Created resource 1 of 3", "Created resource 3 of 3", "Succeeded: attach of slow-1"} {
				if !strings.Contains(joined, w) {
					t.Errorf("events lack %q:\n%s", w, joined)
				}
			}
			evs, _ := e.owner.ListEvents(ctx, op.ID, 0)
			if len(evs) != len(streamed) {
				t.Errorf("listed %d events, streamed %d", len(evs), len(streamed))
			}
			c, _ = e.owner.GetCompute(ctx, "wsa", "slow-1")
			if c.ProvisioningState != api.StateSucceeded || c.Health != api.HealthHealthy || c.CurrentOperation != "" {
				t.Fatalf("compute after attach: %+v", c)
			}

			// A failing step fails the operation with every detail, recorded on the compute.
			op, _ = e.owner.CreateCompute(ctx, "wsa", e.testCompute("broken", map[string]any{"failAt": 2}))
			final = wait(t, e.owner, op)
			if final.State != api.OpFailed || final.Error.Code != "TestFailure" || len(final.Error.Details) != 2 {
				t.Fatalf("failed operation: %+v", final)
			}
			c, _ = e.owner.GetCompute(ctx, "wsa", "broken")
			if c.ProvisioningState != api.StateFailed || len(c.ProvisioningErrors) != 2 || c.ProvisioningErrors[1].Message != "check B failed" {
				t.Fatalf("failed compute: %+v", c)
			}
			// A transient error is retried.
			op, _ = e.owner.CreateCompute(ctx, "wsa", e.testCompute("flaky", map[string]any{"flakyAt": 1}))
			if final = wait(t, e.owner, op); final.State != api.OpSucceeded {
				t.Fatalf("flaky: %+v", final)
			}
			evs, _ = e.owner.ListEvents(ctx, op.ID, 0)
			if !strings.Contains(fmt.Sprint(evs), "retrying in") {
				t.Fatalf("no retry event: %+v", evs)
			}

			// The workspace cannot be deleted while computes exist.
			if err := e.owner.DeleteWorkspace(ctx, "wsa"); !errors.As(err, &ce) || ce.Code() != api.CodeWorkspaceNotEmpty || !strings.Contains(ce.Body.Message, "3 compute(s)") {
				t.Fatalf("delete non-empty workspace: %v", err)
			}
			// Delete is refused for attached computes.
			if _, err := e.owner.DeleteCompute(ctx, "wsa", "flaky"); !errors.As(err, &ce) || ce.Code() != "ComputeIsAttached" {
				t.Fatalf("delete attached: %v", err)
			}
			// Detach removes what was made and forgets the compute.
			for _, n := range []string{"slow-1", "broken", "flaky"} {
				op, err := e.owner.DetachCompute(ctx, "wsa", n, api.DetachRequest{})
				if err != nil {
					t.Fatal(err)
				}
				if final := wait(t, e.owner, op); final.State != api.OpSucceeded {
					t.Fatalf("detach %s: %+v", n, final)
				}
			}
			if left, _ := os.ReadDir(e.effects); len(left) != 0 {
				t.Fatalf("detach left %d resources", len(left))
			}
			if _, err := e.owner.GetCompute(ctx, "wsa", "slow-1"); !errors.Is(err, client.ErrNotFound) {
				t.Fatalf("detached compute still there: %v", err)
			}
			if ops, _ := e.owner.GetOperation(ctx, op.ID); ops == nil {
				t.Fatal("operation history lost after detach")
			}
			if err := e.owner.DeleteWorkspace(ctx, "wsa"); err != nil {
				t.Fatalf("delete empty workspace: %v", err)
			}
		})
	}
}

func TestCancelAndUpdate(t *testing.T) {
	e := start(t, sqlite())
	e.workspace("wsa")
	ctx := context.Background()
	op, _ := e.owner.CreateCompute(ctx, "wsa", e.testCompute("long", map[string]any{"stepDelay": "400ms", "steps": 10}))
	time.Sleep(500 * time.Millisecond)
	if _, err := e.owner.CancelOperation(ctx, op.ID); err != nil {
		t.Fatal(err)
	}
	final := wait(t, e.owner, op)
	if final.State != api.OpCanceled {
		t.Fatalf("canceled operation: %+v", final)
	}
	c, _ := e.owner.GetCompute(ctx, "wsa", "long")
	if c.ProvisioningState != api.StateCanceled {
		t.Fatalf("compute after cancel: %s", c.ProvisioningState)
	}
	// Update validates the SSL rules and applies load balancer settings in place.
	_, err := e.owner.UpdateCompute(ctx, "wsa", "long", api.ComputeUpdateRequest{SSL: &api.SSLRequest{Renew: true}})
	var ce *client.Error
	if !errors.As(err, &ce) || !strings.Contains(ce.Body.Message, "ssl.renew only applies to an automatic certificate") {
		t.Fatalf("renew without Auto: %v", err)
	}
	op, err = e.owner.UpdateCompute(ctx, "wsa", "long", api.ComputeUpdateRequest{LoadBalancerType: api.LoadBalancerInternal, LoadBalancerSubnet: "inner"})
	if err != nil {
		t.Fatal(err)
	}
	// The SDK's wait can write the events to any writer, one line each.
	var lines bytes.Buffer
	if _, err := e.owner.Wait(ctx, op.ID, client.WaitOptions{Events: &lines}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(lines.String(), "Applied settings\n") || !strings.Contains(lines.String(), "Succeeded: update of long\n") {
		t.Fatalf("event lines:\n%s", lines.String())
	}
	c, _ = e.owner.GetCompute(ctx, "wsa", "long")
	if c.LoadBalancerType != api.LoadBalancerInternal || c.LoadBalancerSubnet != "inner" || c.ProvisioningState != api.StateSucceeded {
		t.Fatalf("after update: %+v", c)
	}
}

func TestSecretsAreNeverReadable(t *testing.T) {
	e := start(t, sqlite())
	e.workspace("wsa")
	ctx := context.Background()
	const secret = "client-key-data: S3CRET-b8f1c2d9e7a6"
	req := e.testCompute("sec", nil)
	req.Credentials = "apiVersion: v1\n" + secret
	op, err := e.owner.CreateCompute(ctx, "wsa", req)
	if err != nil {
		t.Fatal(err)
	}
	wait(t, e.owner, op)
	for _, path := range []string{"/api/v1/workspaces/wsa/computes", "/api/v1/workspaces/wsa/computes/sec", "/api/v1/workspaces/wsa", "/api/v1/operations/" + op.ID, "/api/v1/operations/" + op.ID + "/events"} {
		_, _, body := raw(t, "GET", e.url+path, tokenOf(e.owner, e), "")
		if strings.Contains(body, "S3CRET") {
			t.Errorf("%s shows the secret", path)
		}
	}
	c, _ := e.owner.GetCompute(ctx, "wsa", "sec")
	if !c.HasCredentials {
		t.Error("show does not say the compute has credentials")
	}
	for _, f := range []string{"berth.db", "berth.db-wal"} {
		data, err := os.ReadFile(filepath.Join(e.dataDir, f))
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		if bytes.Contains(data, []byte("S3CRET")) {
			t.Errorf("%s holds the secret in clear", f)
		}
	}
	if strings.Contains(e.log.String(), "S3CRET") {
		t.Error("the log shows the secret")
	}
	if strings.Contains(e.log.String(), tokenOf(e.owner, e)) {
		t.Error("the log shows the owner token")
	}
}

func TestOpenAPIMatchesRoutes(t *testing.T) {
	e := start(t, sqlite())
	doc, err := e.owner.OpenAPI(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if doc["openapi"] != "3.0.3" {
		t.Fatalf("openapi version %v", doc["openapi"])
	}
	paths := doc["paths"].(map[string]any)
	documented := 0
	for path, item := range paths {
		for method := range item.(map[string]any) {
			documented++
			// Fill path parameters; the route must exist (any answer but
			// the catch-all's 404 "no such API path" or a 405).
			p := strings.NewReplacer("{workspace}", "nows", "{compute}", "noc", "{operation}", "noop", "{token}", "notok").Replace(path)
			code, er, _ := raw(t, strings.ToUpper(method), e.url+p, tokenOf(e.owner, e), "{}")
			if code == 405 || strings.Contains(er.Error.Message, "no such API path") {
				t.Errorf("documented %s %s is not served (%d %s)", method, path, code, er.Error.Message)
			}
		}
	}
	// And every API route the server has is documented: probe each method
	// on each documented path shape plus the known collections.
	served := 0
	for path := range paths {
		p := strings.NewReplacer("{workspace}", "nows", "{compute}", "noc", "{operation}", "noop", "{token}", "notok").Replace(path)
		for _, m := range []string{"GET", "POST", "PATCH", "DELETE", "PUT"} {
			code, er, _ := raw(t, m, e.url+p, tokenOf(e.owner, e), "{}")
			if code != 405 && !strings.Contains(er.Error.Message, "no such API path") {
				served++
				if _, ok := paths[path].(map[string]any)[strings.ToLower(m)]; !ok {
					t.Errorf("%s %s is served but not documented", m, path)
				}
			}
		}
	}
	if served != documented {
		t.Errorf("served %d method+path pairs, documented %d", served, documented)
	}
	schemas := doc["components"].(map[string]any)["schemas"].(map[string]any)
	comp := schemas["Compute"].(map[string]any)["properties"].(map[string]any)
	for _, f := range []string{"name", "type", "provisioningState", "provisioningErrors", "health", "clusterPurpose", "loadBalancerType", "sslConfiguration", "kubernetesVersion", "nodeCount", "allocatableCpus", "endpoint"} {
		if _, ok := comp[f]; !ok {
			t.Errorf("Compute schema lacks %s", f)
		}
	}
}

func TestHealthAndMetrics(t *testing.T) {
	e := start(t, sqlite())
	for _, p := range []string{"/healthz", "/readyz"} {
		if code, _, body := raw(t, "GET", e.url+p, "", ""); code != 200 {
			t.Errorf("%s: %d %s", p, code, body)
		}
	}
	raw(t, "GET", e.url+"/api/v1/workspaces", "", "")
	_, _, body := raw(t, "GET", e.url+"/metrics", "", "")
	if !strings.Contains(body, `berth_api_requests_total{code="401",method="GET",route="listWorkspaces"} 1`) {
		t.Errorf("metrics lack the request counter:\n%.2000s", body)
	}
}

func TestKubernetesAttachValidation(t *testing.T) {
	e := start(t, sqlite())
	e.workspace("wsa")
	ctx := context.Background()
	_, err := e.owner.CreateCompute(ctx, "wsa", api.ComputeRequest{Name: "k8s-1", Type: "kubernetes", Origin: "created",
		Settings: json.RawMessage(`{"credentialMode": "admin", "color": "blue"}`), SSL: &api.SSLRequest{LeafDomainLabel: "x"}})
	var ce *client.Error
	if !errors.As(err, &ce) || ce.StatusCode != 400 {
		t.Fatalf("want 400, got %v", err)
	}
	all := fmt.Sprint(ce.Details())
	for _, want := range []string{`compute type "kubernetes" cannot be created (it supports: attached)`, `settings.credentialMode "admin" is not valid`,
		`settings.color is not a setting of this compute type`, "credentials (a kubeconfig) are required", "an automatic certificate needs the workspace's DNS zone"} {
		if !strings.Contains(all, want) {
			t.Errorf("details lack %q: %s", want, all)
		}
	}
	_, err = e.owner.CreateCompute(ctx, "wsa", api.ComputeRequest{Name: "k8s-1", Type: "kubernetes", Origin: "attached", Credentials: "not: [a kubeconfig"})
	if !errors.As(err, &ce) || !strings.Contains(ce.Body.Message, "the kubeconfig is not valid") {
		t.Fatalf("bad kubeconfig: %v", err)
	}
	kc := "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:1\ncontexts:\n- name: a\n  context: {cluster: c, user: u}\ncurrent-context: a\nusers:\n- name: u\n  user:\n    exec: {command: kubelogin, apiVersion: client.authentication.k8s.io/v1beta1}\n"
	_, err = e.owner.CreateCompute(ctx, "wsa", api.ComputeRequest{Name: "k8s-1", Type: "kubernetes", Origin: "attached", Credentials: kc})
	if !errors.As(err, &ce) || !strings.Contains(ce.Body.Message, `exec plugin "kubelogin"`) {
		t.Fatalf("exec kubeconfig: %v", err)
	}
	if list, _ := e.owner.ListComputes(ctx, "wsa"); len(list) != 0 {
		t.Fatalf("rejected attaches recorded %d computes", len(list))
	}
	// A dry run against an address where nothing listens reports every check.
	kc = strings.Replace(kc, "    exec: {command: kubelogin, apiVersion: client.authentication.k8s.io/v1beta1}\n", "    token: abc\n", 1)
	rep, err := e.owner.DryRunCompute(ctx, "wsa", api.ComputeRequest{Name: "k8s-1", Type: "kubernetes", Origin: "attached", Credentials: kc})
	if err != nil || rep.Passed || len(rep.Checks) != 5 || rep.Checks[0].Status != api.CheckFailed || !strings.Contains(rep.Checks[0].Message, "connection refused") || rep.Checks[1].Status != api.CheckSkipped {
		t.Fatalf("dry run: %+v %v", rep, err)
	}
}

func TestVersions(t *testing.T) {
	e := start(t, sqlite())
	vl, err := e.owner.ListVersions(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	if len(vl.Orchestrators) != 5 || vl.Orchestrators[0].OrchestratorVersion != "1.37" || !vl.Orchestrators[0].Default || vl.Orchestrators[1].Default {
		t.Fatalf("versions: %+v", vl)
	}
	if up := vl.Orchestrators[1].Upgrades; len(up) != 1 || up[0].OrchestratorVersion != "1.37" {
		t.Fatalf("upgrades of 1.36: %+v", up)
	}
	if _, err := e.owner.ListVersions(context.Background(), "westus"); !errors.Is(err, client.ErrValidation) {
		t.Fatalf("location without AKS: %v", err)
	}
}

// The first owner token reaches its file before the database records that
// it was made: a start that cannot write the file makes nothing, and the
// next one makes the token (a crash between the two used to lock the
// owner out for good).
func TestOwnerTokenFileBeforeTheMark(t *testing.T) {
	dir := t.TempDir()
	tokenPath := filepath.Join(dir, server.AdminTokenFile)
	if err := os.Mkdir(tokenPath, 0o700); err != nil { // the file cannot be written
		t.Fatal(err)
	}
	if _, err := server.New(context.Background(), server.Config{DataDir: dir}); err == nil {
		t.Fatal("a server that cannot write its owner token started")
	}
	os.Remove(tokenPath)
	srv := servertest.Start(t, server.Config{DataDir: dir})
	c, _ := client.New(srv.URL, srv.Token)
	if _, err := c.ListTokens(context.Background()); err != nil {
		t.Fatalf("the token written on the second start: %v", err)
	}
}

// reset-owner-token makes a working owner token from the data directory
// alone, and refuses a directory that is not a server's.
func TestResetOwnerToken(t *testing.T) {
	e := start(t, sqlite())
	id, path, err := server.ResetOwnerToken(context.Background(), server.Config{DataDir: e.dataDir})
	if err != nil {
		t.Fatal(err)
	}
	secret, _ := os.ReadFile(path)
	st, _ := os.Stat(path)
	c := e.client(strings.TrimSpace(string(secret)))
	ts, err := c.ListTokens(context.Background())
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("the new token: %v (file mode %v)", err, st.Mode().Perm())
	}
	found := false
	for _, tk := range ts {
		found = found || tk.ID == id && tk.Role == api.RoleOwner
	}
	if !found {
		t.Fatalf("token %s is not an owner token in %+v", id, ts)
	}
	empty := t.TempDir()
	if _, _, err := server.ResetOwnerToken(context.Background(), server.Config{DataDir: empty}); err == nil || !strings.Contains(err.Error(), "is it the server's data directory?") {
		t.Fatalf("an empty directory: %v", err)
	}
	if entries, _ := os.ReadDir(empty); len(entries) != 0 {
		t.Fatalf("a refused reset left %d files", len(entries))
	}
}

// An error repeats at most a short piece of a huge value: a 100,000
// character name (or region, or model) makes an error of a few hundred
// bytes, not hundreds of kilobytes.
func TestErrorsShortenEchoedValues(t *testing.T) {
	e := start(t, sqlite())
	e.workspace("wsa")
	huge := strings.Repeat("é-x_", 25000)
	for _, c := range []struct{ method, path, body string }{
		{"POST", "/api/v1/workspaces", fmt.Sprintf(`{"name":%q,"region":%q}`, huge, huge)},
		{"POST", "/api/v1/workspaces/wsa/computes", fmt.Sprintf(`{"name":%q,"type":%q,"origin":"attached"}`, huge, huge)},
		{"POST", "/api/v1/workspaces/wsa/services", fmt.Sprintf(`{"name":%q,"compute":%q,"models":[%q]}`, huge, huge, huge)},
		{"GET", "/api/v1/workspaces/wsa/computes/" + strings.Repeat("x", 100000), ""},
	} {
		code, _, body := raw(t, c.method, e.url+c.path, e.tokenFor(api.RoleOwner, ""), c.body)
		if code < 400 || len(body) > 4096 || !strings.Contains(body, "characters)") && code != 404 {
			t.Errorf("%s %s: %d, %d bytes: %.300s", c.method, c.path[:min(len(c.path), 40)], code, len(body), body)
		}
	}
}

// BERTH_OWNER_TOKEN (what the Helm chart puts in a Secret) is adopted as an
// owner token once per database: servers starting together on PostgreSQL
// make one, no admin.token is written, a revoked one stays revoked when the
// servers restart, and a malformed one stops the server without showing it.
func TestOwnerTokenFromEnv(t *testing.T) {
	for _, kind := range testdb.Kinds {
		t.Run(kind.Name, func(t *testing.T) {
			dir := t.TempDir()
			url := kind.URL(t, dir)
			secret := "bth_" + strings.Repeat("Ab0-_", 9)
			env := func(k string) string {
				if k == server.EnvOwnerToken {
					return secret
				}
				return ""
			}
			cfg := server.Config{DataDir: dir, DatabaseURL: url, Getenv: env}
			a := servertest.Start(t, cfg)
			if kind.Name == "postgres" { // a second replica with its own data directory
				cfg.DataDir = t.TempDir()
			}
			servertest.Start(t, cfg)
			c, _ := client.New(a.URL, secret)
			ts, err := c.ListTokens(context.Background())
			if err != nil || len(ts) != 1 || ts[0].Role != api.RoleOwner || !strings.Contains(ts[0].Description, server.EnvOwnerToken) {
				t.Fatalf("tokens with the adopted one: %+v %v", ts, err)
			}
			if _, err := os.Stat(filepath.Join(dir, server.AdminTokenFile)); !os.IsNotExist(err) {
				t.Fatalf("admin.token written beside an adopted token: %v", err)
			}
			if strings.Contains(a.Log.String(), secret) {
				t.Fatal("the log shows the token")
			}
			if err := c.RevokeToken(context.Background(), ts[0].ID); err != nil {
				t.Fatal(err)
			}
			cfg.DataDir = t.TempDir()
			b := servertest.Start(t, cfg)
			if code, _, body := raw(t, "GET", b.URL+"/api/v1/workspaces", secret, ""); code != 401 {
				t.Fatalf("a revoked adopted token after a restart: %d %s", code, body)
			}

			bad := "bth_short token"
			cfg.Getenv = func(k string) string {
				if k == server.EnvOwnerToken {
					return bad
				}
				return ""
			}
			_, err = server.New(context.Background(), cfg)
			if err == nil || !strings.Contains(err.Error(), server.EnvOwnerToken+" must be bth_") || strings.Contains(err.Error(), bad) {
				t.Fatalf("a malformed token: %v", err)
			}
		})
	}
}
