package local

import (
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
	if len(d) != 2 || d[0].Code != api.CodeCommandRequired || !strings.Contains(d[1].Message, "--model-delivery image needs a cluster") {
		t.Errorf("an image on the local compute: %v", d)
	}
}
