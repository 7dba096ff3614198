package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berth-ml/berth/api"
	"github.com/berth-ml/berth/client"
	"github.com/berth-ml/berth/internal/testenv/imagetest"
	"github.com/berth-ml/berth/internal/testenv/simcluster"
	"github.com/berth-ml/berth/internal/testenv/simcluster/kubelet"
	"github.com/berth-ml/berth/internal/testenv/testdb"
	"github.com/berth-ml/berth/internal/testenv/tests3"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/restmapper"
)

// chartDir is the chart under test, from the e2e folder.
const chartDir = "../deploy/helm/berth"

// helmBin is the Helm CLI hack/helm.sh builds (BERTH_HELM, else
// .cache/helm/bin/helm); the tests skip without it unless
// BERTH_REQUIRE_HELM=1.
func helmBin(t *testing.T) string {
	t.Helper()
	bin := os.Getenv("BERTH_HELM")
	if bin == "" {
		bin, _ = filepath.Abs("../.cache/helm/bin/helm")
	}
	if _, err := os.Stat(bin); err != nil {
		if os.Getenv("BERTH_REQUIRE_HELM") == "1" {
			t.Fatalf("helm: %v (build it with ./hack/helm.sh)", err)
		}
		t.Skipf("helm is not built (./hack/helm.sh): %v", err)
	}
	return bin
}

// helm runs the Helm CLI with a private home (no user repositories or
// plugins) and returns its output and exit code.
func helm(t *testing.T, kubeconfig string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(helmBin(t), args...)
	home := t.TempDir()
	cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+filepath.Join(home, "cache"), "HELM_CONFIG_HOME="+filepath.Join(home, "config"),
		"HELM_DATA_HOME="+filepath.Join(home, "data"), "KUBECONFIG="+kubeconfig)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatal(err)
	}
	return out.String(), errb.String(), cmd.ProcessState.ExitCode()
}

// mustHelm is helm that fails the test on a non-zero exit.
func mustHelm(t *testing.T, kubeconfig string, args ...string) string {
	t.Helper()
	out, errs, code := helm(t, kubeconfig, args...)
	if code != 0 {
		t.Fatalf("helm %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errs)
	}
	return out
}

// manifests splits helm template's output into objects.
func manifests(t *testing.T, rendered string) []*unstructured.Unstructured {
	t.Helper()
	dec := utilyaml.NewYAMLOrJSONDecoder(strings.NewReader(rendered), 4096)
	var objs []*unstructured.Unstructured
	for {
		u := &unstructured.Unstructured{}
		if err := dec.Decode(&u.Object); errors.Is(err, io.EOF) {
			return objs
		} else if err != nil {
			t.Fatalf("decode rendered chart: %v\n%s", err, rendered)
		}
		if len(u.Object) > 0 {
			objs = append(objs, u)
		}
	}
}

// chartValueSets are the value sets the chart is rendered and validated
// with: the defaults, a production install (S3 with credentials, Ingress
// with TLS, NetworkPolicy, the operator's own secrets, a load balancer)
// and a single replica with its own service account and extras.
var chartValueSets = map[string][]string{
	"defaults": nil,
	"production": {"--set", "replicaCount=3", "--set", "artifactStore.url=s3://models/berth?region=eu-west-1",
		"--set", "artifactStore.existingSecret=berth-s3", "--set", "publicURL=https://berth.example.com",
		"--set", "ingress.enabled=true", "--set", "ingress.host=berth.example.com", "--set", "ingress.tlsSecretName=berth-tls",
		"--set", "ingress.className=nginx", "--set", "networkPolicy.enabled=true",
		"--set-json", `networkPolicy.from=[{"namespaceSelector":{"matchLabels":{"team":"ml"}}}]`,
		"--set", "secretKey.existingSecret=my-key", "--set", "ownerToken.existingSecret=my-token",
		"--set", "service.type=LoadBalancer", "--set", "image.tag=1.2.3", "--set", "resources.limits.cpu=2"},
	"single": {"--set", "replicaCount=1", "--set", "podDisruptionBudget.enabled=false", "--set", "serviceAccount.create=false",
		"--set", "serviceAccount.name=berth-sa", "--set", "service.type=NodePort", "--set", "server.logFormat=text",
		"--set", "server.frontendImage=mirror.example:5000/ml/berth:1.2.3", "--set-json", `server.extraArgs=["--reconcile-interval=10m"]`,
		"--set-json", `server.extraEnv=[{"name":"SSL_CERT_DIR","value":"/etc/berth-ca"}]`, "--set", "database.existingSecret=pg", "--set", "database.key=dsn"},
}

// TestHelmChart: `helm lint` is clean; the chart rendered with each value
// set is accepted by a Kubernetes API server (server-side apply, dry run:
// admission and validation, nothing stored) and carries the probes, the
// security settings and no cluster rights; the schema refuses bad values
// with messages that name them.
func TestHelmChart(t *testing.T) {
	t.Parallel()
	out := mustHelm(t, "", "lint", chartDir)
	if strings.Contains(out, "[ERROR]") || strings.Contains(out, "[WARNING]") {
		t.Fatalf("helm lint:\n%s", out)
	}
	cl := simcluster.StartT(t, simcluster.Options{})
	ctx := context.Background()
	const ns = "berth-dry"
	if _, err := cl.Client().CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	dyn, err := dynamic.NewForConfig(cl.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(cl.Client().Discovery()))
	for name, set := range chartValueSets {
		t.Run(name, func(t *testing.T) {
			rendered := mustHelm(t, "", append([]string{"template", "berth", chartDir, "--namespace", ns}, set...)...)
			kinds := map[string]int{}
			for _, u := range manifests(t, rendered) {
				kinds[u.GetKind()]++
				gvk := u.GroupVersionKind()
				m, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
				if err != nil {
					t.Fatalf("%s: %v", gvk, err)
				}
				if _, err := dyn.Resource(m.Resource).Namespace(ns).Apply(ctx, u.GetName(), u,
					metav1.ApplyOptions{FieldManager: "helm-test", DryRun: []string{metav1.DryRunAll}}); err != nil {
					t.Errorf("the API server refused %s %s: %v", u.GetKind(), u.GetName(), err)
				}
				if u.GetKind() == "Deployment" {
					checkServerPod(t, name, u)
				}
			}
			for _, k := range []string{"Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"} {
				if kinds[k] != 0 {
					t.Errorf("the chart grants cluster rights: %d %s", kinds[k], k)
				}
			}
			want := map[string]map[string]int{
				"defaults":   {"Deployment": 1, "Service": 1, "PodDisruptionBudget": 1, "ServiceAccount": 1, "Secret": 1},
				"production": {"Deployment": 1, "Service": 1, "PodDisruptionBudget": 1, "ServiceAccount": 1, "Ingress": 1, "NetworkPolicy": 1},
				"single":     {"Deployment": 1, "Service": 1, "Secret": 1},
			}[name]
			for k, n := range kinds {
				if want[k] != n {
					t.Errorf("rendered %d %s, want %d (all: %v)", n, k, want[k], kinds)
				}
			}
		})
	}

	// The schema refuses bad values, naming them, before anything renders.
	for _, c := range []struct{ set, want string }{
		{"replicaCount=-1", "at '/replicaCount': minimum: got -1, want 0"},
		{"database.existingSecret=", "at '/database/existingSecret': minLength: got 0, want 1"},
		{"database.existingSecret=null", "at '/database': missing property 'existingSecret'"},
		{"image.tag=1.0 beta", "at '/image/tag': '1.0 beta' does not match pattern"},
		{"artifactStore.url=http://minio:9000/b", "at '/artifactStore/url'"},
		{"ingress.enabled=true", "at '/ingress/host': minLength: got 0, want 1"},
	} {
		out, errs, code := helm(t, "", "template", "berth", chartDir, "--set", c.set)
		if code == 0 || !strings.Contains(errs, "values don't meet the specifications of the schema") || !strings.Contains(errs, c.want) {
			t.Errorf("--set %s: exit %d, want a refusal saying %q:\n%s%s", c.set, code, c.want, errs, out)
		}
	}
}

// checkServerPod checks what every value set must keep in the server's pod.
func checkServerPod(t *testing.T, set string, u *unstructured.Unstructured) {
	t.Helper()
	spec, _, _ := unstructured.NestedMap(u.Object, "spec", "template", "spec")
	containers, _, _ := unstructured.NestedSlice(spec, "containers")
	c := containers[0].(map[string]any)
	str := func(fields ...string) string { s, _, _ := unstructured.NestedString(c, fields...); return s }
	boolean := func(m map[string]any, fields ...string) bool {
		b, _, _ := unstructured.NestedBool(m, fields...)
		return b
	}
	if str("readinessProbe", "httpGet", "path") != "/readyz" || str("livenessProbe", "httpGet", "path") != "/healthz" {
		t.Errorf("%s: probes %v %v", set, c["readinessProbe"], c["livenessProbe"])
	}
	if !boolean(c, "securityContext", "readOnlyRootFilesystem") || boolean(c, "securityContext", "allowPrivilegeEscalation") ||
		!boolean(spec, "securityContext", "runAsNonRoot") || boolean(spec, "automountServiceAccountToken") {
		t.Errorf("%s: security settings: pod %v container %v", set, spec["securityContext"], c["securityContext"])
	}
	if n, _, _ := unstructured.NestedFieldNoCopy(u.Object, "spec", "replicas"); (set == "defaults") != (fmt.Sprint(n) == "2") {
		t.Errorf("%s: %v replicas", set, n)
	}
}

// chartInstall is the chart installed into a namespace of a simulated
// cluster whose pods run from Berth's image.
type chartInstall struct {
	t      *testing.T
	cl     *simcluster.Cluster
	ns     string
	url    string // http://LOAD-BALANCER-IP (the Service, port 80)
	token  string // the owner token, read from the chart's Secret
	secret map[string][]byte
	ready  time.Duration // from `helm install` to an API that answers the owner token
}

// installChart creates the namespace with the database and S3 Secrets,
// installs the chart from image (repository:tag, in podman's storage) with
// a load balancer Service, and waits until the API answers the owner token
// through it.
func installChart(t *testing.T, cl *simcluster.Cluster, ns, image, db, store string, extra ...string) *chartInstall {
	t.Helper()
	ctx := context.Background()
	kc := cl.Client()
	if _, err := kc.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string]map[string]string{
		"berth-database": {"url": db},
		"berth-s3":       {"AWS_ACCESS_KEY_ID": tests3.AccessKey, "AWS_SECRET_ACCESS_KEY": tests3.SecretKey},
	} {
		if _, err := kc.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name}, StringData: data}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	repo, tag, _ := strings.Cut(image, ":")
	start := time.Now()
	mustHelm(t, cl.KubeconfigPath, append([]string{"install", "berth", chartDir, "--namespace", ns,
		"--set", "image.repository=" + repo, "--set", "image.tag=" + tag, "--set", "image.pullPolicy=Never",
		"--set", "server.frontendImage=" + image, "--set", "server.logFormat=text",
		"--set", "artifactStore.url=" + store, "--set", "artifactStore.existingSecret=berth-s3",
		"--set", "service.type=LoadBalancer",
		// A shorter lease (default 15 s) and poll (1 s), so a deleted
		// server's operations move sooner.
		"--set-json", `server.extraArgs=["--operation-lease=4s","--operation-poll=200ms","--reconcile-interval=1h","--ready-timeout=90s"]`}, extra...)...)
	in := &chartInstall{t: t, cl: cl, ns: ns}
	eventually(t, 60*time.Second, "the chart's Secret and load balancer", func() bool {
		s, err := kc.CoreV1().Secrets(ns).Get(ctx, "berth-generated", metav1.GetOptions{})
		svc, err2 := kc.CoreV1().Services(ns).Get(ctx, "berth", metav1.GetOptions{})
		if err != nil || err2 != nil || len(svc.Status.LoadBalancer.Ingress) == 0 {
			return false
		}
		in.secret, in.token, in.url = s.Data, string(s.Data["owner-token"]), "http://"+svc.Status.LoadBalancer.Ingress[0].IP
		return true
	})
	c, _ := client.New(in.url, in.token)
	deadline := time.Now().Add(120 * time.Second)
	for {
		if _, err := c.ListWorkspaces(ctx); err == nil {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("the API at %s never answered the owner token: %v\n%s", in.url, err, in.logs())
		}
		time.Sleep(100 * time.Millisecond)
	}
	in.ready = time.Since(start)
	return in
}

// pods are the chart's server pods, not being deleted.
func (in *chartInstall) pods() []corev1.Pod {
	in.t.Helper()
	l, err := in.cl.Client().CoreV1().Pods(in.ns).List(context.Background(), metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=berth"})
	if err != nil {
		in.t.Fatal(err)
	}
	var out []corev1.Pod
	for _, p := range l.Items {
		if p.DeletionTimestamp == nil {
			out = append(out, p)
		}
	}
	return out
}

// logs are the server containers' logs, for failures.
func (in *chartInstall) logs() string {
	var b strings.Builder
	for _, p := range in.pods() {
		fmt.Fprintf(&b, "==> %s\n%s\n", p.Name, in.cl.Kubelet.Logs(&p, "server"))
	}
	return b.String()
}

// serverRunning is the server id (as servers log it at start:
// server_id=…) in the operation's last "Started …" or "Resuming …" event,
// and the pod that runs that server, if it still exists.
func (in *chartInstall) serverRunning(events []api.Event) (string, *corev1.Pod) {
	id := ""
	for _, ev := range events {
		if strings.HasPrefix(ev.Message, "Started ") || strings.HasPrefix(ev.Message, "Resuming ") {
			_, rest, _ := strings.Cut(ev.Message, " on server ")
			id, _, _ = strings.Cut(rest, " ")
		}
	}
	for _, p := range in.pods() {
		if m := serverIDRe.FindStringSubmatch(in.cl.Kubelet.Logs(&p, "server")); id != "" && m != nil && m[1] == id {
			return id, &p
		}
	}
	return id, nil
}

// TestHelmInstall installs the chart for real into a simulated cluster
// whose pods run from Berth's image, with PostgreSQL on the host and MinIO
// as the bucket: the owner token reaches the operator through the chart's
// Secret; a rolling upgrade to the next build (the image built again
// with another version, the public URL set) shows a client polling every 100 ms no error; a second
// cluster is attached through the in-cluster control plane and a model
// deployed to it and scored, and the server pod running each of those
// operations is deleted mid-way: the other replica finishes them.
func TestHelmInstall(t *testing.T) {
	t.Parallel()
	helmBin(t)
	image := imagetest.Image(t)
	s3 := tests3.Start(t)
	bucket := s3.Bucket(t)
	a := simcluster.StartT(t, simcluster.Options{Nodes: simcluster.Nodes(2, "4"), Containers: true})
	b := simcluster.StartT(t, simcluster.Options{Nodes: simcluster.Nodes(1, "4"), Containers: true})
	ctx := context.Background()

	in := installChart(t, a, "berth", image, testdb.Postgres(t, ""), s3.URL(bucket, "berth"))
	readyTimes := []time.Duration{in.ready}
	t.Logf("chart install to a ready API: %s", in.ready.Round(time.Millisecond))
	if pods := in.pods(); len(pods) != 2 {
		t.Fatalf("%d server pods, want 2", len(pods))
	}
	if strings.Contains(in.logs(), in.token) || !strings.HasPrefix(in.token, "bth_") {
		t.Fatalf("the owner token is logged or malformed:\n%s", in.logs())
	}
	owner, _ := client.New(in.url, in.token)
	if ts, err := owner.ListTokens(ctx); err != nil || len(ts) != 1 || ts[0].Role != api.RoleOwner {
		t.Fatalf("tokens: %+v %v (want the one adopted owner token)", ts, err)
	}

	// The next build: Berth's image built again with another version
	// stamped in (another binary, as a release would be), with the public
	// URL set (pods in the attached cluster fetch models from it), so
	// every pod rolls. A client polls an authenticated call every 100 ms.
	repo, tag, _ := strings.Cut(image, ":")
	next := repo + ":" + tag + "-next"
	archive := filepath.Join(t.TempDir(), "next.tar")
	build := exec.Command("go", "run", "./hack/image", "build", "--version", tag+"-next", "--tag", next, "--out", archive)
	build.Dir = ".."
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the next image: %v\n%s", err, out)
	}
	if out, err := exec.Command("podman", append(append([]string{}, kubelet.PodmanFlags...), "load", "-i", archive)...).CombinedOutput(); err != nil {
		t.Fatalf("podman load: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		exec.Command("podman", append(append([]string{}, kubelet.PodmanFlags...), "rmi", next)...).Run()
	})
	var polls, pollErrs atomic.Int64
	var firstErr atomic.Value
	stop := make(chan struct{})
	polled := make(chan struct{})
	go func() {
		defer close(polled)
		hc := &http.Client{Timeout: 5 * time.Second}
		for tick := time.NewTicker(100 * time.Millisecond); ; {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			req, _ := http.NewRequest("GET", in.url+"/api/v1/workspaces", nil)
			req.Header.Set("Authorization", "Bearer "+in.token)
			resp, err := hc.Do(req)
			polls.Add(1)
			if err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					err = fmt.Errorf("HTTP %d", resp.StatusCode)
				}
			}
			if err != nil {
				pollErrs.Add(1)
				firstErr.CompareAndSwap(nil, err.Error())
			}
		}
	}()
	upStart := time.Now()
	mustHelm(t, a.KubeconfigPath, "upgrade", "berth", chartDir, "--namespace", "berth", "--reuse-values",
		"--set", "image.tag="+tag+"-next", "--set", "publicURL="+in.url)
	eventually(t, 120*time.Second, "the rolling upgrade", func() bool {
		d, err := a.Client().AppsV1().Deployments("berth").Get(ctx, "berth", metav1.GetOptions{})
		if err != nil || d.Status.ObservedGeneration < d.Generation || d.Status.UpdatedReplicas != 2 || d.Status.Replicas != 2 || d.Status.ReadyReplicas != 2 {
			return false
		}
		pods := in.pods()
		for _, p := range pods {
			if p.Spec.Containers[0].Image != next {
				return false
			}
		}
		return len(pods) == 2
	})
	rolled := time.Since(upStart)
	time.Sleep(time.Second) // the old pods' last connections
	close(stop)
	<-polled
	t.Logf("rolling upgrade: %s; %d requests polled every 100 ms, %d API errors (first: %v)", rolled.Round(time.Millisecond), polls.Load(), pollErrs.Load(), firstErr.Load())
	if pollErrs.Load() != 0 {
		t.Errorf("%d of %d polls failed during the rolling upgrade, first: %v", pollErrs.Load(), polls.Load(), firstErr.Load())
	}
	if v, err := owner.ServerVersion(ctx); err != nil || v.Version != tag+"-next" {
		t.Errorf("after the upgrade the server reports %+v (%v), want version %s-next", v, err, tag)
	}
	if s, err := a.Client().CoreV1().Secrets("berth").Get(ctx, "berth-generated", metav1.GetOptions{}); err != nil ||
		!bytes.Equal(s.Data["owner-token"], in.secret["owner-token"]) || !bytes.Equal(s.Data["secret-key"], in.secret["secret-key"]) {
		t.Fatalf("the generated Secret changed on upgrade (lookup should keep it): %v", err)
	}

	// Attach the second cluster through the in-cluster control plane, and
	// delete the server pod that runs the attach while it runs.
	if _, err := owner.CreateWorkspace(ctx, api.WorkspaceCreateRequest{Name: "team"}); err != nil {
		t.Fatal(err)
	}
	env := []string{"BERTH_SERVER=" + in.url, "BERTH_TOKEN=" + in.token, "BERTH_WORKSPACE=team"}
	run := func(args ...string) result { return berth(t, env, args...) }
	var inFlight, completed int
	interrupt := func(args ...string) {
		t.Helper()
		r := run(append(args, "--no-wait", "-o", "json")...)
		var op api.Operation
		if err := json.Unmarshal([]byte(r.stdout), &op); err != nil || op.ID == "" {
			t.Fatalf("berth %s: %+v", strings.Join(args, " "), r)
		}
		var victim *corev1.Pod
		var victimID string
		eventually(t, 30*time.Second, "the server running "+op.ID, func() bool {
			evs, _ := owner.ListEvents(ctx, op.ID, 0)
			victimID, victim = in.serverRunning(evs)
			return victim != nil
		})
		others := in.pods()
		if cur, _ := owner.GetOperation(ctx, op.ID); cur == nil || cur.Terminal() {
			t.Fatalf("%s ended before its server could be deleted: %+v", op.ID, cur)
		}
		inFlight++
		if err := a.Client().CoreV1().Pods("berth").Delete(ctx, victim.Name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		t.Logf("deleted pod %s while it ran %s of %s", victim.Name, op.Kind, op.TargetName)
		final := waitFinal(t, owner, op.ID)
		evs, _ := owner.ListEvents(ctx, op.ID, 0)
		var msgs []string
		for _, ev := range evs {
			msgs = append(msgs, ev.Message)
		}
		if final.State == api.OpSucceeded {
			completed++
		}
		finisher, pod := in.serverRunning(evs)
		if final.State != api.OpSucceeded || final.Attempt < 2 || finisher == victimID || pod == nil {
			t.Fatalf("%s after its server's pod was deleted: %s (attempt %d), events:\n%s\n%s", op.ID, final.State, final.Attempt, strings.Join(msgs, "\n"), in.logs())
		}
		which := "the replacement pod"
		if slices.ContainsFunc(others, func(p corev1.Pod) bool { return p.Name == pod.Name && p.Name != victim.Name }) {
			which = "the other replica"
		}
		t.Logf("%s finished on %s (pod %s, %s), attempt %d", op.ID, finisher, pod.Name, which, final.Attempt)
	}
	interrupt("compute", "attach", "kubernetes", "-n", "remote-1", "--kubeconfig", b.KubeconfigPath, "--cluster-purpose", "DevTest")
	if r := run("model", "register", "-n", "iris", "--path", filepath.Join("..", "models", "iris")); r.code != 0 {
		t.Fatalf("model register after the attach: %+v\n%s", r, in.logs())
	}
	interrupt("service", "deploy", "-n", "iris", "--compute", "remote-1", "--model", "iris", "--command", "berth", "--command", "model-server", "--replicas", "1")
	t.Logf("operations in flight when their server's pod was deleted: %d; completed by the other replica: %d; lost: %d", inFlight, completed, inFlight-completed)

	var sv api.Service
	json.Unmarshal([]byte(run("service", "show", "-n", "iris", "-o", "json").stdout), &sv)
	var keys api.ServiceKeys
	json.Unmarshal([]byte(run("service", "keys", "-n", "iris", "-o", "json").stdout), &keys)
	eventually(t, 60*time.Second, "a score through the attached cluster", func() bool {
		code, out := scoreVia(http.DefaultClient, sv.ScoringURI, keys.PrimaryKey, `{"data":[[5.1,3.5,1.4,0.2]]}`)
		return code == 200 && strings.Contains(out, `"predictions":["setosa"]`)
	})

	// Two more installs (own database and prefix each) for the median time
	// from `helm install` to a ready API.
	for _, ns := range []string{"berth-2", "berth-3"} {
		other := installChart(t, a, ns, image, testdb.Postgres(t, ""), s3.URL(bucket, ns))
		readyTimes = append(readyTimes, other.ready)
		mustHelm(t, a.KubeconfigPath, "uninstall", "berth", "--namespace", ns, "--wait")
	}
	slices.Sort(readyTimes)
	t.Logf("chart install to a ready API over %d installs: median %s (all %v)", len(readyTimes), readyTimes[1].Round(time.Millisecond), readyTimes)
}
