package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/berth-ml/berth/api"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// coldStartRuns is how many cold starts the scale-to-zero tests time
// (BERTH_COLDSTART_RUNS, default 1; bench/coldstart.sh asks for 5). The
// times are printed, never asserted on.
func coldStartRuns() int {
	if n, err := strconv.Atoi(os.Getenv("BERTH_COLDSTART_RUNS")); err == nil && n > 0 {
		return n
	}
	return 1
}

// coldStarts waits runs times until zero() says the service has no
// replica, then times a request, which must be answered 200; it logs each
// time and the median.
func coldStarts(t *testing.T, where string, runs int, zero func() bool, score func() (int, string)) {
	t.Helper()
	var times []time.Duration
	for i := range runs {
		eventually(t, 60*time.Second, fmt.Sprintf("scaled to zero (run %d)", i+1), zero)
		start := time.Now()
		code, out := score()
		took := time.Since(start)
		if code != http.StatusOK || !strings.Contains(out, `"predictions":["setosa"]`) {
			t.Fatalf("the request at zero replicas (run %d): %d %s", i+1, code, out)
		}
		t.Logf("cold start %d on %s: %s", i+1, where, took.Round(time.Millisecond))
		times = append(times, took)
	}
	slices.Sort(times)
	t.Logf("cold start on %s: median of %d: %s", where, runs, times[len(times)/2].Round(time.Millisecond))
}

// TestLocalScaleToZero: on the local compute, a service deployed with
// --autoscale-min 0 --scale-to-zero-after 2s stops its last process once
// idle; a request then waits while a replica starts and is answered 200.
// A fixed --replicas count with --autoscale-min 0 is refused, from the CLI
// and through the API, and changes nothing.
func TestLocalScaleToZero(t *testing.T) {
	l := deployLocalIrisWith(t, []string{"--autoscale-min", "0", "--scale-to-zero-after", "2s"})
	if a := l.service.Autoscale; a == nil || !a.Enabled || a.MinReplicas != 0 || a.ScaleToZeroAfterSeconds != 2 || l.service.ColdStartTimeoutMs != 60000 {
		t.Fatalf("deployed: %+v cold start %d", a, l.service.ColdStartTimeoutMs)
	}
	if r := berth(t, l.env, "service", "show", "-n", "iris"); !strings.Contains(r.stdout, "ScaleToZeroAfterSeconds") || !strings.Contains(r.stdout, "0-10") {
		t.Errorf("service show: %+v", r)
	}

	// Bad input: a fixed count never scales to zero.
	cmd := append([]string{"--compute", "laptop", "--model", "iris"}, commandFlags(berthBin, "model-server")...)
	want := "--replicas 3 is a fixed count, which never scales to zero: give --replicas or --autoscale-min 0, not both"
	if r := berth(t, l.env, append([]string{"service", "deploy", "-n", "other", "--autoscale-min", "0", "--replicas", "3"}, cmd...)...); r.code != 2 || !strings.Contains(r.stderr, want) {
		t.Errorf("deploy --autoscale-min 0 --replicas 3: %+v", r)
	}
	if r := berth(t, l.env, "service", "update", "-n", "iris", "--autoscale-min", "0", "--replicas", "3"); r.code != 2 || !strings.Contains(r.stderr, want) {
		t.Errorf("update --autoscale-min 0 --replicas 3: %+v", r)
	}
	_, err := l.client.DeployService(t.Context(), "team", api.ServiceRequest{Name: "other", ServiceSpec: api.ServiceSpec{Compute: "laptop",
		Models: []string{"iris"}, Command: []string{berthBin, "model-server"}, Replicas: 3,
		Autoscale: &api.AutoscaleSettings{Enabled: true, ScaleToZeroAfterSeconds: 300}}})
	if err == nil || !strings.Contains(err.Error(), "replicas 3 is a fixed count, which never scales to zero") {
		t.Errorf("the same spec through the API: %v", err)
	}
	if r := berth(t, l.env, "service", "update", "-n", "iris", "--cold-start-timeout", "0s"); r.code != 2 || !strings.Contains(r.stderr, "--cold-start-timeout 0s must be positive") {
		t.Errorf("update --cold-start-timeout 0s: %+v", r)
	}
	var list []api.Service
	json.Unmarshal([]byte(berth(t, l.env, "service", "list", "-o", "json").stdout), &list)
	if len(list) != 1 || list[0].Autoscale.ScaleToZeroAfterSeconds != 2 || list[0].Replicas != 0 {
		t.Fatalf("after the refusals: %+v", list)
	}

	coldStarts(t, "the local compute", coldStartRuns(),
		func() bool { return len(replicaProcs(l.dir, "iris")) == 0 },
		func() (int, string) {
			return scoreVia(l.hc, l.service.ScoringURI, l.key, `{"data":[[5.1,3.5,1.4,0.2]]}`)
		})
	if len(replicaProcs(l.dir, "iris")) == 0 {
		t.Errorf("no replica process after the request")
	}
}

// TestClusterScaleToZero: on a simulated cluster whose pods run from
// Berth's image under podman, a service deployed with --autoscale-min 0
// --scale-to-zero-after 2s has its Deployment scaled to 0 by berth-fe's
// autoscaler once idle; a request through the cluster's load balancer
// then waits while a pod starts and is answered 200.
func TestClusterScaleToZero(t *testing.T) {
	t.Parallel()
	_, cl, e := newImageEnv(t)
	e.mustBerth("compute", "attach", "kubernetes", "-n", "img-1", "--kubeconfig", cl.KubeconfigPath, "--cluster-purpose", "DevTest")
	e.mustBerth("model", "register", "-n", "iris", "--path", filepath.Join("..", "models", "iris"))
	e.mustBerth(append([]string{"service", "deploy", "-n", "iris", "--compute", "img-1", "--model", "iris",
		"--autoscale-min", "0", "--scale-to-zero-after", "2s"}, commandFlags("berth", "model-server")...)...)
	var sv api.Service
	json.Unmarshal([]byte(e.mustBerth("service", "show", "-n", "iris", "-o", "json").stdout), &sv)
	var keys api.ServiceKeys
	json.Unmarshal([]byte(e.mustBerth("service", "keys", "-n", "iris", "-o", "json").stdout), &keys)
	if sv.State != api.ServiceHealthy || sv.ScoringURI == "" || keys.PrimaryKey == "" {
		t.Fatalf("service: %+v", sv)
	}
	deps := cl.Client().AppsV1().Deployments("default")
	hc := &http.Client{Timeout: 90 * time.Second}
	coldStarts(t, "the simulated cluster", coldStartRuns(),
		func() bool {
			d, err := deps.Get(t.Context(), "iris", metav1.GetOptions{})
			return err == nil && *d.Spec.Replicas == 0 && d.Status.Replicas == 0
		},
		func() (int, string) {
			return scoreVia(hc, sv.ScoringURI, keys.PrimaryKey, `{"data":[[5.1,3.5,1.4,0.2]]}`)
		})
}
