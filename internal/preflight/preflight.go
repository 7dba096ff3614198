// Package preflight checks a cluster before Berth changes anything in it:
// reachable and authenticated, permitted to install, a supported Kubernetes
// version, enough capacity for the cluster's purpose, and not attached
// elsewhere. Every check runs and every failure is reported together.
package preflight

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/berth-ml/berth/api"
	"github.com/berth-ml/berth/internal/installer"
	"github.com/berth-ml/berth/internal/kubeconn"
	authzv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Check names.
const (
	CheckConnection  = "connection"
	CheckPermissions = "permissions"
	CheckVersion     = "kubernetesVersion"
	CheckCapacity    = "capacity"
	CheckAttachment  = "attachment"
)

// Capacity minimums by purpose (REFERENCE.md).
const (
	FastProdMinCPUs  = 12
	FastProdMinNodes = 3
	DevTestMinCPUs   = 2
)

// VersionRange is the supported Kubernetes minor versions (major 1).
type VersionRange struct{ MinMinor, MaxMinor int }

// DefaultVersions is the range Berth supports out of the box.
var DefaultVersions = VersionRange{MinMinor: 33, MaxMinor: 37}

func (r VersionRange) String() string { return fmt.Sprintf("1.%d - 1.%d", r.MinMinor, r.MaxMinor) }

// ParseVersionRange reads "1.33-1.37".
func ParseVersionRange(s string) (VersionRange, error) {
	lo, hi, ok := strings.Cut(strings.ReplaceAll(s, " ", ""), "-")
	if !ok {
		return VersionRange{}, fmt.Errorf("version range %q: write it as 1.MIN-1.MAX, like 1.33-1.37", s)
	}
	a, err1 := minorOf(lo)
	b, err2 := minorOf(hi)
	if err1 != nil || err2 != nil || a > b {
		return VersionRange{}, fmt.Errorf("version range %q: write it as 1.MIN-1.MAX with MIN ≤ MAX, like 1.33-1.37", s)
	}
	return VersionRange{MinMinor: a, MaxMinor: b}, nil
}

var versionRe = regexp.MustCompile(`^v?(\d+)\.(\d+)`)

func minorOf(v string) (int, error) {
	m := versionRe.FindStringSubmatch(v)
	if m == nil || m[1] != "1" {
		return 0, fmt.Errorf("not a Kubernetes 1.x version: %q", v)
	}
	return strconv.Atoi(m[2])
}

// Contains reports whether a version like v1.37.2 is in the range.
func (r VersionRange) Contains(version string) bool {
	minor, err := minorOf(version)
	return err == nil && minor >= r.MinMinor && minor <= r.MaxMinor
}

// Input is what preflight checks.
type Input struct {
	Cluster      *kubeconn.Cluster
	Purpose      string
	Versions     VersionRange
	AttachmentID string
	Force        bool
	// Scoped means Berth will make its own ServiceAccount, which needs
	// permissions in kube-system too.
	Scoped bool
	// VMSizes, when set, counts each node's VM size's vCPUs (AKS) rather
	// than its capacity.
	VMSizes *VMSizes
	// Unreachable, when set, says why the cluster may not answer from here
	// (an AKS private cluster); a failed connection check adds it.
	Unreachable string
}

// Facts are what preflight learned about the cluster.
type Facts struct {
	Version        string
	Nodes          int
	AllocatableCPU float64
	Marker         *installer.Marker
}

// Run runs every check and returns the report and the facts learned.
func Run(ctx context.Context, in Input) (api.PreflightReport, Facts) {
	var (
		rep   api.PreflightReport
		facts Facts
	)
	add := func(c api.Check) { rep.Checks = append(rep.Checks, c) }
	conn := connection(ctx, in, &facts)
	add(conn)
	if conn.Status != api.CheckPassed {
		for _, name := range []string{CheckPermissions, CheckVersion, CheckCapacity, CheckAttachment} {
			add(api.Check{Name: name, Status: api.CheckSkipped, Message: "not checked: the cluster cannot be reached"})
		}
		return rep, facts
	}
	add(permissions(ctx, in))
	add(version(in, facts.Version))
	add(capacity(ctx, in, &facts))
	add(attachment(ctx, in, &facts))
	rep.Passed = !slices.ContainsFunc(rep.Checks, func(c api.Check) bool { return c.Status == api.CheckFailed })
	return rep, facts
}

// Marks are the signs a check's status is printed with.
var Marks = map[string]string{api.CheckPassed: "✓", api.CheckFailed: "✗", api.CheckSkipped: "-"}

// Failures turns a failed report into the details of an error, one per problem.
func Failures(rep api.PreflightReport) []api.ErrorDetail {
	var out []api.ErrorDetail
	for _, c := range rep.Checks {
		if c.Status != api.CheckFailed {
			continue
		}
		if len(c.Details) > 0 {
			out = append(out, c.Details...)
			continue
		}
		out = append(out, api.ErrorDetail{Code: "Preflight" + strings.ToUpper(c.Name[:1]) + c.Name[1:], Target: c.Name, Message: c.Message})
	}
	return out
}

func failed(name, code, msg string, details ...api.ErrorDetail) api.Check {
	if len(details) == 0 {
		details = []api.ErrorDetail{{Code: code, Target: name, Message: msg}}
	}
	return api.Check{Name: name, Status: api.CheckFailed, Message: msg, Details: details}
}

// connection checks the API server answers and accepts the credentials
// (the version endpoint alone is public, so an access review is asked too).
func connection(ctx context.Context, in Input, facts *Facts) api.Check {
	v, err := in.Cluster.Client.Discovery().ServerVersion()
	if err != nil {
		msg := in.Cluster.Explain(err).Error()
		if in.Unreachable != "" {
			msg += ": " + in.Unreachable
		}
		return failed(CheckConnection, "ClusterUnreachable", msg)
	}
	facts.Version = v.GitVersion
	_, err = in.Cluster.Client.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, &authzv1.SelfSubjectAccessReview{
		Spec: authzv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &authzv1.ResourceAttributes{Verb: "list", Resource: "nodes"}}}, metav1.CreateOptions{})
	if err != nil {
		return failed(CheckConnection, "ClusterAuthenticationFailed", in.Cluster.Explain(err).Error())
	}
	return api.Check{Name: CheckConnection, Status: api.CheckPassed, Message: fmt.Sprintf("reached %s (Kubernetes %s) and signed in", in.Cluster.Server, v.GitVersion)}
}

type permission struct {
	verbs     []string
	group     string
	resources []string
	namespace string
}

// required lists what installing (and later removing) Berth needs.
func required(scoped bool) []permission {
	write := []string{"get", "list", "create", "patch", "update", "delete"}
	ps := []permission{
		{write, "", []string{"namespaces"}, ""},
		{[]string{"list"}, "", []string{"nodes"}, ""},
		{[]string{"list"}, "", []string{"pods"}, ""},
		{write, "", []string{"serviceaccounts", "configmaps", "secrets", "services"}, installer.Namespace},
		{write, "apps", []string{"deployments"}, installer.Namespace},
		{write, "policy", []string{"poddisruptionbudgets"}, installer.Namespace},
		{write, "rbac.authorization.k8s.io", []string{"roles", "rolebindings"}, installer.Namespace},
		{write, "rbac.authorization.k8s.io", []string{"clusterroles", "clusterrolebindings"}, ""},
	}
	if scoped {
		ps = append(ps, permission{write, "", []string{"serviceaccounts", "secrets"}, installer.ManagerNamespace})
	}
	return ps
}

func permissions(ctx context.Context, in Input) api.Check {
	var missing []api.ErrorDetail
	ssar := in.Cluster.Client.AuthorizationV1().SelfSubjectAccessReviews()
	for _, p := range required(in.Scoped) {
		for _, res := range p.resources {
			var denied []string
			for _, verb := range p.verbs {
				r, err := ssar.Create(ctx, &authzv1.SelfSubjectAccessReview{Spec: authzv1.SelfSubjectAccessReviewSpec{
					ResourceAttributes: &authzv1.ResourceAttributes{Verb: verb, Group: p.group, Resource: res, Namespace: p.namespace}}}, metav1.CreateOptions{})
				if err != nil {
					return failed(CheckPermissions, "PermissionCheckFailed", "cannot check permissions: "+in.Cluster.Explain(err).Error())
				}
				if !r.Status.Allowed {
					denied = append(denied, verb)
				}
			}
			if len(denied) > 0 {
				what := res
				if p.group != "" {
					what += "." + p.group
				}
				where := "cluster-wide"
				if p.namespace != "" {
					where = "in namespace " + p.namespace
				}
				missing = append(missing, api.ErrorDetail{Code: "MissingPermission", Target: CheckPermissions,
					Message: fmt.Sprintf("the credentials may not %s %s %s", strings.Join(denied, ", "), what, where)})
			}
		}
	}
	if len(missing) > 0 {
		return failed(CheckPermissions, "MissingPermission",
			fmt.Sprintf("the credentials lack %d permission(s) the install needs (cluster-admin has them all)", len(missing)), missing...)
	}
	return api.Check{Name: CheckPermissions, Status: api.CheckPassed, Message: "the credentials may install and remove everything Berth needs"}
}

func version(in Input, v string) api.Check {
	if !in.Versions.Contains(v) {
		return failed(CheckVersion, "UnsupportedKubernetesVersion",
			fmt.Sprintf("Kubernetes version %s is not supported: supported versions are between %s", v, in.Versions))
	}
	return api.Check{Name: CheckVersion, Status: api.CheckPassed, Message: fmt.Sprintf("Kubernetes %s is within the supported range %s", v, in.Versions)}
}

func nodeUsable(n *corev1.Node) (ready, schedulable bool) {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
			ready = true
		}
	}
	schedulable = !n.Spec.Unschedulable
	for _, t := range n.Spec.Taints {
		if t.Effect == corev1.TaintEffectNoSchedule || t.Effect == corev1.TaintEffectNoExecute {
			schedulable = false
		}
	}
	return ready, schedulable
}

// VMSizes is the capacity rule of clusters whose nodes are cloud VMs of
// known sizes (AKS): a node counts the vCPUs of its VM size, as the
// reference states its rule, whatever the kubelet reserves of them.
type VMSizes struct {
	// Default is the VM size of nodes that do not name theirs in the
	// node.kubernetes.io/instance-type label (the cluster's agent pool's).
	Default string
	// CPUs are the vCPUs of VM sizes by lowercase name (Azure's resource SKUs).
	CPUs map[string]int
}

// InstanceTypeLabel names a node's VM size on cloud clusters.
const InstanceTypeLabel = "node.kubernetes.io/instance-type"

// cpus is what a node counts under the rule, and the VM size it counted
// ("" for the node's capacity: other clusters, or a size not known).
func (v *VMSizes) cpus(n *corev1.Node) (float64, string) {
	if v != nil {
		size := cmp.Or(n.Labels[InstanceTypeLabel], v.Default)
		if c, ok := v.CPUs[strings.ToLower(size)]; ok {
			return float64(c), size
		}
	}
	return float64(n.Status.Capacity.Cpu().MilliValue()) / 1000, ""
}

// Count is a cluster's capacity under the one production rule: the vCPUs
// of Ready, schedulable nodes (VM sizes' vCPUs on AKS, node capacity
// elsewhere), with the allocatable vCPUs the kubelets leave beside them.
type Count struct {
	Nodes                   int
	CPUs, Allocatable       float64
	NotReady, Unschedulable int
	// Sizes are the VM sizes counted, by node count (empty: node capacity).
	Sizes    map[string]int
	sizeCPUs map[string]float64
}

// Describe says what was counted: "12 vCPUs (3 × Standard_D3_v2 at 4
// vCPUs; 11.76 allocatable) on 3 Ready, schedulable node(s)".
func (c Count) Describe() string {
	basis := "node capacity"
	if len(c.Sizes) > 0 {
		var parts []string
		for size, n := range c.Sizes {
			parts = append(parts, fmt.Sprintf("%d × %s at %s", n, size, formatCPU(c.sizeCPUs[size])))
		}
		slices.Sort(parts)
		basis = strings.Join(parts, " + ")
	}
	return fmt.Sprintf("%s vCPUs (%s; %s allocatable) on %d Ready, schedulable node(s)%s", formatCPU(c.CPUs), basis, formatCPU(c.Allocatable), c.Nodes, c.excluded())
}

// excluded names the nodes not counted, if any.
func (c Count) excluded() string {
	if c.NotReady+c.Unschedulable == 0 {
		return ""
	}
	return fmt.Sprintf(" (not counted: %d not Ready, %d not schedulable)", c.NotReady, c.Unschedulable)
}

// Capacity counts Ready, schedulable nodes and their vCPUs under the rule
// of vms (nil: node capacity).
func Capacity(ctx context.Context, c *kubeconn.Cluster, vms *VMSizes) (Count, error) {
	var out Count
	list, err := c.Client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return out, c.Explain(err)
	}
	for i := range list.Items {
		n := &list.Items[i]
		ready, sched := nodeUsable(n)
		switch {
		case !ready:
			out.NotReady++
		case !sched:
			out.Unschedulable++
		default:
			out.Nodes++
			cpus, size := vms.cpus(n)
			out.CPUs += cpus
			out.Allocatable += float64(n.Status.Allocatable.Cpu().MilliValue()) / 1000
			if size != "" {
				if out.Sizes == nil {
					out.Sizes, out.sizeCPUs = map[string]int{}, map[string]float64{}
				}
				out.Sizes[size]++
				out.sizeCPUs[size] = cpus
			}
		}
	}
	return out, nil
}

func capacity(ctx context.Context, in Input, facts *Facts) api.Check {
	count, err := Capacity(ctx, in.Cluster, in.VMSizes)
	if err != nil {
		return failed(CheckCapacity, "CapacityCheckFailed", "cannot list nodes: "+err.Error())
	}
	facts.Nodes, facts.AllocatableCPU = count.Nodes, count.Allocatable
	have := count.Describe()
	var problems []api.ErrorDetail
	switch in.Purpose {
	case api.PurposeDevTest:
		if count.CPUs < DevTestMinCPUs {
			problems = append(problems, api.ErrorDetail{Code: "InsufficientCPU", Target: CheckCapacity,
				Message: fmt.Sprintf("a DevTest cluster needs at least %d vCPUs; the cluster has %s", DevTestMinCPUs, have)})
		}
	default:
		if count.CPUs < FastProdMinCPUs {
			problems = append(problems, api.ErrorDetail{Code: "InsufficientCPU", Target: CheckCapacity,
				Message: fmt.Sprintf("a FastProd cluster needs at least %d vCPUs; the cluster has %s (use --cluster-purpose DevTest for a smaller cluster)", FastProdMinCPUs, have)})
		}
		if count.Nodes < FastProdMinNodes {
			problems = append(problems, api.ErrorDetail{Code: "InsufficientNodes", Target: CheckCapacity,
				Message: fmt.Sprintf("a FastProd cluster needs at least %d Ready, schedulable nodes to spread its front end; the cluster has %d%s", FastProdMinNodes, count.Nodes, count.excluded())})
		}
	}
	if len(problems) > 0 {
		return failed(CheckCapacity, "InsufficientCapacity", fmt.Sprintf("not enough capacity for %s: %s", in.Purpose, have), problems...)
	}
	return api.Check{Name: CheckCapacity, Status: api.CheckPassed, Message: fmt.Sprintf("%s is enough for %s", have, in.Purpose)}
}

// formatCPU prints vCPUs to the millicore (sums of 3.92 add up to 11.76).
func formatCPU(c float64) string { return strconv.FormatFloat(math.Round(c*1000)/1000, 'f', -1, 64) }

func attachment(ctx context.Context, in Input, facts *Facts) api.Check {
	inst := &installer.Installer{Cluster: in.Cluster}
	m, err := inst.ReadMarker(ctx)
	if err != nil {
		return failed(CheckAttachment, "AttachmentCheckFailed", "cannot read the attachment marker: "+err.Error())
	}
	facts.Marker = m
	switch {
	case m == nil:
		return api.Check{Name: CheckAttachment, Status: api.CheckPassed, Message: "the cluster is not attached anywhere"}
	case m.AttachmentID == in.AttachmentID:
		return api.Check{Name: CheckAttachment, Status: api.CheckPassed, Message: "the cluster is attached to this compute already"}
	case m.Terminating:
		return api.Check{Name: CheckAttachment, Status: api.CheckPassed, Message: "a previous attachment is being removed; the attach waits for it"}
	case m.Foreign:
		return failed(CheckAttachment, "NamespaceInUse", fmt.Sprintf("the namespace %s exists and was not made by Berth; remove or rename it before attaching", installer.Namespace))
	case in.Force:
		return api.Check{Name: CheckAttachment, Status: api.CheckPassed, Message: fmt.Sprintf("attached to %s; --force takes it over (that compute becomes Displaced)", m.Owner())}
	}
	return failed(CheckAttachment, "ClusterAlreadyAttached", (&installer.AttachedError{Owner: m}).Error())
}
