package local

import (
	"context"

	dto "github.com/prometheus/client_model/go"

	"github.com/berth-ml/berth/internal/store"
)

// FrontendMetrics reads the compute's front end in this process. A compute
// whose front end is not running here has none.
func (p *Provider) FrontendMetrics(_ context.Context, c *store.Compute) (map[string][]*dto.MetricFamily, error) {
	p.runtime.mu.Lock()
	in := p.runtime.running[c.ID]
	p.runtime.mu.Unlock()
	if in == nil || in.fe == nil {
		return nil, nil
	}
	fams, err := in.fe.Gather()
	if err != nil {
		return nil, err
	}
	return map[string][]*dto.MetricFamily{"local": fams}, nil
}
