package simcluster

import (
	"context"
	"errors"
	"fmt"
	"github.com/berth-ml/berth/internal/testenv"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
)

// eventually polls cond every 100ms until it returns nil, failing the test
// with cond's last error after timeout.
func eventually(t *testing.T, c *Cluster, timeout time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %v\n%s", timeout, err, c.Logs())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestCluster(t *testing.T) {
	t.Parallel()
	begin := time.Now()
	c := StartT(t, Options{Nodes: Nodes(3, "4")})
	t.Logf("cluster started in %s", time.Since(begin).Round(time.Millisecond))
	ctx := t.Context()
	cs := c.Client()

	if !strings.Contains(c.KubeconfigPath, "kubeconfig") {
		t.Errorf("KubeconfigPath = %q, want a path containing kubeconfig", c.KubeconfigPath)
	}
	if data, err := os.ReadFile(c.KubeconfigPath); err != nil || string(data) != string(c.Kubeconfig) {
		t.Errorf("kubeconfig file: %v, or not Kubeconfig", err)
	}
	if !strings.Contains(string(c.Kubeconfig), c.Server) || !strings.HasPrefix(c.Server, "https://127.0.0.1:") {
		t.Errorf("Server %q, kubeconfig:\n%s", c.Server, c.Kubeconfig)
	}

	t.Run("version", func(t *testing.T) {
		v, err := cs.Discovery().ServerVersion()
		if err != nil {
			t.Fatal(err)
		}
		if v.GitVersion != Version || v.Major != "1" || v.Minor != "37" {
			t.Errorf("server version %+v, want %s", v, Version)
		}
	})

	t.Run("nodes", func(t *testing.T) {
		nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{LabelSelector: "type=kwok"})
		if err != nil {
			t.Fatal(err)
		}
		if len(nodes.Items) != 3 {
			t.Fatalf("%d nodes, want 3", len(nodes.Items))
		}
		for _, n := range nodes.Items {
			ready := false
			for _, cond := range n.Status.Conditions {
				ready = ready || cond.Type == corev1.NodeReady && cond.Status == corev1.ConditionTrue
			}
			// Allocatable is below capacity, as on real clusters.
			cpu, allocCPU := n.Status.Capacity[corev1.ResourceCPU], n.Status.Allocatable[corev1.ResourceCPU]
			mem, allocMem := n.Status.Capacity[corev1.ResourceMemory], n.Status.Allocatable[corev1.ResourceMemory]
			if allocCPU.String() != "3920m" || allocMem.String() != "15634Mi" {
				t.Errorf("node %s: allocatable cpu %s, memory %s; want 3920m and 15634Mi", n.Name, &allocCPU, &allocMem)
			}
			if !ready || cpu.String() != "4" || mem.String() != "16Gi" || len(n.Spec.Taints) != 0 ||
				n.Labels["kubernetes.io/hostname"] != n.Name || n.Annotations[KwokNodeAnnotation] != "fake" {
				t.Errorf("node %s: ready %v, cpu %s, memory %s, taints %v, labels %v",
					n.Name, ready, &cpu, &mem, n.Spec.Taints, n.Labels)
			}
		}
	})

	t.Run("token request", func(t *testing.T) {
		// Service account tokens are signed, and accepted.
		tr, err := cs.CoreV1().ServiceAccounts("default").CreateToken(ctx, "default",
			&authenticationv1.TokenRequest{}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		cfg := c.RESTConfig()
		cfg.BearerToken = tr.Status.Token
		sa, err := kubernetes.NewForConfig(cfg)
		if err != nil {
			t.Fatal(err)
		}
		review, err := sa.AuthenticationV1().SelfSubjectReviews().Create(ctx,
			&authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got := review.Status.UserInfo.Username; got != "system:serviceaccount:default:default" {
			t.Errorf("token of user %q", got)
		}
	})

	t.Run("deployment", func(t *testing.T) {
		labels := map[string]string{"app": "web"}
		replicas := int32(2)
		dep := &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
			Spec: appsv1.DeploymentSpec{
				Replicas: &replicas,
				Selector: &metav1.LabelSelector{MatchLabels: labels},
				Template: corev1.PodTemplateSpec{
					ObjectMeta: metav1.ObjectMeta{Labels: labels},
					Spec: corev1.PodSpec{Containers: []corev1.Container{{
						Name: "web", Image: "registry.invalid/web:1",
						Ports: []corev1.ContainerPort{{ContainerPort: 8080}},
					}}},
				},
			},
		}
		if _, err := cs.AppsV1().Deployments("default").Create(ctx, dep, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		podRange := netip.MustParsePrefix(PodCIDR)
		eventually(t, c, time.Minute, func() error {
			pods, err := cs.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
			if err != nil {
				return err
			}
			if len(pods.Items) != 2 {
				return fmt.Errorf("want 2 pods, have %d", len(pods.Items))
			}
			for _, p := range pods.Items {
				if p.Status.Phase != corev1.PodRunning || !podReady(&p) {
					return fmt.Errorf("pod %s is %s, not Running and Ready", p.Name, p.Status.Phase)
				}
				ip, err := netip.ParseAddr(p.Status.PodIP)
				if err != nil || !podRange.Contains(ip) {
					return fmt.Errorf("pod %s has IP %q", p.Name, p.Status.PodIP)
				}
				if !strings.HasPrefix(p.Spec.NodeName, "kwok-node-") {
					return fmt.Errorf("pod %s is on node %q", p.Name, p.Spec.NodeName)
				}
			}
			if pods.Items[0].Status.PodIP == pods.Items[1].Status.PodIP {
				return fmt.Errorf("both pods have IP %s", pods.Items[0].Status.PodIP)
			}
			d, err := cs.AppsV1().Deployments("default").Get(ctx, "web", metav1.GetOptions{})
			if err != nil {
				return err
			}
			if d.Status.ReadyReplicas != 2 {
				return fmt.Errorf("deployment has %d ready replicas", d.Status.ReadyReplicas)
			}
			return nil
		})
	})

	t.Run("load balancer", func(t *testing.T) {
		svcs := cs.CoreV1().Services("default")
		svc := &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: "front", Namespace: "default"},
			Spec: corev1.ServiceSpec{
				Type:     corev1.ServiceTypeLoadBalancer,
				Selector: map[string]string{"app": "web"},
				Ports:    []corev1.ServicePort{{Port: 443, TargetPort: intstr.FromInt32(8080)}},
			},
		}
		if _, err := svcs.Create(ctx, svc, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		ingress := func(prefix string) string {
			t.Helper()
			var ip string
			eventually(t, c, 30*time.Second, func() error {
				s, err := svcs.Get(ctx, "front", metav1.GetOptions{})
				if err != nil {
					return err
				}
				ing := s.Status.LoadBalancer.Ingress
				if len(ing) != 1 || !netip.MustParsePrefix(prefix).Contains(netip.MustParseAddr(orZero(ing))) {
					return fmt.Errorf("ingress %s, want one in %s", ingressString(ing), prefix)
				}
				ip = ing[0].IP
				return nil
			})
			return ip
		}
		update := func(change func(*corev1.Service)) {
			t.Helper()
			s, err := svcs.Get(ctx, "front", metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			change(s)
			if _, err := svcs.Update(ctx, s, metav1.UpdateOptions{}); err != nil {
				t.Fatal(err)
			}
		}

		public := ingress(PublicLoadBalancerRange)
		update(func(s *corev1.Service) { s.Labels = map[string]string{"touched": "yes"} })
		time.Sleep(300 * time.Millisecond)
		if again := ingress(PublicLoadBalancerRange); again != public {
			t.Errorf("address moved from %s to %s on an unrelated change", public, again)
		}
		update(func(s *corev1.Service) {
			s.Annotations = map[string]string{InternalLoadBalancerAnnotation: "true"}
		})
		internal := ingress(InternalLoadBalancerRange)
		update(func(s *corev1.Service) { s.Annotations = nil })
		if back := ingress(PublicLoadBalancerRange); back == "" {
			t.Error("no public address again")
		}
		t.Logf("public %s, internal %s", public, internal)

		// A second Service gets another address.
		svc2 := svc.DeepCopy()
		svc2.Name = "front2"
		if _, err := svcs.Create(ctx, svc2, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		eventually(t, c, 30*time.Second, func() error {
			s1, err1 := svcs.Get(ctx, "front", metav1.GetOptions{})
			s2, err2 := svcs.Get(ctx, "front2", metav1.GetOptions{})
			if err := errors.Join(err1, err2); err != nil {
				return err
			}
			a, b := s1.Status.LoadBalancer.Ingress, s2.Status.LoadBalancer.Ingress
			if len(b) != 1 || orZero(a) == orZero(b) {
				return fmt.Errorf("front %s, front2 %s", ingressString(a), ingressString(b))
			}
			return nil
		})
	})

	t.Run("add node", func(t *testing.T) {
		if err := c.AddNode(NodeSpec{CPU: "1"}); err != nil {
			t.Fatal(err)
		}
		n, err := cs.CoreV1().Nodes().Get(ctx, "kwok-node-4", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if cpu := n.Status.Capacity[corev1.ResourceCPU]; cpu.String() != "1" {
			t.Errorf("cpu %s", &cpu)
		}
	})
}

func TestStopLeavesNothing(t *testing.T) {
	testenv.SkipShort(t, "simulated cluster")
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c, err := Start(ctx, Options{Nodes: Nodes(1, "1"), logf: t.Logf})
	if err != nil {
		c.Stop()
		t.Fatalf("%v\n%s", err, c.Logs())
	}
	if _, err := c.Client().CoreV1().Namespaces().Get(ctx, "default", metav1.GetOptions{}); err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, p := range c.procs {
		pids = append(pids, p.pid())
	}
	if len(pids) != len(components) {
		t.Fatalf("%d processes, want %d", len(pids), len(components))
	}
	c.Stop()
	for _, pid := range pids {
		// Nothing left in the process group either.
		if err := syscall.Kill(-pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("process group %d still there: %v", pid, err)
		}
	}
	if _, err := os.Stat(c.Dir); !os.IsNotExist(err) {
		t.Errorf("%s still there: %v", c.Dir, err)
	}
	c.Stop() // again: no-op
	if _, err := c.Client().CoreV1().Namespaces().Get(ctx, "default", metav1.GetOptions{}); err == nil {
		t.Error("API server still answers after Stop")
	}
	if !strings.Contains(c.Logs(), "kube-apiserver") {
		t.Errorf("Logs after Stop:\n%s", c.Logs())
	}
}

func TestMissingBinaries(t *testing.T) {
	_, err := Start(context.Background(), Options{BinDir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "hack/build-simcluster.sh") {
		t.Fatalf("err = %v, want one naming hack/build-simcluster.sh", err)
	}
	var nilCluster *Cluster
	nilCluster.Stop() // safe
}

func TestLoadBalancerAddresses(t *testing.T) {
	l := newLBController(nil, t.Logf)
	a1, _ := l.address("ns/a", false, "")
	b1, _ := l.address("ns/b", false, "")
	a2, _ := l.address("ns/a", false, "")
	ai, _ := l.address("ns/a", true, "")
	if a1 != "127.100.0.1" || b1 != "127.100.0.2" || a2 != a1 || ai != "127.101.0.1" {
		t.Errorf("addresses %s %s %s %s", a1, b1, a2, ai)
	}
	if ip, err := l.address("ns/c", false, "127.100.9.9"); err != nil || ip != "127.100.9.9" {
		t.Errorf("requested address: %s, %v", ip, err)
	}
	if _, err := l.address("ns/d", false, "10.1.2.3"); err == nil {
		t.Error("a non-loopback loadBalancerIP was taken")
	}
	if !l.release("ns/b") || l.release("ns/b") {
		t.Error("release")
	}
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func orZero(ing []corev1.LoadBalancerIngress) string {
	if len(ing) == 0 || ing[0].IP == "" {
		return "0.0.0.0"
	}
	return ing[0].IP
}

func ingressString(ing []corev1.LoadBalancerIngress) string {
	var ips []string
	for _, i := range ing {
		ips = append(ips, i.IP)
	}
	return "[" + strings.Join(ips, " ") + "]"
}

// TestAllocatable: nodes leave less for pods than their capacity, by AKS's
// and GKE's reservation tiers.
func TestAllocatable(t *testing.T) {
	for cpu, want := range map[string]string{"500m": "470m", "1": "940m", "2": "1930m", "4": "3920m", "8": "7910m"} {
		res := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu), corev1.ResourceMemory: resource.MustParse("1Gi")}
		got := allocatable(res)
		if c := got[corev1.ResourceCPU]; c.String() != want {
			t.Errorf("cpu %s: allocatable %s, want %s", cpu, &c, want)
		}
		if m := got[corev1.ResourceMemory]; m.String() != "768Mi" {
			t.Errorf("memory 1Gi: allocatable %s, want 768Mi", &m)
		}
	}
}

// TestPodPrefixesAreExclusive: clusters started at once, in this process or
// others, never share a pod range (flocks are per open file, so claims in
// one process exclude each other as they would across processes).
func TestPodPrefixesAreExclusive(t *testing.T) {
	seen := map[netip.Prefix]bool{}
	var held []*os.File
	defer func() {
		for _, f := range held {
			f.Close()
		}
	}()
	for range 40 {
		p, f, err := claimPodPrefix()
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, f)
		if seen[p] || !netip.MustParsePrefix(PodCIDR).Contains(p.Addr()) || p.Bits() != 20 {
			t.Fatalf("claimed %s again or outside %s (claimed: %v)", p, PodCIDR, seen)
		}
		seen[p] = true
	}
	// Closing releases: the lock of a released range can be taken again.
	held[0].Close()
	f, err := os.OpenFile(held[0].Name(), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	held[0] = f
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		t.Fatalf("a released range is still held: %v", err)
	}
}
