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
	"log/slog"
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
//
// The service in the path only says which cluster is to check the token:
// until that cluster has accepted it, the caller learns nothing of the
// service. An unknown service, one whose compute checks no tokens, and a
// token the cluster refuses all get the same answer (refusedDelivery), and
// the cause goes to the server's log.
func (m *Manager) AuthorizeDelivery(ctx context.Context, serviceID, token, model string, version int) (*store.Model, error) {
	if token == "" {
		return nil, problem.New(http.StatusUnauthorized, api.CodeUnauthorized, "model delivery needs the pod's service-account token (Authorization: Bearer <token>)")
	}
	sv, err := m.Store.GetServiceByID(ctx, serviceID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, refusedDelivery(serviceID, "no service has this id")
	} else if err != nil {
		return nil, err
	}
	c, err := m.Store.GetComputeByID(ctx, sv.ComputeID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, refusedDelivery(serviceID, "the service's compute is gone")
	} else if err != nil {
		return nil, err
	}
	h, _ := m.host(c.Type)
	rev, ok := h.(provider.DeliveryReviewer)
	if !ok {
		return nil, refusedDelivery(serviceID, fmt.Sprintf("service %s runs on compute %s (type %s), which delivers its models itself", sv.Name, c.Name, c.Type))
	}
	if err := rev.ReviewDeliveryToken(ctx, c, sv, token); err != nil {
		if p, ok := problem.As(err); ok && p.Status == http.StatusUnauthorized {
			return nil, refusedDelivery(serviceID, p.Body.Message)
		}
		if p, ok := problem.As(err); !ok || p.Status >= 500 {
			// The cluster could not be asked: a 5xx, which the init
			// container retries, naming neither the service nor its cluster.
			slog.Warn("a model delivery token could not be checked", "service", sv.Name, "id", serviceID, "err", err)
			return nil, problem.New(http.StatusBadGateway, api.CodeClusterUnreachable, "the token could not be checked with the service's cluster; try again")
		}
		return nil, err // the cluster accepted the token, for another identity (403)
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

// refusedDelivery is the one answer to a caller whose token no cluster
// has accepted for the service in the path, whatever the cause (logged).
func refusedDelivery(serviceID, cause string) error {
	slog.Info("model delivery refused", "service_id", serviceID, "cause", cause)
	return problem.New(http.StatusUnauthorized, api.CodeUnauthorized,
		"the delivery token was not accepted: the service's cluster did not accept the token for audience berth:<attachment id>, or there is no such service")
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
