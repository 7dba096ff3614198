package frontend_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"flag"
	"fmt"
	"github.com/berth-ml/berth/internal/testenv"
	"github.com/berth-ml/berth/internal/testenv/testcert"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berth-ml/berth/internal/frontend"
	"github.com/berth-ml/berth/internal/testenv/simcluster"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
)

var cluster *simcluster.Cluster

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() { // the tests that need the cluster skip (clusterClient)
		os.Exit(m.Run())
	}
	c, err := simcluster.Start(context.Background(), simcluster.Options{Nodes: simcluster.Nodes(3, "8")})
	if err != nil {
		fmt.Fprintln(os.Stderr, "simulated cluster:", err)
		os.Exit(1)
	}
	cluster = c
	code := m.Run()
	c.Stop()
	os.Exit(code)
}

// podServers runs a real HTTP server on the IP of every Ready pod of a
// service (kwok gives pods loopback IPs), as the model server would.
type podServers struct {
	mu      sync.Mutex
	servers map[string]*http.Server
	delay   atomic.Int64
	hits    sync.Map // pod name → *atomic.Int32
	// cur and peak count requests in progress across the pods.
	cur, peak atomic.Int32
}

func runPodServers(t *testing.T, kube kubernetes.Interface, ns, service string, port int) *podServers {
	ps := &podServers{servers: map[string]*http.Server{}}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() {
		cancel()
		ps.mu.Lock()
		for _, s := range ps.servers {
			s.Close()
		}
		ps.mu.Unlock()
	})
	go func() {
		for ctx.Err() == nil {
			pods, err := kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: frontend.ServiceLabel + "=" + service})
			if err == nil {
				live := map[string]bool{}
				ps.mu.Lock()
				for _, p := range pods.Items {
					if p.Status.PodIP == "" || p.DeletionTimestamp != nil {
						continue
					}
					live[p.Name] = true
					if _, ok := ps.servers[p.Name]; !ok {
						ps.start(t, p.Name, net.JoinHostPort(p.Status.PodIP, fmt.Sprint(port)))
					}
				}
				// A deleted pod's server stops, as its container would:
				// kwok hands its IP to the next pod.
				for name, srv := range ps.servers {
					if !live[name] {
						srv.Close()
						delete(ps.servers, name)
					}
				}
				ps.mu.Unlock()
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
	return ps
}

func (ps *podServers) start(t *testing.T, pod, addr string) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Logf("listen %s: %v", addr, err)
		return
	}
	var n atomic.Int32
	ps.hits.Store(pod, &n)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		c := ps.cur.Add(1)
		defer ps.cur.Add(-1)
		for p := ps.peak.Load(); c > p && !ps.peak.CompareAndSwap(p, c); p = ps.peak.Load() {
		}
		if d := time.Duration(ps.delay.Load()); d > 0 {
			time.Sleep(d)
		}
		io.Copy(io.Discard, r.Body)
		fmt.Fprintf(w, `{"pod":%q}`, pod)
	})}
	ps.servers[pod] = srv
	go srv.Serve(ln)
}

func deploy(t *testing.T, kube kubernetes.Interface, ns, name string, replicas int32) {
	t.Helper()
	ctx := context.Background()
	kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
	labels := map[string]string{"app": name, frontend.ServiceLabel: name}
	_, err := kube.AppsV1().Deployments(ns).Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.DeploymentSpec{Replicas: &replicas, Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "model", Image: "example/model:1",
					Ports: []corev1.ContainerPort{{ContainerPort: 5001}}}}}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
}

func putRoute(t *testing.T, kube kubernetes.Interface, rt frontend.Route) {
	t.Helper()
	data, _ := json.Marshal(rt)
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "route-" + rt.Service, Namespace: rt.Namespace,
		Labels: map[string]string{frontend.RouteLabel: "true"}}, Data: map[string]string{frontend.RouteKey: string(data)}}
	ctx := context.Background()
	if _, err := kube.CoreV1().ConfigMaps(rt.Namespace).Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		if _, err := kube.CoreV1().ConfigMaps(rt.Namespace).Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
}

// startFrontend runs a front end against the cluster in this process.
// clusterClient is the shared cluster's client; under -short, where no
// cluster runs, the test is skipped.
func clusterClient(t *testing.T) kubernetes.Interface {
	t.Helper()
	testenv.SkipShort(t, "simulated cluster")
	return cluster.Client()
}

func startFrontend(t *testing.T, ns string) (*frontend.Frontend, *frontend.Watcher) {
	t.Helper()
	fe := frontend.New(slog.New(slog.NewTextHandler(io.Discard, nil)))
	w := &frontend.Watcher{Client: cluster.Client(), Frontend: fe, Namespace: ns}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go w.Run(ctx)
	deadline := time.Now().Add(10 * time.Second)
	for !readyz(fe) {
		if time.Now().After(deadline) {
			t.Fatal("front end not ready")
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fe, w
}

func readyz(fe *frontend.Frontend) bool {
	rec := httptest.NewRecorder()
	fe.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
	return rec.Code == 200
}

func score(url, key string) (int, string) {
	req, _ := http.NewRequest("POST", url, strings.NewReader(`{"data":[1]}`))
	req.Header.Set("Authorization", "Bearer "+key)
	return testenv.Send(http.DefaultClient, req)
}

func eventually(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %s", timeout, what)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

func TestDiscoveryFromPods(t *testing.T) {
	kube := clusterClient(t)
	deploy(t, kube, "models-a", "iris", 2)
	ps := runPodServers(t, kube, "models-a", "iris", 5001)
	putRoute(t, kube, frontend.Route{Service: "iris", Namespace: "models-a", Selector: map[string]string{"app": "iris"}, Port: 5001,
		Auth: frontend.AuthKey, KeyHashes: []string{frontend.HashKey("k1")}, MaxConcurrentRequestsPerContainer: 1})
	fe, _ := startFrontend(t, "berth-system")
	url := frontend.ServeForTest(t, fe.Handler(), nil) + "/api/v1/service/iris/score"
	eventually(t, "2 replicas discovered", 20*time.Second, func() bool {
		l, ok := fe.LoadOf("iris")
		return ok && l.Replicas == 2
	})
	pods := map[string]bool{}
	eventually(t, "both pods answer", 10*time.Second, func() bool {
		code, body := score(url, "k1")
		if code == 200 {
			var v struct{ Pod string }
			json.Unmarshal([]byte(body), &v)
			pods[v.Pod] = true
		}
		return len(pods) == 2
	})
	if code, _ := score(url, "wrong"); code != 401 {
		t.Fatalf("wrong key: %d", code)
	}
	// Scale to zero: the front end says no ready replicas.
	// A patch, not get-then-update, which the deployment controller's own
	// status writes can make fail with a conflict (it did under load).
	if _, err := kube.AppsV1().Deployments("models-a").Patch(context.Background(), "iris", types.MergePatchType,
		[]byte(`{"spec":{"replicas":0}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "503 without replicas", 20*time.Second, func() bool {
		code, body := score(url, "k1")
		return code == 503 && strings.Contains(body, "No ready replicas for service iris")
	})
	// Deleting the route removes the service.
	kube.CoreV1().ConfigMaps("models-a").Delete(context.Background(), "route-iris", metav1.DeleteOptions{})
	eventually(t, "404 after the route is gone", 10*time.Second, func() bool {
		code, _ := score(url, "k1")
		return code == 404
	})
	_ = ps
}

// TestCertificateRotationUnderLoad: a new Secret is served without a
// restart, and no handshake or request fails while it changes.
func TestCertificateRotationUnderLoad(t *testing.T) {
	kube := clusterClient(t)
	ctx := context.Background()
	kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "fe-tls"}}, metav1.CreateOptions{})
	certA, keyA := testcert.SelfSigned(t, "a.example.test")
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "berth-fe-tls", Namespace: "fe-tls"},
		Data: map[string][]byte{"cert.pem": certA, "key.pem": keyA}}
	if _, err := kube.CoreV1().Secrets("fe-tls").Create(ctx, secret, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	fe, _ := startFrontend(t, "fe-tls")
	addr := strings.TrimPrefix(frontend.ServeForTest(t, fe.Handler(), fe.TLSConfig()), "https://")
	served := func() string {
		conn, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS13})
		if err != nil {
			return "error: " + err.Error()
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].Subject.CommonName
	}
	eventually(t, "certificate A served", 10*time.Second, func() bool { return served() == "a.example.test" })
	if _, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS11}); err == nil {
		t.Fatal("TLS 1.1 accepted")
	}
	// Load: handshakes and requests on new connections and one kept open.
	var fails atomic.Int32
	var total atomic.Int32
	keep := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	fresh := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, DisableKeepAlives: true}}
	stop := testenv.Load(4, func(i int) {
		c := fresh
		if i == 0 {
			c = keep
		}
		resp, err := c.Get("https://" + addr + "/healthz")
		total.Add(1)
		if err != nil || resp.StatusCode != 200 {
			fails.Add(1)
			return
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	})
	time.Sleep(200 * time.Millisecond)
	certB, keyB := testcert.SelfSigned(t, "b.example.test")
	secret.Data = map[string][]byte{"cert.pem": certB, "key.pem": keyB}
	if _, err := kube.CoreV1().Secrets("fe-tls").Update(ctx, secret, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "certificate B served", 10*time.Second, func() bool { return served() == "b.example.test" })
	time.Sleep(200 * time.Millisecond)
	stop()
	if fails.Load() != 0 {
		t.Fatalf("%d of %d requests failed during the rotation", fails.Load(), total.Load())
	}
	t.Logf("%d requests during the rotation, none failed", total.Load())
}

// TestAutoscale: a load step scales up within two refresh periods; after
// the quiet period the service scales back down.
func TestAutoscale(t *testing.T) {
	kube := clusterClient(t)
	ctx := context.Background()
	deploy(t, kube, "models-b", "auto", 1)
	ps := runPodServers(t, kube, "models-b", "auto", 5001)
	ps.delay.Store(int64(200 * time.Millisecond))
	putRoute(t, kube, frontend.Route{Service: "auto", Namespace: "models-b", Selector: map[string]string{"app": "auto"}, Port: 5001,
		Auth: frontend.AuthNone, MaxConcurrentRequestsPerContainer: 1, MaxQueueWaitMs: 5000,
		Autoscale: frontend.Autoscale{Enabled: true, Min: 1, Max: 4, RefreshSeconds: 1, TargetUtilization: 70, Deployment: "auto"}})
	kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "fe-auto"}}, metav1.CreateOptions{})
	fe, _ := startFrontend(t, "fe-auto")
	as := &frontend.Autoscaler{Client: kube, Frontend: fe, Namespace: "fe-auto", Identity: "test-fe", DownWindow: 3 * time.Second}
	actx, cancel := context.WithCancel(ctx)
	defer cancel()
	go as.Run(actx)
	base := frontend.ServeForTest(t, fe.Handler(), nil)
	eventually(t, "1 replica discovered", 20*time.Second, func() bool { l, _ := fe.LoadOf("auto"); return l.Replicas == 1 })
	replicas := func() int32 {
		d, _ := kube.AppsV1().Deployments("models-b").Get(ctx, "auto", metav1.GetOptions{})
		return *d.Spec.Replicas
	}
	// Load step: 6 clients keep requests in flight.
	var bad atomic.Int32
	stop := testenv.Load(6, func(int) {
		if code, body := score(base+"/api/v1/service/auto/score", ""); code != 200 {
			if bad.Add(1) == 1 {
				t.Logf("first failure: %d %s", code, body)
			}
		}
	})
	step := time.Now()
	eventually(t, "scaled up to 4 (max) within 2 refresh periods", 2500*time.Millisecond, func() bool { return replicas() == 4 })
	t.Logf("scaled up %s after the load step", time.Since(step).Round(10*time.Millisecond))
	eventually(t, "4 replicas serving", 20*time.Second, func() bool { l, _ := fe.LoadOf("auto"); return l.Replicas == 4 })
	stop()
	if bad.Load() != 0 {
		t.Errorf("%d requests failed under the load step", bad.Load())
	}
	quiet := time.Now()
	if replicas() != 4 {
		t.Fatal("scaled down at once: scale-down must wait for the quiet period")
	}
	eventually(t, "scaled down to 1 after the quiet period", 15*time.Second, func() bool { return replicas() == 1 })
	// The last busy sample may be up to one refresh period older than the
	// end of the load.
	if d := time.Since(quiet); d < 2*time.Second {
		t.Fatalf("scaled down after %s, before the 3 s quiet period (less one refresh)", d)
	}
}

// TestSeveralFrontendsShareReplicas: two front ends (serving on their pod
// IPs) and one replica taking one request at a time. Requests arrive at
// both; the replica never sees two at once, and every request is served
// (the front end without slots forwards to the one that has them).
func TestSeveralFrontendsShareReplicas(t *testing.T) {
	kube := clusterClient(t)
	ctx := context.Background()
	ns := "fe-multi"
	kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
	feLabels := map[string]string{"app.kubernetes.io/name": "berth-fe"}
	two := int32(2)
	if _, err := kube.AppsV1().Deployments(ns).Create(ctx, &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "berth-fe"},
		Spec: appsv1.DeploymentSpec{Replicas: &two, Selector: &metav1.LabelSelector{MatchLabels: feLabels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: feLabels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "fe", Image: "example/berth:1"}}}}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	deploy(t, kube, "models-c", "shared", 1)
	ps := runPodServers(t, kube, "models-c", "shared", 5001)
	putRoute(t, kube, frontend.Route{Service: "shared", Namespace: "models-c", Selector: map[string]string{"app": "shared"}, Port: 5001,
		Auth: frontend.AuthNone, MaxConcurrentRequestsPerContainer: 1, MaxQueueWaitMs: 10000})
	var fePods []corev1.Pod
	eventually(t, "two front end pods with IPs", 20*time.Second, func() bool {
		l, _ := kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=berth-fe"})
		fePods = nil
		for _, p := range l.Items {
			if p.Status.PodIP != "" && p.Status.Phase == corev1.PodRunning {
				fePods = append(fePods, p)
			}
		}
		return len(fePods) == 2
	})
	var urls []string
	var fes []*frontend.Frontend
	for _, p := range fePods {
		fe := frontend.New(slog.New(slog.NewTextHandler(io.Discard, nil)))
		w := &frontend.Watcher{Client: kube, Frontend: fe, Namespace: ns, Self: p.Name, PeerPort: 8080}
		wctx, cancel := context.WithCancel(ctx)
		t.Cleanup(cancel)
		go w.Run(wctx)
		ln, err := net.Listen("tcp", net.JoinHostPort(p.Status.PodIP, "8080"))
		if err != nil {
			t.Fatal(err)
		}
		frontend.ServeListenerForTest(t, fe.Handler(), ln)
		urls = append(urls, "http://"+ln.Addr().String()+"/api/v1/service/shared/score")
		fes = append(fes, fe)
	}
	eventually(t, "the replica assigned to exactly one front end, the other forwarding", 20*time.Second, func() bool {
		a, okA := fes[0].LoadOf("shared")
		b, okB := fes[1].LoadOf("shared")
		if !okA || !okB || a.Replicas+b.Replicas != 1 {
			return false
		}
		for _, fe := range fes {
			rec := httptest.NewRecorder()
			fe.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/v2/models/shared/ready", nil))
			if rec.Code != 200 {
				return false
			}
		}
		return true
	})
	// Count concurrency at the replica through its pod server's hits and a
	// wrapper around the delay: the pod server handles one at a time only
	// if the front ends hold the line together.
	ps.delay.Store(int64(20 * time.Millisecond))
	var wg sync.WaitGroup
	var fails atomic.Int32
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			if code, body := score(urls[i%2], ""); code != 200 {
				if fails.Add(1) == 1 {
					t.Logf("first failure at front end %d: %d %s", i%2, code, body)
				}
			}
		}(i)
	}
	wg.Wait()
	if fails.Load() != 0 {
		t.Fatalf("%d of 20 requests failed", fails.Load())
	}
	total := int32(0)
	ps.hits.Range(func(_, v any) bool { total += v.(*atomic.Int32).Load(); return true })
	if total != 20 {
		t.Fatalf("the replica got %d requests, want 20", total)
	}
	if p := ps.peak.Load(); p != 1 {
		t.Fatalf("the replica saw %d requests at once across the front ends, limit 1", p)
	}
}
