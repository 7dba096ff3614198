// Package compute is the life cycle of compute targets: it validates
// requests (every problem at once, before any work), records computes and
// their operations atomically, and turns an operation into a plan — the
// provider's steps plus the state changes when it ends.
package compute

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/berth-ml/berth/api"
	"github.com/berth-ml/berth/internal/certificate"
	"github.com/berth-ml/berth/internal/naming"
	"github.com/berth-ml/berth/internal/operation"
	"github.com/berth-ml/berth/internal/problem"
	"github.com/berth-ml/berth/internal/provider"
	"github.com/berth-ml/berth/internal/store"
	"github.com/google/uuid"
)

// TargetType is the operation target type of computes.
const TargetType = "compute"

// Service runs the compute life cycle.
type Service struct {
	Store *store.Store
	// Wake tells the operation engine that work is waiting.
	Wake func()
	// Providers are the compute types this server has.
	Providers *provider.Registry
}

// oneOf checks an enumerated field; empty takes the default.
func oneOf(field, value, def string, allowed ...string) (string, []api.ErrorDetail) {
	if value == "" {
		return def, nil
	}
	for _, a := range allowed {
		if strings.EqualFold(value, a) {
			return a, nil
		}
	}
	return value, []api.ErrorDetail{problem.Detail(api.CodeInvalidValue, field, "%s %q is not valid: use one of %s", field, value, strings.Join(allowed, ", "))}
}

// validateSSL checks the combination rules of the SSL flags shared by create,
// attach and update.
func validateSSL(ssl *api.SSLRequest, update bool) []api.ErrorDetail {
	if ssl == nil {
		return nil
	}
	var out []api.ErrorDetail
	custom := ssl.CertPEM != "" || ssl.KeyPEM != "" || ssl.Cname != ""
	if custom && (ssl.CertPEM == "" || ssl.KeyPEM == "" || ssl.Cname == "") {
		var missing []string
		for _, f := range []struct{ target, value string }{{"ssl.certPem", ssl.CertPEM}, {"ssl.keyPem", ssl.KeyPEM}, {"ssl.cname", ssl.Cname}} {
			if f.value == "" {
				missing = append(missing, f.target)
			}
		}
		out = append(out, problem.Detail(api.CodeInvalidSSLConfiguration, missing[0], "a custom certificate needs the certificate, the key and the cname together; missing: %s", strings.Join(missing, ", ")))
	}
	if custom && ssl.LeafDomainLabel != "" {
		out = append(out, problem.Detail(api.CodeInvalidSSLConfiguration, "ssl.leafDomainLabel", "use either a custom certificate (ssl.certPem, ssl.keyPem, ssl.cname) or an automatic one (ssl.leafDomainLabel), not both"))
	}
	if ssl.OverwriteDomain && ssl.LeafDomainLabel == "" {
		out = append(out, problem.Detail(api.CodeInvalidSSLConfiguration, "ssl.overwriteDomain", "ssl.overwriteDomain only applies with ssl.leafDomainLabel"))
	}
	if !update && (ssl.Renew || ssl.Disable) {
		target := "ssl.renew"
		if !ssl.Renew {
			target = "ssl.disable"
		}
		out = append(out, problem.Detail(api.CodeInvalidSSLConfiguration, target, "ssl.renew and ssl.disable only apply to update"))
	}
	if ssl.Disable && (custom || ssl.LeafDomainLabel != "" || ssl.Renew) {
		out = append(out, problem.Detail(api.CodeInvalidSSLConfiguration, "ssl.disable", "ssl.disable cannot be combined with other SSL settings"))
	}
	if ssl.Renew && (custom || ssl.LeafDomainLabel != "") {
		out = append(out, problem.Detail(api.CodeInvalidSSLConfiguration, "ssl.renew", "ssl.renew cannot be combined with a new certificate or label"))
	}
	if ssl.CertPEM != "" && ssl.KeyPEM != "" && ssl.Cname != "" {
		// Every rule of a custom certificate, before anything changes.
		_, probs := certificate.Check(ssl.CertPEM, ssl.KeyPEM, ssl.Cname, time.Now(), nil)
		out = append(out, probs...)
	}
	if ssl.LeafDomainLabel != "" {
		out = append(out, naming.LeafDomainLabel(ssl.LeafDomainLabel)...)
	}
	return out
}

// zoneOf is the DNS zone of a compute's automatic certificate: its
// provider's own (AKS) or the workspace's.
func zoneOf(p provider.Provider, ws *api.Workspace, c *store.Compute) string {
	if z, ok := p.(provider.DNSZoner); ok && p != nil {
		return z.DNSZone(ws, c)
	}
	return ws.Settings.DNSZone
}

// validateAutoSSL checks that the workspace can give a compute with this
// load balancer an automatic certificate.
func validateAutoSSL(ws *api.Workspace, lbType, zone string) []api.ErrorDetail {
	var out []api.ErrorDetail
	if zone == "" {
		out = append(out, problem.Detail(api.CodeDNSZoneRequired, "ssl.leafDomainLabel",
			"an automatic certificate needs the workspace's DNS zone, where the endpoint's name is made: set workspace %s's DNS zone (workspace.settings.dnsZone)", ws.Name))
	}
	if lbType == api.LoadBalancerInternal && ws.Settings.DNS01 == nil {
		out = append(out, problem.Detail(api.CodeDNS01ProviderRequired, "ssl.leafDomainLabel",
			"an internal load balancer is not reachable by the certificate authority, so an automatic certificate needs a DNS-01 challenge: configure workspace %s's DNS-01 provider (workspace.settings.dns01), or use a custom certificate (ssl.certPem, ssl.keyPem, ssl.cname)", ws.Name))
	}
	return out
}

// sslFromRequest is the SSL configuration a request asks for.
func sslFromRequest(ssl *api.SSLRequest, current api.SSLConfiguration) api.SSLConfiguration {
	switch {
	case ssl == nil || ssl.Renew:
		return current
	case ssl.Disable:
		return api.SSLConfiguration{Status: api.SSLDisabled}
	case ssl.CertPEM != "":
		return api.SSLConfiguration{Status: api.SSLEnabled, Cname: ssl.Cname}
	case ssl.LeafDomainLabel != "":
		return api.SSLConfiguration{Status: api.SSLAuto, LeafDomainLabel: ssl.LeafDomainLabel, OverwriteDomain: ssl.OverwriteDomain}
	}
	return current
}

func validateLoadBalancer(lbType, subnet string) (string, []api.ErrorDetail) {
	lb, out := oneOf("loadBalancerType", lbType, api.LoadBalancerPublicIP, api.LoadBalancerPublicIP, api.LoadBalancerInternal)
	if subnet != "" && lb == api.LoadBalancerPublicIP && len(out) == 0 {
		out = append(out, problem.Detail(api.CodeInvalidValue, "loadBalancerSubnet", "loadBalancerSubnet %q only applies with loadBalancerType %s", subnet, api.LoadBalancerInternal))
	}
	return lb, out
}

// Create validates a create or attach request and records the compute with
// its first operation, in one transaction.
func (s *Service) Create(ctx context.Context, ws *api.Workspace, req *api.ComputeRequest) (*store.Compute, *store.Operation, error) {
	var details []api.ErrorDetail
	details = append(details, naming.Compute(req.Name)...)
	p, known := s.Providers.Get(req.Type)
	available := cmp.Or(strings.Join(s.Providers.Types(), ", "), "none in this build")
	if req.Type == "" {
		details = append(details, problem.Detail(api.CodeInvalidValue, "type", "type is required (available: %s)", available))
	} else if !known {
		details = append(details, problem.Detail(api.CodeUnsupportedType, "type", "compute type %q is not available in this server (available: %s)", req.Type, available))
	}
	origin, d := oneOf("origin", req.Origin, "", api.OriginCreated, api.OriginAttached)
	details = append(details, d...)
	if origin == "" {
		details = append(details, problem.Detail(api.CodeInvalidValue, "origin", "origin is required: %s or %s", api.OriginCreated, api.OriginAttached))
	} else if known && len(d) == 0 && !slices.Contains(p.Origins(), origin) {
		details = append(details, problem.Detail(api.CodeInvalidValue, "origin", "compute type %q cannot be %s (it supports: %s)", req.Type, origin, strings.Join(p.Origins(), ", ")))
	}
	purpose, d := oneOf("clusterPurpose", req.ClusterPurpose, api.PurposeFastProd, api.PurposeFastProd, api.PurposeDevTest)
	details = append(details, d...)
	lb, d := validateLoadBalancer(req.LoadBalancerType, req.LoadBalancerSubnet)
	details = append(details, d...)
	details = append(details, validateSSL(req.SSL, false)...)
	if req.SSL != nil && req.SSL.LeafDomainLabel != "" && req.Type != api.ComputeLocal {
		planned := &store.Compute{Compute: api.Compute{Name: req.Name, Type: req.Type, Origin: origin, LoadBalancerType: lb, Settings: req.Settings}}
		details = append(details, validateAutoSSL(ws, lb, zoneOf(p, ws, planned))...)
	}
	// What the provider checks and dry-runs: the request with its defaults.
	norm := *req
	norm.Origin, norm.ClusterPurpose, norm.LoadBalancerType = origin, purpose, lb
	if known {
		details = append(details, p.Validate(ctx, ws, &norm)...)
	}
	if len(details) > 0 {
		return nil, nil, problem.Validation("", details)
	}

	if req.DryRun {
		dr, ok := p.(provider.DryRunner)
		if !ok {
			return nil, nil, problem.Validation("", []api.ErrorDetail{problem.Detail(api.CodeDryRunNotSupported, "dryRun", "compute type %q has no dry run", req.Type)})
		}
		rep, err := dr.DryRun(ctx, ws, &norm)
		if err != nil {
			return nil, nil, problem.Validation("", []api.ErrorDetail{problem.Detail(api.CodeDryRunFailed, "", "%v", err)})
		}
		return nil, nil, &DryRunResult{Report: rep}
	}

	state, kind := api.StateCreating, api.OpCreate
	if origin == api.OriginAttached {
		state, kind = api.StateAttaching, api.OpAttach
	}
	c := &store.Compute{
		WorkspaceID: ws.ID,
		Compute: api.Compute{
			ID: uuid.NewString(), Name: req.Name, Workspace: ws.Name, Type: req.Type, Origin: origin,
			ClusterPurpose: purpose, LoadBalancerType: lb, LoadBalancerSubnet: req.LoadBalancerSubnet,
			SSLConfiguration:  sslFromRequest(req.SSL, api.SSLConfiguration{Status: api.SSLDisabled}),
			ProvisioningState: state, ProvisioningErrors: []api.ErrorDetail{}, Health: api.HealthUnknown,
			Settings: provider.Encode(req.Settings), AttachmentID: newAttachmentID(),
		},
	}
	if req.Credentials != "" {
		c.Secrets = map[string]string{"credentials": req.Credentials}
	}
	// The request goes with the operation (sealed at rest) minus the
	// credentials, which live with the compute.
	params := *req
	params.Credentials = ""
	op, err := newOperation(ws, c, kind, params)
	if err != nil {
		return nil, nil, err
	}
	c.CurrentOperation = op.ID
	err = s.Store.InTx(ctx, func(tx *store.Store) error {
		if err := tx.CreateCompute(ctx, c); err != nil {
			return err
		}
		return tx.CreateOperation(ctx, op)
	})
	if errors.Is(err, store.ErrNameInUse) {
		return nil, nil, problem.Conflict(api.CodeNameInUse, "a compute named %q already exists in workspace %q (names are unique regardless of case)", req.Name, ws.Name)
	}
	if err != nil {
		return nil, nil, err
	}
	s.wake()
	return c, op, nil
}

// DryRunResult is returned (as an error value) by Create for a dry run:
// the preflight report, with nothing changed.
type DryRunResult struct{ Report *api.PreflightReport }

func (d *DryRunResult) Error() string { return "dry run" }

func newAttachmentID() string { return strings.ReplaceAll(uuid.NewString(), "-", "")[:16] }

func (s *Service) wake() {
	if s.Wake != nil {
		s.Wake()
	}
}

func newOperation(ws *api.Workspace, c *store.Compute, kind api.OperationKind, params any) (*store.Operation, error) {
	b, err := json.Marshal(params)
	if err != nil {
		return nil, err
	}
	return &store.Operation{
		WorkspaceID: ws.ID,
		Params:      b,
		Operation: api.Operation{ID: uuid.NewString(), Workspace: ws.Name, TargetType: TargetType,
			TargetID: c.ID, TargetName: c.Name, Kind: kind},
	}, nil
}

// Get returns a compute by name, or a 404 naming it.
func (s *Service) Get(ctx context.Context, ws *api.Workspace, name string) (*store.Compute, error) {
	c, err := s.Store.GetCompute(ctx, ws.ID, name)
	if errors.Is(err, store.ErrNotFound) {
		return nil, problem.NotFound("compute %q not found in workspace %q", name, ws.Name)
	}
	return c, err
}

// start records a new operation on an existing compute and moves it to state.
func (s *Service) start(ctx context.Context, ws *api.Workspace, name string, kind api.OperationKind, state string, params any,
	check func(c *store.Compute, p provider.Provider) []api.ErrorDetail) (*store.Operation, error) {
	c, err := s.Get(ctx, ws, name)
	if err != nil {
		return nil, err
	}
	p, ok := s.Providers.Get(c.Type)
	if !ok {
		return nil, problem.New(http.StatusUnprocessableEntity, api.CodeUnsupportedType, "compute %q has type %q, which this server does not support", c.Name, c.Type)
	}
	if p.Steps(kind, c) == nil {
		return nil, problem.New(http.StatusUnprocessableEntity, api.CodeOperationNotSupported, "compute type %q does not support %s", c.Type, kind)
	}
	if check != nil {
		if d := check(c, p); len(d) > 0 {
			return nil, problem.Validation("", d)
		}
	}
	op, err := newOperation(ws, c, kind, params)
	if err != nil {
		return nil, err
	}
	err = s.Store.InTx(ctx, func(tx *store.Store) error {
		if err := tx.CreateOperation(ctx, op); err != nil {
			return err
		}
		c, err := tx.GetComputeByID(ctx, c.ID)
		if err != nil {
			return err
		}
		c.CurrentOperation = op.ID
		c.ProvisioningState = cmp.Or(state, c.ProvisioningState)
		return tx.UpdateCompute(ctx, c)
	})
	if errors.Is(err, store.ErrNotFound) { // detached or deleted meanwhile
		return nil, problem.NotFound("compute %q not found in workspace %q", name, ws.Name)
	}
	if active, ok := errors.AsType[*store.ActiveOperationError](err); ok {
		running := active.Operation
		if running == nil {
			running, _ = s.Store.ActiveOperation(ctx, c.ID)
		}
		return nil, ConflictError(running)
	}
	if err != nil {
		return nil, err
	}
	s.wake()
	return op, nil
}

// ConflictError is the 409 for a target that already has an active operation.
func ConflictError(running *store.Operation) *problem.Error {
	if running == nil {
		return problem.Conflict(api.CodeOperationInProgress, "another operation is in progress on this compute; try again when it ends")
	}
	return problem.Conflict(api.CodeOperationInProgress,
		"another operation is in progress on %s: %s (id %s, %s); wait for it with `berth compute wait -n %s` and try again",
		running.TargetName, running.Kind, running.ID, running.State, running.TargetName)
}

// Update changes the load balancer or SSL settings in place. An update
// that only renews the automatic certificate runs as a renew operation:
// nothing else is re-applied, so the new certificate serves sooner.
func (s *Service) Update(ctx context.Context, ws *api.Workspace, name string, req *api.ComputeUpdateRequest) (*store.Operation, error) {
	if req.SSL != nil && *req.SSL == (api.SSLRequest{Renew: true}) && req.ClusterPurpose == "" && req.LoadBalancerType == "" && req.LoadBalancerSubnet == "" {
		if c, err := s.Get(ctx, ws, name); err == nil {
			if p, ok := s.Providers.Get(c.Type); ok && p.Steps(api.OpRenew, c) != nil {
				return s.Renew(ctx, ws, name)
			}
		}
	}
	return s.start(ctx, ws, name, api.OpUpdate, api.StateUpdating, req, func(c *store.Compute, p provider.Provider) []api.ErrorDetail {
		var d []api.ErrorDetail
		if req.LoadBalancerType == "" && req.LoadBalancerSubnet == "" && req.SSL == nil && req.ClusterPurpose == "" {
			d = append(d, problem.Detail(api.CodeNothingToUpdate, "", "nothing to update: give clusterPurpose, loadBalancerType, loadBalancerSubnet or ssl"))
		}
		if req.ClusterPurpose != "" {
			purpose, pd := oneOf("clusterPurpose", req.ClusterPurpose, "", api.PurposeFastProd, api.PurposeDevTest)
			req.ClusterPurpose = purpose
			d = append(d, pd...)
		}
		if req.LoadBalancerType != "" {
			lb, ld := oneOf("loadBalancerType", req.LoadBalancerType, "", api.LoadBalancerPublicIP, api.LoadBalancerInternal)
			if len(ld) > 0 {
				return append(d, ld...)
			}
			req.LoadBalancerType = lb
		}
		lbType := cmp.Or(req.LoadBalancerType, c.LoadBalancerType)
		_, lbd := validateLoadBalancer(lbType, req.LoadBalancerSubnet)
		d = append(d, lbd...)
		d = append(d, validateSSL(req.SSL, true)...)
		if req.SSL != nil && req.SSL.Renew && c.SSLConfiguration.Status != api.SSLAuto {
			d = append(d, problem.Detail(api.CodeInvalidSSLConfiguration, "ssl.renew", "ssl.renew only applies to an automatic certificate (status Auto); %s has SSL status %s", c.Name, c.SSLConfiguration.Status))
		}
		auto := c.SSLConfiguration.Status == api.SSLAuto
		if req.SSL != nil && (req.SSL.Disable || req.SSL.CertPEM != "") {
			auto = false
		}
		if req.SSL != nil && req.SSL.LeafDomainLabel != "" {
			auto = true
		}
		if auto && c.Type != api.ComputeLocal && (req.SSL != nil && req.SSL.LeafDomainLabel != "" || lbType != c.LoadBalancerType) {
			d = append(d, validateAutoSSL(ws, lbType, zoneOf(p, ws, c))...)
		}
		return append(d, p.ValidateUpdate(ctx, c, req)...)
	})
}

// Detach removes Berth from an attached or created cluster and forgets it;
// the cluster itself is never deleted.
func (s *Service) Detach(ctx context.Context, ws *api.Workspace, name string, req *api.DetachRequest) (*store.Operation, error) {
	return s.start(ctx, ws, name, api.OpDetach, api.StateDetaching, req, nil)
}

// Delete removes a created cluster; attached ones must be detached.
func (s *Service) Delete(ctx context.Context, ws *api.Workspace, name string) (*store.Operation, error) {
	c, err := s.Get(ctx, ws, name)
	if err != nil {
		return nil, err
	}
	if c.Origin != api.OriginCreated {
		return nil, problem.Conflict("ComputeIsAttached", "compute %q was attached, not created by Berth, so Berth will not delete its cluster; use `berth compute detach -n %s` instead", c.Name, c.Name)
	}
	return s.start(ctx, ws, name, api.OpDelete, api.StateDeleting, struct{}{}, nil)
}

// Scale changes the node count of a created cluster.
func (s *Service) Scale(ctx context.Context, ws *api.Workspace, name string, req *api.ScaleRequest) (*store.Operation, error) {
	return s.start(ctx, ws, name, api.OpScale, api.StateScaling, req, func(c *store.Compute, p provider.Provider) []api.ErrorDetail {
		var d []api.ErrorDetail
		if c.Origin != api.OriginCreated {
			d = append(d, problem.Detail(api.CodeComputeIsAttached, "nodeCount", "compute %q was attached; scale its nodes where the cluster is managed", c.Name))
		}
		if req.NodeCount < 1 {
			d = append(d, problem.Detail(api.CodeInvalidValue, "nodeCount", "node count must be a positive integer (got %d)", req.NodeCount))
		}
		if len(d) > 0 {
			return d
		}
		return p.ValidateScale(ctx, c, req.NodeCount)
	})
}

// Renew renews a compute's automatic certificate (the control plane's
// renewal loop starts it; users run `compute update --ssl-renew`).
func (s *Service) Renew(ctx context.Context, ws *api.Workspace, name string) (*store.Operation, error) {
	return s.start(ctx, ws, name, api.OpRenew, "", struct{}{}, func(c *store.Compute, _ provider.Provider) []api.ErrorDetail {
		if c.SSLConfiguration.Status != api.SSLAuto {
			return []api.ErrorDetail{problem.Detail(api.CodeInvalidSSLConfiguration, "ssl.renew", "ssl.renew only applies to an automatic certificate (status Auto); %s has SSL status %s", c.Name, c.SSLConfiguration.Status)}
		}
		return nil
	})
}

// Reconcile re-applies Berth's state to the cluster and refreshes its facts.
func (s *Service) Reconcile(ctx context.Context, ws *api.Workspace, name string) (*store.Operation, error) {
	return s.start(ctx, ws, name, api.OpReconcile, "", struct{}{}, nil)
}

// Plan is the operation engine's planner for compute operations.
func (s *Service) Plan(op *store.Operation) (*operation.Plan, error) {
	if op.TargetType != TargetType {
		return nil, operation.Terminal(fmt.Errorf("unknown target type %q", op.TargetType))
	}
	c, err := s.Store.GetComputeByID(context.Background(), op.TargetID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, operation.Terminal(fmt.Errorf("compute %s no longer exists", op.TargetName))
	} else if err != nil {
		return nil, fmt.Errorf("load compute %s: %w", op.TargetName, err) // retried
	}
	p, ok := s.Providers.Get(c.Type)
	if !ok {
		return nil, operation.Terminal(fmt.Errorf("compute type %q is not available in this server", c.Type))
	}
	plan := &operation.Plan{Steps: p.Steps(op.Kind, c), Finish: s.finish}
	if u, ok := p.(provider.Undoer); ok {
		plan.Undo = u.Undo(op.Kind, c)
	}
	return plan, nil
}

// finish records the outcome of an operation on its compute.
func (s *Service) finish(ctx context.Context, tx *store.Store, r *operation.Run, opErr error) error {
	op := r.Op
	c, err := tx.GetComputeByID(ctx, op.TargetID)
	if errors.Is(err, store.ErrNotFound) {
		return nil // already gone
	}
	if err != nil {
		return err
	}
	if c.CurrentOperation == op.ID {
		c.CurrentOperation = ""
	}
	switch {
	case opErr == nil:
		switch op.Kind {
		case api.OpDetach, api.OpDelete:
			if err := tx.DeleteServicesOfCompute(ctx, c.ID); err != nil {
				return err
			}
			return tx.DeleteCompute(ctx, c.ID)
		case api.OpUpdate:
			var req api.ComputeUpdateRequest
			if err := json.Unmarshal(op.Params, &req); err == nil {
				req.Apply(&c.Compute)
				// A provider that handles TLS has already recorded the full
				// configuration (FQDN, expiry); others get the request's.
				if want := sslFromRequest(req.SSL, c.SSLConfiguration); !sameSSL(want, c.SSLConfiguration) {
					c.SSLConfiguration = want
				}
			}
		}
		c.ProvisioningState = api.StateSucceeded
		c.ProvisioningErrors = []api.ErrorDetail{}
		if reason := provider.Read[api.CertificateStatus](c.Status).CertificateError; reason != "" && c.SSLConfiguration.Status == api.SSLAuto {
			// Settled, but the automatic certificate is failing (retried with backoff).
			c.ProvisioningErrors = []api.ErrorDetail{{Code: api.CodeCertificateFailed, Target: "sslConfiguration", Message: "certificate authority: " + reason}}
		}
	case op.State == api.OpCanceled:
		if !noStateChange(op.Kind) {
			c.ProvisioningState = api.StateCanceled
		}
	default:
		c.ProvisioningErrors = failureDetails(op.Error)
		if !noStateChange(op.Kind) {
			c.ProvisioningState = api.StateFailed
		}
	}
	return tx.UpdateCompute(ctx, c)
}

func sameSSL(a, b api.SSLConfiguration) bool {
	return a.Status == b.Status && a.Cname == b.Cname && a.LeafDomainLabel == b.LeafDomainLabel
}

// noStateChange are the kinds that leave the provisioning state alone:
// background upkeep, not user changes.
func noStateChange(kind api.OperationKind) bool {
	return kind == api.OpReconcile || kind == api.OpRenew
}

// failureDetails lists every problem of a failed operation.
func failureDetails(e *api.Error) []api.ErrorDetail {
	if e == nil {
		return []api.ErrorDetail{}
	}
	if len(e.Details) > 0 {
		return e.Details
	}
	return []api.ErrorDetail{{Code: e.Code, Message: e.Message}}
}

// CanceledBeforeStart settles a compute whose operation was canceled before
// any step ran, as the engine settles one canceled later.
func (s *Service) CanceledBeforeStart(ctx context.Context, op *store.Operation) error {
	return s.Store.InTx(ctx, func(tx *store.Store) error {
		return s.finish(ctx, tx, &operation.Run{Op: op, Store: tx}, context.Canceled)
	})
}
