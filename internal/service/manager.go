package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/berth-ml/berth/api"
	"github.com/berth-ml/berth/internal/frontend"
	"github.com/berth-ml/berth/internal/installer"
	"github.com/berth-ml/berth/internal/kubeconn"
	"github.com/berth-ml/berth/internal/operation"
	"github.com/berth-ml/berth/internal/problem"
	"github.com/berth-ml/berth/internal/provider/kubernetes"
	"github.com/berth-ml/berth/internal/store"
	"github.com/google/uuid"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	appsac "k8s.io/client-go/applyconfigurations/apps/v1"
	coreac "k8s.io/client-go/applyconfigurations/core/v1"
	metaac "k8s.io/client-go/applyconfigurations/meta/v1"
)

// TargetType is the operation target type of services.
const TargetType = "service"

// Manager runs the service life cycle.
type Manager struct {
	Store *store.Store
	Wake  func()
	// Image runs --command services (it has `berth model-server`).
	Image string
	// PublicURL is the control plane's address as pods see it; replicas
	// fetch their models from it. Empty: only --model-delivery image works
	// on clusters.
	PublicURL string
	// ReadyTimeout bounds waiting for replicas (default 10m).
	ReadyTimeout time.Duration
	// LocalStatus reports what the local runtime serves of a service: its
	// generation and ready replicas.
	LocalStatus func(serviceID string) (gen, ready int, ok bool)
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
		case c.Type != api.ComputeKubernetes && c.Type != api.ComputeAKS && c.Type != api.ComputeLocal:
			details = append(details, problem.Detail(api.CodeUnsupportedCompute, "compute", "services on %s computes are not available yet; use a kubernetes, aks or local compute", c.Type))
		case c.Type == api.ComputeLocal && len(req.Command) == 0:
			details = append(details, problem.Detail(api.CodeCommandRequired, "command", "the local compute runs each replica as a process of this machine: give --command (images need a cluster)"))
		case c.ProvisioningState != api.StateSucceeded || c.Health == api.HealthDisplaced:
			details = append(details, problem.Detail(api.CodeComputeNotReady, "compute", "compute %q is %s (health %s); deploy to a compute that attached successfully", c.Name, c.ProvisioningState, c.Health))
		}
		if c != nil {
			details = append(details, m.checkDelivery(c, &req.ServiceSpec)...)
		}
	}
	resolved, missing, err := m.resolveModels(ctx, ws, req.Models)
	if err != nil {
		return nil, err
	}
	details = append(details, missing...)
	if len(details) > 0 {
		return nil, problem.Validation("", details)
	}
	req.Models = resolved
	sv := &store.Service{WorkspaceID: ws.ID, ComputeID: c.ID, Secrets: map[string]string{},
		Service: api.Service{ID: uuid.NewString(), Name: req.Name, Workspace: ws.Name, ServiceSpec: req.ServiceSpec,
			State: api.ServiceTransitioning, Errors: []api.ErrorDetail{}}}
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

// resolveModels pins NAME[:VERSION] references to registered versions;
// unknown ones are returned as problems (malformed ones Normalize reports).
func (m *Manager) resolveModels(ctx context.Context, ws *api.Workspace, refs []string) (resolved []string, missing []api.ErrorDetail, err error) {
	for _, ref := range refs {
		r, perr := ParseModelRef(ref)
		if perr != nil {
			continue
		}
		md, gerr := m.Store.GetModel(ctx, ws.ID, r.Name, r.Version)
		if errors.Is(gerr, store.ErrNotFound) {
			missing = append(missing, problem.Detail(api.CodeModelNotFound, "models", "model %q is not registered in workspace %q", ref, ws.Name))
			continue
		} else if gerr != nil {
			return nil, nil, gerr
		}
		resolved = append(resolved, fmt.Sprintf("%s:%d", md.Name, md.Version))
	}
	return resolved, missing, nil
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
	sv, err := m.Get(ctx, ws, name)
	if err != nil {
		return nil, err
	}
	return m.start(ctx, sv, newOp(ws, sv, api.OpDelete))
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
	if err := conflict(ctx, m.Store, sv, err); err != nil {
		return nil, err
	}
	m.wake()
	return op, nil
}

// Update changes a service in place (a rolling update: no request fails).
// Fields left empty keep their values; models are re-resolved.
func (m *Manager) Update(ctx context.Context, ws *api.Workspace, name string, ch *api.ServiceSpec) (*store.Operation, error) {
	sv, err := m.Get(ctx, ws, name)
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
		if c.Type == api.ComputeLocal && len(spec.Command) == 0 {
			details = append(details, problem.Detail(api.CodeCommandRequired, "command", "the local compute runs each replica as a process of this machine: give --command (images need a cluster)"))
		}
		details = append(details, m.checkDelivery(c, &spec)...)
	}
	resolved, missing, err := m.resolveModels(ctx, ws, spec.Models)
	if err != nil {
		return nil, err
	}
	details = append(details, missing...)
	if len(details) > 0 {
		return nil, problem.Validation("", details)
	}
	spec.Models = resolved
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
		{&s.MaxQueueWaitMs, &ch.MaxQueueWaitMs}, {&s.ScoringTimeoutMs, &ch.ScoringTimeoutMs}} {
		if *f.src != 0 {
			*f.dst = *f.src
		}
	}
	if ch.Replicas > 0 {
		s.Replicas, s.Autoscale = ch.Replicas, nil
	} else if ch.Autoscale != nil && ch.Autoscale.Enabled {
		s.Replicas, s.Autoscale = 0, ch.Autoscale
	}
	if ch.Liveness != nil {
		s.Liveness = ch.Liveness
	}
	if ch.Readiness != nil {
		s.Readiness = ch.Readiness
	}
	if ch.Env != nil {
		s.Env = ch.Env
	}
	if ch.ModelDelivery != "" {
		s.ModelDelivery = ch.ModelDelivery
	}
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
	sv, err := m.Get(ctx, ws, name)
	if err != nil {
		return nil, err
	}
	if sv.Auth != api.AuthKey {
		return nil, problem.New(http.StatusBadRequest, api.CodeKeyAuthDisabled, "service %s uses %s auth, not keys", sv.Name, sv.Auth)
	}
	return &api.ServiceKeys{PrimaryKey: sv.Secrets["primaryKey"], SecondaryKey: sv.Secrets["secondaryKey"]}, nil
}

// RegenKey replaces one key and rewrites the service's route at once, so
// the old key stops working within a second.
func (m *Manager) RegenKey(ctx context.Context, ws *api.Workspace, name string, req *api.RegenKeyRequest) (*api.ServiceKeys, error) {
	sv, err := m.Get(ctx, ws, name)
	if err != nil {
		return nil, err
	}
	var details []api.ErrorDetail
	if req.Key != "primary" && req.Key != "secondary" {
		details = append(details, problem.Detail(api.CodeInvalidValue, "key", "--key %q is not valid: use primary or secondary", req.Key))
	}
	if req.Value != "" && len(req.Value) < 16 {
		details = append(details, problem.Detail(api.CodeInvalidValue, "value", "a chosen key must be at least 16 characters"))
	}
	if sv.Auth != api.AuthKey {
		details = append(details, problem.Detail(api.CodeKeyAuthDisabled, "key", "service %s uses %s auth, not keys", sv.Name, sv.Auth))
	}
	if len(details) > 0 {
		return nil, problem.Validation("", details)
	}
	v := req.Value
	if v == "" {
		v = NewKey()
	}
	sv.Secrets[req.Key+"Key"] = v
	c, err := m.Store.GetComputeByID(ctx, sv.ComputeID)
	if err != nil {
		return nil, err
	}
	// The local runtime picks the new key up from the record within a second.
	if c.Type != api.ComputeLocal {
		if err := m.applyRoute(ctx, c, sv); err != nil {
			return nil, problem.New(http.StatusBadGateway, api.CodeClusterUnreachable, "the new key could not be written to the cluster (%v); the old key still works", err)
		}
	}
	if err := m.Store.UpdateService(ctx, sv); err != nil {
		return nil, err
	}
	return &api.ServiceKeys{PrimaryKey: sv.Secrets["primaryKey"], SecondaryKey: sv.Secrets["secondaryKey"]}, nil
}

// Token makes a short-lived JWT for a token-auth service.
func (m *Manager) Token(ctx context.Context, ws *api.Workspace, name string) (*api.ServiceToken, error) {
	sv, err := m.Get(ctx, ws, name)
	if err != nil {
		return nil, err
	}
	if sv.Auth != api.AuthToken {
		return nil, problem.New(http.StatusBadRequest, api.CodeTokenAuthDisabled, "service %s uses %s auth, not tokens", sv.Name, sv.Auth)
	}
	k, err := signingKey(ctx, m.Store)
	if err != nil {
		return nil, err
	}
	tok, exp, err := SignToken(k, sv.Name, time.Now())
	if err != nil {
		return nil, err
	}
	return &api.ServiceToken{AccessToken: tok, TokenType: "Bearer", ExpiryOn: exp.UTC()}, nil
}

// labels of a service's objects: Berth's, its compute's attachment and its name.
func labels(c *store.Compute, sv *store.Service) map[string]string {
	return map[string]string{
		installer.LabelManagedBy:  "berth",
		installer.LabelAttachment: c.AttachmentID,
		installer.LabelComponent:  "service",
		frontend.ServiceLabel:     sv.Name,
	}
}

func routeName(sv *store.Service) string { return "berth-route-" + sv.Name }

// route is what berth-fe needs to serve the service.
func (m *Manager) route(ctx context.Context, sv *store.Service) (*frontend.Route, error) {
	rt := &frontend.Route{Service: sv.Name, Namespace: sv.Namespace, Selector: map[string]string{frontend.ServiceLabel: sv.Name},
		Port: sv.Port, Auth: sv.Auth, ScoringTimeoutMs: sv.ScoringTimeoutMs, MaxConcurrentRequestsPerContainer: sv.MaxConcurrentRequests,
		MaxQueueWaitMs: sv.MaxQueueWaitMs}
	switch sv.Auth {
	case api.AuthKey:
		rt.KeyHashes = []string{frontend.HashKey(sv.Secrets["primaryKey"]), frontend.HashKey(sv.Secrets["secondaryKey"])}
	case api.AuthToken:
		k, err := signingKey(ctx, m.Store)
		if err != nil {
			return nil, err
		}
		if rt.TokenPublicKey, err = PublicKeyPEM(k); err != nil {
			return nil, err
		}
	}
	if a := sv.Autoscale; a != nil && a.Enabled {
		rt.Autoscale = frontend.Autoscale{Enabled: true, Min: a.MinReplicas, Max: a.MaxReplicas, RefreshSeconds: a.RefreshSeconds,
			TargetUtilization: a.TargetUtilization, Deployment: sv.Name}
	}
	return rt, nil
}

func connect(c *store.Compute) (*kubeconn.Cluster, error) {
	return kubeconn.Connect([]byte(c.Secrets["credentials"]), c.Properties["context"])
}

func (m *Manager) applyRoute(ctx context.Context, c *store.Compute, sv *store.Service) error {
	cl, err := connect(c)
	if err != nil {
		return err
	}
	rt, err := m.route(ctx, sv)
	if err != nil {
		return err
	}
	data, _ := json.Marshal(rt)
	l := labels(c, sv)
	l[frontend.RouteLabel] = "true"
	in := &installer.Installer{Cluster: cl}
	_, err = in.Apply(ctx, []installer.Object{{Kind: installer.KindConfigMap, Name: routeName(sv), Namespace: sv.Namespace,
		Apply: coreac.ConfigMap(routeName(sv), sv.Namespace).WithLabels(l).WithData(map[string]string{frontend.RouteKey: string(data)})}}, false)
	return err
}

func quantity(v float64, unit string) resource.Quantity {
	if unit == "cpu" {
		return *resource.NewMilliQuantity(int64(v*1000+0.5), resource.DecimalSI)
	}
	return *resource.NewQuantity(int64(v*(1<<30)+0.5), resource.BinarySI)
}

func probe(p *api.Probe, path string) *coreac.ProbeApplyConfiguration {
	return coreac.Probe().WithHTTPGet(coreac.HTTPGetAction().WithPath(path).WithPort(intstr.FromString("http"))).
		WithInitialDelaySeconds(int32(p.InitialDelaySeconds)).WithPeriodSeconds(int32(p.PeriodSeconds)).
		WithTimeoutSeconds(int32(p.TimeoutSeconds)).WithSuccessThreshold(int32(p.SuccessThreshold)).WithFailureThreshold(int32(p.FailureThreshold))
}

// objects are a service's Deployment (and namespace when Berth makes it).
func (m *Manager) deployment(c *store.Compute, sv *store.Service, replicas int32) installer.Object {
	l := labels(c, sv)
	req := corev1.ResourceList{corev1.ResourceCPU: quantity(sv.CPU, "cpu"), corev1.ResourceMemory: quantity(sv.MemoryGB, "mem")}
	lim := corev1.ResourceList{}
	if sv.CPULimit > 0 {
		lim[corev1.ResourceCPU] = quantity(sv.CPULimit, "cpu")
	}
	if sv.MemoryLimitGB > 0 {
		lim[corev1.ResourceMemory] = quantity(sv.MemoryLimitGB, "mem")
	}
	if sv.GPU > 0 {
		g := *resource.NewQuantity(int64(sv.GPU), resource.DecimalSI)
		req["nvidia.com/gpu"], lim["nvidia.com/gpu"] = g, g
	}
	res := coreac.ResourceRequirements().WithRequests(req)
	if len(lim) > 0 {
		res.WithLimits(lim)
	}
	image, args := sv.Image, []string(nil)
	if image == "" {
		image, args = m.Image, sv.Command
	}
	env := []*coreac.EnvVarApplyConfiguration{
		coreac.EnvVar().WithName("BERTH_SERVICE").WithValue(sv.Name),
		coreac.EnvVar().WithName("BERTH_MODELS").WithValue(strings.Join(sv.Models, ",")),
		coreac.EnvVar().WithName("PORT").WithValue(strconv.Itoa(sv.Port)),
	}
	for k, v := range sv.Env {
		env = append(env, coreac.EnvVar().WithName(k).WithValue(v))
	}
	ctr := coreac.Container().WithName("model").WithImage(image).WithEnv(env...).
		WithPorts(coreac.ContainerPort().WithName("http").WithContainerPort(int32(sv.Port))).
		WithResources(res).
		WithLivenessProbe(probe(sv.Liveness, "/healthz")).WithReadinessProbe(probe(sv.Readiness, "/readyz"))
	if len(args) > 0 {
		ctr.WithCommand(args...)
	}
	pod := coreac.PodSpec().WithServiceAccountName(ServiceAccountName(sv)).WithAutomountServiceAccountToken(false)
	if sv.ModelDelivery != api.ModelDeliveryImage {
		m.withDelivery(c, sv, pod, ctr)
	}
	return installer.Object{Kind: installer.KindDeployment, Name: sv.Name, Namespace: sv.Namespace,
		Apply: appsac.Deployment(sv.Name, sv.Namespace).WithLabels(l).WithSpec(appsac.DeploymentSpec().
			WithReplicas(replicas).
			// Rolling updates never take a serving replica away first.
			WithStrategy(appsac.DeploymentStrategy().WithType(appsv1.RollingUpdateDeploymentStrategyType).
				WithRollingUpdate(appsac.RollingUpdateDeployment().WithMaxUnavailable(intstr.FromInt32(0)).WithMaxSurge(intstr.FromInt32(1)))).
			WithSelector(metaac.LabelSelector().WithMatchLabels(map[string]string{frontend.ServiceLabel: sv.Name})).
			WithTemplate(coreac.PodTemplateSpec().WithLabels(l).WithSpec(pod.WithContainers(ctr))))}
}

// Plan is the operation engine's planner for service operations.
func (m *Manager) Plan(op *store.Operation) (*operation.Plan, error) {
	if sv, err := m.Store.GetServiceByID(context.Background(), op.TargetID); err == nil {
		if c, err := m.Store.GetComputeByID(context.Background(), sv.ComputeID); err == nil && c.Type == api.ComputeLocal {
			return m.localPlan(op)
		}
	}
	switch op.Kind {
	case api.OpDeploy, api.OpUpdate:
		return &operation.Plan{Steps: []operation.Step{
			{Name: "apply", Run: m.stepApply},
			{Name: "wait for replicas", Run: m.stepWait},
		}, Finish: m.finish}, nil
	case api.OpDelete:
		return &operation.Plan{Steps: []operation.Step{{Name: "remove", Run: m.stepRemove}}, Finish: m.finish}, nil
	}
	return nil, fmt.Errorf("services have no %s operation", op.Kind)
}

func (m *Manager) load(ctx context.Context, r *operation.Run) (*store.Service, *store.Compute, *kubeconn.Cluster, error) {
	sv, err := r.Store.GetServiceByID(ctx, r.Op.TargetID)
	if err != nil {
		return nil, nil, nil, err
	}
	c, err := r.Store.GetComputeByID(ctx, sv.ComputeID)
	if err != nil {
		return nil, nil, nil, operation.Fail(api.CodeComputeGone, fmt.Sprintf("compute %s of service %s no longer exists", sv.Compute, sv.Name))
	}
	cl, err := connect(c)
	if err != nil {
		return nil, nil, nil, operation.Fail(api.CodeInvalidKubeconfig, err.Error())
	}
	return sv, c, cl, nil
}

// desired is the service as the operation wants it (an update's spec).
func desired(r *operation.Run, sv *store.Service) error {
	if r.Op.Kind != api.OpUpdate {
		return nil
	}
	return json.Unmarshal(r.Op.Params, &sv.ServiceSpec)
}

func (m *Manager) stepApply(ctx context.Context, r *operation.Run) error {
	sv, c, cl, err := m.load(ctx, r)
	if err != nil {
		return err
	}
	if err := desired(r, sv); err != nil {
		return err
	}
	in := &installer.Installer{Cluster: cl, Progress: r.Event}
	if _, err := cl.Client.CoreV1().Namespaces().Get(ctx, sv.Namespace, metav1.GetOptions{}); err != nil {
		l := labels(c, sv)
		delete(l, frontend.ServiceLabel)
		if _, err := in.Apply(ctx, []installer.Object{{Kind: installer.KindNamespace, Name: sv.Namespace,
			Apply: coreac.Namespace(sv.Namespace).WithLabels(l)}}, false); err != nil {
			return operation.Fail(api.CodeDeployFailed, err.Error())
		}
		r.Event("Created namespace %s", sv.Namespace)
	}
	replicas := int32(sv.Replicas)
	if sv.Autoscale != nil && sv.Autoscale.Enabled {
		replicas = int32(sv.Autoscale.MinReplicas)
		// Keep what the autoscaler decided.
		if d, err := cl.Client.AppsV1().Deployments(sv.Namespace).Get(ctx, sv.Name, metav1.GetOptions{}); err == nil && d.Spec.Replicas != nil {
			replicas = max(replicas, min(*d.Spec.Replicas, int32(sv.Autoscale.MaxReplicas)))
		}
	}
	sa := installer.Object{Kind: installer.KindServiceAccount, Name: ServiceAccountName(sv), Namespace: sv.Namespace,
		Apply: coreac.ServiceAccount(ServiceAccountName(sv), sv.Namespace).WithLabels(labels(c, sv)).WithAutomountServiceAccountToken(false)}
	if _, err := in.Apply(ctx, []installer.Object{sa, m.deployment(c, sv, replicas)}, false); err != nil {
		return operation.Fail(api.CodeDeployFailed, err.Error())
	}
	if err := m.applyRoute(ctx, c, sv); err != nil {
		return operation.Fail(api.CodeDeployFailed, err.Error())
	}
	r.Event("Applied Deployment %s/%s (%d replica(s), models %s) and its route", sv.Namespace, sv.Name, replicas, strings.Join(sv.Models, ", "))
	return nil
}

func (m *Manager) stepWait(ctx context.Context, r *operation.Run) error {
	sv, c, cl, err := m.load(ctx, r)
	if err != nil {
		return err
	}
	if err := desired(r, sv); err != nil {
		return err
	}
	timeout := m.ReadyTimeout
	if timeout == 0 {
		timeout = 10 * time.Minute
	}
	deadline := time.Now().Add(timeout)
	last := int32(-1)
	for {
		d, err := cl.Client.AppsV1().Deployments(sv.Namespace).Get(ctx, sv.Name, metav1.GetOptions{})
		if err != nil {
			return operation.Retryable(cl.Explain(err))
		}
		if d.Status.ReadyReplicas != last {
			r.Event("Replicas ready: %d of %d", d.Status.ReadyReplicas, *d.Spec.Replicas)
			last = d.Status.ReadyReplicas
		}
		if d.Status.ReadyReplicas >= 1 && d.Status.ObservedGeneration >= d.Generation && d.Status.UpdatedReplicas >= *d.Spec.Replicas &&
			d.Status.Replicas == d.Status.UpdatedReplicas {
			sv.ReadyReplicas = int(d.Status.ReadyReplicas)
			sv.ScoringURI, sv.SwaggerURI = uris(c, sv)
			return r.Store.UpdateService(ctx, sv)
		}
		if time.Now().After(deadline) {
			return operation.Fail(api.CodeReplicasNotReady, fmt.Sprintf("no replica of %s became ready within %s (check `berth service logs -n %s`)", sv.Name, timeout, sv.Name))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// uris are the scoring and swagger URIs through the compute's front end.
func uris(c *store.Compute, sv *store.Service) (string, string) {
	scheme, host := "http", c.Endpoint
	if fqdn := c.Properties[kubernetes.PropFQDN]; fqdn != "" {
		host = fqdn // a cloud's DNS name for the public IP (AKS)
	}
	switch {
	case c.Type == api.ComputeLocal:
		scheme = "https"
	case c.SSLConfiguration.Status == api.SSLEnabled:
		scheme, host = "https", c.SSLConfiguration.Cname
	case c.SSLConfiguration.Status == api.SSLAuto:
		scheme, host = "https", c.SSLConfiguration.FQDN
	}
	base := fmt.Sprintf("%s://%s/api/v1/service/%s", scheme, host, sv.Name)
	return base + "/score", base + "/swagger.json"
}

func (m *Manager) stepRemove(ctx context.Context, r *operation.Run) error {
	sv, c, cl, err := m.load(ctx, r)
	if err != nil {
		if f := new(api.Error); errors.As(err, &f) && f.Code == "ComputeGone" {
			return nil
		}
		return err
	}
	in := &installer.Installer{Cluster: cl, Progress: r.Event}
	sel := installer.ManagedSelector + "," + installer.LabelAttachment + "=" + c.AttachmentID + "," + frontend.ServiceLabel + "=" + sv.Name
	if err := in.Remove(ctx, sel, nil); err != nil {
		return operation.Retryable(err)
	}
	r.Event("Removed the service's objects from the cluster")
	return nil
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
