package endpoint

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/berth-ml/berth/api"
	"github.com/berth-ml/berth/internal/frontend"
	"github.com/berth-ml/berth/internal/problem"
	"github.com/berth-ml/berth/internal/provider"
	"github.com/berth-ml/berth/internal/service"
	"github.com/berth-ml/berth/internal/store"
	"github.com/google/uuid"
)

// Manager runs the endpoint life cycle. A version is a service named
// ENDPOINT--VERSION (service.Manager runs it); the endpoint's record holds
// the traffic of all its versions, changed whole in one store update and
// published as one route.
type Manager struct {
	Store    *store.Store
	Services *service.Manager
}

// ServiceName is the name of the service that runs an endpoint's version.
func ServiceName(endpoint, version string) string { return endpoint + "--" + version }

var versionName = regexp.MustCompile(`^[a-z]([a-z0-9-]*[a-z0-9])?$`)

// checkNames reports what is wrong with an endpoint's name, and with a
// version's when version is not empty.
func checkNames(name, version string) []api.ErrorDetail {
	var out []api.ErrorDetail
	for _, d := range service.CheckName(name) {
		d.Code = api.CodeInvalidEndpointName
		d.Message = strings.Replace(d.Message, "service name", "endpoint name", 1)
		out = append(out, d)
	}
	if strings.Contains(name, "--") {
		out = append(out, problem.Detail(api.CodeInvalidEndpointName, "name", "endpoint name %q may not contain \"--\" (it separates an endpoint from its version in service names)", name))
	}
	if version == "" {
		return out
	}
	if n := len(version); n > 20 || !versionName.MatchString(version) || strings.Contains(version, "--") {
		out = append(out, problem.Detail(api.CodeInvalidValue, "version", "version name %q must be 1 to 20 lowercase letters, digits and single '-', starting with a letter and ending with a letter or digit", version))
	}
	return out
}

// Get returns an endpoint, or a 404 naming it.
func (m *Manager) Get(ctx context.Context, ws *api.Workspace, name string) (*store.Endpoint, error) {
	e, err := m.Store.GetEndpoint(ctx, ws.ID, name)
	if errors.Is(err, store.ErrNotFound) {
		return nil, problem.New(http.StatusNotFound, api.CodeEndpointNotFound, "endpoint %q not found in workspace %q (see `berth endpoint list`)", name, ws.Name)
	}
	return e, err
}

// host is an endpoint's compute and the provider serving its route.
func (m *Manager) host(ctx context.Context, computeID string) (*store.Compute, provider.EndpointHost, error) {
	c, err := m.Store.GetComputeByID(ctx, computeID)
	if err != nil {
		return nil, nil, err
	}
	p, _ := m.Services.Providers.Get(c.Type)
	h, ok := p.(provider.EndpointHost)
	if !ok {
		return nil, nil, problem.New(http.StatusBadRequest, api.CodeUnsupportedCompute, "compute %s (type %s) serves no endpoints", c.Name, c.Type)
	}
	return c, h, nil
}

// Create records an endpoint with no versions and publishes its route
// (requests get 503 until a version is added).
func (m *Manager) Create(ctx context.Context, ws *api.Workspace, req *api.EndpointRequest) (*api.Endpoint, error) {
	details := checkNames(req.Name, "")
	req.Auth = cmp.Or(req.Auth, api.AuthKey)
	if req.Auth != api.AuthKey && req.Auth != api.AuthToken && req.Auth != api.AuthNone {
		details = append(details, problem.Detail(api.CodeInvalidValue, "auth", "auth %q is not key, token or none", req.Auth))
	}
	var c *store.Compute
	if req.Compute == "" {
		details = append(details, problem.Detail(api.CodeInvalidValue, "compute", "an endpoint needs a compute (--compute)"))
	} else if found, err := m.Store.GetCompute(ctx, ws.ID, req.Compute); errors.Is(err, store.ErrNotFound) {
		details = append(details, problem.Detail(api.CodeComputeNotFound, "compute", "compute %q not found in workspace %q", req.Compute, ws.Name))
	} else if err != nil {
		return nil, err
	} else if c, _, err = m.host(ctx, found.ID); err != nil {
		details = append(details, problem.Detail(api.CodeUnsupportedCompute, "compute", "%s", err.Error()))
	} else if c.ProvisioningState != api.StateSucceeded {
		details = append(details, problem.Detail(api.CodeComputeNotReady, "compute", "compute %q is %s; create endpoints on a compute that attached successfully", c.Name, c.ProvisioningState))
	}
	if _, err := m.Store.GetService(ctx, ws.ID, req.Name); err == nil {
		details = append(details, problem.Detail(api.CodeNameInUse, "name", "a service named %q exists in workspace %q; a service and an endpoint cannot share a name (/v2/models/%s would be ambiguous)", req.Name, ws.Name, req.Name))
	}
	if len(details) > 0 {
		return nil, problem.Validation("", details)
	}
	e := &store.Endpoint{WorkspaceID: ws.ID, ComputeID: c.ID, Secrets: map[string]string{},
		Endpoint: api.Endpoint{ID: uuid.NewString(), Name: req.Name, Workspace: ws.Name, Compute: c.Name, Auth: req.Auth, Versions: []api.EndpointVersion{}}}
	if e.Auth == api.AuthKey {
		e.Secrets["primaryKey"], e.Secrets["secondaryKey"] = service.NewKey(), service.NewKey()
	}
	if err := m.Store.CreateEndpoint(ctx, e); errors.Is(err, store.ErrNameInUse) {
		return nil, problem.Conflict(api.CodeNameInUse, "an endpoint named %q already exists in workspace %q", req.Name, ws.Name)
	} else if err != nil {
		return nil, err
	}
	if err := m.publish(ctx, e); err != nil {
		m.Store.DeleteEndpoint(ctx, e.ID)
		return nil, problem.New(http.StatusBadGateway, api.CodeClusterUnreachable, "the endpoint's route could not be written to compute %s (%v); nothing was created", c.Name, err)
	}
	return m.show(ctx, e), nil
}

// Route is what a front end needs to serve the endpoint.
func (m *Manager) Route(ctx context.Context, e *store.Endpoint) (*frontend.EndpointRoute, error) {
	rt := &frontend.EndpointRoute{Endpoint: e.Name, Auth: e.Auth, Versions: make([]frontend.EndpointVersion, len(e.Versions))}
	var err error
	if rt.KeyHashes, rt.TokenPublicKey, rt.TokenAudience, err = service.Access(ctx, m.Store, e.Auth, e.Secrets, tokenAudience(e)); err != nil {
		return nil, err
	}
	for i, v := range e.Versions {
		rt.Versions[i] = frontend.EndpointVersion{Name: v.Name, Service: v.Service, Weight: v.Traffic, Mirror: v.MirrorTraffic, Control: v.Control}
	}
	return rt, nil
}

func tokenAudience(e *store.Endpoint) string { return "berth:" + e.WorkspaceID + "/endpoint/" + e.ID }

// publish writes the endpoint's route to its compute.
func (m *Manager) publish(ctx context.Context, e *store.Endpoint) error {
	c, h, err := m.host(ctx, e.ComputeID)
	if err != nil {
		return err
	}
	rt, err := m.Route(ctx, e)
	if err != nil {
		return err
	}
	return h.PublishEndpoint(ctx, c, e.Name, rt)
}

// show is the endpoint as the API shows it: its URIs and each version's
// service state.
func (m *Manager) show(ctx context.Context, e *store.Endpoint) *api.Endpoint {
	out := e.Endpoint
	if c, h, err := m.host(ctx, e.ComputeID); err == nil {
		base := h.ScoringBase(c) + "/api/v1/endpoint/" + e.Name
		out.ScoringURI, out.SwaggerURI = base+"/score", base+"/swagger.json"
	}
	out.Versions = slices.Clone(e.Versions)
	for i := range out.Versions {
		v := &out.Versions[i]
		if sv, err := m.Store.GetService(ctx, e.WorkspaceID, v.Service); err == nil {
			v.State, v.ReadyReplicas = sv.State, sv.ReadyReplicas
		}
	}
	return &out
}

// Show returns an endpoint as the API shows it.
func (m *Manager) Show(ctx context.Context, ws *api.Workspace, name string) (*api.Endpoint, error) {
	e, err := m.Get(ctx, ws, name)
	if err != nil {
		return nil, err
	}
	return m.show(ctx, e), nil
}

// List returns a workspace's endpoints.
func (m *Manager) List(ctx context.Context, ws *api.Workspace) (*api.EndpointList, error) {
	es, err := m.Store.ListEndpoints(ctx, ws.ID, "")
	if err != nil {
		return nil, err
	}
	out := &api.EndpointList{Value: make([]api.Endpoint, 0, len(es))}
	for i := range es {
		out.Value = append(out.Value, *m.show(ctx, &es[i]))
	}
	return out, nil
}

// rebalance keeps the sum at 100 when that is unambiguous: when the
// changed version's new share leaves the sum off 100 and exactly one other
// version carries traffic, that one gives or takes the difference (so
// "promote v2 to 100" is one atomic update that sets v1 to 0).
func rebalance(versions []api.EndpointVersion, changed string) {
	sum, other := 0, -1
	for i, v := range versions {
		sum += v.Traffic
		if v.Name != changed && v.Traffic > 0 {
			if other >= 0 {
				return // ambiguous: the user says who gives what
			}
			other = i
		}
	}
	if other < 0 || sum == 100 {
		return
	}
	if t := versions[other].Traffic - (sum - 100); t >= 0 && t <= 100 {
		versions[other].Traffic = t
	}
}

// apply sets a version's shares from a request's fields; control moves
// the endpoint's control mark to it.
func apply(versions []api.EndpointVersion, name string, traffic, mirror *int, control *bool) {
	for i := range versions {
		v := &versions[i]
		if v.Name != name {
			if control != nil && *control {
				v.Control = false
			}
			continue
		}
		if traffic != nil {
			v.Traffic = *traffic
		}
		if mirror != nil {
			v.MirrorTraffic = *mirror
		}
		if control != nil {
			v.Control = *control
		}
	}
}

// AddVersion deploys a version's service and gives it its share, in one
// transaction; the route is published at once (a version gets traffic
// only once it has a ready replica, the others absorb its share).
func (m *Manager) AddVersion(ctx context.Context, ws *api.Workspace, name string, req *api.EndpointVersionRequest) (*api.EndpointChange, error) {
	e, err := m.Get(ctx, ws, name)
	if err != nil {
		return nil, err
	}
	details := checkNames(e.Name, req.Version)
	if slices.ContainsFunc(e.Versions, func(v api.EndpointVersion) bool { return v.Name == req.Version }) {
		return nil, problem.Conflict(api.CodeNameInUse, "endpoint %s already has a version %s; change it with `berth endpoint version update -e %s --version-name %s`", e.Name, req.Version, e.Name, req.Version)
	}
	if req.Auth != "" {
		details = append(details, problem.Detail(api.CodeInvalidValue, "auth", "auth belongs to the endpoint (%s), not to a version; leave it out", e.Auth))
	}
	if req.Compute != "" && !strings.EqualFold(req.Compute, e.Compute) {
		details = append(details, problem.Detail(api.CodeInvalidValue, "compute", "the versions of endpoint %s run on its compute %s, not %s", e.Name, e.Compute, req.Compute))
	}
	traffic := 0
	if len(e.Versions) == 0 {
		traffic = 100
	}
	req.Traffic = cmp.Or(req.Traffic, &traffic)
	svc := ServiceName(e.Name, req.Version)
	versions := append(slices.Clone(e.Versions), api.EndpointVersion{Name: req.Version, Service: svc})
	apply(versions, req.Version, req.Traffic, req.MirrorTraffic, req.Control)
	rebalance(versions, req.Version)
	details = append(details, CheckTraffic(versions)...) // the traffic as it would be, checked whole before anything changes
	spec := req.ServiceSpec
	spec.Compute, spec.Auth = e.Compute, api.AuthNone
	op, err := m.Services.DeployVersion(ctx, ws, &api.ServiceRequest{Name: svc, ServiceSpec: spec}, &service.Owner{Endpoint: e.Name,
		Record: func(tx *store.Store, _ *store.Service) error {
			e.Versions = versions
			return tx.UpdateEndpoint(ctx, e)
		}}, details)
	if err != nil {
		return nil, err
	}
	return m.published(ctx, e, op)
}

// published publishes the endpoint's route after a recorded change and
// answers the change.
func (m *Manager) published(ctx context.Context, e *store.Endpoint, ops ...*store.Operation) (*api.EndpointChange, error) {
	if err := m.publish(ctx, e); err != nil {
		return nil, problem.New(http.StatusBadGateway, api.CodeClusterUnreachable, "the change is recorded but the endpoint's route could not be written to its compute (%v); it is written again at the next change or server start", err)
	}
	out := &api.EndpointChange{Endpoint: *m.show(ctx, e), Operations: []api.Operation{}}
	for _, op := range ops {
		if op != nil {
			out.Operations = append(out.Operations, op.Operation)
		}
	}
	return out, nil
}

// version finds a version of an endpoint, or a 404 naming the versions.
func version(e *store.Endpoint, name string) (*api.EndpointVersion, error) {
	for i := range e.Versions {
		if e.Versions[i].Name == name {
			return &e.Versions[i], nil
		}
	}
	names := make([]string, len(e.Versions))
	for i, v := range e.Versions {
		names[i] = v.Name
	}
	return nil, problem.New(http.StatusNotFound, api.CodeVersionNotFound, "endpoint %s has no version %q (it has: %s)", e.Name, name, strings.Join(names, ", "))
}

// getVersion loads an endpoint and one of its versions (404s naming them).
func (m *Manager) getVersion(ctx context.Context, ws *api.Workspace, name, ver string) (*store.Endpoint, *api.EndpointVersion, error) {
	e, err := m.Get(ctx, ws, name)
	if err != nil {
		return nil, nil, err
	}
	v, err := version(e, ver)
	return e, v, err
}

// UpdateVersion changes a version's shares (one atomic traffic update)
// and, when the request sets spec fields, rolls its service to them.
func (m *Manager) UpdateVersion(ctx context.Context, ws *api.Workspace, name, ver string, req *api.EndpointVersionUpdate) (*api.EndpointChange, error) {
	e, v, err := m.getVersion(ctx, ws, name, ver)
	if err != nil {
		return nil, err
	}
	specChanged := !isZero(req.ServiceSpec)
	if !specChanged && req.Traffic == nil && req.MirrorTraffic == nil && req.Control == nil {
		return nil, problem.Validation("", []api.ErrorDetail{problem.Detail(api.CodeNothingToUpdate, "", "nothing to update: give --traffic, --mirror-traffic, --control or the service settings to change")})
	}
	versions := slices.Clone(e.Versions)
	apply(versions, ver, req.Traffic, req.MirrorTraffic, req.Control)
	rebalance(versions, ver)
	details := CheckTraffic(versions)
	if len(details) > 0 {
		return nil, problem.Validation("", details)
	}
	var op *store.Operation
	if specChanged {
		if req.Auth != "" {
			return nil, problem.Validation("", []api.ErrorDetail{problem.Detail(api.CodeInvalidValue, "auth", "auth belongs to the endpoint (%s), not to a version", e.Auth)})
		}
		if op, err = m.Services.Update(service.AsEndpoint(ctx), ws, v.Service, &req.ServiceSpec); err != nil {
			return nil, err
		}
	}
	e.Versions = versions
	if err := m.Store.UpdateEndpoint(ctx, e); err != nil {
		return nil, err
	}
	return m.published(ctx, e, op)
}

// isZero tells whether a version update sets no service setting: every
// field of the spec, the ones added later included, is empty.
func isZero(s api.ServiceSpec) bool { return reflect.ValueOf(s).IsZero() }

// SetTraffic sets several versions' traffic in one atomic update.
func (m *Manager) SetTraffic(ctx context.Context, ws *api.Workspace, name string, req *api.EndpointTrafficRequest) (*api.EndpointChange, error) {
	e, err := m.Get(ctx, ws, name)
	if err != nil {
		return nil, err
	}
	if len(req.Traffic) == 0 {
		return nil, problem.Validation("", []api.ErrorDetail{problem.Detail(api.CodeInvalidValue, "traffic", "give each version's traffic, as v1=90,v2=10")})
	}
	versions := slices.Clone(e.Versions)
	var details []api.ErrorDetail
	for ver, t := range req.Traffic {
		if _, err := version(e, ver); err != nil {
			details = append(details, problem.Detail(api.CodeVersionNotFound, "traffic", "%s", err.Error()))
		}
		apply(versions, ver, &t, nil, nil)
	}
	details = append(details, CheckTraffic(versions)...)
	if len(details) > 0 {
		return nil, problem.Validation("", details)
	}
	e.Versions = versions
	if err := m.Store.UpdateEndpoint(ctx, e); err != nil {
		return nil, err
	}
	return m.published(ctx, e)
}

// DeleteVersion removes a version that has no traffic left: out of the
// route first, then its service.
func (m *Manager) DeleteVersion(ctx context.Context, ws *api.Workspace, name, ver string) (*api.EndpointChange, error) {
	e, v, err := m.getVersion(ctx, ws, name, ver)
	if err != nil {
		return nil, err
	}
	if sv, err := m.Store.GetService(ctx, ws.ID, v.Service); err == nil && sv.CurrentOperation != "" {
		return nil, problem.Conflict(api.CodeOperationInProgress, "version %s of endpoint %s has an operation in progress (%s); wait for it (`berth operation wait %s`) or cancel it, then delete the version", ver, e.Name, sv.CurrentOperation, sv.CurrentOperation)
	}
	if v.Traffic > 0 {
		return nil, problem.Validation("", []api.ErrorDetail{problem.Detail(api.CodeInvalidValue, "version",
			"version %s still has %d%% of endpoint %s's traffic (%s); move it to the others first, e.g. `berth endpoint update -n %s --traffic %s`",
			ver, v.Traffic, e.Name, shares(e.Versions), e.Name, suggestion(e.Versions, ver))})
	}
	svc := v.Service
	e.Versions = slices.DeleteFunc(slices.Clone(e.Versions), func(x api.EndpointVersion) bool { return x.Name == ver })
	if err := m.Store.UpdateEndpoint(ctx, e); err != nil {
		return nil, err
	}
	change, err := m.published(ctx, e)
	if err != nil {
		return nil, err
	}
	op, err := m.Services.Delete(service.AsEndpoint(ctx), ws, svc)
	if err != nil && !notFound(err) {
		return nil, err
	}
	if op != nil {
		change.Operations = append(change.Operations, op.Operation)
	}
	return change, nil
}

// suggestion is a traffic setting that moves a version's share to the
// others (to the largest one).
func suggestion(versions []api.EndpointVersion, from string) string {
	best, moved := -1, 0
	for i, v := range versions {
		if v.Name == from {
			moved = v.Traffic
		} else if best < 0 || v.Traffic > versions[best].Traffic {
			best = i
		}
	}
	if best < 0 {
		return from + "=0"
	}
	return fmt.Sprintf("%s=%d,%s=0", versions[best].Name, versions[best].Traffic+moved, from)
}

// Delete stops serving an endpoint, deletes its versions' services and
// forgets it. A version still being deployed or changed makes it a 409.
func (m *Manager) Delete(ctx context.Context, ws *api.Workspace, name string) (*api.EndpointChange, error) {
	e, err := m.Get(ctx, ws, name)
	if err != nil {
		return nil, err
	}
	for _, v := range e.Versions {
		if sv, err := m.Store.GetService(ctx, ws.ID, v.Service); err == nil && sv.CurrentOperation != "" {
			return nil, problem.Conflict(api.CodeOperationInProgress, "version %s of endpoint %s has an operation in progress (%s); wait for it (`berth operation wait %s`) or cancel it, then delete the endpoint", v.Name, e.Name, sv.CurrentOperation, sv.CurrentOperation)
		}
	}
	c, h, err := m.host(ctx, e.ComputeID)
	if err == nil {
		err = h.PublishEndpoint(ctx, c, e.Name, nil)
	}
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, problem.New(http.StatusBadGateway, api.CodeClusterUnreachable, "the endpoint's route could not be removed from its compute (%v); nothing was deleted", err)
	}
	out := &api.EndpointChange{Endpoint: e.Endpoint, Operations: []api.Operation{}}
	for _, v := range e.Versions {
		op, err := m.Services.Delete(service.AsEndpoint(ctx), ws, v.Service)
		if err != nil && !notFound(err) {
			return nil, err
		}
		if op != nil {
			out.Operations = append(out.Operations, op.Operation)
		}
	}
	return out, m.Store.DeleteEndpoint(ctx, e.ID)
}

// getWithAuth is Get for a request that needs the endpoint to use the
// auth mode want (see service.NeedAuth).
func (m *Manager) getWithAuth(ctx context.Context, ws *api.Workspace, name, want string) (*store.Endpoint, error) {
	e, err := m.Get(ctx, ws, name)
	if err != nil {
		return nil, err
	}
	return e, service.NeedAuth(want, e.Auth, "endpoint "+e.Name)
}

// Keys returns a key-auth endpoint's keys.
func (m *Manager) Keys(ctx context.Context, ws *api.Workspace, name string) (*api.ServiceKeys, error) {
	e, err := m.getWithAuth(ctx, ws, name, api.AuthKey)
	if err != nil {
		return nil, err
	}
	return &api.ServiceKeys{PrimaryKey: e.Secrets["primaryKey"], SecondaryKey: e.Secrets["secondaryKey"]}, nil
}

// RegenKey replaces one of the endpoint's keys and publishes its route at
// once; the versions are not touched.
func (m *Manager) RegenKey(ctx context.Context, ws *api.Workspace, name string, req *api.RegenKeyRequest) (*api.ServiceKeys, error) {
	e, err := m.Get(ctx, ws, name)
	if err != nil {
		return nil, err
	}
	if details := service.CheckRegen(req, e.Auth, "endpoint "+e.Name); len(details) > 0 {
		return nil, problem.Validation("", details)
	}
	old := e.Secrets[req.Key+"Key"]
	e.Secrets[req.Key+"Key"] = cmp.Or(req.Value, service.NewKey())
	if err := m.publish(ctx, e); err != nil {
		e.Secrets[req.Key+"Key"] = old
		return nil, problem.New(http.StatusBadGateway, api.CodeClusterUnreachable, "the new key could not be written to the cluster (%v); the old key still works", err)
	}
	if err := m.Store.UpdateEndpoint(ctx, e); err != nil {
		return nil, err
	}
	return m.Keys(ctx, ws, name)
}

// Token makes a short-lived JWT for a token-auth endpoint.
func (m *Manager) Token(ctx context.Context, ws *api.Workspace, name string) (*api.ServiceToken, error) {
	e, err := m.getWithAuth(ctx, ws, name, api.AuthToken)
	if err != nil {
		return nil, err
	}
	return service.SignToken(ctx, m.Store, tokenAudience(e), e.Name, time.Now())
}

// Routes are the routes of a compute's endpoints (the local runtime
// serves them from the store).
func (m *Manager) Routes(ctx context.Context, workspaceID, computeID string) ([]*frontend.EndpointRoute, error) {
	es, err := m.Store.ListEndpoints(ctx, workspaceID, computeID)
	if err != nil {
		return nil, err
	}
	out := make([]*frontend.EndpointRoute, 0, len(es))
	for i := range es {
		rt, err := m.Route(ctx, &es[i])
		if err != nil {
			return nil, err
		}
		out = append(out, rt)
	}
	return out, nil
}

// PublishRoutes writes every endpoint's route to its compute again (a
// server does it once as it starts, as for services).
func (m *Manager) PublishRoutes(ctx context.Context) (published int, err error) {
	es, err := m.Store.ListEndpoints(ctx, "", "")
	if err != nil {
		return 0, err
	}
	var errs []error
	for i := range es {
		c, _, err := m.host(ctx, es[i].ComputeID)
		if err == nil && c.ProvisioningState == api.StateSucceeded {
			err = m.publish(ctx, &es[i])
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("endpoint %s in %s: %w", es[i].Name, es[i].Workspace, err))
			continue
		}
		published++
	}
	return published, errors.Join(errs...)
}

func notFound(err error) bool {
	p, ok := problem.As(err)
	return ok && p.Status == http.StatusNotFound
}
