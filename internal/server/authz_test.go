package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/berth-ml/berth/api"
	"github.com/berth-ml/berth/client"
)

// TestAuthorizationMatrix calls every API route that needs a token (read
// from the server's own OpenAPI document, so a new route is covered
// without editing this test) with every kind of credential — none, each
// role unscoped, and each role limited to workspace team-a — against
// team-a's resources and team-b's. A caller without a token gets 401; one
// whose role is below the route's, or whose workspace is not the path's,
// gets 403; a scoped caller never reaches another workspace's operations
// or tokens (403 or 404); everyone else gets past authorization (no 401,
// 403 or 5xx).
func TestAuthorizationMatrix(t *testing.T) {
	e := start(t, sqlite())
	ctx := context.Background()
	workspaces := []string{"team-a", "team-b"}
	opOf, victimOf := map[string]string{}, map[string]string{}
	for _, ws := range workspaces {
		e.workspace(ws)
		op, err := e.owner.CreateCompute(ctx, ws, e.testCompute("cmp1", nil))
		if err != nil {
			t.Fatal(err)
		}
		wait(t, e.owner, op)
		opOf[ws] = op.ID
		if _, err := e.owner.RegisterModel(ctx, ws, client.ModelUpload{Name: "m1", FileName: "m.json", Format: "file", Body: strings.NewReader("{}"), Size: 2}); err != nil {
			t.Fatal(err)
		}
		tc, err := e.owner.CreateToken(ctx, api.TokenCreateRequest{Role: api.RoleReader, Workspace: ws, Description: "victim"})
		if err != nil {
			t.Fatal(err)
		}
		victimOf[ws] = tc.ID
	}
	rank := map[string]int{"": 0, api.RoleReader: 1, api.RoleContributor: 2, api.RoleOwner: 3}
	type cred struct{ name, role, ws, secret string }
	creds := []cred{{name: "no token"}}
	for _, scope := range []string{"", "team-a"} {
		for _, role := range []string{api.RoleReader, api.RoleContributor, api.RoleOwner} {
			name := role
			if scope != "" {
				name += "@" + scope
			}
			creds = append(creds, cred{name: name, role: role, ws: scope, secret: e.tokenFor(role, scope)})
		}
	}

	var doc struct {
		Paths map[string]map[string]struct {
			Role string `json:"x-berth-role"`
		} `json:"paths"`
	}
	code, _, body := raw(t, "GET", e.url+"/api/v1/openapi.json", "", "")
	if code != 200 || json.Unmarshal([]byte(body), &doc) != nil {
		t.Fatalf("openapi: %d", code)
	}
	type call struct{ method, path, role string }
	var routes []call
	for path, methods := range doc.Paths {
		for method, op := range methods {
			if op.Role != "" {
				routes = append(routes, call{strings.ToUpper(method), path, op.Role})
			}
		}
	}
	// Whatever lets someone score a service is the owners': keys and
	// scoring tokens alike.
	svc := doc.Paths["/api/v1/workspaces/{workspace}/services/{service}/keys"]["get"].Role
	tok := doc.Paths["/api/v1/workspaces/{workspace}/services/{service}/token"]["post"].Role
	if svc != api.RoleOwner || tok != api.RoleOwner {
		t.Errorf("service keys need %q and scoring tokens %q; both should be owner", svc, tok)
	}
	epKeys := doc.Paths["/api/v1/workspaces/{workspace}/endpoints/{endpoint}/keys"]["get"].Role
	epTok := doc.Paths["/api/v1/workspaces/{workspace}/endpoints/{endpoint}/token"]["post"].Role
	if epKeys != api.RoleOwner || epTok != api.RoleOwner {
		t.Errorf("endpoint keys need %q and scoring tokens %q; both should be owner", epKeys, epTok)
	}
	sort.Slice(routes, func(i, j int) bool { return routes[i].path+routes[i].method < routes[j].path+routes[j].method })
	param := regexp.MustCompile(`\{[a-z]+\}`)
	calls := 0
	for _, rt := range routes {
		for _, target := range workspaces {
			url := param.ReplaceAllStringFunc(rt.path, func(p string) string {
				return map[string]string{"{workspace}": target, "{compute}": "cmp1", "{service}": "no-such-svc", "{endpoint}": "no-such-ep", "{model}": "m1", "{version}": "1",
					"{operation}": opOf[target], "{token}": victimOf[target]}[p]
			})
			reqBody := ""
			if rt.method == "POST" || rt.method == "PATCH" {
				reqBody = "{}"
			}
			if rt.method == "POST" && rt.path == "/api/v1/tokens" {
				reqBody = fmt.Sprintf(`{"role":"reader","workspace":%q}`, target)
			}
			for _, c := range creds {
				calls++
				code, er, _ := raw(t, rt.method, e.url+url, c.secret, reqBody)
				otherWS := c.ws != "" && c.ws != target
				var want []int // nil: anything past authorization
				switch {
				case c.secret == "":
					want = []int{401}
				case rank[c.role] < rank[rt.role]:
					want = []int{403}
				case otherWS && strings.Contains(rt.path, "{workspace}"):
					want = []int{403}
				case otherWS && (strings.HasPrefix(rt.path, "/api/v1/tokens") && rt.method != "GET"):
					want = []int{403}
				case otherWS && strings.Contains(rt.path, "{operation}"):
					want = []int{403, 404}
				case c.ws != "" && rt.method == "POST" && rt.path == "/api/v1/workspaces":
					want = []int{403}
				}
				ok := slices.Contains(want, code)
				if want == nil {
					ok = code != 401 && code != 403 && code < 500
				}
				if !ok {
					t.Errorf("%s %s as %s: %d %s (want %v)", rt.method, url, c.name, code, er.Error.Message, map[bool]any{true: "past authorization", false: want}[want == nil])
					if code >= 500 {
						t.Log(e.log.String())
					}
				}
			}
		}
	}
	if want := len(routes) * len(workspaces) * len(creds); calls != want || len(routes) < 35 {
		t.Fatalf("%d calls over %d routes, want %d", calls, len(routes), want)
	}
	t.Logf("%d calls: %d routes × %d workspaces × %d credentials", calls, len(routes), len(workspaces), len(creds))

	// A scoped owner lists only its workspace's tokens, and cannot revoke an
	// unscoped one.
	scopedOwner := e.client(creds[len(creds)-1].secret)
	ts, err := scopedOwner.ListTokens(ctx)
	if err != nil || len(ts) == 0 {
		t.Fatalf("scoped list: %v %v", ts, err)
	}
	for _, tk := range ts {
		if tk.Workspace != "team-a" {
			t.Errorf("a token limited to team-a lists %s (workspace %q)", tk.ID, tk.Workspace)
		}
	}
	all, _ := e.owner.ListTokens(ctx)
	for _, tk := range all {
		if tk.Workspace == "" {
			if err := scopedOwner.RevokeToken(ctx, tk.ID); !isStatus(err, http.StatusForbidden) {
				t.Errorf("a scoped owner revokes unscoped token %s: %v", tk.ID, err)
			}
		}
	}
}

func isStatus(err error, code int) bool {
	ce, ok := err.(*client.Error)
	return ok && ce.StatusCode == code
}

// A service's command runs on the control plane's machine when its
// compute is the local one: deploying or updating one is the owners',
// unless an owner created the compute allowing contributors.
func TestLocalCommandsAreTheOwners(t *testing.T) {
	e := start(t, sqlite())
	ctx := context.Background()
	e.workspace("team")
	for name, settings := range map[string]string{"laptop": "", "shared": `{"allowContributorCommands":true}`} {
		op, err := e.owner.CreateCompute(ctx, "team", api.ComputeRequest{Name: name, Type: api.ComputeLocal, Origin: api.OriginCreated, Settings: []byte(settings)})
		if err != nil {
			t.Fatal(err)
		}
		if done := wait(t, e.owner, op); done.State != api.OpSucceeded {
			t.Fatalf("create %s: %+v", name, done.Error)
		}
	}
	if _, err := e.owner.RegisterModel(ctx, "team", client.ModelUpload{Name: "m1", FileName: "m.json", Format: "file", Body: strings.NewReader("{}"), Size: 2}); err != nil {
		t.Fatal(err)
	}
	contributor := e.client(e.tokenFor(api.RoleContributor, ""))
	deploy := func(c *client.Client, name, compute string) error {
		_, err := c.DeployService(ctx, "team", api.ServiceRequest{Name: name, ServiceSpec: api.ServiceSpec{
			Compute: compute, Models: []string{"m1"}, Command: []string{"/bin/true"}}})
		return err
	}
	if err := deploy(contributor, "by-contrib", "laptop"); !isStatus(err, http.StatusForbidden) || !strings.Contains(err.Error(), "needs the owner role") {
		t.Fatalf("a contributor's command on the local compute: %v", err)
	}
	if err := deploy(contributor, "by-contrib", "shared"); err != nil {
		t.Fatalf("a contributor's command where owners allowed it: %v", err)
	}
	if err := deploy(e.owner, "by-owner", "laptop"); err != nil {
		t.Fatalf("an owner's command: %v", err)
	}
	if _, err := contributor.UpdateService(ctx, "team", "by-owner", api.ServiceSpec{Command: []string{"/bin/false"}}); !isStatus(err, http.StatusForbidden) {
		t.Fatalf("a contributor's update of a command on the local compute: %v", err)
	}
}
