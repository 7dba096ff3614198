package service

import (
	"context"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-ml/berth/api"
	"github.com/berth-ml/berth/internal/problem"
	"github.com/berth-ml/berth/internal/provider"
	"github.com/berth-ml/berth/internal/secretbox"
	"github.com/berth-ml/berth/internal/store"
)

// fakeHost is a compute type that hosts services; reviewer makes it check
// delivery tokens as a cluster does.
type fakeHost struct {
	provider.Provider
	provider.ServiceHost
	typ     string
	reviews *int
}

func (h fakeHost) Type() string { return h.typ }

type fakeReviewer struct{ fakeHost }

func (h fakeReviewer) ReviewDeliveryToken(_ context.Context, c *store.Compute, sv *store.Service, token string) error {
	*h.reviews++
	switch token {
	case "pod-token":
		return nil
	case "unreachable":
		return problem.New(http.StatusBadGateway, api.CodeClusterUnreachable, "the token could not be checked with cluster %s: connection refused", c.Name)
	}
	return problem.New(http.StatusUnauthorized, api.CodeUnauthorized, "cluster %s did not accept the token for audience berth:%s: invalid bearer token", c.Name, c.AttachmentID)
}

// Issue 14, item 6: the delivery route answered "no service has id X" to
// any bearer string. Until the service's cluster accepts the token, an
// unknown service, a service whose compute checks no tokens, and a refused
// token get the same answer.
func TestDeliveryChecksTheTokenFirst(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	box, err := secretbox.Load(dir, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(ctx, "sqlite:"+filepath.Join(dir, "berth.db"), dir, box)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	reviews := 0
	m := &Manager{Store: st, Providers: provider.NewRegistry(
		fakeReviewer{fakeHost{typ: "cluster", reviews: &reviews}}, fakeHost{typ: "laptop", reviews: &reviews})}
	ws := &api.Workspace{ID: "ws1", Name: "ws"}
	if err := st.CreateWorkspace(ctx, ws); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*store.Compute{
		{Compute: api.Compute{ID: "c-cluster", Name: "prod-cluster", Type: "cluster", AttachmentID: "a1b2"}, WorkspaceID: ws.ID},
		{Compute: api.Compute{ID: "c-laptop", Name: "laptop", Type: "laptop"}, WorkspaceID: ws.ID},
	} {
		if err := st.CreateCompute(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	for _, sv := range []*store.Service{
		{Service: api.Service{ID: "svc-on-cluster", Name: "iris", ServiceSpec: api.ServiceSpec{Models: []string{"iris:1"}}}, WorkspaceID: ws.ID, ComputeID: "c-cluster"},
		{Service: api.Service{ID: "svc-on-laptop", Name: "local", ServiceSpec: api.ServiceSpec{Models: []string{"iris:1"}}}, WorkspaceID: ws.ID, ComputeID: "c-laptop"},
	} {
		if err := st.CreateService(ctx, sv); err != nil {
			t.Fatal(err)
		}
	}
	answer := func(id, token string) string {
		_, err := m.AuthorizeDelivery(ctx, id, token, "iris", 1)
		p, ok := problem.As(err)
		if !ok {
			t.Fatalf("%s with %q: %v", id, token, err)
		}
		return http.StatusText(p.Status) + " " + p.Body.Code + ": " + p.Body.Message
	}
	refused := answer("svc-on-cluster", "garbage")
	if !strings.HasPrefix(refused, "Unauthorized") {
		t.Fatalf("a refused token: %s", refused)
	}
	for _, c := range []struct{ id, token string }{
		{"no-such-service", "garbage"},
		{"no-such-service", "pod-token"},
		{"svc-on-laptop", "garbage"},
	} {
		if got := answer(c.id, c.token); got != refused {
			t.Errorf("%s with %q: %s\nwant the same as a refused token: %s", c.id, c.token, got, refused)
		}
	}
	for _, leak := range []string{"no service", "prod-cluster", "a1b2", "laptop", "iris"} {
		if strings.Contains(refused, leak) {
			t.Errorf("the refusal names %q: %s", leak, refused)
		}
	}
	// A cluster that cannot be asked: a 5xx (the init container retries), naming nothing.
	if got := answer("svc-on-cluster", "unreachable"); !strings.HasPrefix(got, "Bad Gateway") || strings.Contains(got, "prod-cluster") {
		t.Errorf("unreachable cluster: %s", got)
	}
	// Once the cluster has accepted the token, the service's own answers.
	if got := answer("svc-on-cluster", "pod-token"); !strings.Contains(got, "model iris:1 is no longer registered") {
		t.Errorf("an accepted token: %s", got)
	}
}
