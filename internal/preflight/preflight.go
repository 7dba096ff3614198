// Package preflight checks a cluster before Berth changes anything in it:
// reachable and authenticated, permitted to install, a supported Kubernetes
// version, enough capacity for the cluster's purpose, and not attached
// elsewhere. Every check runs and every failure is reported together.
package preflight

import (
	"context"
	"errors"
	"fmt"
	"regexp"
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
	rep.Passed = true
	for _, c := range rep.Checks {
		if c.Status == api.CheckFailed {
			rep.Passed = false
		}
	}
	return rep, facts
}

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
		return failed(CheckConnection, "ClusterUnreachable", in.Cluster.Explain(err).Error())
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

// Capacity counts Ready, schedulable nodes and their allocatable vCPUs.
func Capacity(ctx context.Context, c *kubeconn.Cluster) (nodes int, cpus float64, notReady, unschedulable int, err error) {
	list, err := c.Client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return 0, 0, 0, 0, c.Explain(err)
	}
	for i := range list.Items {
		n := &list.Items[i]
		ready, sched := nodeUsable(n)
		switch {
		case !ready:
			notReady++
		case !sched:
			unschedulable++
		default:
			nodes++
			cpus += float64(n.Status.Allocatable.Cpu().MilliValue()) / 1000
		}
	}
	return nodes, cpus, notReady, unschedulable, nil
}

func capacity(ctx context.Context, in Input, facts *Facts) api.Check {
	nodes, cpus, notReady, unsched, err := Capacity(ctx, in.Cluster)
	if err != nil {
		return failed(CheckCapacity, "CapacityCheckFailed", "cannot list nodes: "+err.Error())
	}
	facts.Nodes, facts.AllocatableCPU = nodes, cpus
	var excluded string
	if notReady+unsched > 0 {
		excluded = fmt.Sprintf(" (not counted: %d not Ready, %d not schedulable)", notReady, unsched)
	}
	have := fmt.Sprintf("%s vCPUs on %d Ready, schedulable node(s)%s", formatCPU(cpus), nodes, excluded)
	var problems []api.ErrorDetail
	switch in.Purpose {
	case api.PurposeDevTest:
		if cpus < DevTestMinCPUs {
			problems = append(problems, api.ErrorDetail{Code: "InsufficientCPU", Target: CheckCapacity,
				Message: fmt.Sprintf("a DevTest cluster needs at least %d vCPUs; the cluster has %s", DevTestMinCPUs, have)})
		}
	default:
		if cpus < FastProdMinCPUs {
			problems = append(problems, api.ErrorDetail{Code: "InsufficientCPU", Target: CheckCapacity,
				Message: fmt.Sprintf("a FastProd cluster needs at least %d vCPUs; the cluster has %s (use --cluster-purpose DevTest for a smaller cluster)", FastProdMinCPUs, have)})
		}
		if nodes < FastProdMinNodes {
			problems = append(problems, api.ErrorDetail{Code: "InsufficientNodes", Target: CheckCapacity,
				Message: fmt.Sprintf("a FastProd cluster needs at least %d Ready, schedulable nodes to spread its front end; the cluster has %d%s", FastProdMinNodes, nodes, excluded)})
		}
	}
	if len(problems) > 0 {
		return failed(CheckCapacity, "InsufficientCapacity", fmt.Sprintf("not enough capacity for %s: %s", in.Purpose, have), problems...)
	}
	return api.Check{Name: CheckCapacity, Status: api.CheckPassed, Message: fmt.Sprintf("%s is enough for %s", have, in.Purpose)}
}

func formatCPU(c float64) string { return strconv.FormatFloat(c, 'f', -1, 64) }

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

// IsUnreachable reports whether err means the cluster could not be reached.
func IsUnreachable(err error) bool { return errors.Is(err, kubeconn.ErrUnreachable) }
