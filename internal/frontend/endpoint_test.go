package frontend

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berth-ml/berth/internal/testenv"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// endpointFront serves endpoint e (key auth, key "ep-key") over versions
// whose services are e--NAME, each one replica answering its version's
// name and the path it was asked, and counting the mirrored copies it got
// (marked, without credentials) in mirrored.
func endpointFront(t *testing.T, versions ...EndpointVersion) (*Frontend, string, map[string]*backend) {
	t.Helper()
	f := New(nil)
	f.SetReady(true)
	backends := map[string]*backend{}
	for i := range versions {
		v := &versions[i]
		v.Service = "e--" + v.Name
		name := v.Name
		b := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("X-Berth-Mirror") == "1" && r.Header.Get("Authorization") == "" {
				mirrored.Add(1)
			}
			io.Copy(io.Discard, r.Body)
			fmt.Fprintf(w, `{"version":%q,"path":%q}`, name, r.URL.Path)
		})
		backends[v.Name] = b
		rt, err := ParseRoute(mustJSON(Route{Service: v.Service, Selector: map[string]string{"app": v.Service}, Port: 1,
			Auth: AuthNone, Endpoint: "e", MaxConcurrentRequestsPerContainer: 8}))
		if err != nil {
			t.Fatal(err)
		}
		f.SetRoute(rt)
		f.SetReplicas(v.Service, []Replica{{Name: v.Service + "-0", Addr: b.addr(), Slots: 8}}, "")
	}
	f.SetEndpoint(mustEndpoint(t, versions))
	return f, ServeForTest(t, f, nil), backends
}

var mirrored atomic.Int32

func mustEndpoint(t *testing.T, versions []EndpointVersion) *EndpointRoute {
	t.Helper()
	e, err := ParseEndpointRoute(mustJSON(EndpointRoute{Endpoint: "e", Auth: AuthKey, KeyHashes: []string{HashKey("ep-key")}, Versions: versions}))
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func scoreEndpoint(t *testing.T, url, pin string) answer {
	t.Helper()
	req, _ := http.NewRequest("POST", url+"/api/v1/endpoint/e/score", strings.NewReader(`{"data":[[1,2,3,4]]}`))
	req.Header.Set("Authorization", "Bearer ep-key")
	if pin != "" {
		req.Header.Set(VersionHeader, pin)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, string(body), resp.Header}
}

// The split holds within ±2 points over 10,000 requests; the answer names
// the version, which the replica confirms.
func TestEndpointSplitsByWeight(t *testing.T) {
	_, url, _ := endpointFront(t, EndpointVersion{Name: "v1", Weight: 90}, EndpointVersion{Name: "v2", Weight: 10})
	counts := map[string]int{}
	for range 10000 {
		a := scoreEndpoint(t, url, "")
		v := a.header.Get(VersionHeader)
		if a.code != 200 || !strings.Contains(a.body, fmt.Sprintf(`"version":%q`, v)) || !strings.Contains(a.body, `"path":"/score"`) {
			t.Fatalf("answer %+v", a)
		}
		counts[v]++
	}
	share := float64(counts["v2"]) / 100
	t.Logf("v1 %d, v2 %d of 10000: v2 %.2f%% (weight 10)", counts["v1"], counts["v2"], share)
	if share < 8 || share > 12 {
		t.Fatalf("v2 got %.2f%%, want 10 ± 2", share)
	}
}

func TestEndpointPinsAndRefuses(t *testing.T) {
	f, url, _ := endpointFront(t, EndpointVersion{Name: "v1", Weight: 100}, EndpointVersion{Name: "v2", Weight: 0})
	for range 5 {
		if a := scoreEndpoint(t, url, "v2"); a.code != 200 || a.header.Get(VersionHeader) != "v2" || !strings.Contains(a.body, `"version":"v2"`) {
			t.Fatalf("pinned v2: %+v", a)
		}
	}
	if a := scoreEndpoint(t, url, "v9"); a.code != 400 || !strings.Contains(a.body, `no version \"v9\"`) || !strings.Contains(a.body, "v1, v2") {
		t.Fatalf("unknown version: %+v", a)
	}
	// Wrong key: refused in the endpoint's name.
	if a := post(t, url+"/api/v1/endpoint/e/score", "nope", "{}"); a.code != 401 || !strings.Contains(a.body, "endpoint e") {
		t.Fatalf("bad key: %+v", a)
	}
	// A version's own URI is not served; the answer names the endpoint.
	if a := post(t, url+"/api/v1/service/e--v1/score", "", "{}"); a.code != 404 || !strings.Contains(a.body, "/api/v1/endpoint/e/score") {
		t.Fatalf("version's own URI: %+v", a)
	}
	if a := post(t, url+"/api/v1/endpoint/nope/score", "ep-key", "{}"); a.code != 404 || !strings.Contains(a.body, `endpoint \"nope\" not found`) {
		t.Fatalf("unknown endpoint: %+v", a)
	}
	// OIP: the replica is asked under its service's name.
	if a := post(t, url+"/v2/models/e/infer", "ep-key", "{}"); a.code != 200 || !strings.Contains(a.body, `"path":"/v2/models/e--v1/infer"`) {
		t.Fatalf("OIP infer: %+v", a)
	}
	// Swagger, without credentials: the largest share's, or the pinned one's.
	for pin, want := range map[string]string{"": "v1", "v2": "v2"} {
		req, _ := http.NewRequest("GET", url+"/api/v1/endpoint/e/swagger.json", nil)
		req.Header.Set(VersionHeader, pin)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get(VersionHeader) != want || !strings.Contains(string(body), `"path":"/swagger.json"`) {
			t.Fatalf("swagger pinned %q: %d %s %s", pin, resp.StatusCode, resp.Header, body)
		}
	}
	// A version with no ready replica: unpinned traffic goes to the others;
	// pinned gets 503 naming it.
	f.SetEndpoint(mustEndpoint(t, []EndpointVersion{{Name: "v1", Service: "e--v1", Weight: 50}, {Name: "v2", Service: "e--v2", Weight: 50}}))
	f.SetReplicas("e--v2", nil, "")
	for range 20 {
		if a := scoreEndpoint(t, url, ""); a.code != 200 || a.header.Get(VersionHeader) != "v1" {
			t.Fatalf("v2 has no replica, yet: %+v", a)
		}
	}
	if a := scoreEndpoint(t, url, "v2"); a.code != 503 || !strings.Contains(a.body, "version v2 of endpoint e has no ready replica") {
		t.Fatalf("pinned to a version with no replica: %+v", a)
	}
	f.SetReplicas("e--v1", nil, "")
	if a := scoreEndpoint(t, url, ""); a.code != 503 || !strings.Contains(a.body, "No version of endpoint e") {
		t.Fatalf("no version ready: %+v", a)
	}
}

// Weight changes apply to the next request and fail none: requests in
// flight finish on the version they chose.
func TestEndpointWeightChangeUnderLoad(t *testing.T) {
	f, url, backends := endpointFront(t, EndpointVersion{Name: "v1", Weight: 100}, EndpointVersion{Name: "v2", Weight: 0})
	for _, b := range backends {
		b.delay.Store(int64(2 * time.Millisecond))
	}
	var failed, total atomic.Int64
	stop := testenv.Load(8, func(int) {
		if a := scoreEndpoint(t, url, ""); a.code != 200 {
			failed.Add(1)
		}
		total.Add(1)
	})
	for _, w := range []int{90, 50, 0} {
		time.Sleep(100 * time.Millisecond)
		f.SetEndpoint(mustEndpoint(t, []EndpointVersion{{Name: "v1", Service: "e--v1", Weight: w}, {Name: "v2", Service: "e--v2", Weight: 100 - w}}))
	}
	// The last change (v2 at 100) holds for the very next requests.
	for range 20 {
		if a := scoreEndpoint(t, url, ""); a.header.Get(VersionHeader) != "v2" {
			t.Fatalf("after promoting v2: %+v", a)
		}
	}
	stop()
	t.Logf("%d requests during 3 weight changes, %d failed", total.Load(), failed.Load())
	if failed.Load() != 0 {
		t.Fatalf("%d requests failed", failed.Load())
	}
}

// A mirrored version gets its share of copies, marked, and its answers
// never reach the client.
func TestEndpointMirrors(t *testing.T) {
	f, url, _ := endpointFront(t, EndpointVersion{Name: "v1", Weight: 100}, EndpointVersion{Name: "v2", Weight: 0, Mirror: 50})
	mirrored.Store(0)
	for range 200 {
		if a := scoreEndpoint(t, url, ""); a.code != 200 || a.header.Get(VersionHeader) != "v1" {
			t.Fatalf("answer %+v", a)
		}
	}
	sent := f.metrics.mirrors.WithLabelValues("e--v2", "sent")
	for end := time.Now().Add(5 * time.Second); testutil.ToFloat64(sent) < 100 && time.Now().Before(end); {
		time.Sleep(10 * time.Millisecond)
	}
	if got := testutil.ToFloat64(sent); got != 100 || mirrored.Load() != 100 {
		t.Fatalf("mirrored %v copies (%d marked), want 100 of 200 requests at 50%%", got, mirrored.Load())
	}
}

func TestParseEndpointRoute(t *testing.T) {
	for _, tc := range []struct{ doc, want string }{
		{`{"endpoint":"e","auth":"none","versions":[{"name":"a","service":"e--a","weight":90}]}`, "sum to 90"},
		{`{"endpoint":"e","auth":"none","versions":[{"name":"a","service":"e--a","weight":110},{"name":"b","service":"e--b","weight":-10}]}`, "from 0 to 100"},
		{`{"endpoint":"e","auth":"key","versions":[]}`, "keyHashes"},
		{`{"endpoint":"e","auth":"none","versions":[],"extra":1}`, "unknown field"},
		{`{"auth":"none","versions":[]}`, "endpoint is required"},
	} {
		if _, err := ParseEndpointRoute([]byte(tc.doc)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.doc, err, tc.want)
		}
	}
}
