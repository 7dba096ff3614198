package server_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/berth-ml/berth/api"
	"github.com/berth-ml/berth/client"
	"github.com/berth-ml/berth/internal/server"
	"github.com/berth-ml/berth/internal/testenv/servertest"
)

// TestVersionServiceOwnedWhileListed: a version's service is changed only
// through its endpoint (409 naming it) while the endpoint lists it; one
// its endpoint no longer lists (a delete cut short) is a service again,
// so it can be deleted rather than stranded.
func TestVersionServiceOwnedWhileListed(t *testing.T) {
	srv := servertest.Start(t, server.Config{DataDir: t.TempDir(), MetricsInterval: -1, ReconcileInterval: -1, ReadyTimeout: time.Second})
	c, _ := client.New(srv.URL, srv.Token)
	ctx := context.Background()
	if _, err := c.CreateWorkspace(ctx, api.WorkspaceCreateRequest{Name: "team"}); err != nil {
		t.Fatal(err)
	}
	op, err := c.CreateCompute(ctx, "team", api.ComputeRequest{Name: "laptop", Type: "local", Origin: api.OriginCreated})
	if err == nil {
		_, err = c.Wait(ctx, op.ID, client.WaitOptions{})
	}
	if err == nil {
		_, err = c.RegisterModel(ctx, "team", client.ModelUpload{Name: "iris", FileName: "model.bin", Format: "file",
			Body: strings.NewReader("weights"), Size: 7})
	}
	if err == nil {
		_, err = c.CreateEndpoint(ctx, "team", api.EndpointRequest{Name: "fraud", Compute: "laptop"})
	}
	var ch *api.EndpointChange
	if err == nil { // a replica that never answers: the deploy fails after a second
		ch, err = c.AddEndpointVersion(ctx, "team", "fraud", api.EndpointVersionRequest{Version: "v1",
			ServiceSpec: api.ServiceSpec{Models: []string{"iris"}, Command: []string{"sleep", "600"}, Replicas: 1}})
	}
	if err != nil {
		t.Fatal(err)
	}
	c.Wait(ctx, ch.Operations[0].ID, client.WaitOptions{})
	if _, err := c.DeleteService(ctx, "team", "fraud--v1"); err == nil || !strings.Contains(err.Error(), "service fraud--v1 is version v1 of endpoint fraud") {
		t.Fatalf("deleting a listed version's service: %v", err)
	}
	st := srv.Store()
	ws, _ := st.GetWorkspace(ctx, "team")
	e, err := st.GetEndpoint(ctx, ws.ID, "fraud")
	if err != nil {
		t.Fatal(err)
	}
	e.Versions = e.Versions[:0]
	if err := st.UpdateEndpoint(ctx, e); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeleteService(ctx, "team", "fraud--v1"); err != nil {
		t.Fatalf("deleting a service its endpoint forgot: %v", err)
	}
}
