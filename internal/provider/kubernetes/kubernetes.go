// Package kubernetes is the compute type "kubernetes": any conformant
// cluster attached by kubeconfig. It runs preflight, claims the cluster
// with the attachment marker, makes Berth's own scoped credentials,
// installs the front end and keeps it as desired (update, reconcile), and
// removes everything on detach. The AKS provider reuses it after creating
// or finding the cluster.
package kubernetes

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"github.com/berth-ml/berth/internal/problem"
	"math"
	"strings"
	"time"

	"github.com/berth-ml/berth/api"
	"github.com/berth-ml/berth/internal/installer"
	"github.com/berth-ml/berth/internal/kubeconn"
	"github.com/berth-ml/berth/internal/operation"
	"github.com/berth-ml/berth/internal/preflight"
	"github.com/berth-ml/berth/internal/provider"
	"github.com/berth-ml/berth/internal/store"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// Type is the compute type name.
const Type = "kubernetes"

// Credential modes.
const (
	CredentialScoped  = "scoped"
	CredentialAsGiven = "as-given"
)

// Provider implements provider.Provider for attached clusters.
type Provider struct {
	// Versions is the supported Kubernetes range.
	Versions preflight.VersionRange
	// Image is the front end's container image; services deployed with
	// --command run it too, and their pods' model-init container.
	Image string
	// PublicURL is the control plane's address as pods see it; replicas
	// fetch their models from it. Empty: only --model-delivery image works.
	PublicURL string
	// MetricsInterval is how often front ends report their metrics to
	// PublicURL (default 10s).
	MetricsInterval time.Duration
	// ReadyTimeout bounds waiting for the front end (default 10m).
	ReadyTimeout time.Duration
	// RemoveTimeout bounds waiting for objects to be gone (default 5m).
	RemoveTimeout time.Duration
	// Poll is the interval of readiness checks (default 250ms).
	Poll time.Duration
	// ServiceAnnotations, when set, adds a compute's annotations to the
	// front end's Service (the AKS provider's DNS label).
	ServiceAnnotations func(c *store.Compute) map[string]string
	// ACMEHTTPPort is the port the CA checks HTTP-01 answers on (80; tests
	// use Pebble's httpPort).
	ACMEHTTPPort int
	// CertificateRetryBase is the first wait after a failed issuance
	// (doubling after each further failure; default 30s).
	CertificateRetryBase time.Duration
	// Zone, when set, is the DNS zone of a compute's automatic certificate
	// (AKS: <region>.cloudapp.azure.com); by default the workspace's.
	Zone func(ws *api.Workspace, c *store.Compute) string
	// Known, when set, is what another provider knows of a compute's
	// cluster for preflight (AKS: the capacity rule of its VM sizes, and
	// why a private cluster may not answer the control plane); by default
	// preflight counts the nodes' capacity.
	Known func(ctx context.Context, c *store.Compute) preflight.Input
}

// known is what Known says of a compute's cluster (nothing by default).
func (p *Provider) known(ctx context.Context, c *store.Compute) preflight.Input {
	if p.Known == nil {
		return preflight.Input{}
	}
	return p.Known(ctx, c)
}

// DNSZone is the zone automatic certificates' names are made in.
func (p *Provider) DNSZone(ws *api.Workspace, c *store.Compute) string {
	if p.Zone != nil {
		return cmp.Or(p.Zone(ws, c), ws.Settings.DNSZone)
	}
	return ws.Settings.DNSZone
}

// azureZone tells a zone whose names are Azure public IP DNS labels.
func azureZone(zone string) bool { return strings.HasSuffix(zone, ".cloudapp.azure.com") }

func (p *Provider) Type() string      { return Type }
func (p *Provider) Origins() []string { return []string{api.OriginAttached} }

func (p *Provider) readyTimeout() time.Duration {
	return cmp.Or(p.ReadyTimeout, 10*time.Minute)
}

func (p *Provider) removeTimeout() time.Duration {
	return cmp.Or(p.RemoveTimeout, 5*time.Minute)
}

// Validate checks an attach request without reaching the cluster.
func (p *Provider) Validate(_ context.Context, _ *api.Workspace, req *api.ComputeRequest) []api.ErrorDetail {
	s, out := ParseSettings(req.Settings)
	if req.Credentials == "" {
		out = append(out, problem.Detail(api.CodeKubeconfigRequired, "credentials", "credentials (a kubeconfig) are required to attach a cluster"))
	} else if _, _, err := kubeconn.Parse([]byte(req.Credentials), s.Context); err != nil {
		out = append(out, problem.Detail(api.CodeInvalidKubeconfig, "credentials", "%v", err))
	}
	return out
}

// ValidateUpdate checks an update's purpose and TLS parts.
func (p *Provider) ValidateUpdate(_ context.Context, c *store.Compute, req *api.ComputeUpdateRequest) []api.ErrorDetail {
	var out []api.ErrorDetail
	if c.Health == api.HealthDisplaced {
		out = append(out, problem.Detail(api.CodeComputeDisplaced, "", "compute %q was displaced: another attachment took its cluster over; detach it", c.Name))
	}
	return out
}

// ValidateScale: attached clusters are scaled where they are managed.
func (p *Provider) ValidateScale(context.Context, *store.Compute, int) []api.ErrorDetail { return nil }

// The user's kubeconfig while a scoped attach is under way (its context
// is the status's givenContext).
const secretGiven = "given"

// connectGiven opens the cluster with the kubeconfig the user gave, while
// the compute still holds it (an attach not yet finished), else as connect.
func connectGiven(c *store.Compute) (*kubeconn.Cluster, error) {
	if kc := c.Secrets[secretGiven]; kc != "" {
		cl, err := kubeconn.Connect([]byte(kc), StatusOf(c).GivenContext)
		return cl, operation.Terminal(err)
	}
	return connect(c)
}

// forgetGiven drops the user's kubeconfig once Berth's own works.
func forgetGiven(c *store.Compute) {
	delete(c.Secrets, secretGiven)
	EditStatus(c, func(st *Status) { st.GivenContext = "" })
}

// connect opens the compute's cluster with its stored credentials. It
// reaches nothing yet, so its errors (a kubeconfig that cannot work) are
// terminal.
func connect(c *store.Compute) (*kubeconn.Cluster, error) {
	kc := c.Secrets["credentials"]
	if kc == "" {
		return nil, operation.Terminal(errors.New("the compute has no stored kubeconfig"))
	}
	cl, err := kubeconn.Connect([]byte(kc), SettingsOf(c).Context)
	return cl, operation.Terminal(err)
}

// cluster is connect made once per operation attempt for the same
// credentials (a step that replaces them gets a new connection).
func cluster(r *operation.Run, c *store.Compute) (*kubeconn.Cluster, error) {
	sum := sha256.Sum256([]byte(c.Secrets["credentials"] + "\x00" + SettingsOf(c).Context))
	return operation.Memo(r, "kubernetes:"+hex.EncodeToString(sum[:]), func() (*kubeconn.Cluster, error) { return connect(c) })
}

func (p *Provider) installer(cl *kubeconn.Cluster, r *operation.Run) *installer.Installer {
	in := &installer.Installer{Cluster: cl, Poll: p.Poll}
	if r != nil {
		in.Progress = r.Event
	}
	return in
}

// settings are the desired installed state of a compute.
func (p *Provider) settings(c *store.Compute) installer.Settings {
	s := installer.Settings{
		AttachmentID: c.AttachmentID, Workspace: c.Workspace, Compute: c.Name,
		Purpose: c.ClusterPurpose, LoadBalancerType: c.LoadBalancerType, LoadBalancerSubnet: c.LoadBalancerSubnet,
		Image: p.Image, CertPEM: c.Secrets[secretTLSCert], KeyPEM: c.Secrets[secretTLSKey], DNSLabel: dnsLabel(c),
		MetricsURL: p.metricsURL(c), MetricsInterval: p.metricsInterval(), TokenAudience: Audience(c),
	}
	if p.ServiceAnnotations != nil {
		s.ServiceAnnotations = p.ServiceAnnotations(c)
	}
	return s
}

// dnsLabel is the Azure DNS label of an automatic certificate's name in a
// cloudapp.azure.com zone, which Azure then resolves to the public IP.
func dnsLabel(c *store.Compute) string {
	ssl := c.SSLConfiguration
	if ssl.Status != api.SSLAuto || c.LoadBalancerType == api.LoadBalancerInternal {
		return ""
	}
	label, zone, ok := strings.Cut(ssl.FQDN, ".")
	if !ok || !azureZone(zone) {
		return ""
	}
	return label
}

// DryRun runs preflight against the cluster of an attach request.
func (p *Provider) DryRun(ctx context.Context, _ *api.Workspace, req *api.ComputeRequest) (*api.PreflightReport, error) {
	return p.DryRunWith(ctx, req, preflight.Input{})
}

// DryRunWith is DryRun with what another provider knows of the cluster
// (AKS: the capacity rule of VM sizes, why it may be unreachable).
func (p *Provider) DryRunWith(ctx context.Context, req *api.ComputeRequest, in preflight.Input) (*api.PreflightReport, error) {
	s := provider.Read[Settings](req.Settings)
	cl, err := kubeconn.Connect([]byte(req.Credentials), s.Context)
	if err != nil {
		return nil, err
	}
	in.Cluster, in.Purpose, in.Versions, in.Force, in.Scoped = cl, req.ClusterPurpose, p.Versions, req.Force, s.CredentialMode != CredentialAsGiven
	rep, _ := preflight.Run(ctx, in)
	return &rep, nil
}

// Load re-reads the compute an operation works on: steps save it, so each
// starts from what the last one wrote. A compute gone is terminal; any
// other failure of the store is retried.
func Load(ctx context.Context, r *operation.Run) (*store.Compute, error) {
	c, err := r.Store.GetComputeByID(ctx, r.Op.TargetID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, operation.Terminal(fmt.Errorf("compute %s no longer exists", r.Op.TargetName))
	}
	return c, err
}

// target loads the compute and its cluster's connection (made once per
// attempt).
func target(ctx context.Context, r *operation.Run) (*store.Compute, *kubeconn.Cluster, error) {
	c, err := Load(ctx, r)
	if err != nil {
		return nil, nil, err
	}
	cl, err := cluster(r, c)
	return c, cl, err
}

// targetDesired is target and the compute as the operation wants it.
func targetDesired(ctx context.Context, r *operation.Run) (c, d *store.Compute, cl *kubeconn.Cluster, err error) {
	if c, cl, err = target(ctx, r); err != nil {
		return nil, nil, nil, err
	}
	d, err = desired(r, c)
	return c, d, cl, err
}

// fail turns a cluster error into the operation's failure: unreachable
// clusters fail with ClusterUnreachable, others with code.
func fail(code string, err error) error {
	if errors.Is(err, kubeconn.ErrUnreachable) {
		return operation.Fail(api.CodeClusterUnreachable, err.Error())
	}
	if _, ok := errors.AsType[*api.Error](err); ok {
		return err
	}
	return operation.Fail(code, err.Error())
}

// ObserveStep records the cluster's facts (version, nodes, CPUs, address,
// front-end image); other providers run it after their own steps.
func (p *Provider) ObserveStep() operation.Step {
	return operation.Step{Name: "observe", Run: p.stepObserve}
}

// Steps returns the steps of each operation kind.
func (p *Provider) Steps(kind api.OperationKind, _ *store.Compute) []operation.Step {
	switch kind {
	case api.OpAttach:
		return []operation.Step{
			{Name: "preflight", Run: p.stepPreflight},
			{Name: "claim cluster", Run: p.stepClaim},
			{Name: "credentials", Run: p.stepCredentials},
			{Name: "install", Run: p.stepInstall},
			{Name: "wait for front end", Run: p.stepWait},
			{Name: "certificate", Run: p.stepCertificate},
			p.ObserveStep(),
		}
	case api.OpUpdate:
		return []operation.Step{
			{Name: "check cluster", Run: p.stepCheckOwned},
			{Name: "install", Run: p.stepInstall},
			{Name: "wait for front end", Run: p.stepWait},
			{Name: "certificate", Run: p.stepCertificate},
			p.ObserveStep(),
		}
	case api.OpRenew:
		return []operation.Step{
			{Name: "check cluster", Run: p.stepCheckOwned},
			{Name: "certificate", Run: p.stepCertificate},
		}
	case api.OpReconcile:
		return []operation.Step{
			{Name: "check cluster", Run: p.stepReconcileCheck},
			{Name: "repair drift", Run: p.stepRepair},
			{Name: "wait for front end", Run: p.stepWait},
			p.ObserveStep(),
		}
	case api.OpDetach:
		return []operation.Step{
			{Name: "check cluster", Run: p.stepDetachCheck},
			{Name: "remove", Run: p.stepRemove},
		}
	}
	return nil
}

// Undo removes what a failed or canceled attach installed, if the cluster
// is still ours.
func (p *Provider) Undo(kind api.OperationKind, _ *store.Compute) func(ctx context.Context, r *operation.Run) error {
	if kind != api.OpAttach {
		return nil
	}
	return func(ctx context.Context, r *operation.Run) error {
		if r.Recall("claimed") == "" {
			return nil // nothing was installed
		}
		c, err := Load(ctx, r)
		if err != nil {
			return err
		}
		cl, err := connectGiven(c)
		if err != nil {
			return err
		}
		r.Event("Attach failed: removing what it installed")
		if err := p.remove(ctx, r, c, cl); err != nil {
			return err
		}
		// Berth's own access is gone with the rest: keep the given
		// kubeconfig, so the failed compute can still be detached.
		if given := c.Secrets[secretGiven]; given != "" {
			c.Secrets = map[string]string{"credentials": given}
			givenContext := StatusOf(c).GivenContext
			editSettings(c, func(s *Settings) { s.Context, s.CredentialMode = givenContext, CredentialScoped })
			EditStatus(c, func(st *Status) { st.GivenContext = "" })
			return r.Store.UpdateCompute(ctx, c)
		}
		return nil
	}
}

// desired is the compute as the operation wants it (an update's new values
// merged in).
func desired(r *operation.Run, c *store.Compute) (*store.Compute, error) {
	if r.Op.Kind != api.OpUpdate {
		return c, nil
	}
	req, err := operation.Params[api.ComputeUpdateRequest](r)
	if err != nil {
		return nil, err
	}
	d := *c
	req.Apply(&d.Compute)
	return &d, nil
}

func (p *Provider) stepPreflight(ctx context.Context, r *operation.Run) error {
	c, err := Load(ctx, r)
	if err != nil {
		return err
	}
	cl, err := cluster(r, c)
	if err != nil {
		return operation.Fail(api.CodeInvalidKubeconfig, err.Error())
	}
	req, _ := operation.Params[api.ComputeRequest](r)
	in := p.known(ctx, c)
	in.Cluster, in.Purpose, in.Versions, in.AttachmentID, in.Force, in.Scoped = cl, c.ClusterPurpose, p.Versions, c.AttachmentID, req.Force, SettingsOf(c).CredentialMode != CredentialAsGiven
	rep, _ := preflight.Run(ctx, in)
	for _, ch := range rep.Checks {
		r.Event("Preflight %s %s: %s", preflight.Marks[ch.Status], ch.Name, ch.Message)
	}
	if !rep.Passed {
		d := preflight.Failures(rep)
		return operation.Fail(api.CodePreflightFailed, fmt.Sprintf("%d preflight problem(s); nothing was installed", len(d)), d...)
	}
	return nil
}

func (p *Provider) stepClaim(ctx context.Context, r *operation.Run) error {
	c, cl, err := target(ctx, r)
	if err != nil {
		return err
	}
	req, _ := operation.Params[api.ComputeRequest](r)
	prev, err := p.installer(cl, r).ClaimMarker(ctx, p.settings(c), req.Force)
	switch {
	case errors.As(err, new(*installer.AttachedError)):
		return operation.Fail(api.CodeClusterAlreadyAttached, err.Error())
	case errors.Is(err, installer.ErrMarkerBusy):
		return err
	case err != nil:
		return fail(api.CodeClaimFailed, err)
	}
	if err := r.Remember(ctx, "claimed", "yes"); err != nil {
		return err
	}
	if prev != nil {
		r.Warn("Took the cluster over from %s; it becomes Displaced on its next reconcile", prev.Owner())
	} else {
		r.Event("Claimed the cluster for compute %s (attachment %s)", c.Name, c.AttachmentID)
	}
	return nil
}

func (p *Provider) stepCredentials(ctx context.Context, r *operation.Run) error {
	c, err := Load(ctx, r)
	if err != nil {
		return err
	}
	if SettingsOf(c).CredentialMode == CredentialAsGiven {
		r.Event("Keeping the given kubeconfig (credential mode as-given)")
		return nil
	}
	if r.Recall("scoped") != "" {
		return nil // done before a restart
	}
	cl, err := cluster(r, c)
	if err != nil {
		return err
	}
	kc, err := p.installer(cl, r).EnsureManager(ctx, p.settings(c))
	if err != nil {
		return fail(api.CodeCredentialsFailed, err)
	}
	// Prove the new credentials work before forgetting the given ones.
	scoped, err := kubeconn.Connect(kc, "")
	if err == nil {
		_, err = scoped.Client.CoreV1().Namespaces().Get(ctx, installer.Namespace, metav1.GetOptions{})
	}
	if err != nil {
		return fmt.Errorf("the new ServiceAccount token does not work yet: %w", err)
	}
	// The given kubeconfig stays (sealed) until the attach succeeds, so a
	// failed attach can still remove everything, Berth's own access included.
	c.Secrets = map[string]string{"credentials": string(kc), secretGiven: c.Secrets["credentials"]}
	givenContext := SettingsOf(c).Context
	editSettings(c, func(s *Settings) { s.CredentialMode, s.Context = CredentialScoped, "" })
	EditStatus(c, func(st *Status) { st.GivenContext = givenContext })
	if err := r.Store.UpdateCompute(ctx, c); err != nil {
		return err
	}
	r.Event("Stored credentials of ServiceAccount %s/%s with only the permissions Berth needs; the given kubeconfig is not kept", installer.ManagerNamespace, installer.ManagerName(p.settings(c)))
	return r.Remember(ctx, "scoped", "yes")
}

func (p *Provider) stepInstall(ctx context.Context, r *operation.Run) error {
	c, d, cl, err := targetDesired(ctx, r)
	if err != nil {
		return err
	}
	in := p.installer(cl, r)
	s := p.settings(d)
	if s.Resources, err = in.LiveResources(ctx); err != nil {
		return fail(api.CodeInstallFailed, err)
	}
	objs := installer.FrontendObjects(s)
	if _, err := in.Apply(ctx, objs, false); err != nil {
		return fail(api.CodeInstallFailed, err)
	}
	r.Event("Applied %d objects (server-side apply, field manager %s)", len(objs), installer.FieldManager)
	// Prune what the desired state no longer has (a PodDisruptionBudget
	// after a change to DevTest) and what earlier attachments left.
	if err := prune(ctx, in, objs, c.AttachmentID, r); err != nil {
		return fail(api.CodeInstallFailed, err)
	}
	return nil
}

// prune removes Berth's objects that are not part of objs: those of
// another (displaced) attachment, and those this one no longer wants. A
// displaced attachment's manager is kept but cut down to reading the
// marker, so its compute can tell it was displaced.
func prune(ctx context.Context, in *installer.Installer, objs []installer.Object, attachmentID string, r *operation.Run) error {
	want := map[string]bool{}
	for _, o := range objs {
		want[o.Kind.Kind+"/"+o.Namespace+"/"+o.Name] = true
	}
	keep := func(u *unstructured.Unstructured) bool {
		l := u.GetLabels()
		switch {
		case u.GetKind() == "Pod":
			return true // their Deployments own them
		case l[installer.LabelComponent] == installer.ComponentManager:
			return true // this attachment's credentials, or a displaced one's (cut down below)
		case l[installer.LabelAttachment] != attachmentID:
			return false // a displaced attachment's
		case l[installer.LabelComponent] != installer.ComponentFrontend:
			return true // services deployed later
		}
		return want[u.GetKind()+"/"+u.GetNamespace()+"/"+u.GetName()]
	}
	left, err := in.Remaining(ctx, installer.ManagedSelector, keep)
	if err != nil {
		return err
	}
	if len(left) > 0 {
		r.Event("Removing %d object(s) Berth no longer wants: %s", len(left), strings.Join(left, ", "))
		if err := in.Remove(ctx, installer.ManagedSelector, keep); err != nil {
			return err
		}
	}
	roles, err := in.Cluster.Client.RbacV1().ClusterRoles().List(ctx, metav1.ListOptions{
		LabelSelector: installer.LabelComponent + "=" + installer.ComponentManager + "," + installer.LabelAttachment + "!=" + attachmentID})
	if err != nil {
		return in.Cluster.Explain(err)
	}
	for _, role := range roles.Items {
		if len(role.Rules) <= 2 {
			continue // already cut down
		}
		if _, err := in.Apply(ctx, []installer.Object{installer.DisplacedManagerRole(role.Name, role.Labels)}, false); err != nil {
			return err
		}
		r.Event("Cut the displaced attachment's credentials (ClusterRole %s) down to reading the attachment marker", role.Name)
	}
	return nil
}

func (p *Provider) stepWait(ctx context.Context, r *operation.Run) error {
	if r.Recall("displaced") != "" {
		return nil
	}
	c, d, cl, err := targetDesired(ctx, r)
	if err != nil {
		return err
	}
	// Switching the load balancer type changes the address: wait for the new one.
	notAddress := ""
	if r.Op.Kind == api.OpUpdate && d.LoadBalancerType != c.LoadBalancerType {
		notAddress = c.Endpoint
		r.Event("Switching the load balancer to %s: waiting for its new address", d.LoadBalancerType)
	}
	wctx, cancel := context.WithTimeout(ctx, p.readyTimeout())
	defer cancel()
	rd, err := p.installer(cl, r).WaitReady(wctx, notAddress)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fail(api.CodeFrontendNotReady, err)
	}
	r.Event("Front end ready: %d/%d replicas, address %s", rd.Available, rd.Wanted, rd.Address)
	return nil
}

func (p *Provider) stepObserve(ctx context.Context, r *operation.Run) error {
	c, cl, err := target(ctx, r)
	if err != nil {
		return err
	}
	now := time.Now().UTC()
	c.LastReconcile = &now
	if r.Recall("displaced") != "" {
		c.Health = api.HealthDisplaced
		return r.Store.UpdateCompute(ctx, c)
	}
	v, err := cl.Client.Discovery().ServerVersion()
	if err != nil {
		return fail(api.CodeObserveFailed, cl.Explain(err))
	}
	count, err := preflight.Capacity(ctx, cl, nil)
	if err != nil {
		return fail(api.CodeObserveFailed, err)
	}
	svc, err := cl.Client.CoreV1().Services(installer.Namespace).Get(ctx, installer.FrontendName, metav1.GetOptions{})
	if err != nil {
		return fail(api.CodeObserveFailed, cl.Explain(err))
	}
	image, err := liveImage(ctx, cl)
	if err != nil {
		return fail(api.CodeObserveFailed, err)
	}
	forgetGiven(c)
	c.KubernetesVersion, c.NodeCount, c.AllocatableCpus = v.GitVersion, count.Nodes, math.Round(count.Allocatable*1000)/1000
	c.Endpoint = installer.ServiceAddress(svc)
	c.FrontendImage = image
	c.Health = api.HealthHealthy
	if StatusOf(c).CertificateError != "" && c.SSLConfiguration.Status == api.SSLAuto {
		c.Health = api.HealthUnhealthy // the automatic certificate is failing (retried with backoff)
	}
	c.ProvisioningErrors = []api.ErrorDetail{}
	r.Event("Kubernetes %s, %d nodes, %.4g allocatable vCPUs, endpoint %s, front end image %s", v.GitVersion, c.NodeCount, c.AllocatableCpus, c.Endpoint, image)
	return r.Store.UpdateCompute(ctx, c)
}

// liveImage is the image the cluster's front end Deployment runs ("" when
// it has none).
func liveImage(ctx context.Context, cl *kubeconn.Cluster) (string, error) {
	d, err := cl.Client.AppsV1().Deployments(installer.Namespace).Get(ctx, installer.FrontendName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return "", nil
	}
	if err != nil {
		return "", cl.Explain(err)
	}
	for _, ctr := range d.Spec.Template.Spec.Containers {
		if ctr.Name == installer.FrontendName {
			return ctr.Image, nil
		}
	}
	return "", nil
}

// ownership checks the cluster is reachable and still this compute's.
func (p *Provider) ownership(ctx context.Context, r *operation.Run, c *store.Compute) (*kubeconn.Cluster, *installer.Marker, error) {
	cl, err := cluster(r, c)
	if err != nil {
		return nil, nil, operation.Fail(api.CodeInvalidKubeconfig, err.Error())
	}
	if _, err := cl.Client.Discovery().ServerVersion(); err != nil {
		return cl, nil, cl.Explain(err)
	}
	m, err := p.installer(cl, r).ReadMarker(ctx)
	return cl, m, err
}

func (p *Provider) stepCheckOwned(ctx context.Context, r *operation.Run) error {
	c, err := Load(ctx, r)
	if err != nil {
		return err
	}
	d, err := desired(r, c)
	if err != nil {
		return err
	}
	cl, m, err := p.ownership(ctx, r, c)
	if err != nil {
		return fail(api.CodeClusterUnreachable, err)
	}
	if m != nil && m.AttachmentID != c.AttachmentID && !m.Terminating {
		return operation.Fail(api.CodeComputeDisplaced, fmt.Sprintf("the cluster now belongs to %s; detach this compute", m.Owner()))
	}
	if m == nil && c.LastReconcile == nil {
		return operation.Fail(api.CodeNotAttached, "this compute never finished attaching, so there is nothing to update; detach it and attach again")
	}
	if d.ClusterPurpose != c.ClusterPurpose {
		in := p.known(ctx, c)
		in.Cluster, in.Purpose, in.Versions, in.AttachmentID = cl, d.ClusterPurpose, p.Versions, c.AttachmentID
		rep, _ := preflight.Run(ctx, in)
		for _, ch := range rep.Checks {
			if ch.Name == preflight.CheckCapacity && ch.Status == api.CheckFailed {
				return operation.Fail(api.CodeInsufficientCapacity, ch.Message, ch.Details...)
			}
		}
		r.Event("Changing the cluster purpose from %s to %s", c.ClusterPurpose, d.ClusterPurpose)
	}
	return nil
}

func (p *Provider) stepReconcileCheck(ctx context.Context, r *operation.Run) error {
	c, err := Load(ctx, r)
	if err != nil {
		return err
	}
	_, m, err := p.ownership(ctx, r, c)
	if err != nil {
		if errors.Is(err, kubeconn.ErrUnreachable) || errors.Is(err, kubeconn.ErrUnauthorized) {
			c.Health = api.HealthUnreachable
			now := time.Now().UTC()
			c.LastReconcile = &now
			if uerr := r.Store.UpdateCompute(ctx, c); uerr != nil {
				return uerr
			}
			return operation.Fail(api.CodeClusterUnreachable, err.Error())
		}
		return fail(api.CodeReconcileFailed, err)
	}
	switch {
	case m != nil && m.AttachmentID != c.AttachmentID:
		r.Warn("The cluster now belongs to %s: this compute is Displaced and leaves the cluster alone; detach it", m.Owner())
		return r.Remember(ctx, "displaced", "yes")
	case c.Health == api.HealthDisplaced:
		// Displaced once, displaced for good: taking the cluster back is an
		// explicit attach --force, never a side effect of reconcile.
		r.Warn("This compute was displaced and the cluster has no owner now; attach it again to use it")
		return r.Remember(ctx, "displaced", "yes")
	case m == nil && c.LastReconcile == nil:
		return operation.Fail(api.CodeNotAttached, "this compute never finished attaching, so there is nothing to reconcile; detach it and attach again")
	case m == nil:
		r.Warn("The attachment marker (namespace %s) was missing: restoring it", installer.Namespace)
	}
	return nil
}

func (p *Provider) stepRepair(ctx context.Context, r *operation.Run) error {
	if r.Recall("displaced") != "" {
		return nil
	}
	c, cl, err := target(ctx, r)
	if err != nil {
		return err
	}
	in := p.installer(cl, r)
	s := p.settings(c)
	if s.Resources, err = in.LiveResources(ctx); err != nil {
		return fail(api.CodeReconcileFailed, err)
	}
	if live := s.Resources; live != nil {
		def := installer.DefaultResources()
		if !apiequality.Semantic.DeepEqual(*live, def) {
			r.Event("Keeping the front end's container resources as set in the cluster (requests %v, limits %v)", live.Requests, live.Limits)
		}
	}
	live, err := liveImage(ctx, cl)
	if err != nil {
		return fail(api.CodeReconcileFailed, err)
	}
	if live != "" && live != s.Image {
		// A server upgrade (or another --image-repository) changes the
		// image: the front end rolls to it, replica by replica.
		r.Event("Rolling the front end from image %s to this server's %s", live, s.Image)
	}
	objs := installer.FrontendObjects(s)
	drift, err := in.Drift(ctx, objs)
	if err != nil {
		return fail(api.CodeReconcileFailed, err)
	}
	for _, d := range drift {
		r.Warn("Drift: %s", d)
	}
	if len(drift) == 0 {
		r.Event("No drift: the cluster matches the desired state")
	}
	if _, err := in.Apply(ctx, objs, false); err != nil {
		return fail(api.CodeReconcileFailed, err)
	}
	if len(drift) > 0 {
		r.Event("Repaired %d difference(s)", len(drift))
	}
	return prune(ctx, in, objs, c.AttachmentID, r)
}

func (p *Provider) stepDetachCheck(ctx context.Context, r *operation.Run) error {
	c, err := Load(ctx, r)
	if err != nil {
		return err
	}
	req, _ := operation.Params[api.DetachRequest](r)
	_, m, err := p.ownership(ctx, r, c)
	if err != nil {
		if !req.Force {
			return operation.Fail(api.CodeClusterUnreachable, err.Error()+"; to forget this compute anyway, detach with `force`")
		}
		r.Warn("Cannot reach the cluster (%v): forgetting the compute anyway (`force`)", err)
		r.Warn("These may be left in the cluster: namespace %s and everything in it, ClusterRole and ClusterRoleBinding %s and %s, ServiceAccount %s/%s; all carry the label %s=%s",
			installer.Namespace, installer.FrontendName, installer.ManagerName(p.settings(c)), installer.ManagerNamespace, installer.ManagerName(p.settings(c)), installer.LabelAttachment, c.AttachmentID)
		return r.Remember(ctx, "skip", "unreachable")
	}
	if m != nil && m.AttachmentID != c.AttachmentID && !m.Terminating {
		r.Warn("The cluster now belongs to %s: removing nothing there, only forgetting this compute", m.Owner())
		return r.Remember(ctx, "skip", "displaced")
	}
	return nil
}

func (p *Provider) stepRemove(ctx context.Context, r *operation.Run) error {
	if r.Recall("skip") != "" {
		return nil
	}
	c, cl, err := target(ctx, r)
	if err != nil {
		return err
	}
	if err := p.remove(ctx, r, c, cl); err != nil {
		return fail(api.CodeDetachFailed, err)
	}
	return nil
}

// remove deletes everything Berth has in the cluster (its own attachment's
// objects and any a displaced attachment left) and waits until it is gone.
// With scoped credentials Berth's own ServiceAccount goes last, through its
// ClusterRole (the cluster's garbage collector removes the rest), since
// Berth loses its access with it.
func (p *Provider) remove(ctx context.Context, r *operation.Run, c *store.Compute, cl *kubeconn.Cluster) error {
	rctx, cancel := context.WithTimeout(ctx, p.removeTimeout())
	defer cancel()
	in := p.installer(cl, r)
	own := installer.ManagerName(p.settings(c))
	scoped := SettingsOf(c).CredentialMode == CredentialScoped
	isOwnManager := func(u *unstructured.Unstructured) bool {
		return u.GetLabels()[installer.LabelComponent] == installer.ComponentManager &&
			u.GetLabels()[installer.LabelAttachment] == c.AttachmentID
	}
	if err := in.Remove(rctx, installer.ManagedSelector, func(u *unstructured.Unstructured) bool { return scoped && isOwnManager(u) }); err != nil {
		return err
	}
	r.Event("Removed every Berth object and released the cluster")
	if !scoped {
		return nil
	}
	bg := metav1.DeletePropagationBackground
	err := cl.Client.RbacV1().ClusterRoles().Delete(rctx, own, metav1.DeleteOptions{PropagationPolicy: &bg})
	if err != nil && !apierrors.IsNotFound(err) {
		return cl.Explain(err)
	}
	r.Event("Removed Berth's own access (ClusterRole %s; the cluster's garbage collector removes its ServiceAccount %s/%s, binding and token)",
		own, installer.ManagerNamespace, own)
	return nil
}
