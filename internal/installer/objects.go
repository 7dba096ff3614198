// Package installer is what Berth puts into a cluster and how: the desired
// objects (DESIGN.md "What goes into a cluster"), applied with server-side
// apply under field manager "berth", waited for, checked for drift and
// removed again by label. Both attached and created clusters go through it.
package installer

import (
	"fmt"
	"maps"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	appsac "k8s.io/client-go/applyconfigurations/apps/v1"
	coreac "k8s.io/client-go/applyconfigurations/core/v1"
	metaac "k8s.io/client-go/applyconfigurations/meta/v1"
	policyac "k8s.io/client-go/applyconfigurations/policy/v1"
	rbacac "k8s.io/client-go/applyconfigurations/rbac/v1"
)

// Names and labels of what Berth installs.
const (
	Namespace    = "berth-system"
	FrontendName = "berth-fe"
	TLSSecret    = "berth-fe-tls"
	ConfigName   = "berth-fe-config"
	FieldManager = "berth"

	// The manager ServiceAccount carries Berth's scoped credentials, one per
	// attachment (berth-manager-<id>). It lives outside berth-system so
	// Berth keeps its access while it waits for that namespace to go away
	// on detach; its RBAC and token are owned by its ClusterRole, so
	// deleting that one removes them all.
	ManagerPrefix    = "berth-manager-"
	ManagerNamespace = "kube-system"

	LabelManagedBy  = "app.kubernetes.io/managed-by"
	LabelAttachment = "berth.dev/attachment"
	LabelComponent  = "berth.dev/component"
	LabelName       = "app.kubernetes.io/name"

	AnnotationWorkspace  = "berth.dev/workspace"
	AnnotationCompute    = "berth.dev/compute"
	AnnotationAttachment = "berth.dev/attachment-id"
	AnnotationServer     = "berth.dev/control-plane"

	ComponentManager  = "manager"
	ComponentFrontend = "frontend"

	// Internal load balancer annotations: Azure's, and the matching ones
	// of other clouds.
	AzureInternal       = "service.beta.kubernetes.io/azure-load-balancer-internal"
	AzureInternalSubnet = "service.beta.kubernetes.io/azure-load-balancer-internal-subnet"
	AWSInternal         = "service.beta.kubernetes.io/aws-load-balancer-internal"
	GCPInternal         = "networking.gke.io/load-balancer-type"
	// AzureDNSLabel names the public IP: <label>.<region>.cloudapp.azure.com.
	AzureDNSLabel = "service.beta.kubernetes.io/azure-dns-label-name"
)

// ManagedSelector selects every object Berth installed, of any attachment.
const ManagedSelector = LabelManagedBy + "=berth"

// Settings are the choices that shape the installed objects.
type Settings struct {
	AttachmentID       string
	Workspace          string
	Compute            string
	Purpose            string // FastProd or DevTest
	LoadBalancerType   string // PublicIp or InternalLoadBalancer
	LoadBalancerSubnet string
	// Image is the front end's container image.
	Image string
	// TLS certificate and key (PEM); empty when TLS is disabled.
	CertPEM, KeyPEM string
	// DNSLabel, when set, asks Azure for <label>.<region>.cloudapp.azure.com
	// on the public load balancer's IP (an automatic certificate's name on AKS).
	DNSLabel string
	// Resources are the front end container's requests and limits as the
	// cluster has them; users may tune them and reconcile keeps them.
	Resources *corev1.ResourceRequirements
	// ServiceAnnotations are added to the front end's Service (a cloud's
	// settings for its load balancer, such as the DNS label on AKS).
	ServiceAnnotations map[string]string
	// MetricsURL, when set, is where the front end reports its metrics
	// every MetricsInterval, with a service-account token for the audience
	// TokenAudience (berth:<attachment>) that the control plane checks
	// with the cluster's TokenReview.
	MetricsURL      string
	MetricsInterval time.Duration
	TokenAudience   string
}

// Where the front end finds its token for the control plane.
const (
	ControlPlaneTokenDir  = "/var/run/secrets/berth.dev"
	ControlPlaneTokenFile = ControlPlaneTokenDir + "/token"
)

// Replicas is the front end's replica count for a purpose.
func Replicas(purpose string) int32 {
	if purpose == "DevTest" {
		return 1
	}
	return 3
}

func (s Settings) labels(component string) map[string]string {
	return map[string]string{
		LabelManagedBy:              "berth",
		LabelAttachment:             s.AttachmentID,
		LabelComponent:              component,
		"app.kubernetes.io/part-of": "berth",
	}
}

func (s Settings) frontendLabels() map[string]string {
	l := s.labels(ComponentFrontend)
	l[LabelName] = FrontendName
	return l
}

// selector is the front end pods' stable selector (immutable once made).
func selector() map[string]string {
	return map[string]string{LabelName: FrontendName, LabelManagedBy: "berth"}
}

func metricsInterval(s Settings) string {
	if s.MetricsURL == "" {
		return ""
	}
	return s.MetricsInterval.String()
}

// Object is one desired object: its kind and its apply configuration.
type Object struct {
	Kind      Kind
	Name      string
	Namespace string
	Apply     any // an apply configuration (JSON-marshalable)
}

func (o Object) String() string {
	if o.Namespace != "" {
		return fmt.Sprintf("%s %s/%s", o.Kind.Kind, o.Namespace, o.Name)
	}
	return fmt.Sprintf("%s %s", o.Kind.Kind, o.Name)
}

// NamespaceObject is the berth-system namespace, which is also the
// attachment marker: its annotations say which workspace and compute own
// the cluster.
func NamespaceObject(s Settings) Object {
	ns := coreac.Namespace(Namespace).
		WithLabels(s.labels(ComponentFrontend)).
		WithAnnotations(MarkerAnnotations(s))
	return Object{Kind: KindNamespace, Name: Namespace, Apply: ns}
}

// MarkerAnnotations record the owner of the cluster.
func MarkerAnnotations(s Settings) map[string]string {
	return map[string]string{
		AnnotationWorkspace:  s.Workspace,
		AnnotationCompute:    s.Compute,
		AnnotationAttachment: s.AttachmentID,
	}
}

// DefaultResources are the front end container's starting requests and limits.
func DefaultResources() corev1.ResourceRequirements {
	return corev1.ResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("128Mi")},
		Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("512Mi")},
	}
}

func resourcesApply(r corev1.ResourceRequirements) *coreac.ResourceRequirementsApplyConfiguration {
	ac := coreac.ResourceRequirements()
	if len(r.Requests) > 0 {
		ac.WithRequests(r.Requests)
	}
	if len(r.Limits) > 0 {
		ac.WithLimits(r.Limits)
	}
	return ac
}

// FrontendObjects are the front end's objects in berth-system, in the
// order they are applied.
func FrontendObjects(s Settings) []Object {
	ns := Namespace
	fe := s.frontendLabels()
	res := DefaultResources()
	if s.Resources != nil {
		res = *s.Resources
	}
	objs := []Object{
		NamespaceObject(s),
		{Kind: KindServiceAccount, Name: FrontendName, Namespace: ns,
			Apply: coreac.ServiceAccount(FrontendName, ns).WithLabels(fe)},
		{Kind: KindClusterRole, Name: FrontendName, Apply: rbacac.ClusterRole(FrontendName).WithLabels(fe).WithRules(
			rbacac.PolicyRule().WithAPIGroups("").WithResources("pods", "configmaps").WithVerbs("get", "list", "watch"),
			rbacac.PolicyRule().WithAPIGroups("apps").WithResources("deployments").WithVerbs("get", "list", "watch"),
			rbacac.PolicyRule().WithAPIGroups("apps").WithResources("deployments/scale").WithVerbs("get", "update", "patch"),
			rbacac.PolicyRule().WithAPIGroups("").WithResources("events").WithVerbs("create", "patch"),
		)},
		{Kind: KindClusterRoleBinding, Name: FrontendName, Apply: rbacac.ClusterRoleBinding(FrontendName).WithLabels(fe).
			WithRoleRef(rbacac.RoleRef().WithAPIGroup("rbac.authorization.k8s.io").WithKind("ClusterRole").WithName(FrontendName)).
			WithSubjects(rbacac.Subject().WithKind("ServiceAccount").WithName(FrontendName).WithNamespace(ns))},
		{Kind: KindRole, Name: FrontendName, Namespace: ns, Apply: rbacac.Role(FrontendName, ns).WithLabels(fe).WithRules(
			rbacac.PolicyRule().WithAPIGroups("").WithResources("secrets").WithVerbs("get", "list", "watch"),
			rbacac.PolicyRule().WithAPIGroups("coordination.k8s.io").WithResources("leases").WithVerbs("get", "list", "watch", "create", "update"),
		)},
		{Kind: KindRoleBinding, Name: FrontendName, Namespace: ns, Apply: rbacac.RoleBinding(FrontendName, ns).WithLabels(fe).
			WithRoleRef(rbacac.RoleRef().WithAPIGroup("rbac.authorization.k8s.io").WithKind("Role").WithName(FrontendName)).
			WithSubjects(rbacac.Subject().WithKind("ServiceAccount").WithName(FrontendName).WithNamespace(ns))},
		{Kind: KindConfigMap, Name: ConfigName, Namespace: ns, Apply: coreac.ConfigMap(ConfigName, ns).WithLabels(fe).WithData(map[string]string{
			"workspace":          s.Workspace,
			"compute":            s.Compute,
			"attachmentId":       s.AttachmentID,
			"clusterPurpose":     s.Purpose,
			"loadBalancerType":   s.LoadBalancerType,
			"loadBalancerSubnet": s.LoadBalancerSubnet,
			"tlsSecret":          TLSSecret,
			"metricsURL":         s.MetricsURL,
			"metricsInterval":    metricsInterval(s),
		})},
		TLSSecretObject(s),
	}

	replicas := Replicas(s.Purpose)
	pod := coreac.PodTemplateSpec().WithLabels(fe).WithSpec(coreac.PodSpec().
		WithServiceAccountName(FrontendName).
		WithContainers(coreac.Container().
			WithName(FrontendName).
			WithImage(s.Image).
			WithArgs("frontend", "--namespace", ns, "--routes", ConfigName).
			WithPorts(
				coreac.ContainerPort().WithName("http").WithContainerPort(8080),
				coreac.ContainerPort().WithName("https").WithContainerPort(8443),
				coreac.ContainerPort().WithName("admin").WithContainerPort(9090),
			).
			WithEnv(coreac.EnvVar().WithName("POD_NAME").WithValueFrom(coreac.EnvVarSource().
				WithFieldRef(coreac.ObjectFieldSelector().WithFieldPath("metadata.name")))).
			WithReadinessProbe(coreac.Probe().WithHTTPGet(coreac.HTTPGetAction().WithPath("/readyz").WithPort(intstr.FromString("http"))).
				WithPeriodSeconds(5)).
			WithLivenessProbe(coreac.Probe().WithHTTPGet(coreac.HTTPGetAction().WithPath("/healthz").WithPort(intstr.FromString("http"))).
				WithPeriodSeconds(10).WithFailureThreshold(3)).
			WithResources(resourcesApply(res)).
			WithSecurityContext(coreac.SecurityContext().WithRunAsNonRoot(true).WithAllowPrivilegeEscalation(false).
				WithReadOnlyRootFilesystem(true))))
	if s.MetricsURL != "" {
		pod.Spec.WithVolumes(coreac.Volume().WithName("control-plane-token").WithProjected(coreac.ProjectedVolumeSource().
			WithSources(coreac.VolumeProjection().WithServiceAccountToken(coreac.ServiceAccountTokenProjection().
				WithAudience(s.TokenAudience).WithExpirationSeconds(3600).WithPath("token")))))
		pod.Spec.Containers[0].WithVolumeMounts(coreac.VolumeMount().WithName("control-plane-token").
			WithMountPath(ControlPlaneTokenDir).WithReadOnly(true))
	}
	if replicas > 1 {
		// Spread the replicas across nodes so one node's loss keeps serving.
		pod.Spec.WithTopologySpreadConstraints(coreac.TopologySpreadConstraint().
			WithMaxSkew(1).WithTopologyKey("kubernetes.io/hostname").
			WithWhenUnsatisfiable(corev1.ScheduleAnyway).
			WithLabelSelector(metaac.LabelSelector().WithMatchLabels(selector())))
		pod.Spec.WithAffinity(coreac.Affinity().WithPodAntiAffinity(coreac.PodAntiAffinity().
			WithPreferredDuringSchedulingIgnoredDuringExecution(coreac.WeightedPodAffinityTerm().WithWeight(100).
				WithPodAffinityTerm(coreac.PodAffinityTerm().WithTopologyKey("kubernetes.io/hostname").
					WithLabelSelector(metaac.LabelSelector().WithMatchLabels(selector()))))))
	}
	objs = append(objs, Object{Kind: KindDeployment, Name: FrontendName, Namespace: ns, Apply: appsac.Deployment(FrontendName, ns).
		WithLabels(fe).
		WithSpec(appsac.DeploymentSpec().
			WithReplicas(replicas).
			WithSelector(metaac.LabelSelector().WithMatchLabels(selector())).
			WithStrategy(appsac.DeploymentStrategy().WithType(appsv1.RollingUpdateDeploymentStrategyType).
				WithRollingUpdate(appsac.RollingUpdateDeployment().WithMaxUnavailable(intstr.FromInt32(0)).WithMaxSurge(intstr.FromInt32(1)))).
			WithTemplate(pod))})

	if replicas > 1 {
		objs = append(objs, Object{Kind: KindPodDisruptionBudget, Name: FrontendName, Namespace: ns,
			Apply: policyac.PodDisruptionBudget(FrontendName, ns).WithLabels(fe).WithSpec(policyac.PodDisruptionBudgetSpec().
				WithMaxUnavailable(intstr.FromInt32(1)).
				WithSelector(metaac.LabelSelector().WithMatchLabels(selector())))})
	}

	svc := coreac.Service(FrontendName, ns).WithLabels(fe).WithSpec(coreac.ServiceSpec().
		WithType(corev1.ServiceTypeLoadBalancer).
		WithSelector(selector()).
		WithPorts(
			coreac.ServicePort().WithName("http").WithPort(80).WithTargetPort(intstr.FromString("http")).WithProtocol(corev1.ProtocolTCP),
			coreac.ServicePort().WithName("https").WithPort(443).WithTargetPort(intstr.FromString("https")).WithProtocol(corev1.ProtocolTCP),
		))
	ann := map[string]string{}
	if s.LoadBalancerType == "InternalLoadBalancer" {
		ann[AzureInternal], ann[AWSInternal], ann[GCPInternal] = "true", "true", "Internal"
		if s.LoadBalancerSubnet != "" {
			ann[AzureInternalSubnet] = s.LoadBalancerSubnet
		}
	}
	if s.DNSLabel != "" && s.LoadBalancerType != "InternalLoadBalancer" {
		ann[AzureDNSLabel] = s.DNSLabel
	}
	// A provider's own annotations (AKS names its public IP) come last.
	maps.Copy(ann, s.ServiceAnnotations)
	if len(ann) > 0 {
		svc.WithAnnotations(ann)
	}
	objs = append(objs, Object{Kind: KindService, Name: FrontendName, Namespace: ns, Apply: svc})
	return objs
}

// TLSSecretObject is the front end's certificate and key (empty when TLS
// is disabled); the front end serves a new one on the next handshake.
func TLSSecretObject(s Settings) Object {
	return Object{Kind: KindSecret, Name: TLSSecret, Namespace: Namespace, Apply: coreac.Secret(TLSSecret, Namespace).WithLabels(s.frontendLabels()).
		WithType(corev1.SecretTypeOpaque).WithData(map[string][]byte{"cert.pem": []byte(s.CertPEM), "key.pem": []byte(s.KeyPEM)})}
}

// ACMEChallenges is the ConfigMap of pending HTTP-01 challenges (token →
// key authorization) that every front end replica answers on
// /.well-known/acme-challenge/<token>.
const ACMEChallenges = "berth-fe-acme"

// ManagerName is the name of an attachment's manager ServiceAccount,
// ClusterRole, binding and token Secret.
func ManagerName(s Settings) string {
	id := s.AttachmentID
	if len(id) > 12 {
		id = id[:12]
	}
	return ManagerPrefix + id
}

// managerRules are what Berth's own ServiceAccount may do: the kinds it
// installs and no more.
func managerRules() []*rbacac.PolicyRuleApplyConfiguration {
	all := []string{"get", "list", "watch", "create", "update", "patch", "delete"}
	return []*rbacac.PolicyRuleApplyConfiguration{
		rbacac.PolicyRule().WithAPIGroups("").WithResources("namespaces", "serviceaccounts", "configmaps", "secrets", "services", "events").WithVerbs(all...),
		rbacac.PolicyRule().WithAPIGroups("").WithResources("pods", "pods/log").WithVerbs("get", "list", "watch", "delete"),
		rbacac.PolicyRule().WithAPIGroups("").WithResources("nodes").WithVerbs("get", "list", "watch"),
		rbacac.PolicyRule().WithAPIGroups("apps").WithResources("deployments", "deployments/scale").WithVerbs(all...),
		rbacac.PolicyRule().WithAPIGroups("policy").WithResources("poddisruptionbudgets").WithVerbs(all...),
		rbacac.PolicyRule().WithAPIGroups("rbac.authorization.k8s.io").WithResources("clusterroles", "clusterrolebindings", "roles", "rolebindings").WithVerbs(all...),
		rbacac.PolicyRule().WithAPIGroups("coordination.k8s.io").WithResources("leases").WithVerbs(all...),
		rbacac.PolicyRule().WithAPIGroups("authorization.k8s.io").WithResources("selfsubjectaccessreviews").WithVerbs("create"),
		// Checking the tokens replicas present when they fetch their models.
		rbacac.PolicyRule().WithAPIGroups("authentication.k8s.io").WithResources("tokenreviews").WithVerbs("create"),
	}
}

// ManagerRole is the ClusterRole of an attachment's manager. Its uid is
// needed for the owner references of the rest, so it is applied first
// (ManagerRole) and the rest after (ManagerDependents).
func ManagerRole(s Settings) Object {
	name := ManagerName(s)
	return Object{Kind: KindClusterRole, Name: name, Apply: rbacac.ClusterRole(name).WithLabels(s.labels(ComponentManager)).WithRules(managerRules()...)}
}

// DisplacedManagerRole cuts a displaced attachment's manager down to
// reading the marker, so that compute can see it was displaced (and say
// so) but can no longer change the cluster.
func DisplacedManagerRole(name string, labels map[string]string) Object {
	return Object{Kind: KindClusterRole, Name: name, Apply: rbacac.ClusterRole(name).WithLabels(labels).WithRules(
		rbacac.PolicyRule().WithAPIGroups("").WithResources("namespaces").WithResourceNames(Namespace).WithVerbs("get"),
		rbacac.PolicyRule().WithAPIGroups("authorization.k8s.io").WithResources("selfsubjectaccessreviews").WithVerbs("create"),
	)}
}

// ManagerTokenSecret is the name of the manager's token Secret.
func ManagerTokenSecret(s Settings) string { return ManagerName(s) + "-token" }

// ManagerDependents are the manager's ServiceAccount, binding and token
// Secret, owned by the manager ClusterRole (uid).
func ManagerDependents(s Settings, roleUID string) []Object {
	l := s.labels(ComponentManager)
	name := ManagerName(s)
	owner := metaac.OwnerReference().WithAPIVersion("rbac.authorization.k8s.io/v1").WithKind("ClusterRole").
		WithName(name).WithUID(types.UID(roleUID))
	return []Object{
		{Kind: KindServiceAccount, Name: name, Namespace: ManagerNamespace,
			Apply: coreac.ServiceAccount(name, ManagerNamespace).WithLabels(l).WithOwnerReferences(owner)},
		{Kind: KindClusterRoleBinding, Name: name, Apply: rbacac.ClusterRoleBinding(name).WithLabels(l).WithOwnerReferences(owner).
			WithRoleRef(rbacac.RoleRef().WithAPIGroup("rbac.authorization.k8s.io").WithKind("ClusterRole").WithName(name)).
			WithSubjects(rbacac.Subject().WithKind("ServiceAccount").WithName(name).WithNamespace(ManagerNamespace))},
		{Kind: KindSecret, Name: ManagerTokenSecret(s), Namespace: ManagerNamespace, Apply: coreac.Secret(ManagerTokenSecret(s), ManagerNamespace).
			WithLabels(l).WithOwnerReferences(owner).WithType(corev1.SecretTypeServiceAccountToken).
			WithAnnotations(map[string]string{corev1.ServiceAccountNameKey: name})},
	}
}
