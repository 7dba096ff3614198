package e2e

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/berth-ml/berth/api"
	"github.com/berth-ml/berth/internal/simcluster"
	authv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// process starts a berth command and stops it when the test ends.
func process(t *testing.T, args ...string) *lockedBuffer {
	t.Helper()
	log, _ := stoppable(t, args...)
	return log
}

// stoppable starts a berth command that can be stopped before the test
// ends (it is stopped then at the latest).
func stoppable(t *testing.T, args ...string) (*lockedBuffer, func()) {
	cmd := exec.Command(berthBin, args...)
	log := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Error(err)
		return log, func() {}
	}
	var once sync.Once
	stop := func() {
		once.Do(func() {
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			cmd.Wait()
		})
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			t.Logf("berth %s:\n%s", strings.Join(args, " "), log.String())
		}
	})
	return log, stop
}

func scoreWith(url, key, body string) (int, string) {
	req, _ := http.NewRequest("POST", url, strings.NewReader(body))
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestServiceEndToEnd: register the iris model, deploy it to an attached
// cluster, run the model server on the pod's IP and berth-fe against the
// cluster, score with a key, rotate the key, delete the service.
func TestServiceEndToEnd(t *testing.T) {
	t.Parallel()
	cl := simcluster.StartT(t, simcluster.Options{Nodes: simcluster.Nodes(1, "4")})
	e := newAttachEnv(t)
	e.mustBerth("compute", "attach", "kubernetes", "-n", "dev-1", "--kubeconfig", cl.KubeconfigPath, "--cluster-purpose", "DevTest")
	e.mustBerth("model", "register", "-n", "iris", "--path", filepath.Join("..", "models", "iris"))
	r := e.berth("service", "deploy", "-n", "iris-svc", "--compute", "dev-1", "--model", "iris", "--model", "nope:3", "--image", "x", "--command", "y", "--auth", "both")
	for _, want := range []string{`model "nope:3" is not registered`, "give --image or --command, not both", `--auth "both" is not valid`} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("bad deploy lacks %q:\n%s", want, r.stderr)
		}
	}
	r = e.mustBerth("service", "deploy", "-n", "iris-svc", "--compute", "dev-1", "--model", "iris", "--image", "example/iris:1", "--replicas", "1", "-o", "json")
	var sv api.Service
	if err := json.Unmarshal([]byte(r.stdout), &sv); err != nil || sv.State != api.ServiceHealthy || sv.Models[0] != "iris:1" ||
		!strings.HasPrefix(sv.ScoringURI, "http://127.100.") || !strings.HasSuffix(sv.ScoringURI, "/api/v1/service/iris-svc/score") {
		t.Fatalf("deployed service: %+v\n%s", sv, r.stdout)
	}
	// The model server runs on the pod's IP, as the pod would.
	ctx := context.Background()
	pods, _ := cl.Client().CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "berth.dev/service=iris-svc"})
	if len(pods.Items) != 1 || pods.Items[0].Status.PodIP == "" {
		t.Fatalf("service pods: %+v", pods.Items)
	}
	kl := newKubelet(t, cl)
	kl.run(pods.Items[0])
	checkDeliveryRefusals(t, cl, &pods.Items[0])
	fe := freeAddr(t)
	process(t, "frontend", "--kubeconfig", cl.KubeconfigPath, "--http", fe, "--https", "", "--admin", freeAddr(t), "--autoscale=false", "--log-format", "text")
	var keys api.ServiceKeys
	json.Unmarshal([]byte(e.mustBerth("service", "keys", "-n", "iris-svc", "-o", "json").stdout), &keys)
	url := "http://" + fe + "/api/v1/service/iris-svc/score"
	body := `{"data":[[5.1,3.5,1.4,0.2],[6.7,3.0,5.2,2.3]]}`
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, out := scoreWith(url, keys.PrimaryKey, body)
		if code == 200 {
			if !strings.Contains(out, `"predictions":["setosa","virginica"]`) {
				t.Fatalf("prediction: %s", out)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("never scored: %d %s", code, out)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if code, _ := scoreWith(url, "", body); code != 401 {
		t.Fatalf("without a key: %d", code)
	}
	if code, _ := scoreWith(url, keys.SecondaryKey, body); code != 200 {
		t.Fatalf("secondary key: %d", code)
	}
	// Rotate the primary key: the old one stops working within seconds.
	var rotated api.ServiceKeys
	json.Unmarshal([]byte(e.mustBerth("service", "regen-key", "-n", "iris-svc", "--key", "primary", "-o", "json").stdout), &rotated)
	if rotated.PrimaryKey == keys.PrimaryKey || rotated.SecondaryKey != keys.SecondaryKey {
		t.Fatalf("regen: %+v", rotated)
	}
	deadline = time.Now().Add(10 * time.Second)
	for {
		old, _ := scoreWith(url, keys.PrimaryKey, body)
		fresh, _ := scoreWith(url, rotated.PrimaryKey, body)
		if old == 401 && fresh == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after rotation: old key %d, new key %d", old, fresh)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// A rolling update to a new model version under load: no request fails,
	// and the new pods fetch version 2 (its metadata says so).
	e.mustBerth("model", "register", "-n", "iris", "--path", irisVersion(t, "2"))
	stopFollow := kl.follow("iris-svc")
	defer stopFollow()
	stop := make(chan struct{})
	type result struct{ ok, failed int }
	done := make(chan result)
	go func() {
		var res result
		for {
			select {
			case <-stop:
				done <- res
				return
			default:
			}
			if code, out := scoreWith(url, rotated.PrimaryKey, body); code == 200 {
				res.ok++
			} else {
				res.failed++
				t.Logf("failed during the update: %d %s", code, out)
			}
		}
	}()
	time.Sleep(200 * time.Millisecond)
	r = e.mustBerth("service", "update", "-n", "iris-svc", "--model", "iris:2", "-o", "json")
	time.Sleep(300 * time.Millisecond)
	close(stop)
	res := <-done
	json.Unmarshal([]byte(r.stdout), &sv)
	if sv.Models[0] != "iris:2" || sv.State != api.ServiceHealthy {
		t.Fatalf("after update: %+v", sv)
	}
	if res.failed != 0 || res.ok < 10 {
		t.Fatalf("during the rolling update: %d ok, %d failed", res.ok, res.failed)
	}
	t.Logf("rolling update: %d requests, none failed", res.ok)
	after, _ := cl.Client().CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "berth.dev/service=iris-svc"})
	for _, p := range after.Items {
		if p.Name == pods.Items[0].Name {
			t.Fatalf("the first pod %s is still there: the update did not roll", p.Name)
		}
		for _, ev := range p.Spec.Containers[0].Env {
			if ev.Name == "BERTH_MODELS" && ev.Value != "iris:2" {
				t.Fatalf("pod %s serves %s", p.Name, ev.Value)
			}
		}
		if log := kl.log(p.Name); !strings.Contains(log, "serving model iris version 2") {
			t.Fatalf("pod %s did not get version 2 of the model:\n%s", p.Name, log)
		}
	}

	// An autoscaled service scales up under load (one front end decides).
	e.mustBerth("service", "deploy", "-n", "auto-svc", "--compute", "dev-1", "--model", "iris", "--image", "example/iris:1",
		"--autoscale-min", "1", "--autoscale-max", "3", "--max-queue-wait-ms", "5000", "--auth", "none")
	stopAuto := kl.follow("auto-svc")
	defer stopAuto()
	fe2 := freeAddr(t)
	process(t, "frontend", "--kubeconfig", cl.KubeconfigPath, "--http", fe2, "--https", "", "--admin", freeAddr(t), "--log-format", "text")
	autoURL := "http://" + fe2 + "/api/v1/service/auto-svc/score"
	stopLoad := make(chan struct{})
	for i := 0; i < 8; i++ {
		go func() {
			for {
				select {
				case <-stopLoad:
					return
				default:
				}
				scoreWith(autoURL, "", body)
			}
		}()
	}
	deadline = time.Now().Add(30 * time.Second)
	for {
		d, err := cl.Client().AppsV1().Deployments("default").Get(ctx, "auto-svc", metav1.GetOptions{})
		if err == nil && *d.Spec.Replicas == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the service did not scale up under load")
		}
		time.Sleep(100 * time.Millisecond)
	}
	close(stopLoad)
	e.mustBerth("service", "delete", "-n", "auto-svc")

	// Delete leaves nothing of the service.
	e.mustBerth("service", "delete", "-n", "iris-svc")
	deps, _ := cl.Client().AppsV1().Deployments("default").List(ctx, metav1.ListOptions{LabelSelector: "berth.dev/service=iris-svc"})
	cms, _ := cl.Client().CoreV1().ConfigMaps("default").List(ctx, metav1.ListOptions{LabelSelector: "berth.dev/service=iris-svc"})
	if len(deps.Items)+len(cms.Items) != 0 {
		t.Fatalf("left after delete: %d deployments, %d configmaps", len(deps.Items), len(cms.Items))
	}
	if r := e.berth("service", "show", "-n", "iris-svc"); r.code != 1 || !strings.Contains(r.stderr, "not found") {
		t.Fatalf("show after delete: %+v", r)
	}
}

// kubelet plays the part of a node's kubelet for a service's pods (kwok
// runs no containers): it mints the pod's projected service-account token,
// runs the init container's `berth model-init` with the pod's environment,
// then the model container's `berth model-server` on the pod's IP.
type kubelet struct {
	t     *testing.T
	cl    *simcluster.Cluster
	mu    sync.Mutex
	logs  map[string]*lockedBuffer
	stops map[string]func()
	// started maps each pod run to its service.
	started map[string]string
}

func newKubelet(t *testing.T, cl *simcluster.Cluster) *kubelet {
	return &kubelet{t: t, cl: cl, logs: map[string]*lockedBuffer{}, stops: map[string]func(){}, started: map[string]string{}}
}

// log is what a pod's model server printed.
func (k *kubelet) log(pod string) string {
	k.mu.Lock()
	defer k.mu.Unlock()
	if l := k.logs[pod]; l != nil {
		return l.String()
	}
	return "(pod never ran)"
}

func envOf(c corev1.Container) map[string]string {
	m := map[string]string{}
	for _, e := range c.Env {
		m[e.Name] = e.Value
	}
	return m
}

// podToken mints a token as the kubelet does for a projected
// serviceAccountToken volume: for the pod's ServiceAccount, bound to the pod.
// Tokens for another ServiceAccount are bound to nothing.
func podToken(t *testing.T, cl *simcluster.Cluster, p *corev1.Pod, sa, audience string) string {
	exp := int64(600)
	spec := authv1.TokenRequestSpec{Audiences: []string{audience}, ExpirationSeconds: &exp}
	if p.Spec.ServiceAccountName == sa {
		spec.BoundObjectRef = &authv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: p.Name, UID: p.UID}
	}
	tr, err := cl.Client().CoreV1().ServiceAccounts(p.Namespace).CreateToken(context.Background(), sa, &authv1.TokenRequest{Spec: spec}, metav1.CreateOptions{})
	if err != nil {
		t.Errorf("token for pod %s: %v", p.Name, err)
		return ""
	}
	return tr.Status.Token
}

// audienceOf is the audience of the pod's projected token volume.
func audienceOf(p *corev1.Pod) string {
	for _, v := range p.Spec.Volumes {
		if v.Projected != nil {
			for _, src := range v.Projected.Sources {
				if src.ServiceAccountToken != nil {
					return src.ServiceAccountToken.Audience
				}
			}
		}
	}
	return ""
}

// run starts a pod's containers; it reports problems with t.Errorf so it
// may run in a goroutine.
func (k *kubelet) run(p corev1.Pod) {
	t := k.t
	k.mu.Lock()
	_, seen := k.started[p.Name]
	k.started[p.Name] = p.Labels["berth.dev/service"]
	k.mu.Unlock()
	if seen {
		return
	}
	root := t.TempDir()
	modelDir := ""
	for _, ic := range p.Spec.InitContainers {
		if ic.Name != "berth-models" {
			t.Errorf("pod %s has an unexpected init container %s", p.Name, ic.Name)
			return
		}
		env := envOf(ic)
		tokenFile := filepath.Join(root, "token")
		if err := os.WriteFile(tokenFile, []byte(podToken(t, k.cl, &p, p.Spec.ServiceAccountName, audienceOf(&p))), 0o600); err != nil {
			t.Error(err)
			return
		}
		cmd := exec.Command(berthBin, append(ic.Command[1:], "--token-file", tokenFile, "--dest", filepath.Join(root, "models"), "--timeout", "30s")...)
		cmd.Env = append(os.Environ(), "BERTH_MODEL_SOURCE="+env["BERTH_MODEL_SOURCE"], "BERTH_MODELS="+env["BERTH_MODELS"])
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("init container of pod %s: %v\n%s", p.Name, err, out)
			return
		}
		// The model container sees the shared volume at the same place.
		dir := envOf(p.Spec.Containers[0])["BERTH_MODEL_DIR"]
		modelDir = filepath.Join(root, "models", strings.TrimPrefix(dir, "/var/berth/models"))
	}
	addr := net.JoinHostPort(p.Status.PodIP, "5001")
	// A deleted pod's IP can come back before its process is stopped.
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if ln, err := net.Listen("tcp", addr); err == nil {
			ln.Close()
			break
		}
	}
	args := []string{"model-server", "--listen", addr}
	if modelDir != "" {
		args = append(args, "--model-dir", modelDir)
	}
	l, stop := stoppable(t, args...)
	k.mu.Lock()
	k.logs[p.Name], k.stops[p.Name] = l, stop
	k.mu.Unlock()
}

// stopGone stops the containers of a service's pods no longer in the cluster.
func (k *kubelet) stopGone(service string, present map[string]bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	for name, stop := range k.stops {
		if k.started[name] == service && !present[name] {
			stop()
			delete(k.stops, name)
		}
	}
}

// follow runs every pod of a service as it gets an IP.
func (k *kubelet) follow(service string) func() {
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		for ctx.Err() == nil {
			pods, err := k.cl.Client().CoreV1().Pods("").List(ctx, metav1.ListOptions{LabelSelector: "berth.dev/service=" + service})
			if err == nil {
				present := map[string]bool{}
				for _, p := range pods.Items {
					present[p.Name] = true
					if p.Status.PodIP != "" {
						go k.run(p)
					}
				}
				k.stopGone(service, present)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	return cancel
}

// irisVersion is a copy of the bundled iris model whose metadata carries
// another version, to tell which version a replica got.
func irisVersion(t *testing.T, v string) string {
	dir := t.TempDir()
	src := filepath.Join("..", "models", "iris")
	for _, f := range []string{"metadata.json", "model.bin"} {
		b, err := os.ReadFile(filepath.Join(src, f))
		if err != nil {
			t.Fatal(err)
		}
		if f == "metadata.json" {
			b = []byte(strings.Replace(string(b), `"version": "1"`, `"version": "`+v+`"`, 1))
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// checkDeliveryRefusals: the delivery endpoint serves only a token minted
// for the service's own pods and for Berth's audience.
func checkDeliveryRefusals(t *testing.T, cl *simcluster.Cluster, p *corev1.Pod) {
	t.Helper()
	source := envOf(p.Spec.InitContainers[0])["BERTH_MODEL_SOURCE"]
	get := func(token string) (int, string) {
		req, _ := http.NewRequest("GET", source+"/models/iris/versions/1", nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, out := get(""); code != 401 || !strings.Contains(out, "service-account token") {
		t.Errorf("no token: %d %s", code, out)
	}
	if code, out := get(podToken(t, cl, p, p.Spec.ServiceAccountName, "https://kubernetes.default.svc.cluster.local")); code != 401 || !strings.Contains(out, "did not accept the token for audience berth:") {
		t.Errorf("a token for another audience: %d %s", code, out)
	}
	if code, out := get(podToken(t, cl, p, "default", audienceOf(p))); code != 403 || !strings.Contains(out, "system:serviceaccount:default:default, not to the pods of service iris-svc") {
		t.Errorf("another ServiceAccount's token: %d %s", code, out)
	}
	good := podToken(t, cl, p, p.Spec.ServiceAccountName, audienceOf(p))
	if code, out := get(good); code != 200 {
		t.Errorf("the pod's own token: %d %s", code, out)
	}
	req, _ := http.NewRequest("GET", source+"/models/iris/versions/7", nil)
	req.Header.Set("Authorization", "Bearer "+good)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 403 {
		t.Errorf("a model the service does not use: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
}
