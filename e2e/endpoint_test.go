package e2e

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-ml/berth/api"
)

// TestEndpointOnLocalCompute runs the endpoint life cycle on the local
// compute (see endpointLifecycle).
func TestEndpointOnLocalCompute(t *testing.T) {
	t.Parallel()
	e := newAttachEnv(t)
	e.mustBerth("compute", "create", "local", "-n", "laptop")
	pool := localCAPool(t, e.env, "laptop")
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, MaxIdleConnsPerHost: 16}}
	endpointLifecycle(t, e, "laptop", hc, commandFlags(berthBin, "model-server", "--model-dir", "$BERTH_MODEL_DIR", "--listen", "127.0.0.1:$PORT"))
}

// TestEndpointOnCluster runs the endpoint life cycle on the simulated
// cluster, every pod (berth-fe and the versions' model servers) from
// Berth's image under podman.
func TestEndpointOnCluster(t *testing.T) {
	t.Parallel()
	_, cl, e := newImageEnv(t)
	e.mustBerth("compute", "attach", "kubernetes", "-n", "img-1", "--kubeconfig", cl.KubeconfigPath, "--cluster-purpose", "DevTest")
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	endpointLifecycle(t, e, "img-1", hc, commandFlags("berth", "model-server"))
}

// load scores an endpoint from several clients until stopped, counting
// the answers by the version that gave them and every failed request.
type load struct {
	mu       sync.Mutex
	versions map[string]int
	all      int
	failed   []string
	stop     chan struct{}
	once     sync.Once
	wg       sync.WaitGroup
}

// loadClients is how many clients startLoad runs. The versions take as
// many requests at once, so none waits in a queue: under a loaded machine,
// a request that waits longer than maxQueueWaitMs (500 ms by default) is
// shed with 503 Overloaded, as it should be, and that is not what these
// tests look at.
const loadClients = 4

func startLoad(hc *http.Client, uri, key string) *load {
	l := &load{versions: map[string]int{}, stop: make(chan struct{})}
	for range loadClients {
		l.wg.Go(func() {
			for {
				select {
				case <-l.stop:
					return
				default:
				}
				req, _ := http.NewRequest("POST", uri, strings.NewReader(`{"data":[[5.1,3.5,1.4,0.2]]}`))
				req.Header.Set("Authorization", "Bearer "+key)
				resp, err := hc.Do(req)
				var failure string
				if err == nil && resp.StatusCode != 200 {
					body, _ := io.ReadAll(io.LimitReader(resp.Body, 300))
					failure = fmt.Sprintf("%s at %s: %s", resp.Status, time.Now().Format("15:04:05.000"), body)
				}
				l.mu.Lock()
				l.all++
				switch {
				case err != nil:
					l.failed = append(l.failed, err.Error())
				case failure != "":
					l.failed = append(l.failed, failure)
				default:
					l.versions[resp.Header.Get("X-Berth-Version")]++
				}
				l.mu.Unlock()
				if resp != nil {
					resp.Body.Close()
				}
			}
		})
	}
	return l
}

// counts returns the answers by version since the last call.
func (l *load) counts() map[string]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := l.versions
	l.versions = map[string]int{}
	return out
}

func (l *load) total() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, c := range l.versions {
		n += c
	}
	return n
}

// end stops the clients (once) and returns the failures.
func (l *load) end() []string {
	l.once.Do(func() { close(l.stop) })
	l.wg.Wait()
	return l.failed
}

// endpointLifecycle: create an endpoint with v1 at 100, add v2 at 10
// under load and count the split, promote v2 to 100 in one change, delete
// v1; not one request fails. Then bad input, each refused with a clear
// error that changes nothing.
func endpointLifecycle(t *testing.T, e *attachEnv, compute string, hc *http.Client, command []string) {
	e.mustBerth("model", "register", "-n", "iris", "--path", filepath.Join("..", "models", "iris"))
	var ep api.Endpoint
	json.Unmarshal([]byte(e.mustBerth("endpoint", "create", "-n", "fraud", "--compute", compute, "-o", "json").stdout), &ep)
	var keys api.ServiceKeys
	json.Unmarshal([]byte(e.mustBerth("endpoint", "keys", "fraud", "-o", "json").stdout), &keys)
	if ep.ScoringURI == "" || keys.PrimaryKey == "" {
		t.Fatalf("endpoint %+v, keys %+v", ep, keys)
	}
	version := func(name string, extra ...string) {
		e.mustBerth(append(append([]string{"endpoint", "version", "add", "-e", "fraud", "--version-name", name, "--model", "iris", "--replicas", "1", "--max-concurrent-requests", strconv.Itoa(loadClients)}, command...), extra...)...)
	}
	version("v1")
	eventually(t, 30*time.Second, "v1 answers through the endpoint", func() bool {
		code, _ := scoreVia(hc, ep.ScoringURI, keys.PrimaryKey, `{"data":[[5.1,3.5,1.4,0.2]]}`)
		return code == 200
	})
	l := startLoad(hc, ep.ScoringURI, keys.PrimaryKey)
	defer l.end()
	time.Sleep(300 * time.Millisecond)
	version("v2", "--traffic", "10", "--log-requests", "100")
	var shown api.Endpoint
	json.Unmarshal([]byte(e.mustBerth("endpoint", "show", "fraud", "-o", "json").stdout), &shown)
	if len(shown.Versions) != 2 || shown.Versions[0].Traffic != 90 || shown.Versions[1].Traffic != 10 || shown.Versions[1].State != api.ServiceHealthy {
		t.Fatalf("after adding v2 at 10: %+v", shown.Versions)
	}
	// The split, once v2 has its replica at the front end.
	eventually(t, 30*time.Second, "v2 serves its share", func() bool { return l.counts()["v2"] > 0 })
	l.counts()
	eventually(t, 120*time.Second, "2000 requests", func() bool { return l.total() >= 2000 })
	split := l.counts()
	n := split["v1"] + split["v2"]
	share := 100 * float64(split["v2"]) / float64(n)
	t.Logf("split over %d requests: v1 %d, v2 %d (%.2f%%, weight 10)", n, split["v1"], split["v2"], share)
	if share < 8 || share > 12 || len(split) != 2 {
		t.Errorf("v2 served %.2f%% (%v), want 10 ± 2", share, split)
	}
	// v2 logs every request it serves, filed under the endpoint.
	var logged []api.RequestLogEntry
	eventually(t, 20*time.Second, "v2's request logs", func() bool {
		r := e.mustBerth("endpoint", "logs-data", "-e", "fraud", "--since", "1h", "-o", "json")
		return json.Unmarshal([]byte(r.stdout), &logged) == nil && len(logged) >= 100
	})
	for _, l := range logged {
		if l.Endpoint != "fraud" || l.Version != "v2" || l.Service != "fraud--v2" || l.Status != 200 || !strings.Contains(l.Request, "5.1") || !strings.Contains(l.Response, "setosa") {
			t.Fatalf("a logged request: %+v", l)
		}
	}
	t.Logf("endpoint logs-data: %d requests logged by v2 (v1 logs none)", len(logged))
	// Promote: one change sets v2 to 100 and v1 to 0.
	start := time.Now()
	e.mustBerth("endpoint", "version", "update", "-e", "fraud", "--version-name", "v2", "--traffic", "100")
	l.counts()
	// Live from the first of 20 answers in a row from v2.
	var live time.Duration
	clean := 0
	eventually(t, 10*time.Second, "only v2 answers", func() bool {
		c := l.counts()
		if c["v1"] > 0 {
			clean = 0
			return false
		}
		if clean == 0 && c["v2"] > 0 {
			live = time.Since(start)
		}
		clean += c["v2"]
		return clean >= 20
	})
	t.Logf("promotion: every answer from v2 within %s of the command starting (including the CLI's own run)", live.Round(time.Millisecond))

	// Bad input: each refused, naming the problem; nothing changes.
	before := e.mustBerth("endpoint", "show", "fraud", "-o", "json").stdout
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"endpoint", "update", "fraud", "--traffic", "v1=50,v2=40"}, "traffic sums to 90"},
		{[]string{"endpoint", "update", "fraud", "--traffic", "v1=50,v2=60"}, "traffic sums to 110"},
		{[]string{"endpoint", "version", "update", "-e", "fraud", "--version-name", "v1", "--traffic=-10"}, "traffic -10 must be a percentage from 0 to 100"},
		{[]string{"endpoint", "version", "update", "-e", "fraud", "--version-name", "v9", "--traffic", "10"}, `endpoint fraud has no version "v9" (it has: v1, v2)`},
		{[]string{"endpoint", "version", "delete", "-e", "fraud", "--version-name", "v2"}, "version v2 still has 100% of endpoint fraud's traffic"},
		{append([]string{"endpoint", "version", "add", "-e", "fraud", "--version-name", "v3", "--model", "iris", "--autoscale-min", "0", "--replicas", "3"}, command...), "--replicas"},
		{[]string{"service", "delete", "fraud--v1"}, "service fraud--v1 is version v1 of endpoint fraud"},
	} {
		r := e.berth(tc.args...)
		if r.code == 0 || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want an error with %q", tc.args, r.code, r.stderr, tc.want)
		}
	}
	if code, out, _ := scoreVersion(hc, ep.ScoringURI, keys.PrimaryKey, "v9"); code != 400 || !strings.Contains(out, "v1, v2") {
		t.Errorf("an unknown version in x-berth-version: %d %s", code, out)
	}
	if after := e.mustBerth("endpoint", "show", "fraud", "-o", "json").stdout; after != before {
		t.Errorf("bad input changed the endpoint:\n%s\n%s", before, after)
	}
	// A version still being deployed is not deleted (the endpoint would
	// forget a service it still owns); once deployed, it is.
	version("v3", "--no-wait")
	if r := e.berth("endpoint", "version", "delete", "-e", "fraud", "--version-name", "v3"); r.code == 0 || !strings.Contains(r.stderr, "has an operation in progress") {
		t.Errorf("deleting a version while it deploys: %+v", r)
	}
	e.mustBerth("service", "wait", "fraud--v3")
	e.mustBerth("endpoint", "version", "delete", "-e", "fraud", "--version-name", "v3")
	e.mustBerth("endpoint", "version", "delete", "-e", "fraud", "--version-name", "v1")
	time.Sleep(500 * time.Millisecond)
	if r := e.berth("endpoint", "version", "update", "-e", "fraud", "--version-name", "v2", "--mirror-traffic", "10"); r.code == 0 || !strings.Contains(r.stderr, "only version") {
		t.Errorf("mirror on the only version: %+v", r)
	}
	if c := l.counts(); c["v2"] == 0 || c["v1"] != 0 {
		t.Errorf("after deleting v1: %v", c)
	}
	if failed := l.end(); len(failed) > 0 {
		t.Fatalf("%d of %d requests failed across the life cycle: %v", len(failed), l.all, failed[:min(5, len(failed))])
	}
	t.Logf("0 of %d requests failed across the life cycle (add v2, promote, bad input, delete v1)", l.all)
	var after api.ServiceKeys
	json.Unmarshal([]byte(e.mustBerth("endpoint", "keys", "fraud", "-o", "json").stdout), &after)
	if after != keys {
		t.Errorf("the endpoint's keys changed with its versions: %+v, were %+v", after, keys)
	}
	e.mustBerth("endpoint", "delete", "fraud")

	// A token-auth endpoint: its tokens pass (then 503: no version yet),
	// anything else is refused.
	var tep api.Endpoint
	json.Unmarshal([]byte(e.mustBerth("endpoint", "create", "-n", "tokened", "--compute", compute, "--auth", "token", "-o", "json").stdout), &tep)
	var tok api.ServiceToken
	json.Unmarshal([]byte(e.mustBerth("endpoint", "token", "tokened", "-o", "json").stdout), &tok)
	eventually(t, 10*time.Second, "the token endpoint's route", func() bool {
		code, out := scoreVia(hc, tep.ScoringURI, tok.AccessToken, `{}`)
		return code == 503 && strings.Contains(out, "NoVersions")
	})
	for _, bad := range []string{"", "not-a-token", keys.PrimaryKey} {
		if code, out := scoreVia(hc, tep.ScoringURI, bad, `{}`); code != 401 || !strings.Contains(out, "endpoint tokened") {
			t.Errorf("token endpoint with %.10q: %d %s", bad, code, out)
		}
	}
	if r := e.berth("service", "show", "fraud--v2"); r.code == 0 {
		t.Errorf("the version's service outlived its endpoint: %+v", r)
	}
}

// TestEndpointVersionScalesToZero: on the local compute, a canary version
// that scales to zero when idle stops its last process; it still gets its
// share: the requests it is given wait while it wakes, and none fails.
func TestEndpointVersionScalesToZero(t *testing.T) {
	t.Parallel()
	e := newAttachEnv(t)
	e.mustBerth("compute", "create", "local", "-n", "laptop")
	pool := localCAPool(t, e.env, "laptop")
	hc := &http.Client{Timeout: 90 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	e.mustBerth("model", "register", "-n", "iris", "--path", filepath.Join("..", "models", "iris"))
	var ep api.Endpoint
	json.Unmarshal([]byte(e.mustBerth("endpoint", "create", "-n", "fraud", "--compute", "laptop", "-o", "json").stdout), &ep)
	var keys api.ServiceKeys
	json.Unmarshal([]byte(e.mustBerth("endpoint", "keys", "fraud", "-o", "json").stdout), &keys)
	command := commandFlags(berthBin, "model-server", "--model-dir", "$BERTH_MODEL_DIR", "--listen", "127.0.0.1:$PORT")
	e.mustBerth(append([]string{"endpoint", "version", "add", "-e", "fraud", "--version-name", "v1", "--model", "iris", "--replicas", "1"}, command...)...)
	e.mustBerth(append([]string{"endpoint", "version", "add", "-e", "fraud", "--version-name", "v2", "--model", "iris", "--traffic", "10",
		"--autoscale-min", "0", "--scale-to-zero-after", "2s"}, command...)...)
	eventually(t, 60*time.Second, "v2 idle at zero replicas", func() bool { return len(replicaProcs(e.dir, "fraud--v2")) == 0 })
	counts := map[string]int{}
	for range 20 {
		code, _, version := scoreVersion(hc, ep.ScoringURI, keys.PrimaryKey, "")
		if code != 200 {
			t.Fatalf("a request while v2 is at zero: %d", code)
		}
		counts[version]++
	}
	t.Logf("20 requests with v2 at zero replicas: %v", counts)
	if counts["v2"] != 2 || counts["v1"] != 18 {
		t.Errorf("v2 at zero got %d of 20 (weight 10), v1 %d", counts["v2"], counts["v1"])
	}
	if len(replicaProcs(e.dir, "fraud--v2")) == 0 {
		t.Errorf("v2 did not wake")
	}
}

// scoreVersion scores an endpoint (pinned to a version when pin is set)
// and says which version answered.
func scoreVersion(hc *http.Client, uri, key, pin string) (int, string, string) {
	req, _ := http.NewRequest("POST", uri, strings.NewReader(`{"data":[[5.1,3.5,1.4,0.2]]}`))
	req.Header.Set("Authorization", "Bearer "+key)
	if pin != "" {
		req.Header.Set("X-Berth-Version", pin)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, err.Error(), ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header.Get("X-Berth-Version")
}
