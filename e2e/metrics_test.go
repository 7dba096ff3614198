package e2e

import (
	"crypto/tls"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-ml/berth/api"
	"github.com/berth-ml/berth/client"
)

// localIris is the bundled iris model deployed on a local compute "laptop"
// in workspace "team", with what scoring it takes.
type localIris struct {
	dir     string // the server's data directory
	env     []string
	service api.Service
	key     string
	hc      *http.Client
	client  *client.Client
}

func deployLocalIris(t *testing.T, serverArgs ...string) *localIris {
	t.Helper()
	return deployLocalIrisWith(t, []string{"--replicas", "1"}, serverArgs...)
}

// deployLocalIrisWith deploys it with these scaling flags.
func deployLocalIrisWith(t *testing.T, scaling []string, serverArgs ...string) *localIris {
	t.Helper()
	dir := t.TempDir()
	p := startServer(t, dir, freeAddr(t), nil, serverArgs...)
	env := []string{"BERTH_SERVER=" + p.url(), "BERTH_DATA_DIR=" + dir, "BERTH_WORKSPACE=team"}
	berth(t, env, "workspace", "create", "-n", "team")
	if r := berth(t, env, "compute", "create", "local", "-n", "laptop"); r.code != 0 {
		t.Fatalf("compute create: %+v", r)
	}
	model := filepath.Join(t.TempDir(), "iris")
	os.MkdirAll(model, 0o755)
	for _, f := range []string{"metadata.json", "model.bin"} {
		b, _ := os.ReadFile(filepath.Join("..", "models", "iris", f))
		os.WriteFile(filepath.Join(model, f), b, 0o644)
	}
	if r := berth(t, env, "model", "register", "-n", "iris", "--path", model); r.code != 0 {
		t.Fatalf("register: %+v", r)
	}
	r := berth(t, env, append([]string{"service", "deploy", "-n", "iris", "--compute", "laptop", "--model", "iris",
		"--command", berthBin, "--command", "model-server", "--command", "--model-dir", "--command", "$BERTH_MODEL_DIR",
		"--command", "--listen", "--command", "127.0.0.1:$PORT", "-o", "json"}, scaling...)...)
	out := &localIris{dir: dir, env: env}
	out.client, _ = client.New(p.url(), ownerToken(t, dir))
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &out.service) != nil || out.service.State != api.ServiceHealthy {
		t.Fatalf("deploy: %+v", r)
	}
	var keys api.ServiceKeys
	json.Unmarshal([]byte(berth(t, env, "service", "keys", "-n", "iris", "-o", "json").stdout), &keys)
	out.key = keys.PrimaryKey
	pool := localCAPool(t, env, "laptop")
	out.hc = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}, Timeout: 10 * time.Second}
	return out
}

func (l *localIris) score(key string) int {
	code, _ := scoreVia(l.hc, l.service.ScoringURI, key, `{"data":[[5.1,3.5,1.4,0.2]]}`)
	return code
}

// TestServiceMetrics: what a service served shows in `berth service
// metrics` (the server reads the local front end every second here): the
// requests, the refused ones by status code, latency percentiles and the
// replicas; the compute's total counts them too; a bad --since is refused.
func TestServiceMetrics(t *testing.T) {
	l := deployLocalIris(t, "--metrics-interval", "1s")
	if r := berth(t, l.env, "service", "metrics", "-n", "iris", "--since", "25h"); r.code != 1 || !strings.Contains(r.stderr, "give a duration from 10s to 24h") {
		t.Fatalf("--since 25h: %+v", r)
	}
	for range 40 {
		if code := l.score(l.key); code != 200 {
			t.Fatalf("score: %d", code)
		}
	}
	for range 5 {
		l.score("wrong")
	}
	m := waitTraffic(t, func(args ...string) result { return berth(t, l.env, args...) }, "iris", 45, 5)
	if m.Service != "iris" || m.Compute != "laptop" || m.StepSeconds != 10 || m.Since != "10m0s" {
		t.Errorf("metrics header = %+v", m)
	}
	var latency, replicas bool
	for _, p := range m.Points {
		latency = latency || (p.LatencyP50Ms != nil && *p.LatencyP50Ms > 0 && p.LatencyP99Ms != nil && *p.LatencyP99Ms >= *p.LatencyP50Ms)
		replicas = replicas || p.ReadyReplicas == 1 && p.DesiredReplicas == 1
	}
	if !latency || !replicas {
		t.Errorf("no point with latencies (%v) or one ready of one desired replica (%v): %+v", latency, replicas, m.Points)
	}
	r := berth(t, l.env, "service", "metrics", "-n", "iris")
	if first := strings.SplitN(r.stdout, "\n", 2)[0]; r.code != 0 || !strings.Contains(first, "Req/s") || !strings.Contains(r.stdout, "401:") {
		t.Errorf("table: %+v", r)
	}
	// The compute's front end as a whole, through the API.
	cm, err := l.client.ComputeMetrics(t.Context(), "team", "laptop", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	var total float64
	for _, p := range cm.Points {
		total += p.RequestsPerSec * float64(cm.StepSeconds)
	}
	if total < 45 || cm.Service != "" {
		t.Errorf("compute metrics hold %v requests (want at least 45): %+v", total, cm)
	}
}

// waitTraffic waits up to 30 s until `berth service metrics` for the last
// 10 minutes holds at least requests requests and unauthorized 401s.
func waitTraffic(t *testing.T, run func(args ...string) result, service string, requests, unauthorized float64) api.Metrics {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		r := run("service", "metrics", "-n", service, "--since", "10m", "-o", "json")
		var m api.Metrics
		if r.code != 0 || json.Unmarshal([]byte(r.stdout), &m) != nil {
			t.Fatalf("metrics: %+v", r)
		}
		var total, refused float64
		for _, p := range m.Points {
			total += p.RequestsPerSec * float64(m.StepSeconds)
			refused += p.ErrorsPerSec["401"] * float64(m.StepSeconds)
		}
		if total >= requests && refused >= unauthorized {
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 30 s the metrics hold %v requests and %v 401s, want %v and %v: %+v", total, refused, requests, unauthorized, m)
		}
		time.Sleep(time.Second)
	}
}
