package aks

import (
	"context"
	"io"

	"github.com/berth-ml/berth/api"
	"github.com/berth-ml/berth/internal/frontend"
	"github.com/berth-ml/berth/internal/provider"
	"github.com/berth-ml/berth/internal/store"
)

// Services on AKS clusters are services on Kubernetes: the kubernetes
// provider hosts them.

func (p *Provider) CheckService(c *store.Compute, s *api.ServiceSpec) []api.ErrorDetail {
	return p.Kube.CheckService(c, s)
}

func (p *Provider) ServiceSteps(kind api.OperationKind) []provider.ServiceStep {
	return p.Kube.ServiceSteps(kind)
}

func (p *Provider) PublishRoute(ctx context.Context, c *store.Compute, sv *store.Service, rt *frontend.Route) error {
	return p.Kube.PublishRoute(ctx, c, sv, rt)
}

func (p *Provider) PublishEndpoint(ctx context.Context, c *store.Compute, name string, rt *frontend.EndpointRoute) error {
	return p.Kube.PublishEndpoint(ctx, c, name, rt)
}

func (p *Provider) ScoringBase(c *store.Compute) string { return p.Kube.ScoringBase(c) }

func (p *Provider) ServiceLogs(ctx context.Context, c *store.Compute, sv *store.Service, o provider.LogOptions, w io.Writer) error {
	return p.Kube.ServiceLogs(ctx, c, sv, o, w)
}

func (p *Provider) ReviewDeliveryToken(ctx context.Context, c *store.Compute, sv *store.Service, token string) error {
	return p.Kube.ReviewDeliveryToken(ctx, c, sv, token)
}

func (p *Provider) ReviewFrontendToken(ctx context.Context, c *store.Compute, token string) (string, error) {
	return p.Kube.ReviewFrontendToken(ctx, c, token)
}
