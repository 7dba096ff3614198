package installer

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/berth-ml/berth/internal/kubeconn"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// Installer applies, checks and removes Berth's objects in one cluster.
type Installer struct {
	Cluster *kubeconn.Cluster
	// Progress receives one line per notable thing done (operation events).
	Progress func(format string, args ...any)
	// Poll is the interval of readiness and removal checks (default 250ms).
	Poll time.Duration
}

func (in *Installer) progress(format string, args ...any) {
	if in.Progress != nil {
		in.Progress(format, args...)
	}
}

func (in *Installer) poll() time.Duration { return cmp.Or(in.Poll, 250*time.Millisecond) }

func (in *Installer) resource(k Kind, ns string) dynamic.ResourceInterface {
	r := in.Cluster.Dynamic.Resource(k.GVR)
	if k.Namespaced {
		return r.Namespace(ns)
	}
	return r
}

// unstructuredOf turns an apply configuration into the object to apply.
func unstructuredOf(o Object) (*unstructured.Unstructured, error) {
	b, err := json.Marshal(o.Apply)
	if err != nil {
		return nil, err
	}
	m := map[string]any{}
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	u := &unstructured.Unstructured{Object: m}
	u.SetAPIVersion(o.Kind.APIVersion)
	u.SetKind(o.Kind.Kind)
	return u, nil
}

// Apply server-side-applies objects in order (force: Berth's field manager
// owns what it sets). With dryRun nothing changes and the results show what
// would be.
func (in *Installer) Apply(ctx context.Context, objs []Object, dryRun bool) ([]*unstructured.Unstructured, error) {
	out := make([]*unstructured.Unstructured, 0, len(objs))
	for _, o := range objs {
		u, err := unstructuredOf(o)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", o, err)
		}
		opts := metav1.ApplyOptions{FieldManager: FieldManager, Force: true}
		if dryRun {
			opts.DryRun = []string{metav1.DryRunAll}
		}
		res, err := in.resource(o.Kind, o.Namespace).Apply(ctx, o.Name, u, opts)
		if err != nil {
			return nil, fmt.Errorf("apply %s: %w", o, in.Cluster.Explain(err))
		}
		out = append(out, res)
	}
	return out, nil
}

// LiveResources returns the front end container's resources as the
// cluster has them, so a re-apply keeps what users tuned.
func (in *Installer) LiveResources(ctx context.Context) (*corev1.ResourceRequirements, error) {
	d, err := in.Cluster.Client.AppsV1().Deployments(Namespace).Get(ctx, FrontendName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, in.Cluster.Explain(err)
	}
	for _, c := range d.Spec.Template.Spec.Containers {
		if c.Name == FrontendName {
			return c.Resources.DeepCopy(), nil
		}
	}
	return nil, nil
}

// Drift compares each object as it is in the cluster with what applying it
// would make, and describes every difference (a missing object, a changed
// field). Nothing changes.
func (in *Installer) Drift(ctx context.Context, objs []Object) ([]string, error) {
	var out []string
	want, err := in.Apply(ctx, objs, true)
	if err != nil {
		return nil, err
	}
	for i, o := range objs {
		live, err := in.resource(o.Kind, o.Namespace).Get(ctx, o.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			out = append(out, fmt.Sprintf("%s was missing", o))
			continue
		}
		if err != nil {
			return nil, in.Cluster.Explain(err)
		}
		l, w := normalize(live.Object), normalize(want[i].Object)
		if o.Kind.Kind == "Secret" {
			// Never print key material into events: compare values, name the keys.
			for _, field := range []string{"data", "stringData"} {
				lv, _ := l[field].(map[string]any)
				wv, _ := w[field].(map[string]any)
				for _, k := range unionKeys(lv, wv) {
					if !reflect.DeepEqual(lv[k], wv[k]) {
						out = append(out, fmt.Sprintf("%s: %s.%s changed (a secret value: not shown)", o, field, k))
					}
				}
				delete(l, field)
				delete(w, field)
			}
		}
		for _, d := range diff("", l, w) {
			out = append(out, fmt.Sprintf("%s: %s", o, d))
		}
	}
	return out, nil
}

// unionKeys is the keys of a and b, sorted.
func unionKeys(a, b map[string]any) []string {
	keys := slices.Collect(maps.Keys(a))
	for k := range b {
		if _, ok := a[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys
}

// normalize drops what the server owns (status, bookkeeping metadata) from
// obj, which it changes.
func normalize(obj map[string]any) map[string]any {
	delete(obj, "status")
	if md, ok := obj["metadata"].(map[string]any); ok {
		for _, k := range []string{"managedFields", "resourceVersion", "generation", "uid", "creationTimestamp"} {
			delete(md, k)
		}
		if ann, ok := md["annotations"].(map[string]any); ok {
			delete(ann, "deployment.kubernetes.io/revision")
			if len(ann) == 0 {
				delete(md, "annotations")
			}
		}
	}
	return obj
}

// diff lists the paths where live and want differ, as "path: live → want".
func diff(path string, live, want any) []string {
	switch w := want.(type) {
	case map[string]any:
		l, ok := live.(map[string]any)
		if !ok {
			return []string{fmt.Sprintf("%s changed", strings.TrimPrefix(path, "."))}
		}
		var out []string
		for _, k := range unionKeys(l, w) {
			out = append(out, diff(path+"."+k, l[k], w[k])...)
		}
		return out
	case []any:
		l, ok := live.([]any)
		if !ok || len(l) != len(w) {
			return []string{fmt.Sprintf("%s changed", strings.TrimPrefix(path, "."))}
		}
		var out []string
		for i := range w {
			out = append(out, diff(fmt.Sprintf("%s[%d]", path, i), l[i], w[i])...)
		}
		return out
	}
	if reflect.DeepEqual(live, want) {
		return nil
	}
	p := strings.TrimPrefix(path, ".")
	switch {
	case live == nil:
		return []string{fmt.Sprintf("%s was removed (restoring %v)", p, want)}
	case want == nil:
		return []string{fmt.Sprintf("%s was added (%v; removing it)", p, live)}
	}
	return []string{fmt.Sprintf("%s was %v (restoring %v)", p, live, want)}
}

// Readiness is what WaitReady saw last.
type Readiness struct {
	Available, Wanted int32
	Address           string
}

// WaitReady waits until the front end Deployment is Available with all its
// replicas updated and its Service has an address; with notAddress set, the
// address must differ from it (a load balancer being switched). It reports
// progress as it changes.
func (in *Installer) WaitReady(ctx context.Context, notAddress string) (Readiness, error) {
	var last, r Readiness
	t := time.NewTicker(in.poll())
	defer t.Stop()
	for {
		d, err := in.Cluster.Client.AppsV1().Deployments(Namespace).Get(ctx, FrontendName, metav1.GetOptions{})
		if err != nil {
			return r, in.Cluster.Explain(err)
		}
		svc, err := in.Cluster.Client.CoreV1().Services(Namespace).Get(ctx, FrontendName, metav1.GetOptions{})
		if err != nil {
			return r, in.Cluster.Explain(err)
		}
		r = Readiness{Available: d.Status.AvailableReplicas, Address: ServiceAddress(svc)}
		if d.Spec.Replicas != nil {
			r.Wanted = *d.Spec.Replicas
		}
		if r != last {
			addr := r.Address
			if addr == "" || addr == notAddress {
				addr = "pending"
			}
			in.progress("Front end: %d/%d replicas available; load balancer address %s", r.Available, r.Wanted, addr)
			last = r
		}
		if deploymentReady(d) && r.Address != "" && r.Address != notAddress {
			return r, nil
		}
		select {
		case <-ctx.Done():
			return r, fmt.Errorf("the front end did not become ready (%d/%d replicas available, address %q): %w", r.Available, r.Wanted, r.Address, ctx.Err())
		case <-t.C:
		}
	}
}

func deploymentReady(d *appsv1.Deployment) bool {
	if d.Status.ObservedGeneration < d.Generation || d.Spec.Replicas == nil {
		return false
	}
	want := *d.Spec.Replicas
	if d.Status.UpdatedReplicas < want || d.Status.AvailableReplicas < want || d.Status.Replicas > want {
		return false
	}
	for _, c := range d.Status.Conditions {
		if c.Type == appsv1.DeploymentAvailable {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// ServiceAddress is a LoadBalancer Service's first ingress address.
func ServiceAddress(svc *corev1.Service) string {
	for _, ing := range svc.Status.LoadBalancer.Ingress {
		if addr := cmp.Or(ing.Hostname, ing.IP); addr != "" {
			return addr
		}
	}
	return ""
}

// Marker is who owns a cluster, as its berth-system namespace records it.
type Marker struct {
	Workspace, Compute, AttachmentID string
	// Foreign means berth-system exists but is not Berth's.
	Foreign bool
	// Terminating means a detach is removing it.
	Terminating bool
}

// Owner describes the marker's owner for messages.
func (m *Marker) Owner() string {
	return fmt.Sprintf("compute %q of workspace %q (attachment %s)", m.Compute, m.Workspace, m.AttachmentID)
}

// ReadMarker returns the cluster's attachment marker, or nil if it has none.
func (in *Installer) ReadMarker(ctx context.Context) (*Marker, error) {
	ns, err := in.Cluster.Client.CoreV1().Namespaces().Get(ctx, Namespace, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, in.Cluster.Explain(err)
	}
	return markerOf(ns), nil
}

func markerOf(ns *corev1.Namespace) *Marker {
	a := ns.Annotations
	m := &Marker{Workspace: a[AnnotationWorkspace], Compute: a[AnnotationCompute], AttachmentID: a[AnnotationAttachment],
		Terminating: ns.DeletionTimestamp != nil}
	m.Foreign = m.AttachmentID == "" || ns.Labels[LabelManagedBy] != "berth"
	return m
}

// AttachedError says the cluster belongs to another compute.
type AttachedError struct{ Owner *Marker }

func (e *AttachedError) Error() string {
	return fmt.Sprintf("this cluster is already attached to %s; detach it there first, or take it over with --force (that compute becomes Displaced)", e.Owner.Owner())
}

// ErrMarkerBusy means berth-system is being deleted; try again shortly.
var ErrMarkerBusy = errors.New("the namespace berth-system is being deleted by a detach; trying again")

// ClaimMarker makes this attachment the cluster's owner by creating the
// berth-system namespace with the marker annotations: creation is atomic, so
// of two concurrent attaches exactly one wins. With force an existing
// owner is replaced (optimistically, so two forces cannot both win); the
// previous owner is returned.
func (in *Installer) ClaimMarker(ctx context.Context, s Settings, force bool) (previous *Marker, err error) {
	nsClient := in.Cluster.Client.CoreV1().Namespaces()
	for attempt := 0; attempt < 5; attempt++ {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: Namespace, Labels: s.labels(ComponentFrontend), Annotations: MarkerAnnotations(s)}}
		_, err := nsClient.Create(ctx, ns, metav1.CreateOptions{FieldManager: FieldManager})
		if err == nil {
			return nil, nil
		}
		if !apierrors.IsAlreadyExists(err) {
			return nil, in.Cluster.Explain(err)
		}
		cur, err := nsClient.Get(ctx, Namespace, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return nil, in.Cluster.Explain(err)
		}
		m := markerOf(cur)
		switch {
		case m.AttachmentID == s.AttachmentID:
			return nil, nil // ours already (a resumed attach)
		case m.Terminating:
			return nil, ErrMarkerBusy
		case m.Foreign:
			return nil, fmt.Errorf("the namespace %s exists and was not made by Berth; remove or rename it before attaching", Namespace)
		case !force:
			return nil, &AttachedError{Owner: m}
		}
		if cur.Annotations == nil {
			cur.Annotations = map[string]string{}
		}
		maps.Copy(cur.Annotations, MarkerAnnotations(s))
		cur.Labels[LabelAttachment] = s.AttachmentID
		if _, err := nsClient.Update(ctx, cur, metav1.UpdateOptions{FieldManager: FieldManager}); apierrors.IsConflict(err) {
			continue
		} else if err != nil {
			return nil, in.Cluster.Explain(err)
		}
		return m, nil
	}
	return nil, errors.New("the attachment marker kept changing while claiming it; another attach is racing this one")
}

// EnsureManager makes Berth's own ServiceAccount with just the RBAC it
// needs and returns a kubeconfig for its token, to store instead of the
// user's credentials.
func (in *Installer) EnsureManager(ctx context.Context, s Settings) ([]byte, error) {
	res, err := in.Apply(ctx, []Object{ManagerRole(s)}, false)
	if err != nil {
		return nil, err
	}
	if _, err := in.Apply(ctx, ManagerDependents(s, string(res[0].GetUID())), false); err != nil {
		return nil, err
	}
	secrets := in.Cluster.Client.CoreV1().Secrets(ManagerNamespace)
	t := time.NewTicker(in.poll())
	defer t.Stop()
	for {
		sec, err := secrets.Get(ctx, ManagerTokenSecret(s), metav1.GetOptions{})
		if err != nil {
			return nil, in.Cluster.Explain(err)
		}
		if tok := sec.Data[corev1.ServiceAccountTokenKey]; len(tok) > 0 {
			return in.tokenKubeconfig(ManagerName(s), string(tok))
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("the cluster did not issue a token for ServiceAccount %s/%s: %w", ManagerNamespace, ManagerName(s), ctx.Err())
		case <-t.C:
		}
	}
}

func (in *Installer) tokenKubeconfig(user, token string) ([]byte, error) {
	rc := in.Cluster.Config
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["cluster"] = &clientcmdapi.Cluster{Server: rc.Host, CertificateAuthorityData: rc.TLSClientConfig.CAData,
		InsecureSkipTLSVerify: rc.TLSClientConfig.Insecure, TLSServerName: rc.TLSClientConfig.ServerName}
	cfg.AuthInfos[user] = &clientcmdapi.AuthInfo{Token: token}
	cfg.Contexts["berth"] = &clientcmdapi.Context{Cluster: "cluster", AuthInfo: user}
	cfg.CurrentContext = "berth"
	return clientcmd.Write(*cfg)
}

// Remove deletes every object Berth installed (selected by label; keep
// excludes some) and waits until they and their pods are gone. Namespaces
// go last, once their content is gone: the namespace controller then
// finalizes them at once instead of waiting out the pods' grace period.
func (in *Installer) Remove(ctx context.Context, selector string, keep func(*unstructured.Unstructured) bool) error {
	if err := in.deleteKinds(ctx, RemovalOrder, selector, keep); err != nil {
		return err
	}
	notNamespace := func(u *unstructured.Unstructured) bool {
		return u.GetKind() == KindNamespace.Kind || (keep != nil && keep(u))
	}
	if err := in.waitGone(ctx, selector, notNamespace); err != nil {
		return err
	}
	if err := in.deleteKinds(ctx, []Kind{KindNamespace}, selector, keep); err != nil {
		return err
	}
	return in.waitGone(ctx, selector, keep)
}

func (in *Installer) deleteKinds(ctx context.Context, kinds []Kind, selector string, keep func(*unstructured.Unstructured) bool) error {
	bg := metav1.DeletePropagationBackground
	for _, k := range kinds {
		list, err := in.Cluster.Dynamic.Resource(k.GVR).List(ctx, metav1.ListOptions{LabelSelector: selector})
		if err != nil {
			return fmt.Errorf("list %ss: %w", k.Kind, in.Cluster.Explain(err))
		}
		for i := range list.Items {
			u := &list.Items[i]
			u.SetKind(k.Kind)
			if keep != nil && keep(u) {
				continue
			}
			if u.GetDeletionTimestamp() != nil {
				continue
			}
			err := in.resource(k, u.GetNamespace()).Delete(ctx, u.GetName(), metav1.DeleteOptions{PropagationPolicy: &bg})
			if err != nil && !apierrors.IsNotFound(err) {
				return fmt.Errorf("delete %s %s: %w", k.Kind, nameOf(u), in.Cluster.Explain(err))
			}
			in.progress("Deleted %s %s", k.Kind, nameOf(u))
		}
	}
	return nil
}

func nameOf(u *unstructured.Unstructured) string {
	if u.GetNamespace() != "" {
		return u.GetNamespace() + "/" + u.GetName()
	}
	return u.GetName()
}

// Remaining lists Berth's objects (and their pods) still in the cluster.
func (in *Installer) Remaining(ctx context.Context, selector string, keep func(*unstructured.Unstructured) bool) ([]string, error) {
	var left []string
	for _, k := range append(append([]Kind{KindPod}, RemovalOrder...), KindNamespace) {
		list, err := in.Cluster.Dynamic.Resource(k.GVR).List(ctx, metav1.ListOptions{LabelSelector: selector})
		if err != nil {
			return nil, in.Cluster.Explain(err)
		}
		for i := range list.Items {
			list.Items[i].SetKind(k.Kind)
			if keep != nil && keep(&list.Items[i]) {
				continue
			}
			left = append(left, k.Kind+" "+nameOf(&list.Items[i]))
		}
	}
	return left, nil
}

func (in *Installer) waitGone(ctx context.Context, selector string, keep func(*unstructured.Unstructured) bool) error {
	t := time.NewTicker(in.poll())
	defer t.Stop()
	lastN := -1
	for {
		left, err := in.Remaining(ctx, selector, keep)
		if err != nil {
			return err
		}
		if len(left) == 0 {
			return nil
		}
		if len(left) != lastN {
			in.progress("Waiting for %d object(s) to be gone: %s", len(left), strings.Join(first(left, 5), ", "))
			lastN = len(left)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("still in the cluster: %s: %w", strings.Join(first(left, 10), ", "), ctx.Err())
		case <-t.C:
		}
	}
}

func first(s []string, n int) []string {
	if len(s) > n {
		return append(s[:n:n], fmt.Sprintf("and %d more", len(s)-n))
	}
	return s
}
