package kubernetes

import (
	"strings"
	"testing"

	"github.com/berth-ml/berth/api"
	"github.com/berth-ml/berth/internal/store"
)

func TestModelDeliveryNeedsAReachableServer(t *testing.T) {
	c := &store.Compute{Compute: api.Compute{Type: Type}}
	fetch := &api.ServiceSpec{ModelDelivery: api.ModelDeliveryFetch}
	image := &api.ServiceSpec{ModelDelivery: api.ModelDeliveryImage}
	noURL, withURL := &Provider{}, &Provider{PublicURL: "http://berth.example:8470"}
	if d := noURL.CheckService(c, fetch); len(d) != 1 || d[0].Code != "ModelDeliveryUnavailable" ||
		!strings.Contains(d[0].Message, "start it with --public-url URL (or BERTH_PUBLIC_URL), or bake the models into the image and deploy with `modelDelivery` image") {
		t.Errorf("fetch without a public URL: %v", d)
	}
	if d := withURL.CheckService(c, fetch); len(d) != 0 {
		t.Errorf("fetch with a public URL: %v", d)
	}
	if d := noURL.CheckService(c, image); len(d) != 0 {
		t.Errorf("models in the image: %v", d)
	}
}

func TestClusterReplicaBounds(t *testing.T) {
	p := &Provider{PublicURL: "http://berth.example:8470"}
	c := &store.Compute{Compute: api.Compute{Type: Type}}
	if d := p.CheckService(c, &api.ServiceSpec{Replicas: 100000}); len(d) != 1 || !strings.Contains(d[0].Message, "at most 500") {
		t.Errorf("100000 replicas: %v", d)
	}
	if d := p.CheckService(c, &api.ServiceSpec{Replicas: MaxServiceReplicas}); len(d) != 0 {
		t.Errorf("the limit: %v", d)
	}
}
