package upstream

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
)

// cannedReplica answers the requests on each connection with the next of
// answers, raw, closing the connection after one that ends in "#close"; it
// counts the connections it accepted.
func cannedReplica(t *testing.T, answers ...string) (addr string, conns func() int) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	n := make(chan int, 100)
	count := 0
	next := make(chan string, len(answers))
	for _, a := range answers {
		next <- a
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			n <- 1
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					io.Copy(io.Discard, req.Body)
					select {
					case a := <-next:
						a, closeAfter := strings.CutSuffix(a, "#close")
						if _, err := io.WriteString(c, a); err != nil || closeAfter {
							return
						}
					default:
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String(), func() int {
		for {
			select {
			case <-n:
				count++
			default:
				return count
			}
		}
	}
}

type upAnswer struct {
	code   int
	header http.Header
	body   string
	err    error
}

func upDo(t *testing.T, up *Client, addr, method string) upAnswer {
	t.Helper()
	ex, err := up.Do(context.Background(), time.Now().Add(5*time.Second), addr, method, "/score", http.Header{}, nil, nil, nil, nil, 0)
	if err != nil {
		return upAnswer{err: err}
	}
	b, err := io.ReadAll(ex.Body)
	a := upAnswer{code: ex.StatusCode, header: ex.Header.Clone(), body: string(b), err: err}
	ex.Close()
	return a
}

func TestUpstreamResponseFraming(t *testing.T) {
	addr, conns := cannedReplica(t,
		"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello",
		// chunked, with a trailer, and a Content-Length to ignore
		"HTTP/1.1 201 Created\r\ncontent-type: text/plain\r\nTransfer-Encoding: chunked\r\nContent-Length: 99\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\nX-Trailer: t\r\n\r\n",
		// repeated headers, no reason phrase, a lower-case name
		"HTTP/1.1 204\r\nx-multi: a\r\nX-Multi: b\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nend",
	)
	up := New()
	a := upDo(t, up, addr, "POST")
	if a.err != nil || a.code != 200 || a.body != "hello" || a.header.Get("Content-Type") != "text/plain" {
		t.Fatalf("first answer: %+v", a)
	}
	a = upDo(t, up, addr, "POST")
	if a.err != nil || a.code != 201 || a.body != "abcde" || a.header.Get("Content-Length") != "" || a.header.Get("Content-Type") != "text/plain" {
		t.Fatalf("chunked answer: %+v", a)
	}
	a = upDo(t, up, addr, "POST")
	if a.err != nil || a.code != 204 || a.body != "" || strings.Join(a.header["X-Multi"], ",") != "a,b" || a.header.Get("Content-Type") != "" {
		t.Fatalf("204 with repeated headers: %+v (the previous answer's headers must be gone)", a)
	}
	a = upDo(t, up, addr, "POST")
	if a.err != nil || a.body != "end" {
		t.Fatalf("fourth answer: %+v", a)
	}
	if n := conns(); n != 1 {
		t.Fatalf("%d connections for four keep-alive answers, want 1", n)
	}
}

// The header values handed out for one answer are not changed by the next
// answer on the same connection (a response being written may hold them).
func TestUpstreamResponseHeadersStayPut(t *testing.T) {
	addr, _ := cannedReplica(t,
		"HTTP/1.1 200 OK\r\nX-A: one\r\nX-B: same\r\nContent-Length: 0\r\n\r\n",
		"HTTP/1.1 200 OK\r\nX-A: two\r\nX-B: same\r\nX-B: more\r\nContent-Length: 0\r\n\r\n",
	)
	up := New()
	ex, err := up.Do(context.Background(), time.Now().Add(5*time.Second), addr, "GET", "/", http.Header{}, nil, nil, nil, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	xa, xb := ex.Header["X-A"], ex.Header["X-B"]
	ex.Close()
	a := upDo(t, up, addr, "GET")
	if a.err != nil || a.header.Get("X-A") != "two" || strings.Join(a.header["X-B"], ",") != "same,more" {
		t.Fatalf("second answer: %+v", a)
	}
	if strings.Join(xa, ",") != "one" || strings.Join(xb, ",") != "same" {
		t.Fatalf("the first answer's values changed to X-A %q, X-B %q", xa, xb)
	}
}

func TestUpstreamResponseEndings(t *testing.T) {
	// HTTP/1.0 and Connection: close end the connection; a body without a
	// length runs to the close; HEAD has no body whatever its length.
	addr, conns := cannedReplica(t, "HTTP/1.0 200 OK\r\n\r\nuntil close#close")
	up := New()
	if a := upDo(t, up, addr, "GET"); a.err != nil || a.body != "until close" {
		t.Fatalf("HTTP/1.0: %+v", a)
	}
	addr, conns = cannedReplica(t,
		"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n",
		"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok",
		"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	if a := upDo(t, up, addr, "HEAD"); a.err != nil || a.body != "" {
		t.Fatalf("HEAD: %+v", a)
	}
	if a := upDo(t, up, addr, "GET"); a.err != nil || a.body != "ok" {
		t.Fatalf("Connection: close: %+v", a)
	}
	if a := upDo(t, up, addr, "GET"); a.err != nil || a.body != "ok" {
		t.Fatalf("after the close: %+v", a)
	}
	if n := conns(); n != 2 {
		t.Fatalf("%d connections, want 2 (a new one after Connection: close)", n)
	}

	// A body cut short is an error, not a short answer.
	addr, _ = cannedReplica(t, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort#close")
	if a := upDo(t, up, addr, "GET"); a.err != io.ErrUnexpectedEOF {
		t.Fatalf("short body: %+v, want io.ErrUnexpectedEOF", a)
	}
}

func TestUpstreamResponseMalformed(t *testing.T) {
	for _, bad := range []string{
		"HTTP/2.0 200 OK\r\n\r\n",
		"HTTP/1.1 2x0 OK\r\n\r\n",
		"HTTP/1.1 099 Low\r\n\r\n",
		"HTTP/1.1 200OK\r\n\r\n",
		"garbage\r\n\r\n",
		"HTTP/1.1 200 OK\r\nNo-Colon\r\n\r\n",
		"HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n",
		"HTTP/1.1 200 OK\r\nX: a\x00b\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: +1\r\n\r\nx",
		"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nx",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
		"HTTP/1.1 200 OK\r\nX-Big: " + strings.Repeat("x", maxResponseHead) + "\r\n\r\n",
	} {
		addr, _ := cannedReplica(t, bad)
		if a := upDo(t, New(), addr, "GET"); a.err == nil {
			t.Errorf("%.40q: accepted as %+v", bad, a)
		}
	}
	// A long header line within the limit is fine.
	long := strings.Repeat("v", 100<<10)
	addr, _ := cannedReplica(t, "HTTP/1.1 200 OK\r\nX-Long: "+long+"\r\nContent-Length: 0\r\n\r\n")
	if a := upDo(t, New(), addr, "GET"); a.err != nil || a.header.Get("X-Long") != long {
		t.Fatalf("long header: err %v, %d bytes", a.err, len(a.header.Get("X-Long")))
	}
}

// Bytes a replica sends after an answer's end are not taken for the next
// answer: the connection is not reused.
func TestUpstreamExtraBytesEndTheConnection(t *testing.T) {
	addr, conns := cannedReplica(t,
		"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nstale",
		"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfresh")
	up := New()
	if a := upDo(t, up, addr, "GET"); a.err != nil || a.body != "ok" {
		t.Fatalf("first answer: %+v", a)
	}
	if a := upDo(t, up, addr, "GET"); a.err != nil || a.body != "fresh" {
		t.Fatalf("second answer: %+v, want the second request's own answer", a)
	}
	if n := conns(); n != 2 {
		t.Fatalf("%d connections, want 2", n)
	}
}

// A replica's 100 Continue (sent unasked here) is never taken for its
// answer, and the pooled connection stays in step.
func TestUpstreamSkipsContinue(t *testing.T) {
	answer := "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
	addr, conns := cannedReplica(t, answer, answer, answer)
	up := New()
	for i := 0; i < 3; i++ {
		ex, err := up.Do(context.Background(), time.Now().Add(time.Minute), addr, "POST", "/x", http.Header{}, nil, nil, []byte("abc"), nil, 3)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(ex.Body)
		ex.Close()
		if ex.StatusCode != 200 || string(b) != "ok" {
			t.Fatalf("request %d: %d %q", i, ex.StatusCode, b)
		}
	}
	if n := conns(); n != 1 {
		t.Fatalf("%d connections, want 1", n)
	}
}

// A body in hand is rewound for a second attempt on a new connection: an
// io.Seeker, or an io.LimitedReader of one (a spooled file) with its length.
func TestRewind(t *testing.T) {
	f, err := os.CreateTemp(t.TempDir(), "body")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.WriteString("hello, world")
	f.Seek(0, io.SeekStart)
	lr := &io.LimitedReader{R: f, N: 5}
	if b, _ := io.ReadAll(lr); string(b) != "hello" {
		t.Fatalf("%q", b)
	}
	if !rewind(lr, 5) {
		t.Fatal("a LimitedReader of a file was not rewound")
	}
	if b, _ := io.ReadAll(lr); string(b) != "hello" {
		t.Fatalf("after rewind: %q", b)
	}
	sr := io.NewSectionReader(f, 7, 5)
	io.ReadAll(sr)
	if !rewind(sr, 5) {
		t.Fatal("a SectionReader was not rewound")
	}
	if b, _ := io.ReadAll(sr); string(b) != "world" {
		t.Fatalf("after rewind: %q", b)
	}
	if rewind(strings.NewReader("x"), 1) != true || rewind(io.MultiReader(), 0) {
		t.Fatal("rewind of a Seeker, or of a reader that cannot be")
	}
}
