package e2e

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-ml/berth/api"
	"github.com/berth-ml/berth/internal/installer"
	"github.com/berth-ml/berth/internal/testenv/imagetest"
	"github.com/berth-ml/berth/internal/testenv/simcluster"
	"github.com/berth-ml/berth/internal/testenv/simcluster/kubelet"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// podmanPS lists the names of running containers of this process's
// simulated clusters whose names contain part.
func podmanPS(t *testing.T, part string) []string {
	t.Helper()
	out, err := exec.Command("podman", append(append([]string{}, kubelet.PodmanFlags...), "ps",
		"--filter", "label="+kubelet.OwnerLabel, "--format", "{{.Names}}")...).Output()
	if err != nil {
		t.Fatalf("podman ps: %v", err)
	}
	var names []string
	for _, n := range strings.Fields(string(out)) {
		if strings.Contains(n, part) {
			names = append(names, n)
		}
	}
	return names
}

// newImageEnv starts a simulated cluster that runs every pod from
// Berth's image under podman, and a server whose pods run that image.
func newImageEnv(t *testing.T) (string, *simcluster.Cluster, *attachEnv) {
	t.Helper()
	image := imagetest.Image(t)
	cl := simcluster.StartT(t, simcluster.Options{Nodes: simcluster.Nodes(1, "4"), Containers: true})

	// The server runs its own version from the image's repository: the
	// image built from this commit carries that tag.
	var v struct {
		Client struct{ Version string } `json:"client"`
	}
	json.Unmarshal([]byte(berth(t, nil, "version", "--client", "-o", "json").stdout), &v)
	repo, tag, _ := strings.Cut(image, ":")
	serverArgs := []string{"--image-repository", repo}
	if tag != v.Client.Version {
		t.Logf("the image's tag %s is not this binary's version %s (built from another tree): running it with --frontend-image", tag, v.Client.Version)
		serverArgs = []string{"--frontend-image", image}
	}
	return image, cl, newAttachEnv(t, append(serverArgs, "--metrics-interval", "1s")...)
}

// TestClusterCrashLoopFailsTheDeploy: on a cluster whose pods really run,
// a model server that exits at once fails its deploy within 30 s with
// ReplicaCrashLoop and the server's last line (which the kubelet keeps in
// the container's status), and `service show` carries the error.
func TestClusterCrashLoopFailsTheDeploy(t *testing.T) {
	t.Parallel()
	_, cl, e := newImageEnv(t)
	e.mustBerth("compute", "attach", "kubernetes", "-n", "img-1", "--kubeconfig", cl.KubeconfigPath, "--cluster-purpose", "DevTest")
	e.mustBerth("model", "register", "-n", "iris", "--path", filepath.Join("..", "models", "iris"))
	last := modelServerGivesUp(t)
	start := time.Now()
	r := e.berth(append([]string{"service", "deploy", "-n", "crash", "--compute", "img-1", "--model", "iris", "--replicas", "1"},
		commandFlags("berth", "model-server", "--model-dir", "/no/such/model")...)...)
	took := time.Since(start)
	if r.code != 1 || !strings.Contains(r.stderr, "(ReplicaCrashLoop)") || !strings.Contains(r.stderr, " of crash exited 3 times (CrashLoopBackOff; last: exit code 1)") ||
		!strings.Contains(r.stderr, last) {
		t.Fatalf("deploy of a crashing model server: %+v", r)
	}
	t.Logf("the deploy failed after %s", took.Round(time.Millisecond))
	if took > 30*time.Second {
		t.Errorf("the deploy failed after %s, want within 30s", took)
	}
	if !strings.Contains(r.stderr, "exited (exit code 1); its last lines:\n") {
		t.Errorf("no exit event:\n%s", r.stderr)
	}
	var sv api.Service
	json.Unmarshal([]byte(e.mustBerth("service", "show", "-n", "crash", "-o", "json").stdout), &sv)
	if sv.State != api.ServiceFailed || len(sv.Errors) != 1 || sv.Errors[0].Code != api.CodeReplicaCrashLoop || !strings.Contains(sv.Errors[0].Message, last) {
		t.Fatalf("service show after the crash loop: %+v", sv)
	}
	// The pod's logs come through the API server as from a node's kubelet:
	// the crashed container's with --previous; -f follows the next run's.
	if r := e.mustBerth("service", "logs", "-n", "crash", "--previous"); !strings.Contains(r.stdout, "==> crash-") || !strings.Contains(r.stdout, last) {
		t.Fatalf("logs --previous: %+v", r)
	}
	waitFor, ended := startBerth(t, e.env, "service", "logs", "-n", "crash", "-f", "--tail", "1")
	waitFor("==> crash-", 10*time.Second)
	eventually(t, 40*time.Second, "the next crash's last line, followed", func() bool { return strings.Count(waitFor("", 0), last) >= 2 })
	select {
	case <-ended:
		t.Fatal("logs -f ended while the pod runs")
	default:
	}
}

// TestImageEndToEnd runs Berth's main path with every pod from Berth's
// image under podman, as a real kubelet would run it: attach a cluster
// (berth-fe from the image, reading the cluster with its mounted
// service-account token), deploy the bundled model (its init container
// fetches the model from the server with the pod's projected token, the
// model server serves it), score over HTTPS with a key through the
// cluster's load balancer, then detach, which leaves no container.
func TestImageEndToEnd(t *testing.T) {
	t.Parallel()
	image, cl, e := newImageEnv(t)
	dir := t.TempDir()
	ca := newTestCA(t)
	cert, key := ca.leaf(t, dir, []string{"scoring.berth.test"}, time.Now().AddDate(0, 2, 0))
	e.mustBerth("compute", "attach", "kubernetes", "-n", "img-1", "--kubeconfig", cl.KubeconfigPath, "--cluster-purpose", "DevTest",
		"--ssl-cert-file", cert, "--ssl-key-file", key, "--ssl-cname", "scoring.berth.test")
	c := e.show("img-1")
	if c.Endpoint == "" || c.SSLConfiguration.Status != api.SSLEnabled {
		t.Fatalf("attached compute: %+v", c)
	}
	ctx := context.Background()
	fePods, err := cl.Client().CoreV1().Pods(installer.Namespace).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=berth-fe"})
	if err != nil || len(fePods.Items) != 1 {
		t.Fatalf("berth-fe pods: %v %+v", err, fePods)
	}
	fe := &fePods.Items[0]
	if got := fe.Spec.Containers[0].Image; got != image {
		t.Errorf("berth-fe runs %s, want %s", got, image)
	}
	if names := podmanPS(t, fe.Name); len(names) != 1 {
		t.Errorf("podman ps shows %v for pod %s", names, fe.Name)
	}

	e.mustBerth("model", "register", "-n", "iris", "--path", filepath.Join("..", "models", "iris"))
	e.mustBerth("service", "deploy", "-n", "iris", "--compute", "img-1", "--model", "iris", "--command", "berth", "--command", "model-server", "--replicas", "1",
		"--log-requests", "100")
	var sv api.Service
	json.Unmarshal([]byte(e.mustBerth("service", "show", "-n", "iris", "-o", "json").stdout), &sv)
	if sv.State != api.ServiceHealthy || sv.ScoringURI != "https://scoring.berth.test/api/v1/service/iris/score" {
		t.Fatalf("service: %+v", sv)
	}
	pods, err := cl.Client().CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "berth.dev/service=iris"})
	if err != nil || len(pods.Items) != 1 {
		t.Fatalf("service pods: %v %+v", err, pods)
	}
	p := &pods.Items[0]
	if st := p.Status.InitContainerStatuses; len(st) != 1 || st[0].State.Terminated == nil || st[0].State.Terminated.ExitCode != 0 {
		t.Errorf("the model init container did not complete: %+v", st)
	}
	if names := podmanPS(t, p.Name); len(names) != 1 {
		t.Errorf("podman ps shows %v for pod %s", names, p.Name)
	}

	// Score through the load balancer's address, as a client that
	// resolves the certificate's name to it.
	var keys api.ServiceKeys
	json.Unmarshal([]byte(e.mustBerth("service", "keys", "-n", "iris", "-o", "json").stdout), &keys)
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: ca.pool},
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			if addr != "scoring.berth.test:443" {
				return nil, fmt.Errorf("unexpected address %s", addr)
			}
			return (&net.Dialer{}).DialContext(ctx, network, net.JoinHostPort(c.Endpoint, "443"))
		}}}
	score := func(key string) (int, string) {
		return scoreVia(hc, sv.ScoringURI, key, `{"data":[[5.1,3.5,1.4,0.2],[6.7,3.0,5.2,2.3]]}`)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		code, out := score(keys.PrimaryKey)
		if code == 200 {
			if !strings.Contains(out, `"predictions":["setosa","virginica"]`) {
				t.Fatalf("prediction: %s", out)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("never scored over HTTPS: %d %s\nberth-fe:\n%s\nmodel:\n%s", code, out, cl.Kubelet.Logs(fe, fe.Spec.Containers[0].Name), cl.Kubelet.Logs(p, "model"))
		}
		time.Sleep(200 * time.Millisecond)
	}
	if code, out := score(""); code != 401 {
		t.Errorf("without a key: %d %s", code, out)
	}
	// The server reads what berth-fe served from its admin port, through
	// the API server's proxy to the pod.
	waitTraffic(t, e.berth, "iris", 2, 1)
	// berth-fe posted the requests it logged (the scored ones) to the
	// server, which filed them in its artifact store.
	if es := waitLogs(t, e.berth, "iris", 1); len(es) == 0 || es[len(es)-1].Status != 200 || !strings.Contains(es[len(es)-1].Response, "virginica") {
		t.Errorf("request logs from the cluster's front end: %+v", es)
	}
	// Only the front end's pods may report: no token, or another pod's
	// token for the same audience, is refused.
	// The same holds for its request logs.
	for _, report := range []string{e.srv.url() + api.FrontendMetricsPath(c.ID), e.srv.url() + api.RequestLogsPath(c.ID)} {
		for _, tc := range []struct {
			token string
			want  int
		}{{"", 401}, {"not-a-token", 401}, {podToken(t, cl, p, "berth-svc-iris", "berth:"+c.AttachmentID), 403}} {
			req, _ := http.NewRequest("POST", report, strings.NewReader("berth_fe_requests_total{service=\"iris\",kind=\"score\",code=\"200\"} 1e9\n"))
			req.Header.Set("Authorization", "Bearer "+tc.token)
			resp, err := http.DefaultClient.Do(req)
			if err != nil || resp.StatusCode != tc.want {
				t.Errorf("report to %s with token %.12q: %v %v, want %d", report, tc.token, err, resp, tc.want)
			}
			if resp != nil {
				resp.Body.Close()
			}
		}
	}

	// Detach removes everything Berth installed, and so every container.
	e.mustBerth("service", "delete", "-n", "iris")
	e.mustBerth("compute", "detach", "-n", "img-1")
	waitNoBerthObjects(t, cl)
	deadline = time.Now().Add(30 * time.Second)
	for {
		left := append(podmanPS(t, fe.Name), podmanPS(t, p.Name)...)
		if len(left) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("containers left after detach: %v", left)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
