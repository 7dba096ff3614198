// Package h1 is berth's own HTTP/1.1 server for the front end's scoring
// listeners (docs/frontend.md, "berth's HTTP/1.1 server").
package h1

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/berth-ml/berth/internal/frontend/httpsyntax"
)

// Server is a lean HTTP/1.1 server for the scoring listeners. It calls
// the same http.Handler as net/http would, but skips what costs net/http's
// server most per request on this path (docs/frontend.md, "Performance"):
// no background read per request (a client that leaves is noticed when its
// answer is written, or by WatchClient while the request is queued), the
// request parsed into a Request, Header and URL
// reused per connection, and a small answer sent in one write with its
// Content-Length.
//
// Differences from net/http that a client can see: headers are not sorted,
// answers without a Content-Length up to h1BufferSize (4 KiB, net/http:
// 2 KiB) get one instead of chunked encoding, trailers in chunked request
// bodies are read and dropped, and there is no HTTP/2, Hijacker or
// CloseNotifier. `Expect: 100-continue` is answered with 100 Continue when
// the handler first reads the body, as net/http does.
type Server struct {
	Handler           http.Handler
	ReadHeaderTimeout time.Duration // also bounds the TLS handshake
	IdleTimeout       time.Duration
	MaxHeaderBytes    int
	// MinBodyRate is the slowest a request body may arrive, in bytes per
	// second on average since its head was read, once BodyGrace has
	// passed; a slower one fails with ErrBodyTooSlow. 0: no minimum.
	MinBodyRate int64
	BodyGrace   time.Duration
	Log         *slog.Logger

	baseCtx    context.Context
	cancelBase context.CancelFunc
	inShutdown atomic.Bool

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	conns     map[*h1Conn]struct{}
}

const (
	h1BufferSize     = 4 << 10   // response body buffered to send a Content-Length
	h1ReaderSize     = 8 << 10   // most request heads fit; larger ones are read line by line
	h1WriterSize     = 8 << 10   //
	h1MaxPostHandler = 256 << 10 // unread request body discarded to keep the connection (as net/http)
)

// Defaults for Server.MinBodyRate and Server.BodyGrace: a body must arrive
// at 4 KiB/s on average once 10 s have passed since its head (Kestrel's
// MinRequestBodyDataRate is the same idea, at 240 B/s after 5 s). A 100 MB
// body may then take up to about 7 hours; one byte a second is cut after
// 10 s.
const (
	DefaultMinBodyRate = 4 << 10
	DefaultBodyGrace   = 10 * time.Second
)

// ErrBodyTooSlow is the error of a request body read that ran past the
// server's minimum body rate; the connection is closed after the answer.
var ErrBodyTooSlow = errors.New("the request body arrived slower than the minimum data rate")

// connection states, for Shutdown
const (
	stateIdle int32 = iota // between requests (or before the first)
	stateActive
	stateClosed
)

// NewServer makes a server for h: 10 s to read a head (and to shake hands),
// 120 s idle, heads up to 64 KiB, bodies at DefaultMinBodyRate after
// DefaultBodyGrace; a nil log is slog.Default().
func NewServer(h http.Handler, log *slog.Logger) *Server {
	log = cmp.Or(log, slog.Default())
	ctx, cancel := context.WithCancel(context.Background())
	return &Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second, MaxHeaderBytes: 64 << 10,
		MinBodyRate: DefaultMinBodyRate, BodyGrace: DefaultBodyGrace, Log: log, baseCtx: ctx, cancelBase: cancel, listeners: map[net.Listener]struct{}{}, conns: map[*h1Conn]struct{}{}}
}

var (
	h1ReaderPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, h1ReaderSize) }}
	h1WriterPool = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, h1WriterSize) }}
)

// Serve accepts connections on ln until Shutdown or Close, and then
// returns http.ErrServerClosed. A listener made by tls.NewListener serves
// HTTPS.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.inShutdown.Load() {
		s.mu.Unlock()
		ln.Close()
		return http.ErrServerClosed
	}
	s.listeners[ln] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, ln)
		s.mu.Unlock()
		ln.Close()
	}()
	var backoff time.Duration
	for {
		rwc, err := ln.Accept()
		if err != nil {
			if s.inShutdown.Load() {
				return http.ErrServerClosed
			}
			if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() || tooManyFiles(err) {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				s.Log.Warn("accepting a connection failed; retrying", "err", err, "in", backoff)
				time.Sleep(backoff)
				continue
			}
			return err
		}
		backoff = 0
		c := s.newConn(rwc)
		if c == nil {
			rwc.Close()
			return http.ErrServerClosed
		}
		go c.serve()
	}
}

// tooManyFiles: Accept failed for want of file descriptors (EMFILE or
// ENFILE; errsTooManyFiles per OS), which is not a net.Error timeout, so
// the accept loop waits and retries instead of ending the listener.
func tooManyFiles(err error) bool {
	return slices.ContainsFunc(errsTooManyFiles[:], func(e error) bool { return errors.Is(err, e) })
}

func (s *Server) newConn(rwc net.Conn) *h1Conn {
	c := &h1Conn{s: s, rwc: rwc, remote: rwc.RemoteAddr().String()}
	c.ctx, c.cancel = context.WithCancel(s.baseCtx)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.inShutdown.Load() {
		c.cancel()
		return nil
	}
	s.conns[c] = struct{}{}
	return c
}

// Shutdown stops accepting, closes idle connections and waits for the
// requests in progress to end (their connections are then closed). When
// ctx ends first, it closes everything and returns ctx's error.
func (s *Server) Shutdown(ctx context.Context) error {
	s.inShutdown.Store(true)
	s.closeListeners()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		if s.closeIdle() {
			return nil
		}
		select {
		case <-ctx.Done():
			s.Close()
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// Close closes the listeners and every connection at once; the requests in
// progress see their context canceled.
func (s *Server) Close() error {
	s.inShutdown.Store(true)
	s.closeListeners()
	s.cancelBase()
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		c.state.Store(stateClosed)
		c.rwc.Close()
	}
	return nil
}

func (s *Server) closeListeners() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for ln := range s.listeners {
		ln.Close()
	}
}

// closeIdle closes the idle connections and tells whether none is active.
func (s *Server) closeIdle() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	quiet := true
	for c := range s.conns {
		if c.state.CompareAndSwap(stateIdle, stateClosed) {
			c.rwc.Close()
		} else if c.state.Load() == stateActive {
			quiet = false
		}
	}
	return quiet
}

// h1Conn is one client connection; everything per request is reused.
type h1Conn struct {
	s        *Server
	rwc      net.Conn
	remote   string
	tlsState *tls.ConnectionState
	state    atomic.Int32
	ctx      context.Context
	cancel   context.CancelFunc

	br      *bufio.Reader
	bw      *bufio.Writer
	req     http.Request
	tmpl    http.Request // zero but for the connection's context
	url     url.URL
	header  http.Header
	vals    []string
	headBuf []byte
	body    h1Body
	resp    Response
	rdl     time.Time // the read deadline set (setReadDeadline)
	// peek: a byte WatchClient's background read took, when peeked; the
	// next read of the connection (h1Source) returns it first.
	peek   [1]byte
	peeked bool
}

// h1Source is what the connection's bufio.Reader reads from.
type h1Source struct{ c *h1Conn }

func (s h1Source) Read(p []byte) (int, error) {
	if s.c.peeked && len(p) > 0 {
		p[0] = s.c.peek[0]
		s.c.peeked = false
		return 1, nil
	}
	if b := &s.c.body; b.paced {
		return b.pacedRead(p)
	}
	return s.c.rwc.Read(p)
}

// pacedRead reads the connection while a body is being received, with a
// read deadline that enforces the server's minimum body rate: by time t,
// at least MinBodyRate × (t − start − BodyGrace) bytes must have come.
// Where the bytes received so far stop being enough is due; the deadline
// is set a little after it (slack: up to a second), and moved only when
// due passes it, so a fast body costs a timer update per second of credit
// at most, not one per read.
func (b *h1Body) pacedRead(p []byte) (int, error) {
	c := b.c
	due := b.start.Add(c.s.BodyGrace + time.Duration(float64(b.got)/float64(c.s.MinBodyRate)*float64(time.Second)))
	slack := min(time.Second, c.s.BodyGrace/4)
	if c.rdl.Before(due) || c.rdl.After(due.Add(slack)) {
		c.setReadDeadline(due.Add(slack))
	}
	n, err := c.rwc.Read(p)
	b.got += int64(n)
	if ne := net.Error(nil); err != nil && errors.As(err, &ne) && ne.Timeout() {
		err = ErrBodyTooSlow
	}
	return n, err
}

// setReadDeadline sets the connection's read deadline and remembers it.
func (c *h1Conn) setReadDeadline(t time.Time) {
	c.rdl = t
	c.rwc.SetReadDeadline(t)
}

// h1Error is a request the server answers itself before closing.
type h1Error struct {
	code int
	text string
}

func (e *h1Error) Error() string { return e.text }

var errHeadTooLarge = &h1Error{http.StatusRequestHeaderFieldsTooLarge, ""}

func badRequest(text string) error { return &h1Error{http.StatusBadRequest, text} }

func (c *h1Conn) serve() {
	s := c.s
	closeWrite := false
	defer func() {
		if v := recover(); v != nil && v != http.ErrAbortHandler {
			buf := make([]byte, 64<<10)
			buf = buf[:runtime.Stack(buf, false)]
			s.Log.Error("panic serving a request", "remote", c.remote, "panic", fmt.Sprint(v), "stack", string(buf))
		}
		c.cancel()
		c.state.Store(stateClosed)
		if closeWrite {
			c.closeWriteAndWait()
		}
		c.rwc.Close()
		if c.br != nil {
			c.br.Reset(nil)
			h1ReaderPool.Put(c.br)
		}
		if c.bw != nil {
			c.bw.Reset(nil)
			h1WriterPool.Put(c.bw)
		}
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
	}()
	if tc, ok := c.rwc.(*tls.Conn); ok {
		if d := s.ReadHeaderTimeout; d > 0 {
			tc.SetDeadline(time.Now().Add(d))
		}
		if err := tc.HandshakeContext(c.ctx); err != nil {
			if re, ok := errors.AsType[tls.RecordHeaderError](err); ok && re.Conn != nil && looksLikeHTTP(re.RecordHeader[:]) {
				io.WriteString(re.Conn, "HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n")
				re.Conn.Close()
				return
			}
			s.Log.Debug("TLS handshake failed", "remote", c.remote, "err", err)
			return
		}
		tc.SetDeadline(time.Time{})
		st := tc.ConnectionState()
		c.tlsState = &st
	}
	c.br = h1ReaderPool.Get().(*bufio.Reader)
	c.br.Reset(h1Source{c})
	c.bw = h1WriterPool.Get().(*bufio.Writer)
	c.bw.Reset(c.rwc)
	c.tmpl = *(&http.Request{}).WithContext(c.ctx)
	c.header = http.Header{}
	c.resp.c = c
	c.resp.header = http.Header{}
	c.body.c = c
	first := true
	for {
		if c.br.Buffered() == 0 {
			d := s.IdleTimeout
			if first || d <= 0 {
				d = s.ReadHeaderTimeout
			}
			// A keep-alive connection's idle deadline is moved only when it
			// would move by over a tenth of the timeout (at most a second): a
			// timer update per request is measurable at tens of thousands of
			// requests a second, and an idle timeout that much early is not.
			if t := time.Now().Add(d); d > 0 && (first || t.Sub(c.rdl) > min(d/10, time.Second) || c.rdl.After(t)) {
				c.setReadDeadline(t)
			}
			if _, err := c.br.Peek(1); err != nil {
				return
			}
		}
		first = false
		// A request has begun: Shutdown now waits for it. (net/http marks a
		// connection active only once the head is read; from the first byte
		// Shutdown is less likely to close one whose request is arriving.)
		if !c.state.CompareAndSwap(stateIdle, stateActive) {
			return // closed by Shutdown
		}
		err := c.readRequest()
		if err != nil {
			if he, ok := errors.AsType[*h1Error](err); ok {
				c.writeRawError(he)
				closeWrite = he.code == http.StatusRequestHeaderFieldsTooLarge
			}
			return
		}
		w := &c.resp
		w.reset(&c.req)
		if w.expectFailed {
			w.header.Set("Connection", "close")
			w.WriteHeader(http.StatusExpectationFailed)
		} else {
			s.Handler.ServeHTTP(w, &c.req)
			if !w.wroteHeader && c.ctx.Err() != nil {
				return // the client left while the request waited (WatchClient): no one to answer
			}
		}
		w.finish()
		if w.werr != nil {
			return
		}
		if w.closeAfter || s.inShutdown.Load() {
			closeWrite = !c.body.done()
			return
		}
		c.state.Store(stateIdle)
		if s.inShutdown.Load() {
			return
		}
	}
}

func looksLikeHTTP(hdr []byte) bool {
	switch string(hdr) {
	case "GET /", "HEAD ", "POST ", "PUT /", "OPTIO":
		return true
	}
	return false
}

// closeWriteAndWait ends the sending side and gives the client a moment to
// read the answer before the close, so unread request bytes do not make
// the kernel reset the connection and lose the answer (as net/http does).
func (c *h1Conn) closeWriteAndWait() {
	if cw, ok := c.rwc.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
	c.setReadDeadline(time.Now().Add(500 * time.Millisecond))
	buf := make([]byte, 4<<10)
	for {
		if _, err := c.rwc.Read(buf); err != nil {
			return
		}
	}
}

func (c *h1Conn) writeRawError(e *h1Error) {
	text := strconv.Itoa(e.code) + " " + http.StatusText(e.code)
	if e.text != "" {
		text += ": " + e.text
	}
	c.bw.WriteString("HTTP/1.1 " + text + "\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n" + text)
	c.bw.Flush()
}

// readHead returns the request line and headers (without the blank line
// that ends them) as one string, consumed from the reader.
func (c *h1Conn) readHead() (string, error) {
	br := c.br
	// Leading empty lines are ignored (RFC 9112 section 2.2).
	for i := 0; i < 4; i++ {
		b, err := br.Peek(1)
		if err != nil {
			return "", err
		}
		if b[0] != '\r' && b[0] != '\n' {
			break
		}
		br.Discard(1)
	}
	deadlineSet := false
	for {
		buf, _ := br.Peek(br.Buffered())
		if end, next := headEnd(buf); end >= 0 {
			if trimCR(buf, end) > c.s.MaxHeaderBytes {
				return "", errHeadTooLarge
			}
			head := string(buf[:end])
			br.Discard(next)
			return head, nil
		}
		if br.Buffered() >= br.Size() {
			break // longer than the buffer: line by line
		}
		if !deadlineSet && c.s.ReadHeaderTimeout > 0 {
			c.setReadDeadline(time.Now().Add(c.s.ReadHeaderTimeout))
			deadlineSet = true
		}
		if _, err := br.Peek(br.Buffered() + 1); err != nil {
			return "", err
		}
	}
	if !deadlineSet && c.s.ReadHeaderTimeout > 0 {
		c.setReadDeadline(time.Now().Add(c.s.ReadHeaderTimeout))
	}
	c.headBuf = c.headBuf[:0]
	for {
		line, err := br.ReadSlice('\n')
		if len(c.headBuf)+len(line) > c.s.MaxHeaderBytes+2 {
			return "", errHeadTooLarge
		}
		if err == bufio.ErrBufferFull {
			c.headBuf = append(c.headBuf, line...)
			continue
		}
		if err != nil {
			return "", err
		}
		// The blank line ending the head follows a whole line; at the
		// head's start it is an empty request line, as headEnd reads it.
		if len(line) <= 2 && (len(line) == 1 || line[0] == '\r') && len(c.headBuf) > 0 && c.headBuf[len(c.headBuf)-1] == '\n' {
			end := len(c.headBuf) - 1 // as headEnd's
			if trimCR(c.headBuf, end) > c.s.MaxHeaderBytes {
				return "", errHeadTooLarge
			}
			return string(c.headBuf[:max(end, 0)]), nil
		}
		c.headBuf = append(c.headBuf, line...)
	}
}

// headEnd finds the blank line ending a request head: the head's length
// without the LF that ends its last line (a CR before it is nextLine's to
// drop, so that a bare CR there is refused as anywhere else) and where
// the body starts; or -1.
func headEnd(b []byte) (end, next int) {
	for i := 0; ; {
		j := bytes.IndexByte(b[i:], '\n')
		if j < 0 {
			return -1, -1
		}
		i += j + 1
		if i < len(b) && b[i] == '\n' {
			return i - 1, i + 1
		}
		if i+1 < len(b) && b[i] == '\r' && b[i+1] == '\n' {
			return i - 1, i + 2
		}
		if i+1 >= len(b) {
			return -1, -1
		}
	}
}

func trimCR(b []byte, lf int) int {
	if lf > 0 && b[lf-1] == '\r' {
		return lf - 1
	}
	return lf
}

// nextLine cuts s at its first line end (LF or CRLF).
func nextLine(s string) (line, rest string) {
	i := strings.IndexByte(s, '\n')
	if i < 0 {
		line, rest = s, ""
	} else {
		line, rest = s[:i], s[i+1:]
	}
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, rest
}

// readRequest parses the next request into c.req.
func (c *h1Conn) readRequest() error {
	head, err := c.readHead()
	if err != nil {
		return err
	}
	r := &c.req
	*r = c.tmpl
	line, rest := nextLine(head)
	method, line, ok1 := strings.Cut(line, " ")
	target, proto, ok2 := strings.Cut(line, " ")
	if !ok1 || !ok2 || !httpsyntax.ValidToken(method) || target == "" {
		return badRequest("")
	}
	switch proto {
	case "HTTP/1.1":
		r.ProtoMajor, r.ProtoMinor = 1, 1
	case "HTTP/1.0":
		r.ProtoMajor, r.ProtoMinor = 1, 0
	default:
		major, minor, ok := http.ParseHTTPVersion(proto)
		if !ok {
			return badRequest("malformed HTTP version")
		}
		if major != 1 {
			return &h1Error{http.StatusHTTPVersionNotSupported, "unsupported protocol version"}
		}
		r.ProtoMajor, r.ProtoMinor = major, minor
	}
	r.Method, r.Proto, r.RequestURI = method, proto, target
	if err := c.parseTarget(target); err != nil {
		return err
	}
	r.URL = &c.url

	h := c.header
	clear(h)
	vals := c.vals[:0]
	for rest != "" {
		line, rest = nextLine(rest)
		k, v, ok := strings.Cut(line, ":")
		if !ok || !httpsyntax.ValidToken(k) {
			return badRequest("malformed MIME header line")
		}
		v = strings.Trim(v, " \t")
		if !httpsyntax.ValidHeaderValue(v) {
			return badRequest("invalid MIME header value")
		}
		if !canonicalKey(k) {
			k = http.CanonicalHeaderKey(k)
		}
		if old, ok := h[k]; ok {
			h[k] = append(old, v)
			continue
		}
		vals = append(vals, v)
		h[k] = vals[len(vals)-1 : len(vals) : len(vals)]
	}
	c.vals = vals
	r.Header = h
	r.RemoteAddr = c.remote
	r.TLS = c.tlsState

	if hosts, ok := h["Host"]; ok {
		if len(hosts) > 1 {
			return badRequest("too many Host headers")
		}
		if !validHost(hosts[0]) {
			return badRequest("malformed Host header")
		}
		r.Host = cmp.Or(r.Host, hosts[0])
		delete(h, "Host")
	} else if r.ProtoMinor >= 1 { // even with an absolute-form target (RFC 9112 section 3.2)
		return badRequest("missing required Host header")
	}
	r.Close = shouldClose(r)

	// Body framing (RFC 9112 section 6; net/http's rules).
	c.body.reset()
	r.ContentLength = 0
	r.Body = http.NoBody
	te, chunked := h["Transfer-Encoding"]
	chunked = chunked && r.ProtoMinor >= 1
	if chunked && (len(te) != 1 || !httpsyntax.EqualFoldASCII(te[0], "chunked")) {
		return &h1Error{http.StatusNotImplemented, "unsupported transfer encoding"}
	}
	// A Content-Length is checked even when chunked framing wins, as
	// net/http does: a request that carries a malformed one is refused.
	if cl, ok := h["Content-Length"]; ok {
		for _, v := range cl[1:] {
			if v != cl[0] {
				return badRequest("message cannot contain multiple Content-Length headers")
			}
		}
		n, ok := parseLength(cl[0])
		if !ok {
			return badRequest("bad Content-Length")
		}
		if chunked {
			delete(h, "Content-Length")
		} else {
			if len(cl) > 1 {
				h["Content-Length"] = cl[:1]
			}
			r.ContentLength = n
			if n > 0 {
				c.body.remaining = n
				c.body.has = true
				r.Body = &c.body
			}
		}
	}
	if chunked {
		delete(h, "Transfer-Encoding")
		r.TransferEncoding = []string{"chunked"}
		r.ContentLength = -1
		c.body.chunked = httputil.NewChunkedReader(c.br)
		c.body.has = true
		r.Body = &c.body
	}
	if c.body.has && (c.body.chunked != nil || int64(c.br.Buffered()) < r.ContentLength) {
		// The body is read while the handler runs, at the minimum rate
		// (pacedRead) or with no deadline, as net/http without a ReadTimeout.
		if c.s.MinBodyRate > 0 {
			c.body.paced, c.body.start = true, time.Now()
		} else {
			c.setReadDeadline(time.Time{})
		}
	}
	if ex, ok := h["Expect"]; ok && ex[0] != "" {
		if strings.EqualFold(ex[0], "100-continue") {
			c.body.expect = r.ProtoMinor >= 1 && r.ContentLength != 0
		} else {
			c.resp.expectFailedNext = true
		}
	}
	return nil
}

// parseTarget sets c.url (and the Host of an absolute-form target).
func (c *h1Conn) parseTarget(target string) error {
	if target[0] == '/' {
		path, query, hasQuery := strings.Cut(target, "?")
		if safePath(path) && safeQuery(query) && !(hasQuery && query == "") {
			c.url = url.URL{Path: path, RawQuery: query}
			return nil
		}
	}
	u, err := url.ParseRequestURI(target)
	if err != nil {
		return badRequest("")
	}
	c.url = *u
	c.req.Host = cmp.Or(u.Host, c.req.Host)
	return nil
}

// safePath: the path is its own unescaped form (url.ParseRequestURI would
// give the same Path and no RawPath). Not the sub-delimiters that
// url.URL escapes in a path (!'()*): with them it keeps a RawPath.
func safePath(p string) bool { return httpsyntax.AlnumOr(p, "/-._~$&+,;=:@") }

func safeQuery(q string) bool {
	for i := 0; i < len(q); i++ {
		if q[i] <= ' ' || q[i] >= 0x7f || q[i] == '#' {
			return false
		}
	}
	return true
}

func parseLength(v string) (int64, bool) {
	if v == "" || len(v) > 18 {
		return 0, false
	}
	var n int64
	for i := 0; i < len(v); i++ {
		if v[i] < '0' || v[i] > '9' {
			return 0, false
		}
		n = n*10 + int64(v[i]-'0')
	}
	return n, true
}

func shouldClose(r *http.Request) bool {
	conn := r.Header["Connection"]
	if r.ProtoMinor == 0 { // close wins over keep-alive, as in net/http
		return !httpsyntax.HasToken(conn, "keep-alive") || httpsyntax.HasToken(conn, "close")
	}
	return httpsyntax.HasToken(conn, "close")
}

func validHost(h string) bool { return httpsyntax.AlnumOr(h, "!$%&'()*+,-.:;=[]_~") }

// canonicalKey: k is already in http.CanonicalHeaderKey's form.
func canonicalKey(k string) bool {
	upper := true
	for i := 0; i < len(k); i++ {
		b := k[i]
		if upper && 'a' <= b && b <= 'z' || !upper && 'A' <= b && b <= 'Z' {
			return false
		}
		upper = b == '-'
	}
	return true
}

// h1Body is the request body; reused per connection.
type h1Body struct {
	c         *h1Conn
	has       bool
	remaining int64     // Content-Length framing
	chunked   io.Reader // chunked framing
	eof       bool
	closed    bool
	err       error
	expect    bool // 100 Continue to send on the first read
	// paced: the body's reads of the connection keep to the minimum rate
	// (pacedRead): got bytes read from it since start.
	paced bool
	start time.Time
	got   int64
}

func (b *h1Body) reset() {
	*b = h1Body{c: b.c}
}

// done: nothing of the body is left on the connection.
func (b *h1Body) done() bool { return !b.has || b.eof }

func (b *h1Body) Read(p []byte) (int, error) {
	if b.closed {
		return 0, http.ErrBodyReadAfterClose
	}
	if b.eof {
		return 0, io.EOF
	}
	if b.err != nil {
		return 0, b.err
	}
	if b.expect {
		b.expect = false
		b.c.resp.sendContinue()
		b.start = time.Now() // the client sends the body from now on
	}
	if len(p) == 0 {
		return 0, nil
	}
	n, err := b.read(p)
	if b.eof || b.err != nil {
		b.paced = false // the next request's head is read with its own deadline
	}
	return n, err
}

func (b *h1Body) read(p []byte) (int, error) {
	if b.chunked == nil {
		if int64(len(p)) > b.remaining {
			p = p[:b.remaining]
		}
		n, err := b.c.br.Read(p)
		b.remaining -= int64(n)
		if b.remaining == 0 {
			b.eof = true
			return n, io.EOF
		}
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		b.err = err
		return n, err
	}
	n, err := b.chunked.Read(p)
	if err == io.EOF {
		if err := b.readTrailer(); err != nil {
			b.err = err
			return n, err
		}
		b.eof = true
	} else if err != nil {
		b.err = err
	}
	return n, err
}

// readTrailer consumes the trailer section after the last chunk.
func (b *h1Body) readTrailer() error {
	total := 0
	for {
		line, err := b.c.br.ReadSlice('\n')
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return err
		}
		if len(line) == 1 || len(line) == 2 && line[0] == '\r' {
			return nil
		}
		if total += len(line); total > b.c.s.MaxHeaderBytes {
			return errors.New("chunked request trailer too large")
		}
	}
}

func (b *h1Body) Close() error {
	b.closed = true
	return nil
}

// Response is the ResponseWriter; reused per connection.
type Response struct {
	c      *h1Conn
	req    *http.Request
	header http.Header

	status      int
	wroteHeader bool  // status and header captured in head
	committed   bool  // head (and framing) written to the connection's buffer
	cl          int64 // Content-Length, -1 when unknown
	written     int64
	chunked     bool
	closeAfter  bool
	head        bool
	werr        error
	sentCont    bool
	haveType    bool
	haveDate    bool
	hasCE       bool

	expectFailed     bool // answer 417 without calling the handler
	expectFailedNext bool
	hbuf             []byte // status line and handler headers
	buf              []byte // body held back to send with a Content-Length
}

func (w *Response) reset(r *http.Request) {
	clear(w.header)
	*w = Response{c: w.c, header: w.header, hbuf: w.hbuf[:0], buf: w.buf[:0], req: r,
		cl: -1, head: r.Method == http.MethodHead, closeAfter: r.Close, expectFailed: w.expectFailedNext}
	if w.buf == nil {
		w.buf = make([]byte, 0, h1BufferSize)
	}
}

func (w *Response) Header() http.Header { return w.header }

func bodyAllowed(status int) bool {
	return !(status >= 100 && status <= 199 || status == 204 || status == 304)
}

// WatchClient notices, while the handler waits before answering (its
// request queued for a replica), that the client has gone: a background
// read of the connection ends the request's context when the client
// closes it, as net/http's server does all through every request. It
// watches only once the request's body has been read and nothing of a next
// request is buffered. stop ends the read and waits for it; a byte it read
// (a pipelined request) is kept for the next request.
func (w *Response) WatchClient() (stop func()) {
	c := w.c
	if !c.body.done() || c.br.Buffered() > 0 || c.peeked || w.wroteHeader || c.ctx.Err() != nil {
		return func() {}
	}
	c.setReadDeadline(time.Time{}) // not a body's or an idle deadline: the wait may be long
	done := make(chan struct{})
	go func() {
		defer close(done)
		n, err := c.rwc.Read(c.peek[:])
		if n == 1 {
			c.peeked = true
			return
		}
		if ne, ok := errors.AsType[net.Error](err); err != nil && !(ok && ne.Timeout()) {
			c.cancel() // end of stream or a reset: the client has gone
		}
	}()
	return func() {
		c.rwc.SetReadDeadline(time.Unix(1, 0))
		<-done
		c.setReadDeadline(time.Time{})
	}
}

// WrittenStatus is the final status sent, 0 before it is.
func (w *Response) WrittenStatus() int {
	if !w.wroteHeader {
		return 0
	}
	return w.status
}

func (w *Response) WriteHeader(code int) {
	if w.wroteHeader {
		return
	}
	if code < 100 || code > 999 {
		panic(fmt.Sprintf("invalid WriteHeader code %v", code))
	}
	if code >= 100 && code <= 199 && code != http.StatusSwitchingProtocols {
		// An informational answer goes out at once; the final one follows.
		if w.committed {
			return
		}
		b := w.appendHead(w.hbuf[:0], code, true)
		w.c.bw.Write(append(b, '\r', '\n'))
		if err := w.c.bw.Flush(); err != nil {
			w.fail(err)
		}
		return
	}
	w.wroteHeader = true
	w.status = code
	if v := w.header.Get("Content-Length"); v != "" {
		if n, ok := parseLength(strings.Trim(v, " \t")); ok {
			w.cl = n
		} else {
			w.c.s.Log.Warn("a handler set an invalid Content-Length; dropped", "value", v)
			w.header.Del("Content-Length")
		}
	}
	_, w.haveType = w.header["Content-Type"]
	_, w.haveDate = w.header["Date"]
	w.hasCE = w.header.Get("Content-Encoding") != ""
	if httpsyntax.HasToken(w.header["Connection"], "close") {
		w.closeAfter = true
	}
	w.hbuf = w.appendHead(w.hbuf[:0], code, false)
}

// appendHead appends the status line and the handler's headers but for
// those the server decides (framing, Connection).
func (w *Response) appendHead(b []byte, code int, info bool) []byte {
	b = append(b, "HTTP/1.1 "...)
	b = strconv.AppendInt(b, int64(code), 10)
	b = append(b, ' ')
	if text := http.StatusText(code); text != "" {
		b = append(b, text...)
	} else {
		b = append(b, "status code "...)
		b = strconv.AppendInt(b, int64(code), 10)
	}
	b = append(b, '\r', '\n')
	noBody := !bodyAllowed(code)
	for k, vs := range w.header {
		switch k {
		case "Transfer-Encoding", "Connection":
			continue
		case "Content-Length":
			if noBody || info {
				continue
			}
		case "Content-Type":
			if code == http.StatusNotModified {
				continue
			}
		}
		if !httpsyntax.ValidToken(k) {
			continue
		}
		for _, v := range vs {
			b = append(b, k...)
			b = append(b, ':', ' ')
			b = appendHeaderValue(b, v)
			b = append(b, '\r', '\n')
		}
	}
	return b
}

// appendHeaderValue writes v with line breaks as spaces (as net/http).
func appendHeaderValue(b []byte, v string) []byte {
	v = strings.Trim(v, " \t")
	if strings.ContainsAny(v, "\r\n") {
		for i := 0; i < len(v); i++ {
			if v[i] == '\r' || v[i] == '\n' {
				b = append(b, ' ')
			} else {
				b = append(b, v[i])
			}
		}
		return b
	}
	return append(b, v...)
}

func (w *Response) fail(err error) {
	if w.werr == nil {
		w.werr = err
		w.c.cancel() // the client is gone: the request's context ends
	}
}

func (w *Response) sendContinue() {
	if w.wroteHeader || w.sentCont || w.werr != nil {
		return
	}
	w.sentCont = true
	w.c.bw.WriteString("HTTP/1.1 100 Continue\r\n\r\n")
	if err := w.c.bw.Flush(); err != nil {
		w.fail(err)
	}
}

func (w *Response) Write(p []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if w.werr != nil {
		return 0, w.werr
	}
	if len(p) == 0 {
		return 0, nil
	}
	if !bodyAllowed(w.status) {
		return 0, http.ErrBodyNotAllowed
	}
	if w.cl >= 0 && w.written+int64(len(p)) > w.cl {
		return 0, http.ErrContentLength
	}
	w.written += int64(len(p))
	if !w.committed {
		if w.cl < 0 && len(w.buf)+len(p) <= h1BufferSize {
			w.buf = append(w.buf, p...)
			return len(p), nil
		}
		sniff := w.buf
		if len(sniff) == 0 {
			sniff = p
		}
		w.commit(false, sniff)
	}
	return w.writeBody(p)
}

func (w *Response) writeBody(p []byte) (int, error) {
	if w.head {
		return len(p), nil
	}
	bw := w.c.bw
	if w.chunked {
		bw.WriteString(strconv.FormatInt(int64(len(p)), 16))
		bw.WriteString("\r\n")
		bw.Write(p)
		_, err := bw.WriteString("\r\n")
		if err != nil {
			w.fail(err)
			return 0, err
		}
		return len(p), nil
	}
	n, err := bw.Write(p)
	if err != nil {
		w.fail(err)
	}
	return n, err
}

// Flush sends what is written so far.
func (w *Response) Flush() {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !w.committed {
		w.commit(false, w.buf)
	}
	if w.werr == nil {
		if err := w.c.bw.Flush(); err != nil {
			w.fail(err)
		}
	}
}

// commit writes the head with its framing, then the held-back body. final:
// the handler has returned, so all of the body is in w.buf. sniff is the
// start of the body, to find a Content-Type the handler did not set.
func (w *Response) commit(final bool, sniff []byte) {
	w.committed = true
	c, r := w.c, w.req
	// The request body must be read to its end before the next request;
	// a large unread rest closes the connection instead (net/http's rules).
	if b := &c.body; !b.done() && !w.closeAfter {
		switch {
		case b.expect || w.sentCont:
			// The client may not send a body it was not asked for.
			w.closeAfter = true
		case b.closed || b.err != nil:
			w.closeAfter = true
		case b.chunked == nil && b.remaining >= h1MaxPostHandler:
			w.closeAfter = true
		default:
			if _, err := io.CopyN(io.Discard, b, h1MaxPostHandler+1); err != io.EOF {
				w.closeAfter = true
			}
		}
	}
	bw := c.bw
	bw.Write(w.hbuf)
	if bodyAllowed(w.status) {
		if w.cl < 0 {
			switch {
			case final && (!w.head || w.written > 0):
				w.cl = w.written
				bw.WriteString("Content-Length: ")
				bw.WriteString(strconv.FormatInt(w.cl, 10))
				bw.WriteString("\r\n")
			case w.head:
			case r.ProtoMinor >= 1:
				w.chunked = true
				bw.WriteString("Transfer-Encoding: chunked\r\n")
			default:
				w.closeAfter = true // HTTP/1.0: the body ends with the connection
			}
		}
		if !w.haveType && !w.hasCE && len(sniff) > 0 {
			bw.WriteString("Content-Type: ")
			bw.WriteString(http.DetectContentType(sniff))
			bw.WriteString("\r\n")
		}
	}
	if !w.haveDate {
		bw.WriteString("Date: ")
		bw.Write(currentDate())
		bw.WriteString("\r\n")
	}
	if c.s.inShutdown.Load() {
		w.closeAfter = true
	}
	switch {
	case w.closeAfter && r.ProtoMinor >= 1:
		bw.WriteString("Connection: close\r\n")
	case !w.closeAfter && r.ProtoMinor == 0:
		bw.WriteString("Connection: keep-alive\r\n")
	}
	bw.WriteString("\r\n")
	if len(w.buf) > 0 {
		w.writeBody(w.buf)
	}
	w.buf = w.buf[:0]
}

// finish ends the answer after the handler returned.
func (w *Response) finish() {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !w.committed {
		w.commit(true, w.buf)
	}
	if w.werr != nil {
		return
	}
	if w.chunked {
		w.c.bw.WriteString("0\r\n\r\n")
	}
	if !w.head && w.cl >= 0 && w.written != w.cl && bodyAllowed(w.status) {
		w.closeAfter = true
	}
	if err := w.c.bw.Flush(); err != nil {
		w.fail(err)
	}
}

// currentDate is the current time in HTTP format, formatted once a second.
func currentDate() []byte {
	now := time.Now()
	sec := now.Unix()
	d := dateCache.Load()
	if d == nil || d.sec != sec {
		d = &cachedDate{sec: sec, text: now.UTC().AppendFormat(nil, http.TimeFormat)}
		dateCache.Store(d)
	}
	return d.text
}

type cachedDate struct {
	sec  int64
	text []byte
}

var dateCache atomic.Pointer[cachedDate]
