package frontend

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-ml/berth/api"
	"github.com/berth-ml/berth/internal/frontend/reqlog"
)

// collect makes f's control-plane sink keep what it gets.
func collect(f *Frontend) func() []reqlog.Entry {
	var mu sync.Mutex
	var got []reqlog.Entry
	f.SetRequestLogSink(func(_ context.Context, es []reqlog.Entry) error {
		mu.Lock()
		got = append(got, es...)
		mu.Unlock()
		return nil
	})
	return func() []reqlog.Entry {
		f.RequestLog().Flush(context.Background())
		mu.Lock()
		defer mu.Unlock()
		return got
	}
}

func droppedLogs(f *Frontend, service string) float64 {
	fams, _ := f.Gather()
	for _, fam := range fams {
		if fam.GetName() != "berth_fe_request_log_dropped_total" {
			continue
		}
		for _, m := range fam.GetMetric() {
			if m.GetLabel()[0].GetValue() == service {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// TestRequestsLoggedWithAnswers: a service logging 100% has each scored
// request logged with its answer, status and latency, filed under the
// service's name; bodies over the limit are cut (a spooled one too); the
// front end's own answers (503: no replicas) are logged; a service
// logging 0% logs nothing, one logging 50% half.
func TestRequestsLoggedWithAnswers(t *testing.T) {
	b := newBackend(t, nil)
	rt := keyRoute("iris", "k1")
	rt.LogRequests, rt.LogBodyLimit = 100, 20
	f, url := frontWith(t, rt, b)
	entries := collect(f)
	score := url + "/api/v1/service/iris/score"
	if a := post(t, score, "k1", `{"data":[[1]]}`); a.code != 200 {
		t.Fatalf("score: %+v", a)
	}
	big := `{"data":"` + strings.Repeat("x", 2<<20) + `"}` // spooled to a file (over memBody)
	if a := post(t, score, "k1", big); a.code != 200 {
		t.Fatalf("score a large body: %d", a.code)
	}
	if a := post(t, score, "wrong", `{}`); a.code != 401 {
		t.Fatalf("a wrong key: %d", a.code)
	}
	got := entries()
	if len(got) != 2 {
		t.Fatalf("%d entries, want 2 (an unauthenticated request is not logged): %+v", len(got), got)
	}
	e := got[0]
	if e.Endpoint != "iris" || e.Version != "" || e.Service != "iris" || e.Status != 200 || e.LatencyMs <= 0 || e.ID == "" || e.Time.IsZero() ||
		e.Request != `{"data":[[1]]}` || e.RequestTruncated || e.Response != `{"path":"/score","by` || !e.ResponseTruncated ||
		e.RequestEncoding != reqlog.EncodingText || e.ResponseEncoding != reqlog.EncodingText {
		t.Errorf("entry = %+v", e)
	}
	if e := got[1]; e.Request != big[:20] || !e.RequestTruncated {
		t.Errorf("the large request's entry: %q, truncated %v", e.Request, e.RequestTruncated)
	}
	f.SetReplicas("iris", nil, "")
	if a := post(t, score, "k1", `{}`); a.code != 503 {
		t.Fatalf("no replicas: %d", a.code)
	}
	if got := entries(); len(got) != 3 || got[2].Status != 503 || got[2].Response != `{"error":{"code":"No` {
		t.Errorf("the 503 entry: %+v", got[2:])
	}
	f.SetReplicas("iris", []Replica{{Name: "pod-0", Addr: b.addr(), Slots: 1}}, "")
	for _, tc := range []struct{ p, want int }{{0, 0}, {50, 10}} {
		r2 := *rt
		r2.LogRequests = tc.p
		f.SetRoute(&r2)
		before := len(entries())
		for range 20 {
			if a := post(t, score, "k1", `{}`); a.code != 200 {
				t.Fatalf("score: %d", a.code)
			}
		}
		if n := len(entries()) - before; n != tc.want {
			t.Errorf("at %d%%: %d of 20 logged, want %d", tc.p, n, tc.want)
		}
	}
	if d := droppedLogs(f, "iris"); d != 0 {
		t.Errorf("%v dropped with room in the buffer", d)
	}
}

// TestRequestLogOverload: with a tiny buffer and a sink that never
// answers, scoring goes on succeeding; the entries that do not fit are
// dropped and counted in berth_fe_request_log_dropped_total.
func TestRequestLogOverload(t *testing.T) {
	release := make(chan struct{})
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select { // blocked until the test ends
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(sink.Close)
	b := newBackend(t, nil)
	rt := keyRoute("iris", "k1")
	rt.LogRequests, rt.LogSink = 100, sink.URL
	f, url := frontWith(t, rt, b)
	l := f.RequestLog()
	l.SetBounds(0, 5)
	l.Interval = 10 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { l.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); close(release); <-done })
	const n = 200
	var wg sync.WaitGroup
	var mu sync.Mutex
	codes := map[int]int{}
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range n / 8 {
				a := post(t, url+"/api/v1/service/iris/score", "k1", `{"data":[[1]]}`)
				mu.Lock()
				codes[a.code]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	dropped := droppedLogs(f, "iris")
	if codes[200] != n {
		t.Errorf("scoring under a blocked request log: %v, want %d 200s", codes, n)
	}
	// At most the buffer's 5 and the 5 the blocked send holds are not dropped.
	if dropped < n-10 || dropped > n {
		t.Errorf("dropped %v of %d, want at least %d", dropped, n, n-10)
	}
	t.Logf("%d requests scored 200 with the request log's sink blocked: %v entries dropped and counted", codes[200], dropped)
}

// TestReporterSendsRequestLogs: on a cluster the request logs go to the
// control plane beside the metrics report, as JSON Lines, with the pod's
// token read afresh.
func TestReporterSendsRequestLogs(t *testing.T) {
	type posted struct{ path, auth, ctype, body string }
	posts := make(chan posted, 100)
	cp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		posts <- posted{r.URL.Path, r.Header.Get("Authorization"), r.Header.Get("Content-Type"), string(b)}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer cp.Close()
	tokenFile := filepath.Join(t.TempDir(), "token")
	os.WriteFile(tokenFile, []byte("pod-token\n"), 0o600)
	b := newBackend(t, nil)
	rt := keyRoute("iris", "k1")
	rt.LogRequests = 100
	f, url := frontWith(t, rt, b)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go (&Reporter{Frontend: f, URL: cp.URL + api.FrontendMetricsPath("c-1"), TokenFile: tokenFile, Interval: time.Hour, Log: f.log}).Run(ctx)
	// Until the reporter has set the sink, entries have nowhere to go.
	deadline := time.Now().Add(30 * time.Second)
	for {
		if a := post(t, url+"/api/v1/service/iris/score", "k1", `{"data":[[1]]}`); a.code != 200 {
			t.Fatalf("score: %+v", a)
		}
		f.RequestLog().Flush(ctx)
		select {
		case p := <-posts:
			es, err := reqlog.ReadJSONLines(strings.NewReader(p.body))
			if p.path != api.RequestLogsPath("c-1") || p.auth != "Bearer pod-token" || p.ctype != "application/jsonl" || err != nil || len(es) != 1 || es[0].Request != `{"data":[[1]]}` {
				t.Fatalf("post = %+v (%v)", p, err)
			}
			return
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("no request logs reached the control plane")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestEndpointRequestsLogged: a request to an endpoint is logged under
// the endpoint, with the version that served it (the version's service's
// settings); mirrored copies are not logged.
func TestEndpointRequestsLogged(t *testing.T) {
	f, url, _ := endpointFront(t, EndpointVersion{Name: "v1", Weight: 100}, EndpointVersion{Name: "v2", Mirror: 100})
	for _, svc := range []string{"e--v1", "e--v2"} {
		rt := *f.service(svc).route.Load()
		rt.LogRequests = 100
		f.SetRoute(&rt)
	}
	entries := collect(f)
	for _, pin := range []string{"", "", "v2"} {
		if a := scoreEndpoint(t, url, pin); a.code != 200 {
			t.Fatalf("score (pinned %q): %+v", pin, a)
		}
	}
	var got []string
	for _, e := range entries() {
		got = append(got, e.Endpoint+"/"+e.Version+"/"+e.Service)
		if e.Status != 200 || e.Request != `{"data":[[1,2,3,4]]}` || !strings.Contains(e.Response, `"version":"`+e.Version+`"`) {
			t.Errorf("entry = %+v", e)
		}
	}
	if strings.Join(got, " ") != "e/v1/e--v1 e/v1/e--v1 e/v2/e--v2" {
		t.Errorf("logged %v, want the two requests v1 served and the one pinned to v2", got)
	}
}
