package studio_test

import (
	"context"
	"io"
	"io/fs"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/berth-ml/berth/api"
	"github.com/berth-ml/berth/client"
	"github.com/berth-ml/berth/internal/provider"
	"github.com/berth-ml/berth/internal/server"
	"github.com/berth-ml/berth/internal/testenv/servertest"
	"github.com/berth-ml/berth/internal/testenv/testprovider"
)

// visitor is an HTTP client with a cookie jar, as a visitor signed in to
// the Studio.
type visitor struct {
	t    *testing.T
	base string
	hc   *http.Client
	csrf string
}

func newVisitor(t *testing.T, base string) *visitor {
	jar, _ := cookiejar.New(nil)
	return &visitor{t: t, base: base, hc: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}}
}

func (b *visitor) do(method, path string, form url.Values, header ...string) (*http.Response, string) {
	b.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, _ := http.NewRequest(method, b.base+path, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := b.hc.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if m := regexp.MustCompile(`name="csrf-token" content="([^"]+)"`).FindStringSubmatch(string(raw)); m != nil {
		b.csrf = m[1]
	}
	return resp, string(raw)
}

func (b *visitor) signIn(token string) *http.Response {
	b.t.Helper()
	resp, _ := b.do("POST", "/signin", url.Values{"token": {token}, "next": {"/w/team/computes"}})
	return resp
}

type env struct {
	srv   *servertest.Server
	owner *client.Client
}

func start(t testing.TB, providers ...provider.Provider) *env {
	t.Helper()
	srv := servertest.Start(t, server.Config{DataDir: t.TempDir(), MetricsInterval: -1, ReconcileInterval: -1, Providers: providers})
	c, _ := client.New(srv.URL, srv.Token)
	ctx := context.Background()
	if _, err := c.CreateWorkspace(ctx, api.WorkspaceCreateRequest{Name: "team"}); err != nil {
		t.Fatal(err)
	}
	return &env{srv: srv, owner: c}
}

// laptopAndIris creates local compute laptop and registers model iris
// (a file) in workspace team.
func (e *env) laptopAndIris(t testing.TB) {
	t.Helper()
	ctx := context.Background()
	op, err := e.owner.CreateCompute(ctx, "team", api.ComputeRequest{Name: "laptop", Type: "local", Origin: api.OriginCreated})
	if err == nil {
		_, err = e.owner.Wait(ctx, op.ID, client.WaitOptions{})
	}
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.owner.RegisterModel(ctx, "team", client.ModelUpload{Name: "iris", FileName: "model.bin", Format: "file",
		Body: strings.NewReader("weights"), Size: 7}); err != nil {
		t.Fatal(err)
	}
}

func (e *env) token(t testing.TB, role string) string {
	t.Helper()
	tok, err := e.owner.CreateToken(context.Background(), api.TokenCreateRequest{Role: role})
	if err != nil {
		t.Fatal(err)
	}
	return tok.Secret
}

// TestSignInSessionAndCSRF: a token becomes an HttpOnly, SameSite=Strict
// session cookie, never part of a page or URL; a bad token is refused; a
// state-changing request without the page's CSRF token gets 403, with it
// it goes through; signing out ends the session.
func TestSignInSessionAndCSRF(t *testing.T) {
	e := start(t)
	b := newVisitor(t, e.srv.URL)
	if resp, _ := b.do("GET", "/w/team/computes", nil); resp.StatusCode != 303 || resp.Header.Get("Location") != "/signin?next=%2Fw%2Fteam%2Fcomputes" {
		t.Fatalf("unsigned page: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	if resp := b.signIn("bth_wrong"); resp.StatusCode != 401 {
		t.Fatalf("wrong token: %d", resp.StatusCode)
	}
	resp := b.signIn(e.srv.Token)
	if resp.StatusCode != 303 || resp.Header.Get("Location") != "/w/team/computes" {
		t.Fatalf("sign-in: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	cookie := resp.Header.Get("Set-Cookie")
	for _, want := range []string{"berth_session=", "HttpOnly", "SameSite=Strict", "Path=/"} {
		if !strings.Contains(cookie, want) {
			t.Errorf("session cookie %q lacks %s", cookie, want)
		}
	}
	if strings.Contains(cookie, e.srv.Token) {
		t.Error("the session cookie holds the token in clear")
	}
	resp, page := b.do("GET", "/w/team/computes", nil)
	if resp.StatusCode != 200 || strings.Contains(page, e.srv.Token) || b.csrf == "" {
		t.Fatalf("computes page: %d, token in page %v, csrf %q", resp.StatusCode, strings.Contains(page, e.srv.Token), b.csrf)
	}
	if !strings.Contains(resp.Header.Get("Content-Security-Policy"), "script-src 'self'") {
		t.Errorf("CSP = %q", resp.Header.Get("Content-Security-Policy"))
	}
	// Without the CSRF token: 403, for forms and for the API proxy alike.
	form := url.Values{"role": {"reader"}}
	if resp, body := b.do("POST", "/tokens", form); resp.StatusCode != 403 || !strings.Contains(body, "CSRF") {
		t.Errorf("form without CSRF: %d %s", resp.StatusCode, body)
	}
	if resp, _ := b.do("POST", "/tokens", url.Values{"role": {"reader"}, "csrf": {"forged"}}); resp.StatusCode != 403 {
		t.Errorf("form with a forged CSRF token: %d", resp.StatusCode)
	}
	if resp, _ := b.do("POST", "/ui/api/v1/tokens", nil, "Content-Type", "application/json"); resp.StatusCode != 403 {
		t.Errorf("proxy without CSRF: %d", resp.StatusCode)
	}
	tokens, _ := e.owner.ListTokens(context.Background())
	form.Set("csrf", b.csrf)
	if resp, body := b.do("POST", "/tokens", form); resp.StatusCode != 200 || !strings.Contains(body, "Copy its secret now") {
		t.Errorf("form with CSRF: %d", resp.StatusCode)
	}
	if after, _ := e.owner.ListTokens(context.Background()); len(after) != len(tokens)+1 {
		t.Errorf("tokens %d → %d, want one more", len(tokens), len(after))
	}
	// The API through the proxy: GET needs no CSRF token, and answers as
	// the signed-in token.
	if resp, body := b.do("GET", "/ui/api/v1/whoami", nil); resp.StatusCode != 200 || !regexp.MustCompile(`"role": ?"owner"`).MatchString(body) {
		t.Errorf("whoami through the proxy: %d %s", resp.StatusCode, body)
	}
	b.do("POST", "/signout", url.Values{"csrf": {b.csrf}})
	if resp, _ := b.do("GET", "/w/team/computes", nil); resp.StatusCode != 303 {
		t.Errorf("after sign-out: %d", resp.StatusCode)
	}
}

// TestUserTextIsEscaped: names, descriptions and messages that carry
// markup render as text.
func TestUserTextIsEscaped(t *testing.T) {
	e := start(t)
	ctx := context.Background()
	evil := []string{`<script>alert(1)</script>`, `"><img src=x onerror=alert(1)>`}
	for i, d := range evil {
		_, err := e.owner.RegisterModel(ctx, "team", client.ModelUpload{Name: "m" + string(rune('a'+i)), FileName: "model.bin",
			Format: "file", Description: d, Body: strings.NewReader("weights"), Size: 7})
		if err != nil {
			t.Fatal(err)
		}
	}
	b := newVisitor(t, e.srv.URL)
	b.signIn(e.srv.Token)
	_, page := b.do("GET", "/w/team/models", nil)
	_, attach := b.do("GET", "/w/team/attach", nil)
	_, refused := b.do("POST", "/w/team/attach", url.Values{"csrf": {b.csrf}, "name": {evil[1]}, "credentials": {evil[0]}})
	for name, p := range map[string]string{"models": page, "attach refusal": refused, "attach": attach} {
		if strings.Contains(p, "<script>alert") || strings.Contains(p, "<img src=x") {
			t.Errorf("%s page renders markup from user text", name)
		}
	}
	if !strings.Contains(page, "&lt;script&gt;alert(1)&lt;/script&gt;") {
		t.Error("the model description is not shown as text")
	}
	if !strings.Contains(refused, `aria-describedby="err-name"`) {
		t.Error("the refused attach shows no error next to the name field")
	}
}

// TestReaderSeesNoKeysOrActions: a reader's pages have no keys and no
// action forms, and the API refuses what a reader tries anyway.
func TestReaderSeesNoKeysOrActions(t *testing.T) {
	e := start(t)
	ctx := context.Background()
	e.laptopAndIris(t)
	if _, err := e.owner.DeployService(ctx, "team", api.ServiceRequest{Name: "iris", ServiceSpec: api.ServiceSpec{
		Compute: "laptop", Models: []string{"iris"}, Command: []string{"sleep", "600"}, Replicas: 1}}); err != nil {
		t.Fatal(err)
	}
	keys, err := e.owner.ServiceKeys(ctx, "team", "iris")
	if err != nil {
		t.Fatal(err)
	}
	owner := newVisitor(t, e.srv.URL)
	owner.signIn(e.srv.Token)
	if _, page := owner.do("GET", "/w/team/services/iris", nil); !strings.Contains(page, keys.PrimaryKey) || !strings.Contains(page, "Regenerate") {
		t.Error("the owner's service page has no keys to copy or regenerate")
	}
	reader := newVisitor(t, e.srv.URL)
	reader.signIn(e.token(t, api.RoleReader))
	for _, path := range []string{"/w/team/services/iris", "/w/team/services", "/w/team/computes", "/w/team/computes/laptop", "/w/team/models"} {
		resp, page := reader.do("GET", path, nil)
		if resp.StatusCode != 200 {
			t.Errorf("%s: %d", path, resp.StatusCode)
		}
		if strings.Contains(page, keys.PrimaryKey) || strings.Contains(page, keys.SecondaryKey) {
			t.Errorf("%s shows a key to a reader", path)
		}
		if m := regexp.MustCompile(`<form method="post" action="(/w/[^"]+)"`).FindStringSubmatch(page); m != nil {
			t.Errorf("%s offers a reader the action %s", path, m[1])
		}
		if strings.Contains(page, `id="try"`) || strings.Contains(page, `id="upload"`) || strings.Contains(page, "Attach a cluster") {
			t.Errorf("%s offers a reader try-it, upload or attach", path)
		}
	}
	// The server decides, whatever a page shows.
	for _, path := range []string{"/w/team/services/iris/regen-key", "/w/team/computes/laptop/detach", "/w/team/services/iris/delete"} {
		if resp, _ := reader.do("POST", path, url.Values{"csrf": {reader.csrf}, "key": {"primary"}}); resp.StatusCode != 403 {
			t.Errorf("reader POST %s: %d, want 403", path, resp.StatusCode)
		}
	}
	if resp, _ := reader.do("GET", "/tokens", nil); resp.StatusCode != 403 {
		t.Errorf("reader tokens page: %d, want 403", resp.StatusCode)
	}
}

// TestNoInlineScript: the templates hold no inline script or event
// handler attribute, which the Content-Security-Policy would block.
func TestNoInlineScript(t *testing.T) {
	err := fs.WalkDir(os.DirFS("templates"), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, _ := os.ReadFile("templates/" + p)
		if m := regexp.MustCompile(`<script(?:\s[^>]*)?>\s*[^<\s]|\son[a-z]+=`).Find(b); m != nil && !strings.Contains(string(m), "src=") {
			t.Errorf("%s has inline script: %q", p, m)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestUpdateProblemsBesideFields: a refused compute update shows the
// compute's page again with each problem beside its field, and problems of
// no field above the form.
func TestUpdateProblemsBesideFields(t *testing.T) {
	e := start(t, testprovider.Provider{})
	ctx := context.Background()
	for _, req := range []api.ComputeRequest{{Name: "laptop", Type: "local", Origin: api.OriginCreated},
		{Name: "test-1", Type: testprovider.Type, Origin: api.OriginAttached, Settings: provider.Encode(testprovider.Settings{EffectsDir: t.TempDir()})}} {
		op, err := e.owner.CreateCompute(ctx, "team", req)
		if err == nil {
			_, err = e.owner.Wait(ctx, op.ID, client.WaitOptions{})
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	v := newVisitor(t, e.srv.URL)
	v.signIn(e.srv.Token)
	v.do("GET", "/w/team/computes/test-1", nil)
	resp, page := v.do("POST", "/w/team/computes/test-1/update", url.Values{"csrf": {v.csrf}, "loadBalancerType": {"Nope"}})
	if resp.StatusCode != 400 || !strings.Contains(page, `aria-describedby="err-loadBalancerType"`) || !strings.Contains(page, `id="err-loadBalancerType"`) {
		t.Fatalf("refused update: %d\n%s", resp.StatusCode, page)
	}
	resp, page = v.do("POST", "/w/team/computes/laptop/update", url.Values{"csrf": {v.csrf}, "clusterPurpose": {"DevTest"}})
	if resp.StatusCode != 400 || !strings.Contains(page, "does not support update") {
		t.Fatalf("update of a local compute: %d\n%s", resp.StatusCode, page)
	}
}

// TestEndpointTrafficInStudio: the endpoints pages list the versions and
// their shares; a contributor sets the traffic in one change, a refused
// change shows the API's reason and changes nothing, a reader gets no
// form and a 403.
func TestEndpointTrafficInStudio(t *testing.T) {
	e := start(t)
	ctx := context.Background()
	e.laptopAndIris(t)
	if _, err := e.owner.CreateEndpoint(ctx, "team", api.EndpointRequest{Name: "fraud", Compute: "laptop"}); err != nil {
		t.Fatal(err)
	}
	ten := 10
	for _, v := range []api.EndpointVersionRequest{{Version: "v1"}, {Version: "v2", Traffic: &ten}} {
		v.ServiceSpec = api.ServiceSpec{Models: []string{"iris"}, Command: []string{"sleep", "600"}, Replicas: 1}
		if _, err := e.owner.AddEndpointVersion(ctx, "team", "fraud", v); err != nil {
			t.Fatal(err)
		}
	}
	owner := newVisitor(t, e.srv.URL)
	owner.signIn(e.srv.Token)
	if _, page := owner.do("GET", "/w/team/endpoints", nil); !strings.Contains(page, "v1 90% · v2 10%") {
		t.Errorf("endpoints page:\n%s", page)
	}
	if _, page := owner.do("GET", "/w/team/endpoints/fraud", nil); !strings.Contains(page, `action="/w/team/endpoints/fraud/traffic"`) || !strings.Contains(page, "fraud--v2") {
		t.Errorf("endpoint page:\n%s", page)
	}
	resp, page := owner.do("POST", "/w/team/endpoints/fraud/traffic", url.Values{"csrf": {owner.csrf}, "v1": {"50"}, "v2": {"60"}})
	if resp.StatusCode != 400 || !strings.Contains(page, "traffic sums to 110") {
		t.Errorf("a sum of 110: %d\n%s", resp.StatusCode, page)
	}
	if ep, _ := e.owner.GetEndpoint(ctx, "team", "fraud"); ep.Versions[0].Traffic != 90 {
		t.Errorf("the refused change changed the endpoint: %+v", ep.Versions)
	}
	if resp, _ := owner.do("POST", "/w/team/endpoints/fraud/traffic", url.Values{"csrf": {owner.csrf}, "v1": {"0"}, "v2": {"100"}}); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("promote: %d", resp.StatusCode)
	}
	if ep, _ := e.owner.GetEndpoint(ctx, "team", "fraud"); ep.Versions[0].Traffic != 0 || ep.Versions[1].Traffic != 100 {
		t.Errorf("after promoting v2: %+v", ep.Versions)
	}
	reader := newVisitor(t, e.srv.URL)
	reader.signIn(e.token(t, api.RoleReader))
	if _, page := reader.do("GET", "/w/team/endpoints/fraud", nil); strings.Contains(page, "/traffic") {
		t.Error("the endpoint page offers a reader the traffic form")
	}
	if resp, _ := reader.do("POST", "/w/team/endpoints/fraud/traffic", url.Values{"csrf": {reader.csrf}, "v1": {"100"}, "v2": {"0"}}); resp.StatusCode != 403 {
		t.Errorf("reader POST traffic: %d, want 403", resp.StatusCode)
	}
}
