package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-ml/berth/api"
	"github.com/berth-ml/berth/internal/testenv"
	"github.com/berth-ml/berth/internal/testenv/simcluster"
	"github.com/berth-ml/berth/internal/testenv/simcluster/kubelet"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// process starts a berth command and stops it when the test ends.
func process(t *testing.T, args ...string) *testenv.Buffer {
	t.Helper()
	cmd := exec.Command(berthBin, args...)
	log := &testenv.Buffer{}
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		cmd.Wait()
		if t.Failed() {
			t.Logf("berth %s:\n%s", strings.Join(args, " "), log.String())
		}
	})
	return log
}

func scoreWith(url, key, body string) (int, string) {
	return scoreVia(http.DefaultClient, url, key, body)
}

// scoreVia POSTs body to a scoring URI with a key (none when empty) and
// returns the status and the answer.
func scoreVia(hc *http.Client, url, key, body string) (int, string) {
	req, _ := http.NewRequest("POST", url, strings.NewReader(body))
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	return testenv.Send(hc, req)
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
	r := e.berth("service", "deploy", "-n", "iris-svc", "--compute", "dev-1", "--model", "iris", "--model", "nope:3", "--image", "x", "--command", "y", "--auth", "both",
		"--liveness-period-seconds", "0")
	for _, want := range []string{`model "nope:3" is not registered`, "give --image or --command, not both", `--auth "both" is not valid`,
		"livenessProbe: the initial delay must be ≥ 0 and the period, timeout, success and failure thresholds ≥ 1"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("bad deploy lacks %q:\n%s", want, r.stderr)
		}
	}
	r = e.mustBerth("service", "deploy", "-n", "iris-svc", "--compute", "dev-1", "--model", "iris", "--image", "example/iris:1", "--replicas", "1",
		"--liveness-initial-delay-seconds", "30", "-o", "json")
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
	kl.Run(pods.Items[0])
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
	followCtx, stopFollow := context.WithCancel(ctx)
	defer stopFollow()
	kl.Follow(followCtx, "iris-svc")
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
	r = e.mustBerth("service", "update", "-n", "iris-svc", "--model", "iris:2", "--readiness-period-seconds", "3", "-o", "json")
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
	// Probe flags change only what they name, on deploy and on update.
	dep, err := cl.Client().AppsV1().Deployments("default").Get(ctx, "iris-svc", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	live, ready := dep.Spec.Template.Spec.Containers[0].LivenessProbe, dep.Spec.Template.Spec.Containers[0].ReadinessProbe
	if live.InitialDelaySeconds != 30 || live.PeriodSeconds != 10 || live.FailureThreshold != 3 || ready.PeriodSeconds != 3 || ready.TimeoutSeconds != 2 {
		t.Fatalf("probes: liveness %+v, readiness %+v", live, ready)
	}
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
		if log := kl.Log(p.Name); !strings.Contains(log, "serving model iris version 2") {
			t.Fatalf("pod %s did not get version 2 of the model:\n%s", p.Name, log)
		}
	}

	// An autoscaled service scales up under load (one front end decides).
	e.mustBerth("service", "deploy", "-n", "auto-svc", "--compute", "dev-1", "--model", "iris", "--image", "example/iris:1",
		"--autoscale-min", "1", "--autoscale-max", "3", "--max-queue-wait-ms", "5000", "--auth", "none")
	kl.Follow(followCtx, "auto-svc")
	fe2 := freeAddr(t)
	process(t, "frontend", "--kubeconfig", cl.KubeconfigPath, "--http", fe2, "--https", "", "--admin", freeAddr(t), "--log-format", "text")
	autoURL := "http://" + fe2 + "/api/v1/service/auto-svc/score"
	stopLoad := testenv.Load(8, func(int) { scoreWith(autoURL, "", body) })
	eventually(t, 30*time.Second, "the service scales up to 3 replicas under load", func() bool {
		d, err := cl.Client().AppsV1().Deployments("default").Get(ctx, "auto-svc", metav1.GetOptions{})
		return err == nil && *d.Spec.Replicas == 3
	})
	stopLoad()
	e.mustBerth("service", "delete", "-n", "auto-svc")

	// Delete leaves nothing of the service.
	e.mustBerth("service", "delete", "-n", "iris-svc")
	deps, _ := cl.Client().AppsV1().Deployments("default").List(ctx, metav1.ListOptions{LabelSelector: "berth.dev/service=iris-svc"})
	cms, _ := cl.Client().CoreV1().ConfigMaps("default").List(ctx, metav1.ListOptions{LabelSelector: "berth.dev/service=iris-svc"})
	sas, _ := cl.Client().CoreV1().ServiceAccounts("default").List(ctx, metav1.ListOptions{LabelSelector: "berth.dev/service=iris-svc"})
	if len(deps.Items)+len(cms.Items)+len(sas.Items) != 0 {
		t.Fatalf("left after delete: %d deployments, %d configmaps, %d service accounts", len(deps.Items), len(cms.Items), len(sas.Items))
	}
	if r := e.berth("service", "show", "-n", "iris-svc"); r.code != 1 || !strings.Contains(r.stderr, "not found") {
		t.Fatalf("show after delete: %+v", r)
	}
}

// newKubelet runs the test's service pods as processes (kwok runs no
// containers), through the real init container and model server commands.
func newKubelet(t *testing.T, cl *simcluster.Cluster) *kubelet.Kubelet {
	k := &kubelet.Kubelet{Bin: berthBin, Client: cl.Client(), Dir: t.TempDir(), Errorf: t.Errorf}
	t.Cleanup(func() {
		k.Stop()
		if t.Failed() {
			t.Logf("pods:\n%s", k.Logs())
		}
	})
	return k
}

// podToken mints a token for a pod's projected volume, or fails the test.
func podToken(t *testing.T, cl *simcluster.Cluster, p *corev1.Pod, sa, audience string) string {
	tok, err := kubelet.Token(context.Background(), cl.Client(), p, sa, audience)
	if err != nil {
		t.Error(err)
	}
	return tok
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
	source := kubelet.Env(p.Spec.InitContainers[0])["BERTH_MODEL_SOURCE"]
	get := func(token string) (int, string) {
		req, _ := http.NewRequest("GET", source+"/models/iris/versions/1", nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		return testenv.Send(http.DefaultClient, req)
	}
	if code, out := get(""); code != 401 || !strings.Contains(out, "service-account token") {
		t.Errorf("no token: %d %s", code, out)
	}
	if code, out := get(podToken(t, cl, p, p.Spec.ServiceAccountName, "https://kubernetes.default.svc.cluster.local")); code != 401 || !strings.Contains(out, "did not accept the token for audience berth:") {
		t.Errorf("a token for another audience: %d %s", code, out)
	}
	if code, out := get(podToken(t, cl, p, "default", kubelet.Audience(p))); code != 403 || !strings.Contains(out, "system:serviceaccount:default:default, not to the pods of service iris-svc") {
		t.Errorf("another ServiceAccount's token: %d %s", code, out)
	}
	good := podToken(t, cl, p, p.Spec.ServiceAccountName, kubelet.Audience(p))
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
