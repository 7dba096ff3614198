package service

// Model delivery (docs/model-delivery.md): a cluster's replicas fetch
// their service's model versions from the control plane with a token
// their cluster issued. The compute's provider checks the token
// (provider.DeliveryReviewer); this side serves only the models of the
// token's service.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"

	"github.com/berth-ml/berth/api"
	"github.com/berth-ml/berth/internal/problem"
	"github.com/berth-ml/berth/internal/provider"
	"github.com/berth-ml/berth/internal/store"
)

// AuthorizeDelivery checks a replica's delivery token and returns the
// model version it may download. Only the models of the token's service
// (as deployed, or as its running update wants them) are served.
func (m *Manager) AuthorizeDelivery(ctx context.Context, serviceID, token, model string, version int) (*store.Model, error) {
	if token == "" {
		return nil, problem.New(http.StatusUnauthorized, api.CodeUnauthorized, "model delivery needs the pod's service-account token (Authorization: Bearer <token>)")
	}
	sv, err := m.Store.GetServiceByID(ctx, serviceID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, problem.NotFound("no service has id %s (was it deleted?)", serviceID)
	} else if err != nil {
		return nil, err
	}
	c, err := m.Store.GetComputeByID(ctx, sv.ComputeID)
	if err != nil {
		return nil, err
	}
	h, _ := m.host(c.Type)
	rev, ok := h.(provider.DeliveryReviewer)
	if !ok {
		return nil, problem.New(http.StatusBadRequest, api.CodeNotAClusterService, "service %s runs on compute %s (type %s), which delivers its models itself", sv.Name, c.Name, c.Type)
	}
	if err := rev.ReviewDeliveryToken(ctx, c, sv, token); err != nil {
		return nil, err
	}
	ref := fmt.Sprintf("%s:%d", model, version)
	if !slices.Contains(m.deliverable(ctx, sv), ref) {
		return nil, problem.Forbidden("service %s does not use model %s", sv.Name, ref)
	}
	md, err := m.Store.GetModel(ctx, sv.WorkspaceID, model, version)
	if errors.Is(err, store.ErrNotFound) {
		return nil, problem.NotFound("model %s is no longer registered", ref)
	}
	return md, err
}

// deliverable are the model versions a service's pods may fetch: those
// deployed and those of an update being rolled out.
func (m *Manager) deliverable(ctx context.Context, sv *store.Service) []string {
	refs := append([]string{}, sv.Models...)
	if sv.CurrentOperation == "" {
		return refs
	}
	op, err := m.Store.GetOperation(ctx, sv.CurrentOperation)
	if err != nil || op.Kind != api.OpUpdate {
		return refs
	}
	var spec api.ServiceSpec
	if json.Unmarshal(op.Params, &spec) == nil {
		refs = append(refs, spec.Models...)
	}
	return refs
}
