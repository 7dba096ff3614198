package h1

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// startH1 serves h with the lean server on loopback (TLS when conf is set).
func startH1(t *testing.T, h http.HandlerFunc, conf *tls.Config, setup ...func(*Server)) (*Server, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if conf != nil {
		ln = tls.NewListener(ln, conf)
	}
	srv := NewServer(h, nil)
	for _, f := range setup {
		f(srv)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-done; err != http.ErrServerClosed {
			t.Errorf("Serve returned %v", err)
		}
	})
	return srv, ln.Addr().String()
}

// echo answers with the method, path, body and a few request facts.
func echo(w http.ResponseWriter, r *http.Request) {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), 400)
		return
	}
	fmt.Fprintf(w, "%s %s q=%s len=%d cl=%d host=%s proto=%s tls=%v body=%s", r.Method, r.URL.Path, r.URL.RawQuery,
		len(b), r.ContentLength, r.Host, r.Proto, r.TLS != nil, b)
}

// rawConn is a client connection speaking raw HTTP/1.x.
type rawConn struct {
	t  *testing.T
	c  net.Conn
	br *bufio.Reader
}

func dialRaw(t *testing.T, addr string) *rawConn {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return &rawConn{t: t, c: c, br: bufio.NewReader(c)}
}

func (rc *rawConn) send(s string) {
	if _, err := io.WriteString(rc.c, s); err != nil {
		rc.t.Fatal(err)
	}
}

// read reads one response (method is the request's) with its whole body.
func (rc *rawConn) read(method string) (*http.Response, string) {
	rc.t.Helper()
	resp, err := http.ReadResponse(rc.br, &http.Request{Method: method})
	if err != nil {
		rc.t.Fatalf("reading a response: %v", err)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		rc.t.Fatalf("reading a body: %v", err)
	}
	return resp, string(b)
}

// closed tells whether the server closed the connection.
func (rc *rawConn) closed() bool {
	rc.c.SetReadDeadline(time.Now().Add(2 * time.Second))
	_, err := rc.br.ReadByte()
	return err == io.EOF
}

func TestH1KeepAliveReuse(t *testing.T) {
	_, addr := startH1(t, echo, nil)
	var reused atomic.Int32
	c := &http.Client{}
	for i := 0; i < 5; i++ {
		ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) {
			if i.Reused {
				reused.Add(1)
			}
		}})
		req, _ := http.NewRequestWithContext(ctx, "POST", "http://"+addr+"/a/b?x=1", strings.NewReader("hello"))
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if want := "POST /a/b q=x=1 len=5 cl=5 host=" + addr + " proto=HTTP/1.1 tls=false body=hello"; string(b) != want {
			t.Fatalf("got %q, want %q", b, want)
		}
		if resp.ContentLength != int64(len(b)) || resp.Header.Get("Date") == "" || resp.Header.Get("Content-Type") != "text/plain; charset=utf-8" {
			t.Fatalf("small answer: length %d, header %v", resp.ContentLength, resp.Header)
		}
	}
	if reused.Load() != 4 {
		t.Fatalf("%d of 4 later requests reused the connection", reused.Load())
	}
}

func TestH1Pipelining(t *testing.T) {
	_, addr := startH1(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			time.Sleep(50 * time.Millisecond)
		}
		echo(w, r)
	}, nil)
	rc := dialRaw(t, addr)
	rc.send("GET /slow HTTP/1.1\r\nHost: x\r\n\r\n" +
		"POST /two HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc" +
		"POST /unread HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nwxyz" +
		"GET /four HTTP/1.1\r\nHost: x\r\n\r\n")
	for _, want := range []string{"GET /slow", "POST /two q= len=3 cl=3 host=x proto=HTTP/1.1 tls=false body=abc", "POST /unread", "GET /four"} {
		_, body := rc.read("GET")
		if !strings.HasPrefix(body, want) {
			t.Fatalf("got %q, want %q first", body, want)
		}
	}
}

// A handler that does not read a small body leaves the connection usable.
func TestH1UnreadBody(t *testing.T) {
	_, addr := startH1(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, r.URL.Path) }, nil)
	rc := dialRaw(t, addr)
	rc.send("POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n0123456789")
	rc.send("POST /b HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n")
	rc.send("GET /c HTTP/1.1\r\nHost: x\r\n\r\n")
	for _, want := range []string{"/a", "/b", "/c"} {
		if _, body := rc.read("GET"); body != want {
			t.Fatalf("got %q, want %q", body, want)
		}
	}
	// A large unread body closes the connection after the answer.
	rc = dialRaw(t, addr)
	rc.send("POST /big HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\n\r\n0123")
	resp, body := rc.read("POST")
	if body != "/big" || !resp.Close {
		t.Fatalf("large unread body: %q, close %v", body, resp.Close)
	}
}

func TestH1ChunkedRequestBody(t *testing.T) {
	_, addr := startH1(t, echo, nil)
	rc := dialRaw(t, addr)
	rc.send("POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 99\r\n\r\n" +
		"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n" +
		"GET /after HTTP/1.1\r\nHost: x\r\n\r\n")
	if _, body := rc.read("POST"); body != "POST /c q= len=11 cl=-1 host=x proto=HTTP/1.1 tls=false body=hello world" {
		t.Fatalf("chunked: %q", body)
	}
	if _, body := rc.read("GET"); !strings.HasPrefix(body, "GET /after") {
		t.Fatalf("after chunked: %q", body)
	}
	// Through Go's client, with a body of unknown length.
	pr, pw := io.Pipe()
	go func() {
		for i := 0; i < 100; i++ {
			fmt.Fprintf(pw, "%04d", i)
		}
		pw.Close()
	}()
	resp, err := http.Post("http://"+addr+"/p", "text/plain", pr)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.HasPrefix(string(b), "POST /p q= len=400 cl=-1") {
		t.Fatalf("client chunked: %q", b)
	}
	// A broken chunk is a failed body read.
	rc = dialRaw(t, addr)
	rc.send("POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n")
	if resp, _ := rc.read("POST"); resp.StatusCode != 400 || !resp.Close {
		t.Fatalf("broken chunk: %d close %v", resp.StatusCode, resp.Close)
	}
}

func TestH1ConnectionClose(t *testing.T) {
	_, addr := startH1(t, echo, nil)
	rc := dialRaw(t, addr)
	rc.send("GET /x HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, close\r\n\r\n")
	resp, body := rc.read("GET")
	if !strings.HasPrefix(body, "GET /x") || !resp.Close {
		t.Fatalf("answer %q close %v header %v", body, resp.Close, resp.Header)
	}
	if !rc.closed() {
		t.Fatal("the connection stayed open after Connection: close")
	}
	// The handler can ask for it too.
	_, addr = startH1(t, func(w http.ResponseWriter, r *http.Request) { w.Header().Set("Connection", "close") }, nil)
	rc = dialRaw(t, addr)
	rc.send("GET /x HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp, _ := rc.read("GET"); !resp.Close || !rc.closed() {
		t.Fatal("a handler's Connection: close was not honoured")
	}
}

func TestH1HTTP10(t *testing.T) {
	_, addr := startH1(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/stream" {
			for i := 0; i < 3; i++ {
				io.WriteString(w, strings.Repeat("s", 3000))
				w.(http.Flusher).Flush()
			}
			return
		}
		echo(w, r)
	}, nil)
	// Without keep-alive: the answer ends with the connection.
	rc := dialRaw(t, addr)
	rc.send("GET /old HTTP/1.0\r\n\r\n")
	resp, body := rc.read("GET")
	// (As net/http: no Connection: close to an HTTP/1.0 client.)
	if body != "GET /old q= len=0 cl=0 host= proto=HTTP/1.0 tls=false body=" || resp.Close {
		t.Fatalf("1.0: %q close %v %v", body, resp.Close, resp.Header)
	}
	if !rc.closed() {
		t.Fatal("1.0 without keep-alive stayed open")
	}
	// With keep-alive: the connection is reused.
	rc = dialRaw(t, addr)
	for i := 0; i < 2; i++ {
		rc.send("POST /ka HTTP/1.0\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nhi")
		resp, body := rc.read("POST")
		if !strings.HasSuffix(body, "body=hi") || resp.Close {
			t.Fatalf("1.0 keep-alive: %q close %v %v", body, resp.Close, resp.Header)
		}
	}
	// A streamed answer to 1.0 is not chunked: it ends with the connection.
	rc.send("GET /stream HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
	resp, body = rc.read("GET")
	if len(body) != 9000 || len(resp.TransferEncoding) != 0 || !resp.Close {
		t.Fatalf("1.0 stream: %d bytes, %v, close %v", len(body), resp.TransferEncoding, resp.Close)
	}
}

func TestH1BadRequests(t *testing.T) {
	_, addr := startH1(t, echo, nil)
	for _, tc := range []struct {
		name, req string
		code      int
	}{
		{"no version", "GET /\r\n\r\n", 400},
		{"bad version", "GET / HTTP/x\r\nHost: x\r\n\r\n", 400},
		{"extra space", "GET /  HTTP/1.1\r\nHost: x\r\n\r\n", 400},
		{"bad method", "G(T / HTTP/1.1\r\nHost: x\r\n\r\n", 400},
		{"garbage", "\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03\r\n\r\n", 400},
		{"HTTP/2", "GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505},
		{"no Host", "GET / HTTP/1.1\r\n\r\n", 400},
		{"two Hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400},
		{"bad Host", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400},
		{"header without colon", "GET / HTTP/1.1\r\nHost: x\r\nNoColon\r\n\r\n", 400},
		{"space before colon", "GET / HTTP/1.1\r\nHost: x\r\nBad : v\r\n\r\n", 400},
		{"folded header", "GET / HTTP/1.1\r\nHost: x\r\nA: b\r\n c\r\n\r\n", 400},
		{"bad Content-Length", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", 400},
		{"two Content-Lengths", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", 400},
		{"gzip transfer", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 501},
		{"bad target", "GET http://[::1 HTTP/1.1\r\nHost: x\r\n\r\n", 400},
		{"unknown expectation", "POST / HTTP/1.1\r\nHost: x\r\nExpect: magic\r\nContent-Length: 1\r\n\r\nx", 417},
	} {
		rc := dialRaw(t, addr)
		rc.send(tc.req)
		resp, _ := rc.read("GET")
		if resp.StatusCode != tc.code || !resp.Close {
			t.Errorf("%s: %d (close %v), want %d", tc.name, resp.StatusCode, resp.Close, tc.code)
		}
	}
	// A head over 64 KiB: 431.
	rc := dialRaw(t, addr)
	rc.send("GET / HTTP/1.1\r\nHost: x\r\n")
	go func(conn net.Conn) {
		for i := 0; i < 100; i++ {
			if _, err := fmt.Fprintf(conn, "X-Filler-%d: %s\r\n", i, strings.Repeat("f", 1000)); err != nil {
				return
			}
		}
		io.WriteString(conn, "\r\n")
	}(rc.c)
	if resp, _ := rc.read("GET"); resp.StatusCode != 431 {
		t.Fatalf("large head: %d", resp.StatusCode)
	}
	// A head of 40 KiB (longer than the read buffer) is fine.
	rc = dialRaw(t, addr)
	rc.send("GET /long HTTP/1.1\r\nHost: x\r\nX-Long: " + strings.Repeat("l", 40<<10) + "\r\n\r\nGET /next HTTP/1.1\r\nHost: x\r\n\r\n")
	if _, body := rc.read("GET"); !strings.HasPrefix(body, "GET /long") {
		t.Fatalf("long head: %q", body)
	}
	if _, body := rc.read("GET"); !strings.HasPrefix(body, "GET /next") {
		t.Fatalf("after a long head: %q", body)
	}
	// Absolute form, escaped paths, odd header case, bare LF line ends.
	rc = dialRaw(t, addr)
	rc.send("\r\nGET http://example.test/a%20b?q=1 HTTP/1.1\nhost: y\ncontent-length: 0\n\n")
	if _, body := rc.read("GET"); body != "GET /a b q=q=1 len=0 cl=0 host=example.test proto=HTTP/1.1 tls=false body=" {
		t.Fatalf("absolute form: %q", body)
	}
}

func TestH1Head(t *testing.T) {
	_, addr := startH1(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/cl" {
			w.Header().Set("Content-Length", "5")
		}
		io.WriteString(w, "hello")
	}, nil)
	rc := dialRaw(t, addr)
	for _, p := range []string{"/", "/cl"} {
		rc.send("HEAD " + p + " HTTP/1.1\r\nHost: x\r\n\r\n")
		resp, body := rc.read("HEAD")
		if resp.StatusCode != 200 || resp.ContentLength != 5 || body != "" {
			t.Fatalf("HEAD %s: %d length %d body %q", p, resp.StatusCode, resp.ContentLength, body)
		}
	}
	rc.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	if _, body := rc.read("GET"); body != "hello" {
		t.Fatalf("GET after HEAD: %q", body)
	}
}

func TestH1LargeStreamedAnswer(t *testing.T) {
	chunk := strings.Repeat("0123456789", 1000)
	_, addr := startH1(t, func(w http.ResponseWriter, r *http.Request) {
		for i := 0; i < 100; i++ {
			io.WriteString(w, chunk)
			if i%10 == 0 {
				w.(http.Flusher).Flush()
			}
		}
	}, nil)
	resp, err := http.Get("http://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || len(b) != 100*len(chunk) || string(b[:len(chunk)]) != chunk {
		t.Fatalf("%d bytes, %v", len(b), err)
	}
	if len(resp.TransferEncoding) != 1 || resp.TransferEncoding[0] != "chunked" || resp.ContentLength != -1 {
		t.Fatalf("not chunked: %v %d", resp.TransferEncoding, resp.ContentLength)
	}
	// A declared length is respected; writing past it fails.
	var werr atomic.Value
	_, addr = startH1(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", fmt.Sprint(50*len(chunk)))
		for i := 0; i < 50; i++ {
			io.WriteString(w, chunk)
		}
		_, err := io.WriteString(w, "x")
		werr.Store(fmt.Sprint(err))
	}, nil)
	resp, err = http.Get("http://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	b, err = io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || len(b) != 50*len(chunk) || resp.ContentLength != int64(len(b)) || len(resp.TransferEncoding) != 0 {
		t.Fatalf("declared length: %d bytes of %d, %v %v", len(b), resp.ContentLength, resp.TransferEncoding, err)
	}
	if werr.Load() != http.ErrContentLength.Error() {
		t.Fatalf("write past the length: %v", werr.Load())
	}
}

func TestH1AbortHandler(t *testing.T) {
	_, addr := startH1(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/ok" {
			io.WriteString(w, "ok")
			return
		}
		w.Header().Set("Content-Length", "100000")
		io.WriteString(w, strings.Repeat("a", 20000))
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler)
	}, nil)
	resp, err := http.Get("http://" + addr + "/abort")
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !errors.Is(err, io.ErrUnexpectedEOF) || len(b) != 20000 {
		t.Fatalf("aborted answer: %d bytes, %v", len(b), err)
	}
	// Any other panic closes the connection too; the server goes on.
	resp, err = http.Get("http://" + addr + "/ok")
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "ok" {
		t.Fatalf("after an abort: %q", b)
	}
}

func TestH1ShutdownDrains(t *testing.T) {
	started, release := make(chan struct{}), make(chan struct{})
	var ctxErr atomic.Value
	srv, addr := startH1(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			close(started)
			<-release
			ctxErr.Store(fmt.Sprint(r.Context().Err()))
		}
		io.WriteString(w, "done "+r.URL.Path)
	}, nil)
	idle := dialRaw(t, addr)
	idle.send("GET /first HTTP/1.1\r\nHost: x\r\n\r\n")
	idle.read("GET")
	busy := dialRaw(t, addr)
	busy.send("GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
	<-started
	shut := make(chan error, 1)
	go func() { shut <- srv.Shutdown(context.Background()) }()
	if !idle.closed() {
		t.Fatal("an idle connection stayed open during shutdown")
	}
	if _, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		t.Fatal("new connections accepted during shutdown")
	}
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned before the request ended: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	resp, body := busy.read("GET")
	if body != "done /slow" || !resp.Close {
		t.Fatalf("in-flight answer: %q close %v", body, resp.Close)
	}
	if err := <-shut; err != nil {
		t.Fatal(err)
	}
	if ctxErr.Load() != "<nil>" {
		t.Fatalf("the request's context ended during a graceful shutdown: %v", ctxErr.Load())
	}
	// Shutdown with a deadline cancels what is still running.
	srv, addr = startH1(t, func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }, nil)
	rc := dialRaw(t, addr)
	rc.send("GET /stuck HTTP/1.1\r\nHost: x\r\n\r\n")
	time.Sleep(50 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := srv.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown past its deadline: %v", err)
	}
	if !rc.closed() {
		t.Fatal("a stuck connection stayed open after the shutdown deadline")
	}
}

func TestH1ExpectContinue(t *testing.T) {
	_, addr := startH1(t, echo, nil)
	rc := dialRaw(t, addr)
	rc.send("POST /e HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n")
	line, err := rc.br.ReadString('\n')
	if err != nil || line != "HTTP/1.1 100 Continue\r\n" {
		t.Fatalf("interim answer %q, %v", line, err)
	}
	rc.br.ReadString('\n')
	rc.send("data")
	if _, body := rc.read("POST"); !strings.HasSuffix(body, "body=data") {
		t.Fatalf("after 100 Continue: %q", body)
	}
	// Go's client waits for the 100 Continue.
	c := &http.Client{Transport: &http.Transport{ExpectContinueTimeout: 5 * time.Second}}
	req, _ := http.NewRequest("POST", "http://"+addr+"/g", strings.NewReader("xyz"))
	req.Header.Set("Expect", "100-continue")
	start := time.Now()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.HasSuffix(string(b), "body=xyz") || time.Since(start) > 2*time.Second {
		t.Fatalf("Go client with Expect: %q after %s", b, time.Since(start))
	}
	// A handler that answers without reading: no 100, and the connection closes.
	_, addr = startH1(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(401) }, nil)
	rc = dialRaw(t, addr)
	rc.send("POST /e HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n")
	if resp, _ := rc.read("POST"); resp.StatusCode != 401 || !resp.Close {
		t.Fatalf("refused without reading: %d close %v", resp.StatusCode, resp.Close)
	}
}

func TestH1TLS(t *testing.T) {
	ts := httptest.NewUnstartedServer(nil) // for its certificate
	ts.StartTLS()
	ts.Close()
	_, addr := startH1(t, echo, &tls.Config{Certificates: ts.TLS.Certificates, NextProtos: []string{"http/1.1"}})
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	for i := 0; i < 3; i++ {
		resp, err := c.Post("https://"+addr+"/s", "text/plain", strings.NewReader("secret"))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(b), "tls=true body=secret") || resp.TLS == nil {
			t.Fatalf("over TLS: %q", b)
		}
	}
	// Plain HTTP to the TLS port is told so.
	rc := dialRaw(t, addr)
	rc.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp, body := rc.read("GET"); resp.StatusCode != 400 || !strings.Contains(body, "HTTPS server") {
		t.Fatalf("plain HTTP on TLS: %d %q", resp.StatusCode, body)
	}
}

// A client gone before its answer is written ends the request's context
// at the failed write, so the handler stops quietly.
func TestH1ClientGoneCancelsContext(t *testing.T) {
	gotErr := make(chan error, 1)
	_, addr := startH1(t, func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(100 * time.Millisecond)
		var err error
		for i := 0; i < 1000 && err == nil; i++ {
			_, err = w.Write(make([]byte, 64<<10))
		}
		if err == nil {
			gotErr <- errors.New("writes kept succeeding")
			return
		}
		gotErr <- r.Context().Err()
	}, nil)
	rc := dialRaw(t, addr)
	rc.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	rc.c.(*net.TCPConn).SetLinger(0)
	rc.c.Close()
	if err := <-gotErr; !errors.Is(err, context.Canceled) {
		t.Fatalf("context after the client left: %v", err)
	}
}

func TestH1Timeouts(t *testing.T) {
	_, addr := startH1(t, echo, nil, func(s *Server) { s.ReadHeaderTimeout, s.IdleTimeout = 200*time.Millisecond, 300*time.Millisecond })
	// A head that never ends.
	rc := dialRaw(t, addr)
	start := time.Now()
	rc.send("GET / HTTP/1.1\r\nHost: x\r\n")
	if !rc.closed() || time.Since(start) > time.Second {
		t.Fatalf("an unfinished head was not cut after ReadHeaderTimeout (%s)", time.Since(start))
	}
	// An idle keep-alive connection.
	rc = dialRaw(t, addr)
	rc.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	rc.read("GET")
	start = time.Now()
	if !rc.closed() || time.Since(start) < 200*time.Millisecond || time.Since(start) > time.Second {
		t.Fatalf("idle connection closed after %s, want about 300ms", time.Since(start))
	}
	// A connection that keeps asking, each gap well under the idle timeout,
	// stays open far past it (the idle deadline moves with the requests).
	rc = dialRaw(t, addr)
	for i := 0; i < 10; i++ {
		rc.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		rc.read("GET")
		time.Sleep(100 * time.Millisecond)
	}
	// A slow body is not cut by the header timeout.
	rc = dialRaw(t, addr)
	rc.send("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nab")
	time.Sleep(500 * time.Millisecond)
	rc.send("cd")
	if _, body := rc.read("POST"); !strings.HasSuffix(body, "body=abcd") {
		t.Fatalf("slow body: %q", body)
	}
}

// WatchClient: a client that closes its connection while the handler waits
// ends the request's context; one that sends more (a pipelined request)
// does not, and its next request is served whole.
func TestH1WatchClient(t *testing.T) {
	ended := make(chan error, 1)
	_, addr := startH1(t, func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		stop := w.(*Response).WatchClient()
		select {
		case <-r.Context().Done():
			stop()
			ended <- r.Context().Err()
			return
		case <-time.After(300 * time.Millisecond):
		}
		stop()
		ended <- nil
		echo(w, r)
	}, nil)

	rc := dialRaw(t, addr)
	rc.send("POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc")
	time.Sleep(50 * time.Millisecond)
	rc.c.Close()
	select {
	case err := <-ended:
		if err == nil {
			t.Fatal("the handler's context did not end when the client closed its connection")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the handler never returned")
	}

	rc = dialRaw(t, addr)
	rc.send("POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc")
	time.Sleep(50 * time.Millisecond) // the watch has started
	rc.send("GET /next HTTP/1.1\r\nHost: x\r\n\r\n")
	if err := <-ended; err != nil {
		t.Fatalf("a pipelined request ended the first one's context: %v", err)
	}
	if _, body := rc.read("POST"); !strings.HasPrefix(body, "POST /a") {
		t.Fatalf("first answer %q", body)
	}
	if err := <-ended; err != nil {
		t.Fatal(err)
	}
	if _, body := rc.read("GET"); !strings.HasPrefix(body, "GET /next") {
		t.Fatalf("the pipelined request, whose first byte the watch read, came back as %q", body)
	}
}

// A body that arrives slower than MinBodyRate is cut once BodyGrace has
// passed (ErrBodyTooSlow, then the connection closes); one that keeps to
// the rate is read whole however long it takes. Both framings.
func TestH1MinBodyRate(t *testing.T) {
	gotErr := make(chan error, 4)
	_, addr := startH1(t, func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		gotErr <- err
		if err != nil {
			http.Error(w, err.Error(), http.StatusRequestTimeout)
			return
		}
		fmt.Fprintf(w, "body=%s", b)
	}, nil, func(s *Server) { s.MinBodyRate, s.BodyGrace = 100, 300*time.Millisecond })

	for _, head := range []string{
		"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
	} {
		rc := dialRaw(t, addr)
		start := time.Now()
		rc.send(head)
		chunked := strings.Contains(head, "chunked")
		go func() { // 20 B/s, or 60 B/s with the chunks' framing (the rate counts the bytes received)
			for i := 0; i < 100; i++ {
				msg := "a"
				if chunked {
					msg = "1\r\na\r\n"
					time.Sleep(50 * time.Millisecond)
				}
				if _, err := io.WriteString(rc.c, msg); err != nil {
					return
				}
				time.Sleep(50 * time.Millisecond)
			}
		}()
		if err := <-gotErr; !errors.Is(err, ErrBodyTooSlow) {
			t.Fatalf("%q: a body at 20-60 B/s, minimum 100 B/s: read error %v", head, err)
		}
		if d := time.Since(start); d < 300*time.Millisecond || d > 2*time.Second {
			t.Fatalf("%q: cut after %s, want soon after the 300ms grace", head, d)
		}
		resp, body := rc.read("POST")
		if resp.StatusCode != http.StatusRequestTimeout || !strings.Contains(body, "minimum data rate") || !resp.Close {
			t.Fatalf("%q: %d %q close=%v", head, resp.StatusCode, body, resp.Close)
		}
	}

	// 10 bytes every 50 ms (200 B/s) for a second: well past the grace, at
	// twice the minimum.
	rc := dialRaw(t, addr)
	rc.send("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 200\r\n\r\n")
	for i := 0; i < 20; i++ {
		time.Sleep(50 * time.Millisecond)
		rc.send(strings.Repeat("b", 10))
	}
	if err := <-gotErr; err != nil {
		t.Fatalf("a body at twice the minimum rate: %v", err)
	}
	if resp, body := rc.read("POST"); resp.StatusCode != 200 || body != "body="+strings.Repeat("b", 200) {
		t.Fatalf("%d %q", resp.StatusCode, body)
	}
	// The next request on the connection is not held to the body's pace.
	rc.send("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nok")
	if err := <-gotErr; err != nil {
		t.Fatal(err)
	}
	if _, body := rc.read("POST"); body != "body=ok" {
		t.Fatalf("%q", body)
	}
}
