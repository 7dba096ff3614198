package service

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/berth-ml/berth/api"
	"github.com/berth-ml/berth/internal/frontend"
	"github.com/berth-ml/berth/internal/operation"
	"github.com/berth-ml/berth/internal/problem"
	"github.com/berth-ml/berth/internal/provider"
	"github.com/berth-ml/berth/internal/store"
	"github.com/google/uuid"
)

// TargetType is the operation target type of services.
const TargetType = "service"

// Manager runs the service life cycle: what is the same on every compute
// type (validation, keys, routes, records). Where and how replicas run is
// the compute's provider's (provider.ServiceHost).
type Manager struct {
	Store *store.Store
	Wake  func()
	// Providers are the server's compute types.
	Providers *provider.Registry
}

type roleKey struct{}

// WithRole records the caller's role for the life cycle's checks that
// depend on it (commands on the local compute).
func WithRole(ctx context.Context, role string) context.Context {
	return context.WithValue(ctx, roleKey{}, role)
}

// mayRunCommand refuses a spec with a command on a compute whose host
// keeps commands for owners, unless the caller is one.
func (m *Manager) mayRunCommand(ctx context.Context, c *store.Compute, spec *api.ServiceSpec) error {
	h, _ := m.host(c.Type)
	g, ok := h.(provider.CommandGate)
	if len(spec.Command) == 0 || !ok || !g.CommandsNeedOwner(c) {
		return nil
	}
	if role, _ := ctx.Value(roleKey{}).(string); role == api.RoleOwner {
		return nil
	}
	return problem.Forbidden("running a command on compute %s (type %s) needs the owner role: its replicas run on the control plane's machine. Ask an owner to deploy it, or to allow contributors on a local compute they create (settings.allowContributorCommands; berth compute create local --allow-contributor-commands)", c.Name, c.Type)
}

// host is the provider that hosts services on computes of a type.
func (m *Manager) host(typ string) (provider.ServiceHost, bool) {
	p, ok := m.Providers.Get(typ)
	if !ok {
		return nil, false
	}
	h, ok := p.(provider.ServiceHost)
	return h, ok
}

// hostTypes lists the compute types that host services.
func (m *Manager) hostTypes() []string {
	var out []string
	for _, t := range m.Providers.Types() {
		if _, ok := m.host(t); ok {
			out = append(out, t)
		}
	}
	return out
}

// checkCompute reports what stops a compute from hosting a spec.
func (m *Manager) checkCompute(c *store.Compute, spec *api.ServiceSpec) []api.ErrorDetail {
	h, ok := m.host(c.Type)
	if !ok {
		return []api.ErrorDetail{problem.Detail(api.CodeUnsupportedCompute, "compute", "services on %s computes are not available; use a compute of type %s", c.Type, strings.Join(m.hostTypes(), ", "))}
	}
	return h.CheckService(c, spec)
}

// Get returns a service by name, or a 404 naming it.
func (m *Manager) Get(ctx context.Context, ws *api.Workspace, name string) (*store.Service, error) {
	sv, err := m.Store.GetService(ctx, ws.ID, name)
	if errors.Is(err, store.ErrNotFound) {
		return nil, problem.NotFound("service %q not found in workspace %q", name, ws.Name)
	}
	return sv, err
}

// Deploy validates a deployment request (every problem at once) and
// records the service with its deploy operation.
func (m *Manager) Deploy(ctx context.Context, ws *api.Workspace, req *api.ServiceRequest) (*store.Operation, error) {
	details := CheckName(req.Name)
	if _, err := m.Store.GetEndpoint(ctx, ws.ID, req.Name); err == nil {
		return nil, problem.Conflict(api.CodeNameInUse, "an endpoint named %q exists in workspace %q; a service and an endpoint cannot share a name (/v2/models/%s would be ambiguous)", req.Name, ws.Name, req.Name)
	}
	return m.DeployVersion(ctx, ws, req, &Owner{}, details)
}

// Owner is the endpoint a version's service belongs to: its name, the
// problems the endpoint found in the same request (reported with the
// spec's), and what to record in the same transaction as the service.
type Owner struct {
	Endpoint string
	Record   func(tx *store.Store, sv *store.Service) error
}

// DeployVersion deploys the service of an endpoint's version (its name
// checked by the endpoint), reporting the endpoint's problems with the
// spec's and recording the endpoint's change with the service. Deploy
// calls it with no owner.
func (m *Manager) DeployVersion(ctx context.Context, ws *api.Workspace, req *api.ServiceRequest, o *Owner, details []api.ErrorDetail) (*store.Operation, error) {
	details = append(details, Normalize(&req.ServiceSpec)...)
	var c *store.Compute
	if req.Compute != "" {
		var err error
		c, err = m.Store.GetCompute(ctx, ws.ID, req.Compute)
		switch {
		case errors.Is(err, store.ErrNotFound):
			details = append(details, problem.Detail(api.CodeComputeNotFound, "compute", "compute %q not found in workspace %q", req.Compute, ws.Name))
		case err != nil:
			return nil, err
		default:
			if err := m.mayRunCommand(ctx, c, &req.ServiceSpec); err != nil {
				return nil, err
			}
			hosting := m.checkCompute(c, &req.ServiceSpec)
			if _, ok := m.host(c.Type); ok && (c.ProvisioningState != api.StateSucceeded || c.Health == api.HealthDisplaced) {
				details = append(details, problem.Detail(api.CodeComputeNotReady, "compute", "compute %q is %s (health %s); deploy to a compute that attached successfully", c.Name, c.ProvisioningState, c.Health))
			}
			details = append(details, hosting...)
		}
	}
	err := m.resolveModels(ctx, ws, &req.ServiceSpec, details)
	if err != nil {
		return nil, err
	}
	sv := &store.Service{WorkspaceID: ws.ID, ComputeID: c.ID, Secrets: map[string]string{},
		Service: api.Service{ID: uuid.NewString(), Name: req.Name, Workspace: ws.Name, ServiceSpec: req.ServiceSpec,
			State: api.ServiceTransitioning, Errors: []api.ErrorDetail{}, Endpoint: o.Endpoint}}
	sv.Compute = c.Name
	if sv.Auth == api.AuthKey {
		sv.Secrets["primaryKey"], sv.Secrets["secondaryKey"] = NewKey(), NewKey()
	}
	op := newOp(ws, sv, api.OpDeploy)
	sv.CurrentOperation = op.ID
	err = m.Store.InTx(ctx, func(tx *store.Store) error {
		if err := tx.CreateService(ctx, sv); err != nil {
			return err
		}
		if o.Record != nil {
			if err := o.Record(tx, sv); err != nil {
				return err
			}
		}
		return tx.CreateOperation(ctx, op)
	})
	if errors.Is(err, store.ErrNameInUse) {
		return nil, problem.Conflict(api.CodeNameInUse, "a service named %q already exists in workspace %q; use `berth service update` to change it", req.Name, ws.Name)
	}
	if err != nil {
		return nil, err
	}
	m.wake()
	return op, nil
}

// resolveModels pins spec's NAME[:VERSION] references to registered
// versions. Unknown ones are problems (malformed ones Normalize reports):
// with them and the details found before, the request is refused.
func (m *Manager) resolveModels(ctx context.Context, ws *api.Workspace, spec *api.ServiceSpec, details []api.ErrorDetail) error {
	var resolved []string
	for _, ref := range spec.Models {
		r, perr := api.ParseModelRef(ref)
		if perr != nil {
			continue
		}
		md, gerr := m.Store.GetModel(ctx, ws.ID, r.Name, r.Version)
		if errors.Is(gerr, store.ErrNotFound) {
			details = append(details, problem.Detail(api.CodeModelNotFound, "models", "model %q is not registered in workspace %q", ref, ws.Name))
			continue
		} else if gerr != nil {
			return gerr
		}
		resolved = append(resolved, fmt.Sprintf("%s:%d", md.Name, md.Version))
	}
	if len(details) > 0 {
		return problem.Validation("", details)
	}
	spec.Models = resolved
	return nil
}

func (m *Manager) wake() {
	if m.Wake != nil {
		m.Wake()
	}
}

func newOp(ws *api.Workspace, sv *store.Service, kind api.OperationKind) *store.Operation {
	return &store.Operation{WorkspaceID: ws.ID, Operation: api.Operation{ID: uuid.NewString(), Workspace: ws.Name,
		TargetType: TargetType, TargetID: sv.ID, TargetName: sv.Name, Kind: kind}}
}

// Delete removes a service's objects from its cluster and forgets it.
func (m *Manager) Delete(ctx context.Context, ws *api.Workspace, name string) (*store.Operation, error) {
	sv, err := m.own(ctx, ws, name)
	if err != nil {
		return nil, err
	}
	return m.start(ctx, sv, newOp(ws, sv, api.OpDelete))
}

type endpointKey struct{}

// AsEndpoint marks calls an endpoint makes on its versions' services,
// which are refused to everyone else.
func AsEndpoint(ctx context.Context) context.Context {
	return context.WithValue(ctx, endpointKey{}, true)
}

// versionOf tells whether a service's endpoint still lists it (a service
// its endpoint forgot, as a delete cut short may leave, is a service again).
func (m *Manager) versionOf(ctx context.Context, sv *store.Service) bool {
	e, err := m.Store.GetEndpoint(ctx, sv.WorkspaceID, sv.Endpoint)
	if err != nil {
		return !errors.Is(err, store.ErrNotFound)
	}
	return slices.ContainsFunc(e.Versions, func(v api.EndpointVersion) bool { return v.Service == sv.Name })
}

// own loads a service to change it: a version of an endpoint is changed
// only through its endpoint (409 naming it).
func (m *Manager) own(ctx context.Context, ws *api.Workspace, name string) (*store.Service, error) {
	sv, err := m.Get(ctx, ws, name)
	if err == nil && sv.Endpoint != "" && ctx.Value(endpointKey{}) == nil && m.versionOf(ctx, sv) {
		v := strings.TrimPrefix(sv.Name, sv.Endpoint+"--")
		return nil, problem.Conflict(api.CodeOwnedByEndpoint, "service %s is version %s of endpoint %s: change it with `berth endpoint version update|delete -e %s --version-name %s`, and use the endpoint's keys and tokens",
			sv.Name, v, sv.Endpoint, sv.Endpoint, v)
	}
	return sv, err
}

// start records an operation on an existing service, which turns
// Transitioning; a running one makes it a 409 naming that operation.
func (m *Manager) start(ctx context.Context, sv *store.Service, op *store.Operation) (*store.Operation, error) {
	err := m.Store.InTx(ctx, func(tx *store.Store) error {
		if err := tx.CreateOperation(ctx, op); err != nil {
			return err
		}
		sv.CurrentOperation = op.ID
		sv.State = api.ServiceTransitioning
		return tx.UpdateService(ctx, sv)
	})
	if errors.Is(err, store.ErrNotFound) { // deleted meanwhile
		return nil, problem.NotFound("service %q not found in workspace %q", sv.Name, sv.Workspace)
	}
	if err := conflict(ctx, m.Store, sv, err); err != nil {
		return nil, err
	}
	m.wake()
	return op, nil
}

// Update changes a service in place (a rolling update: no request fails).
// Fields left empty keep their values; models are re-resolved.
func (m *Manager) Update(ctx context.Context, ws *api.Workspace, name string, ch *api.ServiceSpec) (*store.Operation, error) {
	sv, err := m.own(ctx, ws, name)
	if err != nil {
		return nil, err
	}
	spec := sv.ServiceSpec
	var details []api.ErrorDetail
	if ch.Compute != "" && !strings.EqualFold(ch.Compute, sv.Compute) {
		details = append(details, problem.Detail(api.CodeInvalidValue, "compute", "a service cannot move to another compute (%s → %s); deploy a new one", sv.Compute, ch.Compute))
	}
	if ch.Namespace != "" && ch.Namespace != sv.Namespace {
		details = append(details, problem.Detail(api.CodeInvalidValue, "namespace", "a service cannot move to another namespace; deploy a new one"))
	}
	if ch.Auth != "" && ch.Auth != sv.Auth {
		details = append(details, problem.Detail(api.CodeInvalidValue, "auth", "changing the auth mode (%s → %s) is not supported in place; deploy a new service", sv.Auth, ch.Auth))
	}
	mergeSpec(&spec, ch)
	details = append(details, Normalize(&spec)...)
	if c, err := m.Store.GetComputeByID(ctx, sv.ComputeID); err == nil {
		if err := m.mayRunCommand(ctx, c, &spec); err != nil {
			return nil, err
		}
		details = append(details, m.checkCompute(c, &spec)...)
	}
	if err := m.resolveModels(ctx, ws, &spec, details); err != nil {
		return nil, err
	}
	if sv.State == api.ServiceHealthy && reflect.DeepEqual(spec, sv.ServiceSpec) {
		// A failed service may be retried as it is; a healthy one would
		// only roll its replicas for nothing.
		return nil, problem.Validation("", []api.ErrorDetail{problem.Detail(api.CodeNothingToUpdate, "",
			"nothing to update: service %s already runs with these settings", sv.Name)})
	}
	op := newOp(ws, sv, api.OpUpdate)
	op.Params, _ = json.Marshal(spec)
	return m.start(ctx, sv, op)
}

// mergeSpec copies the fields set in ch over s.
func mergeSpec(s, ch *api.ServiceSpec) {
	if len(ch.Models) > 0 {
		s.Models = ch.Models
	}
	if ch.Image != "" {
		s.Image, s.Command = ch.Image, nil
	}
	if len(ch.Command) > 0 {
		s.Command, s.Image = ch.Command, ""
	}
	for _, f := range []struct{ dst, src *float64 }{{&s.CPU, &ch.CPU}, {&s.MemoryGB, &ch.MemoryGB}, {&s.CPULimit, &ch.CPULimit}, {&s.MemoryLimitGB, &ch.MemoryLimitGB}} {
		if *f.src != 0 {
			*f.dst = *f.src
		}
	}
	for _, f := range []struct{ dst, src *int }{{&s.Port, &ch.Port}, {&s.GPU, &ch.GPU}, {&s.MaxConcurrentRequests, &ch.MaxConcurrentRequests},
		{&s.MaxQueueWaitMs, &ch.MaxQueueWaitMs}, {&s.ScoringTimeoutMs, &ch.ScoringTimeoutMs}, {&s.LogBodyLimit, &ch.LogBodyLimit}} {
		if *f.src != 0 {
			*f.dst = *f.src
		}
	}
	if ch.Replicas > 0 {
		s.Replicas, s.Autoscale, s.ColdStartTimeoutMs = ch.Replicas, nil, 0
	} else if ch.Autoscale != nil && ch.Autoscale.Enabled {
		s.Replicas, s.Autoscale = 0, ch.Autoscale
		if ch.Autoscale.ScaleToZeroAfterSeconds == 0 {
			s.ColdStartTimeoutMs = 0 // no longer scales to zero
		}
	}
	s.ColdStartTimeoutMs = cmp.Or(ch.ColdStartTimeoutMs, s.ColdStartTimeoutMs)
	s.Liveness, s.Readiness = cmp.Or(ch.Liveness, s.Liveness), cmp.Or(ch.Readiness, s.Readiness)
	if ch.Env != nil {
		s.Env = ch.Env
	}
	s.ModelDelivery = cmp.Or(ch.ModelDelivery, s.ModelDelivery)
	s.LogRequests, s.LogSink = cmp.Or(ch.LogRequests, s.LogRequests), cmp.Or(ch.LogSink, s.LogSink)
}

// conflict turns a lost race for the service's one active operation into a 409.
func conflict(ctx context.Context, st *store.Store, sv *store.Service, err error) error {
	var active *store.ActiveOperationError
	if !errors.As(err, &active) {
		return err
	}
	if active.Operation == nil {
		active.Operation, _ = st.ActiveOperation(ctx, sv.ID)
	}
	if active.Operation != nil {
		return problem.Conflict(api.CodeOperationInProgress, "another operation is in progress on service %s: %s (id %s)", sv.Name, active.Operation.Kind, active.Operation.ID)
	}
	return problem.Conflict(api.CodeOperationInProgress, "another operation is in progress on service %s", sv.Name)
}

// Keys returns a key-auth service's keys.
func (m *Manager) Keys(ctx context.Context, ws *api.Workspace, name string) (*api.ServiceKeys, error) {
	sv, err := m.ownWithAuth(ctx, ws, name, api.AuthKey)
	if err != nil {
		return nil, err
	}
	return keysOf(sv), nil
}

func keysOf(sv *store.Service) *api.ServiceKeys {
	return &api.ServiceKeys{PrimaryKey: sv.Secrets["primaryKey"], SecondaryKey: sv.Secrets["secondaryKey"]}
}

// RegenKey replaces one key and rewrites the service's route at once, so
// the old key stops working within a second.
func (m *Manager) RegenKey(ctx context.Context, ws *api.Workspace, name string, req *api.RegenKeyRequest) (*api.ServiceKeys, error) {
	sv, err := m.own(ctx, ws, name)
	if err != nil {
		return nil, err
	}
	if details := CheckRegen(req, sv.Auth, "service "+sv.Name); len(details) > 0 {
		return nil, problem.Validation("", details)
	}
	sv.Secrets[req.Key+"Key"] = cmp.Or(req.Value, NewKey())
	c, h, err := m.hostOf(ctx, sv)
	if err != nil {
		return nil, err
	}
	rt, err := m.Route(ctx, sv)
	if err != nil {
		return nil, err
	}
	if err := h.PublishRoute(ctx, c, sv, rt); err != nil {
		return nil, problem.New(http.StatusBadGateway, api.CodeClusterUnreachable, "the new key could not be written to the cluster (%v); the old key still works", err)
	}
	if err := m.Store.UpdateService(ctx, sv); err != nil {
		return nil, err
	}
	return keysOf(sv), nil
}

// ownWithAuth is own for a request that needs the service to use the auth
// mode want (see NeedAuth).
func (m *Manager) ownWithAuth(ctx context.Context, ws *api.Workspace, name, want string) (*store.Service, error) {
	sv, err := m.own(ctx, ws, name)
	if err != nil {
		return nil, err
	}
	return sv, NeedAuth(want, sv.Auth, "service "+sv.Name)
}

// NeedAuth refuses to give the keys (want AuthKey) or a token (AuthToken)
// of a service or endpoint (what) that uses auth.
func NeedAuth(want, auth, what string) error {
	switch {
	case auth == want:
		return nil
	case want == api.AuthKey:
		return problem.New(http.StatusBadRequest, api.CodeKeyAuthDisabled, "%s uses %s auth, not keys", what, auth)
	default:
		return problem.New(http.StatusBadRequest, api.CodeTokenAuthDisabled, "%s uses %s auth, not tokens", what, auth)
	}
}

// CheckRegen reports what is wrong with a key change of a service or
// endpoint (what) using auth.
func CheckRegen(req *api.RegenKeyRequest, auth, what string) []api.ErrorDetail {
	var details []api.ErrorDetail
	if req.Key != "primary" && req.Key != "secondary" {
		details = append(details, problem.Detail(api.CodeInvalidValue, "key", "key %q is not valid: use primary or secondary", req.Key))
	}
	if req.Value != "" && len(req.Value) < 16 {
		details = append(details, problem.Detail(api.CodeInvalidValue, "value", "a chosen key must be at least 16 characters"))
	}
	if auth != api.AuthKey {
		details = append(details, problem.Detail(api.CodeKeyAuthDisabled, "key", "%s uses %s auth, not keys", what, auth))
	}
	return details
}

// Token makes a short-lived JWT for a token-auth service.
func (m *Manager) Token(ctx context.Context, ws *api.Workspace, name string) (*api.ServiceToken, error) {
	sv, err := m.ownWithAuth(ctx, ws, name, api.AuthToken)
	if err != nil {
		return nil, err
	}
	return SignToken(ctx, m.Store, TokenAudience(sv), sv.Name, time.Now())
}

// Route is what a front end needs to serve the service.
func (m *Manager) Route(ctx context.Context, sv *store.Service) (*frontend.Route, error) {
	rt := &frontend.Route{Service: sv.Name, Namespace: sv.Namespace, Selector: map[string]string{frontend.ServiceLabel: sv.Name},
		Port: sv.Port, Auth: sv.Auth, ScoringTimeoutMs: sv.ScoringTimeoutMs, MaxConcurrentRequestsPerContainer: sv.MaxConcurrentRequests,
		MaxQueueWaitMs: sv.MaxQueueWaitMs, Endpoint: sv.Endpoint}
	var err error
	if rt.KeyHashes, rt.TokenPublicKey, rt.TokenAudience, err = Access(ctx, m.Store, sv.Auth, sv.Secrets, TokenAudience(sv)); err != nil {
		return nil, err
	}
	if sv.LogRequests != nil {
		rt.LogRequests, rt.LogBodyLimit = *sv.LogRequests, sv.LogBodyLimit
		if sv.LogSink != nil {
			rt.LogSink = *sv.LogSink
		}
	}
	if a := sv.Autoscale; a != nil && a.Enabled {
		rt.Autoscale = frontend.Autoscale{Enabled: true, Min: a.MinReplicas, Max: a.MaxReplicas, RefreshSeconds: a.RefreshSeconds,
			TargetUtilization: a.TargetUtilization, Deployment: sv.Name, ScaleToZeroAfterSeconds: a.ScaleToZeroAfterSeconds}
		rt.ColdStartTimeoutMs = sv.ColdStartTimeoutMs
	}
	return rt, nil
}

// Plan is the operation engine's planner for service operations: the
// steps of the compute's provider, each given its target loaded afresh.
func (m *Manager) Plan(op *store.Operation) (*operation.Plan, error) {
	ctx := context.Background()
	sv, err := m.Store.GetServiceByID(ctx, op.TargetID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, operation.Fail(api.CodeNotFound, fmt.Sprintf("service %s no longer exists", op.TargetName))
	} else if err != nil {
		return nil, err
	}
	c, err := m.Store.GetComputeByID(ctx, sv.ComputeID)
	if errors.Is(err, store.ErrNotFound) {
		if op.Kind == api.OpDelete {
			return &operation.Plan{Finish: m.finish}, nil // nothing left to remove
		}
		return nil, operation.Fail(api.CodeComputeGone, fmt.Sprintf("compute %s of service %s no longer exists", sv.Compute, sv.Name))
	} else if err != nil {
		return nil, err
	}
	h, ok := m.host(c.Type)
	if !ok {
		return nil, operation.Fail(api.CodeUnsupportedCompute, fmt.Sprintf("compute %s (type %s) hosts no services", c.Name, c.Type))
	}
	steps := h.ServiceSteps(op.Kind)
	if steps == nil {
		return nil, operation.Fail(api.CodeOperationNotSupported, fmt.Sprintf("services have no %s operation", op.Kind))
	}
	plan := &operation.Plan{Finish: m.finish}
	for _, st := range steps {
		plan.Steps = append(plan.Steps, operation.Step{Name: st.Name, Run: func(ctx context.Context, r *operation.Run) error {
			t, err := m.target(ctx, r)
			if err != nil || t == nil {
				return err
			}
			return st.Run(ctx, r, t)
		}})
	}
	return plan, nil
}

// target loads what a step of a service operation works on. A failed
// store read is retried; a compute gone under a delete leaves nothing to
// do (nil target).
func (m *Manager) target(ctx context.Context, r *operation.Run) (*provider.ServiceTarget, error) {
	sv, err := r.Store.GetServiceByID(ctx, r.Op.TargetID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, operation.Fail(api.CodeNotFound, fmt.Sprintf("service %s no longer exists", r.Op.TargetName))
	} else if err != nil {
		return nil, err
	}
	if r.Op.Kind == api.OpUpdate {
		// The whole spec, into an empty one: a field the update cleared
		// (omitted from its JSON) must not keep the old value.
		var spec api.ServiceSpec
		if err := json.Unmarshal(r.Op.Params, &spec); err != nil {
			return nil, operation.Fail(api.CodeInternal, "the update's spec cannot be read: "+err.Error())
		}
		sv.ServiceSpec = spec
	}
	c, err := r.Store.GetComputeByID(ctx, sv.ComputeID)
	switch {
	case errors.Is(err, store.ErrNotFound) && r.Op.Kind == api.OpDelete:
		return nil, nil
	case errors.Is(err, store.ErrNotFound):
		return nil, operation.Fail(api.CodeComputeGone, fmt.Sprintf("compute %s of service %s no longer exists", sv.Compute, sv.Name))
	case err != nil:
		return nil, err
	}
	rt, err := m.Route(ctx, sv)
	if err != nil {
		return nil, err
	}
	return &provider.ServiceTarget{Service: sv, Compute: c, Route: rt,
		Credential: func(ctx context.Context) (string, error) { return m.credential(ctx, sv) }}, nil
}

// credential is an Authorization header value the service accepts.
func (m *Manager) credential(ctx context.Context, sv *store.Service) (string, error) {
	switch sv.Auth {
	case api.AuthKey:
		return "Bearer " + sv.Secrets["primaryKey"], nil
	case api.AuthToken:
		tok, err := SignToken(ctx, m.Store, TokenAudience(sv), sv.Name, time.Now())
		if err != nil {
			return "", err
		}
		return "Bearer " + tok.AccessToken, nil
	}
	return "", nil
}

// Logs writes a service's replica logs, as its compute keeps them (see
// provider.ServiceHost.ServiceLogs).
func (m *Manager) Logs(ctx context.Context, ws *api.Workspace, name string, o provider.LogOptions, w io.Writer) error {
	sv, err := m.Get(ctx, ws, name)
	if err != nil {
		return err
	}
	if o.Tail <= 0 {
		o.Tail = 100
	}
	c, h, err := m.hostOf(ctx, sv)
	if err != nil {
		return err
	}
	return h.ServiceLogs(ctx, c, sv, o, w)
}

// hostOf is a service's compute and the provider hosting its replicas.
func (m *Manager) hostOf(ctx context.Context, sv *store.Service) (*store.Compute, provider.ServiceHost, error) {
	c, err := m.Store.GetComputeByID(ctx, sv.ComputeID)
	if err != nil {
		return nil, nil, err
	}
	h, ok := m.host(c.Type)
	if !ok {
		return nil, nil, problem.New(http.StatusBadRequest, api.CodeUnsupportedCompute, "compute %s (type %s) hosts no services", c.Name, c.Type)
	}
	return c, h, nil
}

func (m *Manager) finish(ctx context.Context, tx *store.Store, r *operation.Run, opErr error) error {
	sv, err := tx.GetServiceByID(ctx, r.Op.TargetID)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if sv.CurrentOperation == r.Op.ID {
		sv.CurrentOperation = ""
	}
	switch {
	case opErr == nil && r.Op.Kind == api.OpDelete:
		return tx.DeleteService(ctx, sv.ID)
	case opErr == nil:
		sv.State, sv.Errors = api.ServiceHealthy, []api.ErrorDetail{}
		if sv.Endpoint != "" { // scored only through its endpoint
			sv.ScoringURI, sv.SwaggerURI = "", ""
		}
	default:
		sv.State = api.ServiceFailed
		if e := r.Op.Error; e != nil {
			sv.Errors = append([]api.ErrorDetail{}, e.Details...)
			if len(sv.Errors) == 0 {
				sv.Errors = []api.ErrorDetail{{Code: e.Code, Message: e.Message}}
			}
		}
	}
	return tx.UpdateService(ctx, sv)
}

// PublishRoutes writes every service's route to its compute again, so
// front ends serve what this release's routes say (token audiences, for
// one); a server does it once as it starts. Computes that cannot be
// reached are reported and skipped: their routes are written again at the
// next deploy, update or key change.
func (m *Manager) PublishRoutes(ctx context.Context) (published int, err error) {
	svs, err := m.Store.ListServices(ctx, "", "")
	if err != nil {
		return 0, err
	}
	var errs []error
	for _, sv := range svs {
		if sv.CurrentOperation != "" {
			continue // the operation writes (or removes) the route itself
		}
		c, err := m.Store.GetComputeByID(ctx, sv.ComputeID)
		if err != nil {
			continue // deleted under it: nothing to publish to
		}
		h, ok := m.host(c.Type)
		if !ok || c.ProvisioningState != api.StateSucceeded {
			continue
		}
		rt, err := m.Route(ctx, &sv)
		if err == nil {
			err = h.PublishRoute(ctx, c, &sv, rt)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("service %s in %s: %w", sv.Name, sv.Workspace, err))
			continue
		}
		published++
	}
	return published, errors.Join(errs...)
}
