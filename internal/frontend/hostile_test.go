package frontend

import (
	"bufio"
	"crypto/sha256"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-ml/berth/internal/testenv"
	"github.com/berth-ml/berth/internal/testenv/testcert"
)

// rawRequest sends raw bytes on a new connection to the front end at url
// and returns the connection (closed when the test ends).
func rawRequest(t *testing.T, url, raw string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	return c
}

func readAnswer(t *testing.T, c net.Conn) (int, string) {
	t.Helper()
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("reading the answer: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp.StatusCode, string(b)
}

// Issue 14, item 4: clients that send their bodies slowly, with or without
// credentials, and to any route, hold no replica slot: a service with a
// single slot keeps answering others at once.
func TestSlowClientsHoldNoSlot(t *testing.T) {
	b := newBackend(t, nil)
	rt := keyRoute("slow", "k")
	rt.MaxQueueWaitMs = 300
	f, url := frontWith(t, rt, b)
	head := func(method, path, auth, framing string) string {
		h := method + " " + path + " HTTP/1.1\r\nHost: x\r\n" + framing
		if auth != "" {
			h += "Authorization: Bearer " + auth + "\r\n"
		}
		return h + "\r\n"
	}
	var slow []net.Conn
	for _, raw := range []string{
		// The example: no credentials, a megabyte announced, a byte sent.
		head("GET", "/api/v1/service/slow/swagger.json", "", "Content-Length: 1000000\r\n") + "x",
		head("POST", "/api/v1/service/slow/score", "", "Content-Length: 1000000\r\n") + "x",
		head("POST", "/api/v1/service/slow/score", "wrong", "Transfer-Encoding: chunked\r\n") + "1\r\nx\r\n",
		// With a valid key: the body is not all there, so no slot yet.
		head("POST", "/api/v1/service/slow/score", "k", "Content-Length: 1000000\r\n") + "x",
		head("POST", "/api/v1/service/slow/score", "k", "Content-Length: 1000\r\n") + "x",
		head("POST", "/api/v1/service/slow/score", "k", "Transfer-Encoding: chunked\r\n") + "1\r\nx\r\n",
		head("POST", "/v2/models/slow/infer", "k", "Transfer-Encoding: chunked\r\n") + "1\r\nx\r\n",
	} {
		slow = append(slow, rawRequest(t, url, raw))
	}
	time.Sleep(200 * time.Millisecond)
	if l, _ := f.LoadOf("slow"); l.InFlight != 0 || l.Queued != 0 {
		t.Fatalf("slow uploads hold slots: %+v", l)
	}
	for i := 0; i < 3; i++ {
		start := time.Now()
		if a := post(t, url+"/api/v1/service/slow/score", "k", `{"data":[1]}`); a.code != 200 {
			t.Fatalf("a request while %d clients upload slowly: %+v", len(slow), a)
		}
		if d := time.Since(start); d > 250*time.Millisecond {
			t.Fatalf("a request waited %s behind slow uploads", d)
		}
	}
	// The swagger document is answered while the only slot is busy.
	b.delay.Store(int64(time.Second))
	busy := make(chan answer, 1)
	go func() { busy <- post(t, url+"/api/v1/service/slow/score", "k", "{}") }()
	for b.inflight.Load() == 0 {
		time.Sleep(5 * time.Millisecond)
	}
	start := time.Now()
	resp, err := http.Get(url + "/api/v1/service/slow/swagger.json")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || time.Since(start) > 1500*time.Millisecond {
		t.Fatalf("swagger while the slot is busy: %d after %s", resp.StatusCode, time.Since(start))
	}
	if a := <-busy; a.code != 200 {
		t.Fatalf("the busy request: %+v", a)
	}
	if b.peak.Load() > 2 {
		t.Fatalf("the replica saw %d requests at once", b.peak.Load())
	}
}

// The swagger document comes from the front end's copy: clients' requests
// never reach the replica (one fetch serves many), their headers and bodies
// are not sent, and a new route fetches it again.
func TestSwaggerServedFromCopy(t *testing.T) {
	var seen []string
	b := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		seen = append(seen, fmt.Sprintf("%s %s evil=%q body=%d", r.Method, r.URL.Path, r.Header.Get("X-Evil"), len(body)))
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"swagger":"2.0"}`)
	})
	rt := keyRoute("doc", "k")
	f, url := frontWith(t, rt, b)
	for i := 0; i < 5; i++ {
		req, _ := http.NewRequest("GET", url+"/api/v1/service/doc/swagger.json", strings.NewReader("a body"))
		req.Header.Set("X-Evil", "1")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(got) != `{"swagger":"2.0"}` || resp.Header.Get("Content-Type") != "application/json" {
			t.Fatalf("swagger: %d %q %v", resp.StatusCode, got, resp.Header)
		}
	}
	if len(seen) != 1 || seen[0] != `GET /swagger.json evil="" body=0` {
		t.Fatalf("the replica saw %q, want one plain GET", seen)
	}
	f.SetRoute(keyRoute("doc", "k")) // the same route again (every sync does this): the copy stays
	f.SetReplicas("doc", []Replica{{Name: "pod-0", Addr: b.addr(), Slots: 1}}, "")
	resp, _ := http.Get(url + "/api/v1/service/doc/swagger.json")
	resp.Body.Close()
	if len(seen) != 1 {
		t.Fatalf("after the same route and replicas the replica saw %d fetches, want 1", len(seen))
	}
	f.SetRoute(keyRoute("doc", "k", "k2"))
	resp, _ = http.Get(url + "/api/v1/service/doc/swagger.json")
	resp.Body.Close()
	if len(seen) != 2 {
		t.Fatalf("after a route change the replica saw %d fetches, want 2", len(seen))
	}
	// No replica: 503, as for scoring.
	f.SetReplicas("doc", nil, "")
	resp, _ = http.Get(url + "/api/v1/service/doc/swagger.json")
	resp.Body.Close()
	if resp.StatusCode != 503 {
		t.Fatalf("swagger with no replica: %d", resp.StatusCode)
	}
}

// Issue 14, item 5: a client's chunked framing errors are answered 400 by
// the front end (they were 502 "Replica closed connection before
// replying", found while streaming to the replica), and the replica sees
// nothing.
func TestClientFramingErrorsAre400(t *testing.T) {
	b := newBackend(t, nil)
	_, url := frontWith(t, keyRoute("frame", "k"), b)
	head := "POST /api/v1/service/frame/score HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k\r\nTransfer-Encoding: chunked\r\n\r\n"
	for name, body := range map[string]string{
		"oversize chunk size":        "fffffffffffffffffff1\r\nab\r\n0\r\n\r\n",
		"whitespace before ext":      "2 ;a=b\r\nab\r\n0\r\n\r\n", // RFC 9112 allows it; refused, as net/http does
		"bare LF after chunk size":   "2\nab\r\n0\r\n\r\n",
		"bare LF after last chunk":   "2\r\nab\r\n0\n\r\n",
		"no CRLF after chunk data":   "2\r\nabXY0\r\n\r\n",
		"chunk longer than its size": "2\r\nabc\r\n0\r\n\r\n",
	} {
		c := rawRequest(t, url, head+body)
		if code, out := readAnswer(t, c); code != 400 || !strings.Contains(out, "BadRequestBody") {
			t.Errorf("%s: %d %s", name, code, out)
		}
	}
	// A body cut short by the client's close.
	c := rawRequest(t, url, "POST /api/v1/service/frame/score HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k\r\nContent-Length: 10\r\n\r\nabc")
	c.(*net.TCPConn).CloseWrite()
	if code, out := readAnswer(t, c); code != 400 {
		t.Errorf("short body: %d %s", code, out)
	}
	if h := b.hits.Load(); h != 0 {
		t.Fatalf("the replica saw %d malformed requests", h)
	}
	// Well-formed chunked bodies still pass, with extensions.
	c = rawRequest(t, url, head+"2;a=b\r\nab\r\n1\r\nc\r\n0\r\n\r\n")
	if code, out := readAnswer(t, c); code != 200 || !strings.Contains(out, `"bytes":3`) {
		t.Fatalf("a good chunked body: %d %s", code, out)
	}
}

// Bodies over the memory bound are spooled to a file while they arrive,
// reach the replica whole with a Content-Length, and leave no file behind.
func TestLargeBodiesSpooled(t *testing.T) {
	var sums []string
	b := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		h := sha256.New()
		n, _ := io.Copy(h, r.Body)
		sums = append(sums, fmt.Sprintf("%d %x cl=%d te=%v", n, h.Sum(nil), r.ContentLength, r.TransferEncoding))
	})
	rt := keyRoute("big", "k")
	dir := t.TempDir()
	_, url := frontIn(t, dir, rt, b)
	data := strings.Repeat("0123456789abcdef", (2*memBody)/16+5)
	want := fmt.Sprintf("%d %x cl=%d te=[]", len(data), sha256.Sum256([]byte(data)), len(data))
	// With a Content-Length, and chunked (no length: net/http streams a reader of unknown size).
	if a := post(t, url+"/api/v1/service/big/score", "k", data); a.code != 200 {
		t.Fatal(a)
	}
	req, _ := http.NewRequest("POST", url+"/api/v1/service/big/score", io.MultiReader(strings.NewReader(data)))
	req.Header.Set("Authorization", "Bearer k")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if len(sums) != 2 || sums[0] != want || sums[1] != want {
		t.Fatalf("the replica got %q, want twice %q", sums, want)
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Fatalf("spool files left: %v", left)
	}
}

// Issue 14, item 6: the replica gets X-Forwarded-For with the client's
// address appended (never the client's value alone) and X-Forwarded-Proto
// as the client connected; headers named in Connection are hop-by-hop and
// dropped, both ways.
func TestForwardedAndHopByHopHeaders(t *testing.T) {
	b := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "X-Internal")
		w.Header().Set("X-Internal", "replica-only")
		w.Header().Set("X-Public", "yes")
		fmt.Fprintf(w, "xff=%q proto=%q hop=%q keep=%q auth=%q", strings.Join(r.Header["X-Forwarded-For"], "|"),
			strings.Join(r.Header["X-Forwarded-Proto"], "|"), r.Header.Get("X-Hop"), r.Header.Get("X-Keep"), r.Header.Get("Authorization"))
	})
	rt := keyRoute("fwd", "k")
	f, url := frontWith(t, rt, b)
	score := "POST /api/v1/service/fwd/score HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k\r\nContent-Length: 2\r\n"
	for _, c := range []struct{ head, want string }{
		{"", `xff="127.0.0.1" proto="http" hop="" keep="" auth=""`},
		{"X-Forwarded-For: 203.0.113.7\r\nX-Forwarded-Proto: https\r\n", `xff="203.0.113.7, 127.0.0.1" proto="http"`},
		{"X-Forwarded-For: 203.0.113.7, 10.0.0.1\r\nX-Forwarded-For: 10.0.0.2\r\n", `xff="203.0.113.7, 10.0.0.1, 10.0.0.2, 127.0.0.1"`},
		{"Connection: keep-alive, X-Hop\r\nX-Hop: secret\r\nX-Keep: yes\r\n", `hop="" keep="yes"`},
		// Naming X-Forwarded-For in Connection drops the client's value, not the front end's.
		{"Connection: x-forwarded-for\r\nX-Forwarded-For: 203.0.113.7\r\n", `xff="127.0.0.1"`},
	} {
		conn := rawRequest(t, url, score+c.head+"\r\n{}")
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(body), c.want) {
			t.Errorf("with %q the replica saw %s, want %s", c.head, body, c.want)
		}
		if resp.Header.Get("X-Internal") != "" || resp.Header.Get("X-Public") != "yes" {
			t.Errorf("the answer's headers: %v", resp.Header)
		}
	}
	// Over TLS the scheme is https.
	certPEM, keyPEM := testcert.SelfSigned(t, "fwd.test")
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	tlsURL := ServeForTest(t, f, &tls.Config{Certificates: []tls.Certificate{cert}})
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	req, _ := http.NewRequest("POST", tlsURL+"/api/v1/service/fwd/score", strings.NewReader("{}"))
	req.Header.Set("Authorization", "Bearer k")
	if _, body := testenv.Send(client, req); !strings.Contains(body, `proto="https"`) {
		t.Fatalf("over TLS the replica saw %s", body)
	}
	// A peer front end's scheme is kept only when the request comes from a peer's address.
	for _, c := range []struct {
		peers []string
		want  string
	}{{nil, `proto="http"`}, {[]string{"127.0.0.1:8080"}, `proto="https"`}} {
		f.SetPeers(c.peers)
		conn := rawRequest(t, url, score+"X-Berth-Forwarded: 1\r\nX-Forwarded-Proto: https\r\n\r\n{}")
		if code, body := readAnswer(t, conn); code != 200 || !strings.Contains(body, c.want) {
			t.Errorf("forwarded with peers %v: %s, want %s", c.peers, body, c.want)
		}
	}
}

// Bodies held in memory share memBudget: past it, even a small body is
// spooled (here to a folder that does not exist, so spooling fails: 500).
func TestBodyMemoryBudget(t *testing.T) {
	b := newBackend(t, nil)
	_, url := frontIn(t, filepath.Join(t.TempDir(), "missing"), keyRoute("budget", "k"), b)
	if a := post(t, url+"/api/v1/service/budget/score", "k", "{}"); a.code != 200 {
		t.Fatalf("within the budget: %+v", a)
	}
	memHeld.Add(memBudget)
	a := post(t, url+"/api/v1/service/budget/score", "k", "{}")
	memHeld.Add(-memBudget)
	if a.code != 500 || !strings.Contains(a.body, "could not be stored") {
		t.Fatalf("past the budget: %+v", a)
	}
	if n := memHeld.Load(); n != 0 {
		t.Fatalf("%d bytes of the budget still held after the requests", n)
	}
}

// A small chunked body takes a small part of the budget, whatever the size
// of the pooled buffer it is read into.
func TestChunkedBodyReservesWhatItUses(t *testing.T) {
	big := make([]byte, 0, memBody)
	bodyBufs.Put(&big)
	r, _ := http.NewRequest("POST", "/", io.MultiReader(strings.NewReader(`{"data":[1]}`)))
	r.ContentLength = -1
	b, err := readBody(httptest.NewRecorder(), r, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer b.close()
	if string(b.mem) != `{"data":[1]}` || b.file != nil {
		t.Fatalf("body %q, spooled %v", b.mem, b.file != nil)
	}
	if b.reserved > 16<<10 || memHeld.Load() != b.reserved {
		t.Fatalf("a 12-byte chunked body reserved %d bytes (held in all: %d)", b.reserved, memHeld.Load())
	}
}
