package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-ml/berth/api"
	"github.com/berth-ml/berth/client"
	"github.com/berth-ml/berth/internal/installer"
	"github.com/berth-ml/berth/internal/testenv/simcluster"
	authv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// attachEnv is a berth server plus the CLI environment that reaches it.
type attachEnv struct {
	t      *testing.T
	srv    *serverProc
	env    []string
	client *client.Client
	dir    string
}

func newAttachEnv(t *testing.T, serverArgs ...string) *attachEnv {
	t.Helper()
	dir := t.TempDir()
	addr := freeAddr(t)
	// Pods (processes of this machine) fetch their models from the server.
	args := append([]string{"--reconcile-interval", "1h", "--ready-timeout", "90s", "--public-url", "http://" + addr}, serverArgs...)
	p := startServer(t, dir, addr, nil, args...)
	c, _ := client.New(p.url(), ownerToken(t, dir))
	if _, err := c.CreateWorkspace(context.Background(), api.WorkspaceCreateRequest{Name: "team"}); err != nil {
		t.Fatal(err)
	}
	return &attachEnv{t: t, srv: p, client: c, dir: dir,
		env: []string{"BERTH_SERVER=" + p.url(), "BERTH_DATA_DIR=" + dir, "BERTH_WORKSPACE=team"}}
}

func (e *attachEnv) berth(args ...string) result {
	e.t.Helper()
	return berth(e.t, e.env, args...)
}

func (e *attachEnv) mustBerth(args ...string) result {
	e.t.Helper()
	r := berth(e.t, e.env, args...)
	if r.code != 0 {
		e.t.Fatalf("berth %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r
}

func (e *attachEnv) show(name string) *api.Compute {
	e.t.Helper()
	c, err := e.client.GetCompute(context.Background(), "team", name)
	if err != nil {
		e.t.Fatalf("show %s: %v", name, err)
	}
	return c
}

// berthObjects lists every object Berth labelled in the cluster.
func berthObjects(t *testing.T, cl *simcluster.Cluster) []string {
	t.Helper()
	dyn, err := dynamic.NewForConfig(cl.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	kinds := append(append([]installer.Kind{installer.KindPod}, installer.RemovalOrder...), installer.KindNamespace)
	for _, k := range kinds {
		l, err := dyn.Resource(k.GVR).List(context.Background(), metav1.ListOptions{LabelSelector: installer.ManagedSelector})
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range l.Items {
			out = append(out, k.Kind+" "+u.GetNamespace()+"/"+u.GetName())
		}
	}
	return out
}

func waitNoBerthObjects(t *testing.T, cl *simcluster.Cluster) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		left := berthObjects(t, cl)
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("Berth objects left in the cluster: %v", left)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// kubeconfigWithToken writes a copy of the admin kubeconfig with another token.
func kubeconfigWithToken(t *testing.T, cl *simcluster.Cluster, token, server string) string {
	t.Helper()
	cfg, err := clientcmd.Load(cl.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	for _, ai := range cfg.AuthInfos {
		ai.Token = token
	}
	if server != "" {
		for _, c := range cfg.Clusters {
			c.Server = server
		}
	}
	path := filepath.Join(t.TempDir(), "other-kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestAttachLifecycle(t *testing.T) {
	t.Parallel()
	cl := simcluster.StartT(t, simcluster.Options{Nodes: simcluster.Nodes(3, "4")})
	e := newAttachEnv(t)
	kube := cl.Client()
	ctx := context.Background()

	t.Run("dry run passes and changes nothing", func(t *testing.T) {
		r := e.mustBerth("compute", "attach", "kubernetes", "-n", "prod-1", "--kubeconfig", cl.KubeconfigPath, "--dry-run")
		for _, want := range []string{"✓ connection", "✓ permissions", "✓ kubernetesVersion", "v1.37.2", "✓ capacity", "12 vCPUs (node capacity; 11.76 allocatable) on 3 Ready", "✓ attachment", "Preflight passed"} {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("dry run lacks %q:\n%s", want, r.stdout)
			}
		}
		if left := berthObjects(t, cl); len(left) != 0 {
			t.Fatalf("dry run installed %v", left)
		}
		if _, err := e.client.GetCompute(ctx, "team", "prod-1"); err == nil {
			t.Fatal("dry run recorded a compute")
		}
	})

	t.Run("attach FastProd on 3x4 vCPU", func(t *testing.T) {
		start := time.Now()
		r := e.mustBerth("compute", "attach", "kubernetes", "-n", "prod-1", "--kubeconfig", cl.KubeconfigPath, "-o", "json")
		t.Logf("attach took %s", time.Since(start).Round(time.Millisecond))
		var c api.Compute
		if err := json.Unmarshal([]byte(r.stdout), &c); err != nil {
			t.Fatalf("%v\n%s", err, r.stdout)
		}
		if c.ProvisioningState != api.StateSucceeded || c.Health != api.HealthHealthy || c.KubernetesVersion != "v1.37.2" ||
			c.NodeCount != 3 || c.AllocatableCpus != 11.76 || c.ClusterPurpose != api.PurposeFastProd || c.LoadBalancerType != api.LoadBalancerPublicIP ||
			!strings.HasPrefix(c.Endpoint, "127.100.") {
			t.Fatalf("compute after attach: %+v", c)
		}
		for _, want := range []string{"Preflight ✓ capacity", "Claimed the cluster", "Stored credentials of ServiceAccount kube-system/berth-manager", "Front end ready: 3/3 replicas"} {
			if !strings.Contains(r.stderr, want) {
				t.Errorf("attach events lack %q:\n%s", want, r.stderr)
			}
		}
		// The cluster side: everything labelled, the marker, 3 spread replicas + PDB.
		ns, err := kube.CoreV1().Namespaces().Get(ctx, installer.Namespace, metav1.GetOptions{})
		if err != nil || ns.Annotations[installer.AnnotationCompute] != "prod-1" || ns.Annotations[installer.AnnotationWorkspace] != "team" ||
			ns.Annotations[installer.AnnotationAttachment] != c.AttachmentID {
			t.Fatalf("marker: %+v %v", ns.Annotations, err)
		}
		d, err := kube.AppsV1().Deployments(installer.Namespace).Get(ctx, installer.FrontendName, metav1.GetOptions{})
		if err != nil || *d.Spec.Replicas != 3 || d.Spec.Template.Spec.TopologySpreadConstraints == nil {
			t.Fatalf("deployment: %v", err)
		}
		for _, mf := range d.ManagedFields {
			if mf.Manager == installer.FieldManager && mf.Operation != metav1.ManagedFieldsOperationApply {
				t.Errorf("field manager berth used %s, want Apply", mf.Operation)
			}
		}
		if _, err := kube.PolicyV1().PodDisruptionBudgets(installer.Namespace).Get(ctx, installer.FrontendName, metav1.GetOptions{}); err != nil {
			t.Fatalf("PDB: %v", err)
		}
		pods, _ := kube.CoreV1().Pods(installer.Namespace).List(ctx, metav1.ListOptions{LabelSelector: installer.LabelName + "=" + installer.FrontendName})
		nodes := map[string]bool{}
		for _, p := range pods.Items {
			nodes[p.Spec.NodeName] = true
		}
		if len(nodes) != 3 {
			t.Errorf("front end replicas on %d nodes, want spread over 3", len(nodes))
		}
	})

	t.Run("scoped credentials work and are owners-only", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "berth-kubeconfig")
		e.mustBerth("compute", "get-credentials", "-n", "prod-1", "-f", path)
		cfg, err := clientcmd.BuildConfigFromFlags("", path)
		if err != nil {
			t.Fatal(err)
		}
		cs := kubernetes.NewForConfigOrDie(cfg)
		if _, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{}); err != nil {
			t.Fatalf("the stored kubeconfig does not work: %v", err)
		}
		if _, err := cs.CoreV1().Secrets("kube-system").List(ctx, metav1.ListOptions{}); err != nil {
			t.Fatalf("scoped credentials cannot manage their own secrets: %v", err)
		}
		if _, err := cs.AppsV1().DaemonSets("kube-system").List(ctx, metav1.ListOptions{}); err == nil {
			t.Error("the scoped credentials may list daemonsets: they are not scoped")
		}
		reader, _ := e.client.CreateToken(ctx, api.TokenCreateRequest{Role: api.RoleContributor})
		r := berth(t, []string{"BERTH_SERVER=" + e.srv.url(), "BERTH_TOKEN=" + reader.Secret, "BERTH_WORKSPACE=team"}, "compute", "get-credentials", "-n", "prod-1")
		if r.code != 1 || !strings.Contains(r.stderr, "needs the owner role") {
			t.Fatalf("contributor get-credentials: %+v", r)
		}
	})

	t.Run("second attach is refused naming the owner", func(t *testing.T) {
		e.client.CreateWorkspace(ctx, api.WorkspaceCreateRequest{Name: "other-team"})
		r := e.berth("compute", "attach", "kubernetes", "-n", "grab-1", "-w", "other-team", "--kubeconfig", cl.KubeconfigPath)
		if r.code != 1 || !strings.Contains(r.stderr, `already attached to compute "prod-1" of workspace "team"`) || !strings.Contains(r.stderr, "--force") {
			t.Fatalf("second attach: %+v", r)
		}
		// Nothing of the failed attach's is left, and the first is untouched.
		c := e.show("prod-1")
		if c.Health != api.HealthHealthy {
			t.Fatalf("first compute after refused attach: %s", c.Health)
		}
		ns, _ := kube.CoreV1().Namespaces().Get(ctx, installer.Namespace, metav1.GetOptions{})
		if ns.Annotations[installer.AnnotationCompute] != "prod-1" {
			t.Fatalf("marker changed: %v", ns.Annotations)
		}
		e.mustBerth("compute", "detach", "-n", "grab-1", "-w", "other-team")
	})

	t.Run("drift is repaired except container resources", func(t *testing.T) {
		// Delete the Service, scale the Deployment, change an annotation, change a CPU request.
		if err := kube.CoreV1().Services(installer.Namespace).Delete(ctx, installer.FrontendName, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		d, _ := kube.AppsV1().Deployments(installer.Namespace).Get(ctx, installer.FrontendName, metav1.GetOptions{})
		five := int32(5)
		d.Spec.Replicas = &five
		d.Annotations = map[string]string{"team": "edited"}
		d.Spec.Template.Spec.Containers[0].Resources.Requests[corev1.ResourceCPU] = resource.MustParse("250m")
		if _, err := kube.AppsV1().Deployments(installer.Namespace).Update(ctx, d, metav1.UpdateOptions{FieldManager: "kubectl-edit"}); err != nil {
			t.Fatal(err)
		}
		ns, _ := kube.CoreV1().Namespaces().Get(ctx, installer.Namespace, metav1.GetOptions{})
		ns.Labels[installer.LabelComponent] = "tampered"
		kube.CoreV1().Namespaces().Update(ctx, ns, metav1.UpdateOptions{})

		r := e.mustBerth("compute", "reconcile", "-n", "prod-1")
		for _, want := range []string{"Drift: Service berth-system/berth-fe was missing", "spec.replicas was 5 (restoring 3)", "Keeping the front end's container resources"} {
			if !strings.Contains(r.stderr, want) {
				t.Errorf("reconcile events lack %q:\n%s", want, r.stderr)
			}
		}
		d, _ = kube.AppsV1().Deployments(installer.Namespace).Get(ctx, installer.FrontendName, metav1.GetOptions{})
		if *d.Spec.Replicas != 3 {
			t.Errorf("replicas %d after reconcile", *d.Spec.Replicas)
		}
		if got := d.Spec.Template.Spec.Containers[0].Resources.Requests[corev1.ResourceCPU]; got.String() != "250m" {
			t.Errorf("CPU request %s after reconcile, want the user's 250m kept", got.String())
		}
		if _, err := kube.CoreV1().Services(installer.Namespace).Get(ctx, installer.FrontendName, metav1.GetOptions{}); err != nil {
			t.Errorf("service not restored: %v", err)
		}
		ns, _ = kube.CoreV1().Namespaces().Get(ctx, installer.Namespace, metav1.GetOptions{})
		if ns.Labels[installer.LabelComponent] == "tampered" {
			t.Error("namespace label not restored")
		}
		c := e.show("prod-1")
		if c.Health != api.HealthHealthy || !strings.HasPrefix(c.Endpoint, "127.100.") {
			t.Errorf("after reconcile: %s %s", c.Health, c.Endpoint)
		}
		// A second reconcile finds nothing to repair.
		if r := e.mustBerth("compute", "reconcile", "-n", "prod-1"); !strings.Contains(r.stderr, "No drift") {
			t.Errorf("second reconcile:\n%s", r.stderr)
		}
	})

	t.Run("update to the internal load balancer and back, and the purpose", func(t *testing.T) {
		r := e.berth("compute", "update", "-n", "prod-1", "--load-balancer-type", "PublicIp", "--load-balancer-subnet", "x")
		if r.code != 1 || !strings.Contains(r.stderr, `--load-balancer-subnet "x" only applies with --load-balancer-type InternalLoadBalancer`) {
			t.Fatalf("subnet with PublicIp: %+v", r)
		}
		before := e.show("prod-1").Endpoint
		r = e.mustBerth("compute", "update", "-n", "prod-1", "--load-balancer-type", "InternalLoadBalancer", "--load-balancer-subnet", "inference-subnet", "-o", "json")
		var c api.Compute
		json.Unmarshal([]byte(r.stdout), &c)
		if c.LoadBalancerType != api.LoadBalancerInternal || c.LoadBalancerSubnet != "inference-subnet" || !strings.HasPrefix(c.Endpoint, "127.101.") || c.Endpoint == before {
			t.Fatalf("after switching to internal: %+v (before %s)", c, before)
		}
		svc, _ := kube.CoreV1().Services(installer.Namespace).Get(ctx, installer.FrontendName, metav1.GetOptions{})
		if svc.Annotations[installer.AzureInternal] != "true" || svc.Annotations[installer.AzureInternalSubnet] != "inference-subnet" {
			t.Fatalf("service annotations: %v", svc.Annotations)
		}
		r = e.mustBerth("compute", "update", "-n", "prod-1", "--load-balancer-type", "PublicIp", "--cluster-purpose", "DevTest", "-o", "json")
		json.Unmarshal([]byte(r.stdout), &c)
		if c.LoadBalancerType != api.LoadBalancerPublicIP || !strings.HasPrefix(c.Endpoint, "127.100.") || c.ClusterPurpose != api.PurposeDevTest {
			t.Fatalf("after switching back: %+v", c)
		}
		svc, _ = kube.CoreV1().Services(installer.Namespace).Get(ctx, installer.FrontendName, metav1.GetOptions{})
		if _, ok := svc.Annotations[installer.AzureInternal]; ok {
			t.Fatalf("internal annotations left: %v", svc.Annotations)
		}
		d, _ := kube.AppsV1().Deployments(installer.Namespace).Get(ctx, installer.FrontendName, metav1.GetOptions{})
		if *d.Spec.Replicas != 1 {
			t.Errorf("DevTest replicas %d", *d.Spec.Replicas)
		}
		if _, err := kube.PolicyV1().PodDisruptionBudgets(installer.Namespace).Get(ctx, installer.FrontendName, metav1.GetOptions{}); err == nil {
			t.Error("DevTest kept the PodDisruptionBudget")
		}
		e.mustBerth("compute", "update", "-n", "prod-1", "--cluster-purpose", "FastProd")
	})

	t.Run("force takeover displaces the first compute", func(t *testing.T) {
		r := e.mustBerth("compute", "attach", "kubernetes", "-n", "prod-2", "--kubeconfig", cl.KubeconfigPath, "--force", "--credential-mode", "as-given")
		if !strings.Contains(r.stderr, `Took the cluster over from compute "prod-1" of workspace "team"`) {
			t.Errorf("takeover events:\n%s", r.stderr)
		}
		old := e.show("prod-1")
		r = e.berth("compute", "reconcile", "-n", "prod-1")
		if !strings.Contains(r.stderr, "Displaced") {
			t.Errorf("reconcile of the displaced compute:\n%s", r.stderr)
		}
		if c := e.show("prod-1"); c.Health != api.HealthDisplaced {
			t.Fatalf("first compute health %s, want Displaced", c.Health)
		}
		// The new attachment owns the front end; the displaced one keeps only
		// credentials cut down to reading the marker.
		dyn, _ := dynamic.NewForConfig(cl.RESTConfig())
		for _, k := range installer.RemovalOrder {
			l, _ := dyn.Resource(k.GVR).List(ctx, metav1.ListOptions{LabelSelector: installer.LabelAttachment + "=" + old.AttachmentID +
				"," + installer.LabelComponent + "!=" + installer.ComponentManager})
			if len(l.Items) > 0 {
				t.Errorf("%d %s(s) of the displaced attachment remain", len(l.Items), k.Kind)
			}
		}
		roles, _ := kube.RbacV1().ClusterRoles().List(ctx, metav1.ListOptions{LabelSelector: installer.LabelAttachment + "=" + old.AttachmentID})
		if len(roles.Items) != 1 || len(roles.Items[0].Rules) != 2 || roles.Items[0].Rules[0].ResourceNames[0] != installer.Namespace {
			t.Errorf("the displaced manager's role was not cut down: %+v", roles.Items)
		}
		// Detaching the displaced compute removes nothing from the cluster.
		r = e.mustBerth("compute", "detach", "-n", "prod-1")
		if !strings.Contains(r.stderr, "removing nothing there") {
			t.Errorf("detach of displaced:\n%s", r.stderr)
		}
		if c := e.show("prod-2"); c.Health != api.HealthHealthy {
			t.Fatalf("new owner after the displaced one's detach: %s", c.Health)
		}
		if _, err := kube.AppsV1().Deployments(installer.Namespace).Get(ctx, installer.FrontendName, metav1.GetOptions{}); err != nil {
			t.Fatalf("front end gone after detaching the displaced compute: %v", err)
		}
	})

	t.Run("detach leaves nothing and re-attach works at once", func(t *testing.T) {
		// Something of the user's in the cluster must survive.
		kube.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "users-own"}}, metav1.CreateOptions{})
		e.mustBerth("compute", "detach", "-n", "prod-2")
		waitNoBerthObjects(t, cl)
		if _, err := kube.CoreV1().ConfigMaps("default").Get(ctx, "users-own", metav1.GetOptions{}); err != nil {
			t.Fatalf("detach removed a user object: %v", err)
		}
		if _, err := e.client.GetCompute(ctx, "team", "prod-2"); err == nil {
			t.Fatal("detached compute still listed")
		}
		r := e.mustBerth("compute", "attach", "kubernetes", "-n", "prod-3", "--kubeconfig", cl.KubeconfigPath, "--load-balancer-type", "InternalLoadBalancer", "-o", "json")
		var c api.Compute
		json.Unmarshal([]byte(r.stdout), &c)
		if c.ProvisioningState != api.StateSucceeded || !strings.HasPrefix(c.Endpoint, "127.101.") {
			t.Fatalf("re-attach with internal LB: %+v", c)
		}
		e.mustBerth("compute", "detach", "-n", "prod-3")
		waitNoBerthObjects(t, cl)
	})

	t.Run("concurrent attaches: exactly one wins", func(t *testing.T) {
		var wg sync.WaitGroup
		results := make([]result, 2)
		for i := range results {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				results[i] = berth(t, e.env, "compute", "attach", "kubernetes", "-n", fmt.Sprintf("race-%d", i), "--kubeconfig", cl.KubeconfigPath)
			}(i)
		}
		wg.Wait()
		won := 0
		for _, r := range results {
			if r.code == 0 {
				won++
			} else if !strings.Contains(r.stderr, "already attached") {
				t.Errorf("loser's message: %s", r.stderr)
			}
		}
		if won != 1 {
			t.Fatalf("%d attaches won:\n%+v", won, results)
		}
		for i := range results {
			e.berth("compute", "detach", "-n", fmt.Sprintf("race-%d", i))
		}
		waitNoBerthObjects(t, cl)
	})
}

func TestAttachRefusals(t *testing.T) {
	t.Parallel()
	cl := simcluster.StartT(t, simcluster.Options{Nodes: simcluster.Nodes(2, "4")})
	e := newAttachEnv(t)
	ctx := context.Background()
	kube := cl.Client()

	// FastProd on 2x4: both reasons, together; nothing installed.
	r := e.berth("compute", "attach", "kubernetes", "-n", "small-1", "--kubeconfig", cl.KubeconfigPath)
	for _, want := range []string{"a FastProd cluster needs at least 12 vCPUs; the cluster has 8 vCPUs (node capacity; 7.84 allocatable) on 2 Ready, schedulable node(s)",
		"a FastProd cluster needs at least 3 Ready, schedulable nodes", "nothing was installed"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("FastProd on 2x4 lacks %q:\n%s", want, r.stderr)
		}
	}
	if r.code != 1 {
		t.Errorf("exit %d", r.code)
	}
	if c := e.show("small-1"); c.ProvisioningState != api.StateFailed || len(c.ProvisioningErrors) != 2 {
		t.Errorf("failed compute: %+v", c)
	}
	if left := berthObjects(t, cl); len(left) != 0 {
		t.Fatalf("refused attach installed %v", left)
	}
	e.mustBerth("compute", "detach", "-n", "small-1")

	// 2x8: enough vCPUs, too few nodes.
	for i := 1; i <= 2; i++ {
		n, _ := kube.CoreV1().Nodes().Get(ctx, fmt.Sprintf("kwok-node-%d", i), metav1.GetOptions{})
		n.Status.Allocatable[corev1.ResourceCPU] = resource.MustParse("8")
		n.Status.Capacity[corev1.ResourceCPU] = resource.MustParse("8")
		if _, err := kube.CoreV1().Nodes().UpdateStatus(ctx, n, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	r = e.berth("compute", "attach", "kubernetes", "-n", "small-2", "--kubeconfig", cl.KubeconfigPath, "--dry-run")
	if r.code != 1 || !strings.Contains(r.stdout, "needs at least 3 Ready, schedulable nodes") || strings.Contains(r.stdout, "needs at least 12 vCPUs") {
		t.Errorf("FastProd on 2x8: %+v", r)
	}

	// Unsupported version: the error names the range.
	narrow := newAttachEnv(t, "--kubernetes-versions", "1.33-1.36")
	r = narrow.berth("compute", "attach", "kubernetes", "-n", "new-1", "--kubeconfig", cl.KubeconfigPath, "--cluster-purpose", "DevTest")
	if r.code != 1 || !strings.Contains(r.stderr, "Kubernetes version v1.37.2 is not supported: supported versions are between 1.33 - 1.36") {
		t.Errorf("unsupported version: %+v", r)
	}

	// Wrong token and wrong server: clear messages, nothing recorded.
	r = e.berth("compute", "attach", "kubernetes", "-n", "tok-1", "--kubeconfig", kubeconfigWithToken(t, cl, "not-the-token", ""), "--dry-run")
	if r.code != 1 || !strings.Contains(r.stdout, "rejected the credentials") {
		t.Errorf("wrong token: %+v", r)
	}
	r = e.berth("compute", "attach", "kubernetes", "-n", "srv-1", "--kubeconfig", kubeconfigWithToken(t, cl, cl.AdminToken, "https://127.0.0.1:1"), "--dry-run")
	if r.code != 1 || !strings.Contains(r.stdout, "connection refused") {
		t.Errorf("wrong server: %+v", r)
	}

	// DevTest on 1x2.
	for i := 1; i <= 2; i++ {
		kube.CoreV1().Nodes().Delete(ctx, fmt.Sprintf("kwok-node-%d", i), metav1.DeleteOptions{})
	}
	if err := cl.AddNode(simcluster.NodeSpec{Name: "tiny", CPU: "2"}); err != nil {
		t.Fatal(err)
	}
	r = e.mustBerth("compute", "attach", "kubernetes", "-n", "dev-1", "--kubeconfig", cl.KubeconfigPath, "--cluster-purpose", "DevTest", "-o", "json")
	var c api.Compute
	json.Unmarshal([]byte(r.stdout), &c)
	if c.ProvisioningState != api.StateSucceeded || c.NodeCount != 1 || c.AllocatableCpus != 1.93 {
		t.Fatalf("DevTest on 1x2: %+v", c)
	}
	d, _ := kube.AppsV1().Deployments(installer.Namespace).Get(ctx, installer.FrontendName, metav1.GetOptions{})
	if *d.Spec.Replicas != 1 {
		t.Errorf("DevTest front end replicas %d", *d.Spec.Replicas)
	}
	e.mustBerth("compute", "detach", "-n", "dev-1")
	waitNoBerthObjects(t, cl)
}

// proxy is a TCP relay in front of the API server that a test can cut.
type proxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	conns  []net.Conn
}

func startProxy(t *testing.T, addr, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, up)
			p.mu.Unlock()
			go func() { io.Copy(up, c); up.Close() }()
			go func() { io.Copy(c, up); c.Close() }()
		}
	}()
	t.Cleanup(p.close)
	return p
}

func (p *proxy) close() {
	p.ln.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

func TestUnreachableClusterRecovers(t *testing.T) {
	t.Parallel()
	cl := simcluster.StartT(t, simcluster.Options{Nodes: simcluster.Nodes(1, "4")})
	e := newAttachEnv(t, "--reconcile-interval", "2s")
	target := strings.TrimPrefix(cl.Server, "https://")
	addr := freeAddr(t)
	p := startProxy(t, addr, target)
	kc := kubeconfigWithToken(t, cl, cl.AdminToken, "https://"+addr)
	e.mustBerth("compute", "attach", "kubernetes", "-n", "flaky-1", "--kubeconfig", kc, "--cluster-purpose", "DevTest")

	p.close()
	waitHealth(t, e, "flaky-1", api.HealthUnreachable)
	if c := e.show("flaky-1"); c.ProvisioningState != api.StateSucceeded {
		t.Fatalf("unreachable compute's state %s, want Succeeded (not Failed)", c.ProvisioningState)
	}
	p = startProxy(t, addr, target)
	waitHealth(t, e, "flaky-1", api.HealthHealthy)

	// Detach of an unreachable cluster needs --force, which says what may be left.
	p.close()
	r := e.berth("compute", "detach", "-n", "flaky-1")
	if r.code != 1 || !strings.Contains(r.stderr, "detach with --force") {
		t.Fatalf("detach of unreachable: %+v", r)
	}
	r = e.mustBerth("compute", "detach", "-n", "flaky-1", "--force")
	if !strings.Contains(r.stderr, "These may be left in the cluster: namespace berth-system") {
		t.Errorf("forced detach events:\n%s", r.stderr)
	}
	if _, err := e.client.GetCompute(context.Background(), "team", "flaky-1"); err == nil {
		t.Fatal("force-detached compute still there")
	}
}

func waitHealth(t *testing.T, e *attachEnv, name, want string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		c := e.show(name)
		if c.Health == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s health %s, want %s", name, c.Health, want)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestAttachResumesAfterKill kills the control plane in the middle of an
// attach (while it waits for the front end, held back by cordoned nodes);
// the restarted server finishes it, with one of each object.
func TestAttachResumesAfterKill(t *testing.T) {
	t.Parallel()
	cl := simcluster.StartT(t, simcluster.Options{Nodes: simcluster.Nodes(3, "4")})
	dir, addr := t.TempDir(), freeAddr(t)
	srv := startServer(t, dir, addr, nil, "--reconcile-interval", "1h")
	c, _ := client.New(srv.url(), ownerToken(t, dir))
	ctx := context.Background()
	c.CreateWorkspace(ctx, api.WorkspaceCreateRequest{Name: "team"})
	kube := cl.Client()
	nodes, _ := kube.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	cordon := func(on bool) {
		for _, n := range nodes.Items {
			patch := fmt.Sprintf(`{"spec":{"unschedulable":%v}}`, on)
			if _, err := kube.CoreV1().Nodes().Patch(ctx, n.Name, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
				t.Fatal(err)
			}
		}
	}
	env := []string{"BERTH_SERVER=" + srv.url(), "BERTH_DATA_DIR=" + dir, "BERTH_WORKSPACE=team"}
	r := berth(t, env, "compute", "attach", "kubernetes", "-n", "resume-1", "--kubeconfig", cl.KubeconfigPath, "--no-wait", "-o", "json")
	if r.code != 0 {
		t.Fatalf("attach: %+v", r)
	}
	var op api.Operation
	json.Unmarshal([]byte(r.stdout), &op)
	// Preflight needs schedulable nodes; once the cluster is claimed, cordon
	// them so the front end's pods wait, and kill the server while it waits.
	waitEvent(t, c, op.ID, "Claimed the cluster")
	cordon(true)
	waitEvent(t, c, op.ID, "Front end: 0/3 replicas available")
	srv.kill()
	cordon(false)
	startServer(t, dir, addr, nil, "--reconcile-interval", "1h")
	final := waitFinal(t, c, op.ID)
	if final.State != api.OpSucceeded || final.Attempt != 2 {
		evs, _ := c.ListEvents(ctx, op.ID, 0)
		t.Fatalf("after restart: %+v\n%v", final, evs)
	}
	comp, _ := c.GetCompute(ctx, "team", "resume-1")
	if comp.ProvisioningState != api.StateSucceeded || comp.Health != api.HealthHealthy {
		t.Fatalf("compute after resume: %+v", comp)
	}
	for _, k := range []installer.Kind{installer.KindDeployment, installer.KindService, installer.KindClusterRole} {
		dyn, _ := dynamic.NewForConfig(cl.RESTConfig())
		l, _ := dyn.Resource(k.GVR).List(ctx, metav1.ListOptions{LabelSelector: installer.LabelComponent + "=" + installer.ComponentFrontend})
		if len(l.Items) != 1 {
			t.Errorf("%d front end %ss after resume, want 1", len(l.Items), k.Kind)
		}
	}
}

// TestAttachPreflightMessages: a user without the permissions gets each
// missing one listed; a server with an expired certificate is named as such.
func TestAttachPreflightMessages(t *testing.T) {
	t.Parallel()
	cl := simcluster.StartT(t, simcluster.Options{Nodes: simcluster.Nodes(3, "4")})
	e := newAttachEnv(t)
	ctx := context.Background()
	kube := cl.Client()
	// A ServiceAccount that may only read nodes.
	kube.CoreV1().ServiceAccounts("default").Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "viewer"}}, metav1.CreateOptions{})
	kube.RbacV1().ClusterRoles().Create(ctx, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "node-viewer"},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"nodes"}, Verbs: []string{"get", "list"}}}}, metav1.CreateOptions{})
	kube.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "viewer"},
		RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "node-viewer"},
		Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: "viewer", Namespace: "default"}}}, metav1.CreateOptions{})
	tr, err := kube.CoreV1().ServiceAccounts("default").CreateToken(ctx, "viewer", &authv1.TokenRequest{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	r := e.berth("compute", "attach", "kubernetes", "-n", "weak-1", "--kubeconfig", kubeconfigWithToken(t, cl, tr.Status.Token, ""), "--dry-run")
	for _, want := range []string{"✗ permissions", "the credentials may not", "clusterroles.rbac.authorization.k8s.io cluster-wide",
		"deployments.apps in namespace berth-system", "✓ capacity"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("weak credentials: lacks %q:\n%s", want, r.stdout)
		}
	}
	if r.code != 1 {
		t.Errorf("exit %d", r.code)
	}

	// An API server whose certificate has expired.
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "expired"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	der, _ := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	srv := httptest.NewUnstartedServer(http.NotFoundHandler())
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
	srv.StartTLS()
	defer srv.Close()
	cfg, _ := clientcmd.Load(cl.Kubeconfig)
	for _, c := range cfg.Clusters {
		c.Server = srv.URL
		c.CertificateAuthorityData = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	}
	path := filepath.Join(t.TempDir(), "expired-kubeconfig")
	clientcmd.WriteToFile(*cfg, path)
	r = e.berth("compute", "attach", "kubernetes", "-n", "old-1", "--kubeconfig", path, "--dry-run")
	if r.code != 1 || !strings.Contains(r.stdout, "certificate") || !strings.Contains(r.stdout, "has expired") {
		t.Errorf("expired certificate: %+v", r)
	}
}
