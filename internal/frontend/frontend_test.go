package frontend

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"github.com/berth-ml/berth/internal/testenv/testcert"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// backend is a real model server on loopback that counts concurrency.
type backend struct {
	srv      *httptest.Server
	inflight atomic.Int32
	peak     atomic.Int32
	hits     atomic.Int32
	delay    atomic.Int64 // ns
}

func newBackend(t testing.TB, h func(w http.ResponseWriter, r *http.Request)) *backend {
	b := &backend{}
	b.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := b.inflight.Add(1)
		defer b.inflight.Add(-1)
		for {
			p := b.peak.Load()
			if n <= p || b.peak.CompareAndSwap(p, n) {
				break
			}
		}
		b.hits.Add(1)
		if d := time.Duration(b.delay.Load()); d > 0 {
			time.Sleep(d)
		}
		if h != nil {
			h(w, r)
			return
		}
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"path":%q,"bytes":%d,"auth":%q}`, r.URL.Path, len(body), r.Header.Get("Authorization"))
	}))
	t.Cleanup(b.srv.Close)
	return b
}

func (b *backend) addr() string { return strings.TrimPrefix(b.srv.URL, "http://") }

func frontWith(t testing.TB, rt *Route, backends ...*backend) (*Frontend, string) {
	t.Helper()
	return frontIn(t, "", rt, backends...)
}

// frontIn is frontWith spooling large bodies to bodyDir (set before it
// serves).
func frontIn(t testing.TB, bodyDir string, rt *Route, backends ...*backend) (*Frontend, string) {
	t.Helper()
	f := New(nil)
	f.BodyDir = bodyDir
	f.SetReady(true)
	f.SetRoute(rt)
	var reps []Replica
	for i, b := range backends {
		reps = append(reps, Replica{Name: fmt.Sprintf("pod-%d", i), Addr: b.addr(), Slots: rt.MaxConcurrentRequestsPerContainer})
	}
	f.SetReplicas(rt.Service, reps, "")
	return f, ServeForTest(t, f, nil)
}

func keyRoute(name string, keys ...string) *Route {
	var hashes []string
	for _, k := range keys {
		hashes = append(hashes, HashKey(k))
	}
	r, err := ParseRoute(mustJSON(Route{Service: name, Namespace: "default", Selector: map[string]string{"app": name}, Port: 5001,
		Auth: AuthKey, KeyHashes: hashes}))
	if err != nil {
		panic(err)
	}
	return r
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

type answer struct {
	code   int
	body   string
	header http.Header
}

func post(t *testing.T, url, key, body string) answer {
	t.Helper()
	req, _ := http.NewRequest("POST", url, strings.NewReader(body))
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("post %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, string(b), resp.Header}
}

func TestScoreWithKeysAndRotation(t *testing.T) {
	b := newBackend(t, nil)
	rt := keyRoute("iris", "primary-key", "secondary-key")
	f, url := frontWith(t, rt, b)
	score := url + "/api/v1/service/iris/score"

	a := post(t, score, "primary-key", `{"data":[[1,2,3,4]]}`)
	if a.code != 200 || !strings.Contains(a.body, `"path":"/score"`) || !strings.Contains(a.body, `"auth":""`) {
		t.Fatalf("score: %+v", a)
	}
	if a := post(t, score, "secondary-key", "{}"); a.code != 200 {
		t.Fatalf("secondary key: %+v", a)
	}
	for _, key := range []string{"", "wrong"} {
		a := post(t, score, key, "{}")
		if a.code != 401 || !strings.Contains(a.body, `"code":"Unauthorized"`) {
			t.Fatalf("key %q: %+v", key, a)
		}
	}
	// Rotate the primary key: the old one stops working, the secondary keeps working.
	f.SetRoute(keyRoute("iris", "new-primary", "secondary-key"))
	if a := post(t, score, "primary-key", "{}"); a.code != 401 {
		t.Fatalf("old key after rotation: %+v", a)
	}
	if a := post(t, score, "new-primary", "{}"); a.code != 200 {
		t.Fatalf("new key: %+v", a)
	}
	// OIP v2 paths reach the replica unchanged; ready answers from the front end.
	a = post(t, url+"/v2/models/iris/infer", "new-primary", `{"inputs":[]}`)
	if a.code != 200 || !strings.Contains(a.body, `"path":"/v2/models/iris/infer"`) {
		t.Fatalf("v2 infer: %+v", a)
	}
	req, _ := http.NewRequest("GET", url+"/v2/models/iris/ready", nil)
	req.Header.Set("Authorization", "Bearer new-primary")
	resp, _ := http.DefaultClient.Do(req)
	if resp.StatusCode != 200 {
		t.Fatalf("v2 ready: %d", resp.StatusCode)
	}
	resp, _ = http.Get(url + "/v2/health/live")
	if resp.StatusCode != 200 {
		t.Fatalf("live: %d", resp.StatusCode)
	}
	if a := post(t, url+"/api/v1/service/nope/score", "k", "{}"); a.code != 404 {
		t.Fatalf("unknown service: %+v", a)
	}
}

func TestTokenAuth(t *testing.T) {
	b := newBackend(t, nil)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	pub := string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	const aud = "berth:ws-1/svc-1"
	rt, err := ParseRoute(mustJSON(Route{Service: "tok", Selector: map[string]string{"a": "b"}, Port: 1, Auth: AuthToken, TokenPublicKey: pub, TokenAudience: aud}))
	if err != nil {
		t.Fatal(err)
	}
	_, url := frontWith(t, rt, b)
	sign := func(aud string, exp time.Time, k *ecdsa.PrivateKey) string {
		s, _ := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{"aud": aud, "exp": exp.Unix()}).SignedString(k)
		return s
	}
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	score := url + "/api/v1/service/tok/score"
	if a := post(t, score, sign(aud, time.Now().Add(time.Minute), key), "{}"); a.code != 200 {
		t.Fatalf("valid token: %+v", a)
	}
	for name, tok := range map[string]string{
		"expired":                       sign(aud, time.Now().Add(-time.Minute), key),
		"other service":                 sign("berth:ws-1/svc-2", time.Now().Add(time.Minute), key),
		"namesake in another workspace": sign("berth:ws-2/svc-1", time.Now().Add(time.Minute), key),
		"the name only (before audiences named the workspace)": sign("tok", time.Now().Add(time.Minute), key),
		"other signer": sign(aud, time.Now().Add(time.Minute), other),
		"garbage":      "abc.def.ghi",
	} {
		if a := post(t, score, tok, "{}"); a.code != 401 {
			t.Errorf("%s token: %+v", name, a)
		}
	}
	if a := post(t, score, sign(aud, time.Now().Add(-time.Minute), key), "{}"); !strings.Contains(a.body, "expired") {
		t.Errorf("expired token message: %s", a.body)
	}
	// A route from before audiences accepts no token at all.
	old, _ := ParseRoute(mustJSON(Route{Service: "old", Selector: map[string]string{"a": "b"}, Port: 1, Auth: AuthToken, TokenPublicKey: pub}))
	_, oldURL := frontWith(t, old, b)
	if a := post(t, oldURL+"/api/v1/service/old/score", sign("old", time.Now().Add(time.Minute), key), "{}"); a.code != 401 || !strings.Contains(a.body, "redeploy") {
		t.Errorf("a token on a route without an audience: %+v", a)
	}
}

func TestStatusCodes(t *testing.T) {
	slow := newBackend(t, nil)
	slow.delay.Store(int64(300 * time.Millisecond))
	rt := keyRoute("slow", "k")
	rt.ScoringTimeoutMs = 100
	_, url := frontWith(t, rt, slow)
	if a := post(t, url+"/api/v1/service/slow/score", "k", "{}"); a.code != 504 || !strings.Contains(a.body, "timed out after 100 ms") {
		t.Fatalf("timeout: %+v", a)
	}

	// A replica that drops the connection.
	dropper := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		conn, _, _ := w.(http.Hijacker).Hijack()
		conn.Close()
	})
	_, url = frontWith(t, keyRoute("drop", "k"), dropper)
	if a := post(t, url+"/api/v1/service/drop/score", "k", "{}"); a.code != 502 || !strings.Contains(a.body, "Replica closed connection before replying") {
		t.Fatalf("dropped: %+v", a)
	}

	// No ready replica.
	_, url = frontWith(t, keyRoute("empty", "k"))
	if a := post(t, url+"/api/v1/service/empty/score", "k", "{}"); a.code != 503 || !strings.Contains(a.body, "No ready replicas for service empty") {
		t.Fatalf("no replicas: %+v", a)
	}

	// Body over 100 MB: refused from its length, and when streamed without one.
	ok := newBackend(t, nil)
	_, url = frontWith(t, keyRoute("big", "k"), ok)
	req, _ := http.NewRequest("POST", url+"/api/v1/service/big/score", strings.NewReader("x"))
	req.ContentLength = MaxBodyBytes + 1
	req.Header.Set("Authorization", "Bearer k")
	resp, err := http.DefaultClient.Do(req)
	if err == nil {
		if resp.StatusCode != 413 {
			t.Fatalf("declared too large: %d", resp.StatusCode)
		}
		resp.Body.Close()
	}
	pr, pw := io.Pipe()
	go func() {
		chunk := make([]byte, 1<<20)
		for i := 0; i < 101; i++ {
			if _, err := pw.Write(chunk); err != nil {
				return
			}
		}
		pw.Close()
	}()
	req, _ = http.NewRequest("POST", url+"/api/v1/service/big/score", pr)
	req.Header.Set("Authorization", "Bearer k")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 413 {
		t.Fatalf("streamed too large: %d", resp.StatusCode)
	}
	resp.Body.Close()

	// Overloaded: one slot, a long request holds it, the queue wait passes.
	busy := newBackend(t, nil)
	busy.delay.Store(int64(500 * time.Millisecond))
	rt = keyRoute("busy", "k")
	rt.MaxQueueWaitMs = 50
	_, url = frontWith(t, rt, busy)
	go func() {
		req, _ := http.NewRequest("POST", url+"/api/v1/service/busy/score", strings.NewReader("{}"))
		req.Header.Set("Authorization", "Bearer k")
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	time.Sleep(100 * time.Millisecond)
	a := post(t, url+"/api/v1/service/busy/score", "k", "{}")
	if a.code != 503 || !strings.Contains(a.body, "Too many requests for service busy (overloaded)") || a.header.Get("Retry-After") == "" {
		t.Fatalf("overloaded: %+v", a)
	}
	// Wrong method.
	resp, _ = http.Get(url + "/api/v1/service/busy/score")
	if resp.StatusCode != 405 {
		t.Fatalf("GET score: %d", resp.StatusCode)
	}
}

func TestConcurrencyLimitAndLeastOutstanding(t *testing.T) {
	var backs []*backend
	for i := 0; i < 3; i++ {
		b := newBackend(t, nil)
		b.delay.Store(int64(20 * time.Millisecond))
		backs = append(backs, b)
	}
	rt := keyRoute("lim", "k")
	rt.MaxConcurrentRequestsPerContainer = 2
	rt.MaxQueueWaitMs = 5000
	_, url := frontWith(t, rt, backs...)
	var wg sync.WaitGroup
	codes := make(chan int, 60)
	for i := 0; i < 60; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest("POST", url+"/api/v1/service/lim/score", strings.NewReader("{}"))
			req.Header.Set("Authorization", "Bearer k")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				codes <- 0
				return
			}
			resp.Body.Close()
			codes <- resp.StatusCode
		}()
	}
	wg.Wait()
	close(codes)
	for c := range codes {
		if c != 200 {
			t.Fatalf("status %d", c)
		}
	}
	for i, b := range backs {
		if p := b.peak.Load(); p > 2 {
			t.Errorf("replica %d saw %d requests at once, limit 2", i, p)
		}
		if h := b.hits.Load(); h < 10 {
			t.Errorf("replica %d got only %d of 60 requests: not balanced", i, h)
		}
	}
}

func TestQueueIsFIFO(t *testing.T) {
	p := newPool()
	p.set([]Replica{{Name: "a", Addr: "x", Slots: 1}})
	r, _, err := p.acquire(context.Background(), time.Second, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	order := make(chan int, 5)
	var wg sync.WaitGroup
	for i := 0; i < 5; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			got, _, err := p.acquire(context.Background(), 5*time.Second, false, nil)
			if err != nil {
				t.Error(err)
				return
			}
			order <- i
			time.Sleep(5 * time.Millisecond)
			p.release(got)
		}(i)
		// Let each waiter join the queue before the next.
		for p.load().Queued != i+1 {
			time.Sleep(time.Millisecond)
		}
	}
	p.release(r)
	wg.Wait()
	close(order)
	want := 0
	for i := range order {
		if i != want {
			t.Fatalf("served %d, want %d (FIFO)", i, want)
		}
		want++
	}
	// New replicas serve waiters at once.
	r, _, _ = p.acquire(context.Background(), time.Second, false, nil)
	done := make(chan error, 1)
	go func() { _, _, err := p.acquire(context.Background(), 5*time.Second, false, nil); done <- err }()
	for p.load().Queued != 1 {
		time.Sleep(time.Millisecond)
	}
	p.set([]Replica{{Name: "a", Addr: "x", Slots: 1}, {Name: "b", Addr: "y", Slots: 1}})
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestOverloadTenTimes: ten times more concurrent requests than the
// service can take; every request gets exactly one answer (200 or 503).
func TestOverloadTenTimes(t *testing.T) {
	b := newBackend(t, nil)
	b.delay.Store(int64(10 * time.Millisecond))
	rt := keyRoute("hot", "k")
	rt.MaxConcurrentRequestsPerContainer = 4
	rt.MaxQueueWaitMs = 100
	f, url := frontWith(t, rt, b)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 200, DialContext: (&net.Dialer{}).DialContext}}
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	var peakHeap atomic.Uint64
	stopMem := make(chan struct{})
	go func() {
		var m runtime.MemStats
		for {
			select {
			case <-stopMem:
				return
			case <-time.After(20 * time.Millisecond):
			}
			runtime.ReadMemStats(&m)
			if m.HeapInuse > peakHeap.Load() {
				peakHeap.Store(m.HeapInuse)
			}
		}
	}()
	var ok, shed, other atomic.Int32
	var wg sync.WaitGroup
	for i := 0; i < 400; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest("POST", url+"/api/v1/service/hot/score", strings.NewReader("{}"))
			req.Header.Set("Authorization", "Bearer k")
			resp, err := client.Do(req)
			if err != nil {
				other.Add(1)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			switch resp.StatusCode {
			case 200:
				ok.Add(1)
			case 503:
				shed.Add(1)
			default:
				other.Add(1)
			}
		}()
	}
	wg.Wait()
	if ok.Load()+shed.Load() != 400 || other.Load() != 0 {
		t.Fatalf("ok %d, shed %d, other %d: every request needs exactly one answer", ok.Load(), shed.Load(), other.Load())
	}
	if b.peak.Load() > 4 {
		t.Fatalf("backend saw %d at once, limit 4", b.peak.Load())
	}
	close(stopMem)
	grown := int64(peakHeap.Load()) - int64(before.HeapInuse)
	t.Logf("ok %d, shed %d; heap grew by at most %d KiB", ok.Load(), shed.Load(), grown/1024)
	if grown > 64<<20 {
		t.Fatalf("heap grew by %d MiB under overload: not bounded", grown>>20)
	}
	// The metrics count every answer by code.
	rec := httptest.NewRecorder()
	f.MetricsHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	for _, want := range []string{
		fmt.Sprintf(`berth_fe_requests_total{code="200",kind="score",service="hot"} %d`, ok.Load()),
		fmt.Sprintf(`berth_fe_requests_total{code="503",kind="score",service="hot"} %d`, shed.Load()),
		`berth_fe_queue_seconds_bucket`, `berth_fe_request_duration_seconds_bucket`, `berth_fe_inflight_requests{service="hot"} 0`,
		`berth_fe_ready_replicas{service="hot"} 1`,
	} {
		if shed.Load() == 0 && strings.Contains(want, "503") {
			continue
		}
		if !strings.Contains(rec.Body.String(), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// A client that gives up while its request is queued leaves the queue: the
// replica never sees its request, and the next one in line gets the slot.
func TestQueuedClientLeaves(t *testing.T) {
	for _, scheme := range []string{"http", "https"} {
		t.Run(scheme, func(t *testing.T) {
			be := newBackend(t, nil)
			be.delay.Store(int64(800 * time.Millisecond))
			rt := &Route{Service: "q", Port: 1, Auth: AuthNone, MaxConcurrentRequestsPerContainer: 1, MaxQueueWaitMs: 5000, ScoringTimeoutMs: 60000}
			f := New(nil)
			f.SetReady(true)
			f.SetRoute(rt)
			f.SetReplicas(rt.Service, []Replica{{Name: "pod-0", Addr: be.addr(), Slots: 1}}, "")
			var conf *tls.Config
			client := &http.Client{Transport: &http.Transport{}}
			if scheme == "https" {
				certPEM, keyPEM := testcert.SelfSigned(t, "h1.test")
				cert, err := tls.X509KeyPair(certPEM, keyPEM)
				if err != nil {
					t.Fatal(err)
				}
				conf = &tls.Config{Certificates: []tls.Certificate{cert}}
				client.Transport = &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}
			}
			url := ServeForTest(t, f, conf) + "/api/v1/service/q/score"
			postCtx := func(ctx context.Context) (int, error) {
				req, _ := http.NewRequestWithContext(ctx, "POST", url, strings.NewReader(`{"data":[1]}`))
				resp, err := client.Do(req)
				if err != nil {
					return 0, err
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				return resp.StatusCode, nil
			}
			first := make(chan int, 1)
			go func() { code, _ := postCtx(context.Background()); first <- code }()
			for be.inflight.Load() == 0 { // the first request holds the only slot
				time.Sleep(5 * time.Millisecond)
			}

			ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
			defer cancel()
			if _, err := postCtx(ctx); err == nil {
				t.Fatal("the client that gave up got an answer")
			}
			if code, err := postCtx(context.Background()); err != nil || code != 200 {
				t.Fatalf("the request queued after it: %d, %v", code, err)
			}
			if code := <-first; code != 200 {
				t.Fatalf("first request: %d", code)
			}
			if h := be.hits.Load(); h != 2 {
				t.Fatalf("the replica saw %d requests, want 2: the abandoned one was sent anyway", h)
			}
		})
	}
}
