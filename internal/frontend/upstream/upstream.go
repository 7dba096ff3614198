package upstream

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"strconv"
	"sync"
	"time"

	"github.com/berth-ml/berth/internal/frontend/httpsyntax"
	"github.com/berth-ml/berth/internal/frontend/rawconn"
)

// sendBeforeReader is a connection that can write a request at the start
// of the next Read (rawconn.Quiet's on Linux).
type sendBeforeReader interface{ SendBeforeRead([]byte) }

// Client is a lean HTTP/1.1 client for replicas: one pooled keep-alive
// connection per request, the request written and the response read in the
// handler's own goroutine (no per-connection goroutines), the request in
// one write when its body is small. It is what lets berth-fe keep pace with
// nginx on the same core.
type Client struct {
	mu      sync.Mutex
	idle    map[string][]*upConn
	maxIdle int
	dialer  net.Dialer
}

type upConn struct {
	c    net.Conn
	br   *bufio.Reader
	bw   *bufio.Writer
	used time.Time
	// The answer being read, reused for every answer on the connection
	// (readResponse).
	resp    Response
	cl      clBody
	chunked chunkedBody
	seen    []string          // header names of the answer being read
	keys    map[string]string // header names as sent → canonical
	lineBuf []byte
	ex      Exchange
	req     []byte // the request being sent
	abort   func() // ends the exchange in progress (made once: no closure per request)
}

// New makes a client with no connections yet.
func New() *Client {
	return &Client{idle: map[string][]*upConn{}, maxIdle: 1024, dialer: net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}}
}

func (u *Client) get(ctx context.Context, addr string, deadline time.Time) (*upConn, bool, error) {
	u.mu.Lock()
	for l := u.idle[addr]; len(l) > 0; l = u.idle[addr] {
		c := l[len(l)-1]
		u.idle[addr] = l[:len(l)-1]
		if time.Since(c.used) < 60*time.Second {
			u.mu.Unlock()
			return c, true, nil
		}
		c.c.Close()
	}
	u.mu.Unlock()
	d := u.dialer
	d.Deadline = deadline
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, false, err
	}
	c = rawconn.Quiet(c)
	uc := &upConn{c: c, br: bufio.NewReaderSize(c, 16<<10), bw: bufio.NewWriterSize(c, 16<<10)}
	uc.abort = func() { c.SetDeadline(time.Unix(1, 0)) }
	return uc, false, nil
}

// put returns c to the pool; its deadline stays until the next request
// sets its own (nothing reads an idle connection).
func (u *Client) put(addr string, c *upConn) {
	c.used = time.Now()
	u.mu.Lock()
	if len(u.idle[addr]) < u.maxIdle {
		u.idle[addr] = append(u.idle[addr], c)
		u.mu.Unlock()
		return
	}
	u.mu.Unlock()
	c.c.Close()
}

// errStale means a reused connection was closed by the replica before it
// read the request; the request can safely be sent again.
var errStale = errors.New("stale connection")

// Exchange is an answer being read from a replica; Close returns the
// connection to the pool once its body was read to the end.
type Exchange struct {
	*Response
	u    *Client
	addr string
	c    *upConn
	stop func() bool
}

func (e *Exchange) Close() {
	e.stop()
	// Reused only when the answer was read to its end and the replica sent
	// nothing after it: the next request's answer must be the next bytes.
	if !e.Response.Close && (bodyDone(e.Body) || drain(e.Body)) && e.c.br.Buffered() == 0 {
		e.u.put(e.addr, e.c)
		return
	}
	e.c.c.Close()
}

// bodyDone tells, without reading, whether a body was read to its end.
func bodyDone(b io.Reader) bool {
	switch b := b.(type) {
	case *clBody:
		return b.left == 0
	case *chunkedBody:
		return b.done
	}
	return b == http.NoBody
}

// drain reads what is left of a small body so the connection can be reused.
func drain(b io.Reader) bool {
	_, err := io.CopyN(io.Discard, b, 4<<10)
	return err == io.EOF
}

// Do sends a request to addr and returns the response with its body
// unread. header is sent without hop-by-hop headers (those DropHeader
// names and those its Connection header names), Host, framing headers and
// those skip names; extra headers are added. The exchange ends with
// os.ErrDeadlineExceeded at deadline, and with ctx's cause when ctx ends.
//
// The body is buffered (not nil: all of it, which a request on a stale
// pooled connection can send again) or streamed from body (length bytes,
// or chunked when length < 0; sent again from its start when it is an
// io.Seeker or an io.LimitedReader of one). A long body goes out through the
// connection's ReadFrom: from a file (an io.LimitedReader of an *os.File),
// sendfile.
func (u *Client) Do(ctx context.Context, deadline time.Time, addr, method, target string, header http.Header, skip func(string) bool, extra [][2]string, buffered []byte, body io.Reader, length int64) (*Exchange, error) {
	if buffered != nil {
		body, length = nil, int64(len(buffered))
	}
	for attempt := 0; ; attempt++ {
		c, reused, err := u.get(ctx, addr, deadline)
		if err != nil {
			return nil, err
		}
		c.c.SetDeadline(deadline)
		stop := context.AfterFunc(ctx, c.abort)
		resp, err := roundTrip(c, method, target, header, skip, extra, buffered, body, length)
		if err == nil {
			c.ex = Exchange{Response: resp, u: u, addr: addr, c: c, stop: stop}
			return &c.ex, nil
		}
		stop()
		c.c.Close()
		if ctx.Err() != nil {
			return nil, context.Cause(ctx)
		}
		if errors.Is(err, errStale) && reused && attempt < 2 {
			if buffered != nil || body == nil {
				continue
			}
			if rewind(body, length) { // a body in hand, from its start again
				continue
			}
		}
		return nil, err
	}
}

// rewind puts a body (length bytes) back at its start, if it can.
func rewind(body io.Reader, length int64) bool {
	if lr, ok := body.(*io.LimitedReader); ok {
		if s, ok := lr.R.(io.Seeker); ok && length >= 0 {
			if _, err := s.Seek(0, io.SeekStart); err == nil {
				lr.N = length
				return true
			}
		}
		return false
	}
	if s, ok := body.(io.Seeker); ok {
		_, err := s.Seek(0, io.SeekStart)
		return err == nil
	}
	return false
}

// roundTrip sends the request, its body from buffered (when not nil) or
// body, and reads the answer's head.
func roundTrip(c *upConn, method, target string, header http.Header, skip func(string) bool, extra [][2]string, buffered []byte, body io.Reader, length int64) (*Response, error) {
	chunked := buffered == nil && body != nil && length < 0
	b := append(c.req[:0], method...)
	b = append(b, ' ')
	b = append(b, target...)
	b = append(b, " HTTP/1.1\r\nHost: replica\r\n"...)
	for _, kv := range extra {
		b = append(append(append(append(b, kv[0]...), ": "...), kv[1]...), "\r\n"...)
	}
	conn := header["Connection"]
	for k, vs := range header {
		if DropHeader(k) || (skip != nil && skip(k)) || (conn != nil && httpsyntax.HasToken(conn, k)) {
			continue
		}
		for _, v := range vs {
			b = append(append(append(append(b, k...), ": "...), v...), "\r\n"...)
		}
	}
	switch {
	case chunked:
		b = append(b, "Transfer-Encoding: chunked\r\n\r\n"...)
	case method == http.MethodGet && length <= 0:
		b = append(b, "\r\n"...)
	default:
		b = append(b, "Content-Length: "...)
		b = strconv.AppendInt(b, max(length, 0), 10)
		b = append(b, "\r\n\r\n"...)
	}
	var werr error
	if body == nil || buffered != nil {
		// The whole request is in hand: on Linux it is written by the first
		// read of the answer, so that read waits for the answer instead of
		// first finding nothing (rawconn_linux.go, SendBeforeRead).
		b = append(b, buffered...)
		if q, ok := c.c.(sendBeforeReader); ok {
			q.SendBeforeRead(b)
		} else {
			_, werr = c.c.Write(b)
		}
	} else {
		w := c.bw
		w.Write(b)
		if chunked {
			cw := httputil.NewChunkedWriter(w)
			_, werr = io.Copy(cw, body)
			if werr == nil {
				werr = cw.Close()
				w.WriteString("\r\n")
			}
		} else if rf, ok := c.c.(io.ReaderFrom); ok && length >= 64<<10 {
			// The head, then the body in as few writes as the connection
			// allows (sendfile from a spooled body's file).
			if werr = w.Flush(); werr == nil {
				var n int64
				n, werr = rf.ReadFrom(body)
				if werr == nil && n < length {
					werr = io.ErrUnexpectedEOF
				}
			}
		} else {
			_, werr = io.Copy(w, body)
		}
		if werr == nil {
			werr = w.Flush()
		}
	}
	if cap(b) <= 64<<10 {
		c.req = b[:0]
	}
	if werr != nil {
		if isReset(werr) {
			return nil, errStale
		}
		return nil, werr
	}
	resp, err := c.readResponse(method)
	// Informational answers (a replica's 100 Continue) are not the answer.
	for err == nil && resp.StatusCode >= 100 && resp.StatusCode <= 199 && resp.StatusCode != http.StatusSwitchingProtocols {
		resp, err = c.readResponse(method)
	}
	if err != nil {
		if c.br.Buffered() == 0 && (errors.Is(err, io.EOF) || isReset(err)) {
			return nil, errStale
		}
		return nil, err
	}
	return resp, nil
}

func isReset(err error) bool {
	var op *net.OpError
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || (errors.As(err, &op) && !op.Timeout())
}

// DropHeader: hop-by-hop and framing headers are the front end's own.
func DropHeader(k string) bool {
	switch k {
	case "Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization",
		"Te", "Trailer", "Transfer-Encoding", "Upgrade", "Host", "Content-Length",
		"Expect": // the front end answers the client's expectation itself
		return true
	}
	return false
}
