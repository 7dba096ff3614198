package local

import (
	"fmt"
	"github.com/berth-ml/berth/internal/service"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-ml/berth/api"
)

func TestLocalServicesNeedACommandAndDeliverModelsThemselves(t *testing.T) {
	p := &Provider{}
	if d := p.CheckService(nil, &api.ServiceSpec{Command: []string{"serve"}, ModelDelivery: api.ModelDeliveryFetch}); len(d) != 0 {
		t.Errorf("a command with fetched models: %v", d)
	}
	d := p.CheckService(nil, &api.ServiceSpec{ModelDelivery: api.ModelDeliveryImage})
	if len(d) != 2 || d[0].Code != api.CodeCommandRequired || !strings.Contains(d[1].Message, "`modelDelivery` image needs a cluster") {
		t.Errorf("an image on the local compute: %v", d)
	}
}

// TestRemovePartialModels: a model folder that a killed server left half
// unpacked is removed at the next start; whole models stay.
func TestRemovePartialModels(t *testing.T) {
	dir := t.TempDir()
	whole := filepath.Join(dir, "local-models", "m1")
	partial := filepath.Join(dir, "local-models", "m2.partial")
	for _, d := range []string{whole, partial} {
		os.MkdirAll(d, 0o700)
		os.WriteFile(filepath.Join(d, "weights.bin"), []byte("w"), 0o600)
	}
	rt := &Runtime{DataDir: dir}
	if n := rt.removePartialModels(); n != 1 {
		t.Fatalf("removed %d", n)
	}
	if _, err := os.Stat(partial); !os.IsNotExist(err) {
		t.Fatalf("partial: %v", err)
	}
	if _, err := os.Stat(filepath.Join(whole, "weights.bin")); err != nil {
		t.Fatalf("whole: %v", err)
	}
}

// A replica count or autoscale maximum above what this machine runs is
// refused, saying the limit.
func TestLocalReplicaBounds(t *testing.T) {
	p := &Provider{}
	limit := MaxServiceReplicas()
	d := p.CheckService(nil, &api.ServiceSpec{Command: []string{"serve"}, Replicas: 100000})
	if len(d) != 1 || d[0].Target != "replicas" || !strings.Contains(d[0].Message, fmt.Sprintf("at most %d", limit)) {
		t.Errorf("100000 replicas: %v", d)
	}
	d = p.CheckService(nil, &api.ServiceSpec{Command: []string{"serve"}, Autoscale: &api.AutoscaleSettings{Enabled: true, MinReplicas: 1, MaxReplicas: limit + 1}})
	if len(d) != 1 || d[0].Target != "autoscale.maxReplicas" {
		t.Errorf("autoscale max over the limit: %v", d)
	}
	if d := p.CheckService(nil, &api.ServiceSpec{Command: []string{"serve"}, Replicas: limit}); len(d) != 0 {
		t.Errorf("%d replicas (the limit): %v", limit, d)
	}
	// The defaults (autoscaling up to 10) fit on any machine.
	spec := &api.ServiceSpec{Compute: "laptop", Models: []string{"m"}, Command: []string{"serve"}}
	if d := service.Normalize(spec); len(d) != 0 {
		t.Fatal(d)
	}
	if d := p.CheckService(nil, spec); len(d) != 0 {
		t.Errorf("the default spec: %v", d)
	}
}
