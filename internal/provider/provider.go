// Package provider is the seam between Berth's generic compute life cycle
// (validation, operations, states) and what each compute type does to a
// real cluster or cloud. The server builds one Registry of its types (the
// built-in ones, then any its caller adds); the compute service asks it for
// the provider of a compute's type.
package provider

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"sync"

	dto "github.com/prometheus/client_model/go"

	"github.com/berth-ml/berth/api"
	"github.com/berth-ml/berth/internal/frontend"
	"github.com/berth-ml/berth/internal/operation"
	"github.com/berth-ml/berth/internal/store"
)

// Provider implements one compute type.
type Provider interface {
	// Type is the compute type name (kubernetes, aks, local, …).
	Type() string
	// Origins lists the origins the type supports (created, attached).
	Origins() []string
	// Validate checks the type-specific parts of a create or attach request
	// and returns every problem found, before anything is changed.
	Validate(ctx context.Context, ws *api.Workspace, req *api.ComputeRequest) []api.ErrorDetail
	// ValidateUpdate checks an update against the compute as it is.
	ValidateUpdate(ctx context.Context, c *store.Compute, req *api.ComputeUpdateRequest) []api.ErrorDetail
	// ValidateScale checks a node count (only for types that can scale).
	ValidateScale(ctx context.Context, c *store.Compute, nodeCount int) []api.ErrorDetail
	// Steps returns the steps of an operation kind, or nil if the type does
	// not support it. The compute is as it was when the operation was
	// planned; steps re-read and write it through the run.
	Steps(kind api.OperationKind, c *store.Compute) []operation.Step
}

// DryRunner is a provider that can check a create or attach request
// against the real cluster or cloud without changing anything.
type DryRunner interface {
	DryRun(ctx context.Context, ws *api.Workspace, req *api.ComputeRequest) (*api.PreflightReport, error)
}

// Registry holds the providers of one server.
type Registry struct {
	mu        sync.RWMutex
	providers map[string]Provider
}

// NewRegistry returns a registry of ps; a later provider of a type replaces
// an earlier one.
func NewRegistry(ps ...Provider) *Registry {
	r := &Registry{}
	for _, p := range ps {
		r.Register(p)
	}
	return r
}

// Register adds a provider; a second one of the same type replaces the first.
func (r *Registry) Register(p Provider) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.providers == nil {
		r.providers = map[string]Provider{}
	}
	r.providers[p.Type()] = p
}

// Get returns the provider of a type.
func (r *Registry) Get(typ string) (Provider, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	p, ok := r.providers[typ]
	return p, ok
}

// Types lists registered types, sorted.
func (r *Registry) Types() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return slices.Sorted(maps.Keys(r.providers))
}

// Undoer is a provider whose failed operations of some kinds must be
// undone (a failed attach leaves nothing installed); Undo returns nil for
// kinds that need none.
type Undoer interface {
	Undo(kind api.OperationKind, c *store.Compute) func(ctx context.Context, r *operation.Run) error
}

// DNSZoner is a provider that knows the DNS zone of its computes'
// automatic certificates itself (AKS: <region>.cloudapp.azure.com, through
// the public IP's DNS label), so the workspace needs no zone for them.
type DNSZoner interface {
	DNSZone(ws *api.Workspace, c *store.Compute) string
}

// ServiceHost is a provider whose computes host services. The service
// life cycle (package service) is generic: it validates a request, keeps
// the keys and records, builds the route the front end serves, and asks
// the compute's provider for the rest.
type ServiceHost interface {
	// CheckService reports what a compute cannot host of a service spec,
	// every problem at once, before anything is recorded.
	CheckService(c *store.Compute, spec *api.ServiceSpec) []api.ErrorDetail
	// ServiceSteps returns the steps of a service operation (api.OpDeploy,
	// api.OpUpdate or api.OpDelete).
	ServiceSteps(kind api.OperationKind) []ServiceStep
	// PublishRoute makes the compute's front end serve a service's route
	// as it is now, outside an operation (a key was regenerated).
	PublishRoute(ctx context.Context, c *store.Compute, sv *store.Service, rt *frontend.Route) error
	// ServiceLogs writes the last lines of a service's replicas' logs to w
	// and, to follow them, what they print next until ctx ends. It returns
	// its errors before it writes anything.
	ServiceLogs(ctx context.Context, c *store.Compute, sv *store.Service, o LogOptions, w io.Writer) error
}

// EndpointHost is a service host whose front end also serves endpoints:
// one scoring URI over several of its services (docs/endpoints.md).
type EndpointHost interface {
	// PublishEndpoint makes the compute's front end serve an endpoint's
	// route as it is now; a nil route stops serving the endpoint.
	PublishEndpoint(ctx context.Context, c *store.Compute, name string, rt *frontend.EndpointRoute) error
	// ScoringBase is where the compute's front end answers scoring
	// requests: scheme and host, as in "https://scoring.example.com".
	ScoringBase(c *store.Compute) string
}

// CrashLines is how many of its last lines a replica's exit reports.
const CrashLines = 20

// CrashLoopExits is how many exits of a replica in a row fail a deploy or
// an update: its server cannot start, and waiting will not change that.
const CrashLoopExits = 3

// LogOptions choose the logs ServiceLogs writes.
type LogOptions struct {
	// Replica chooses one replica, when not empty.
	Replica string
	// Tail is how many of its last lines each replica's log starts with.
	Tail int
	// Previous chooses what ran before: on the local compute the replicas
	// of the service's earlier generations, on a cluster the containers
	// that ran before the pods' current ones (a crashed one).
	Previous bool
	// Follow keeps writing what the replicas print until ctx ends.
	Follow bool
}

// LogWriter writes replicas' lines under a "==> NAME <==" header each
// time the replica changes, as tail does with several files; replicas
// followed at once may share it.
type LogWriter struct {
	W    io.Writer
	mu   sync.Mutex
	last string
	any  bool
}

// Write writes text that replica printed.
func (l *LogWriter) Write(replica, text string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.any || replica != l.last {
		sep := "\n"
		if !l.any {
			sep = ""
		}
		if _, err := fmt.Fprintf(l.W, "%s==> %s <==\n", sep, replica); err != nil {
			return err
		}
		l.last, l.any = replica, true
	}
	_, err := io.WriteString(l.W, text)
	return err
}

// MetricsSource is a provider whose front ends run in the server's own
// process: FrontendMetrics returns the Prometheus metrics of each, by a
// name that stays the same from one call to the next, so the server can
// tell the activity between two reads.
type MetricsSource interface {
	FrontendMetrics(ctx context.Context, c *store.Compute) (map[string][]*dto.MetricFamily, error)
}

// MetricsReporter is a provider whose front ends report their metrics to
// the server (api.FrontendMetricsPath) with a token their compute issued:
// ReviewFrontendToken checks it and names the reporting front end.
type MetricsReporter interface {
	ReviewFrontendToken(ctx context.Context, c *store.Compute, token string) (source string, err error)
}

// ServiceStep is one step of a service operation. It receives its target
// loaded once for the step's attempt.
type ServiceStep struct {
	Name string
	Run  func(ctx context.Context, r *operation.Run, t *ServiceTarget) error
}

// ServiceTarget is what a service operation works on.
type ServiceTarget struct {
	// Service is the service as the operation wants it (an update's spec
	// applied); steps that record what they found (ready replicas, scoring
	// URI) write it back through the run's store.
	Service *store.Service
	Compute *store.Compute
	// Route is what the front end must serve for the service.
	Route *frontend.Route
	// Credential returns an Authorization header value the service's route
	// accepts (a key or a fresh token), or "" when it needs none.
	Credential func(ctx context.Context) (string, error)
}

// DeliveryReviewer is a service host whose replicas fetch their models from
// the control plane with a token their compute issued; ReviewDeliveryToken
// checks that token belongs to the service's replicas.
type DeliveryReviewer interface {
	ReviewDeliveryToken(ctx context.Context, c *store.Compute, sv *store.Service, token string) error
}

// Runner is a provider that runs something in the server's process for as
// long as it serves (the local compute's front ends and replicas).
type Runner interface {
	Run(ctx context.Context)
}

// CheckReplicas reports a replica count or autoscale maximum above what a
// compute runs for one service (limit), naming the compute's kind (where).
func CheckReplicas(s *api.ServiceSpec, limit int, where string) []api.ErrorDetail {
	var out []api.ErrorDetail
	if s.Replicas > limit {
		out = append(out, api.ErrorDetail{Code: api.CodeInvalidValue, Target: "replicas",
			Message: fmt.Sprintf("replicas %d is more than %s runs for one service (at most %d)", s.Replicas, where, limit)})
	}
	if a := s.Autoscale; a != nil && a.Enabled && a.MaxReplicas > limit {
		out = append(out, api.ErrorDetail{Code: api.CodeInvalidValue, Target: "autoscale.maxReplicas",
			Message: fmt.Sprintf("autoscale.maxReplicas %d is more than %s runs for one service (at most %d)", a.MaxReplicas, where, limit)})
	}
	return out
}

// CommandGate is a service host whose computes run --command services on a
// machine the control plane shares (the local compute): whether only
// owners may deploy commands there.
type CommandGate interface {
	CommandsNeedOwner(c *store.Compute) bool
}
