package frontend

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"strconv"
	"sync"
	"time"
)

// upstream is a lean HTTP/1.1 client for replicas: one pooled keep-alive
// connection per request, the request written and the response read in the
// handler's own goroutine (no per-connection goroutines), the request in
// one write when its body is small. It is what lets berth-fe keep pace with
// nginx on the same core.
type upstream struct {
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
}

func newUpstream() *upstream {
	return &upstream{idle: map[string][]*upConn{}, maxIdle: 1024, dialer: net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}}
}

func (u *upstream) get(ctx context.Context, addr string) (*upConn, bool, error) {
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
	c, err := u.dialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, false, err
	}
	c = quiet(c)
	return &upConn{c: c, br: bufio.NewReaderSize(c, 16<<10), bw: bufio.NewWriterSize(c, 16<<10)}, false, nil
}

func (u *upstream) put(addr string, c *upConn) {
	c.used = time.Now()
	c.c.SetDeadline(time.Time{})
	u.mu.Lock()
	if len(u.idle[addr]) < u.maxIdle {
		u.idle[addr] = append(u.idle[addr], c)
		u.mu.Unlock()
		return
	}
	u.mu.Unlock()
	c.c.Close()
}

// smallBody is the largest body kept in memory so a request on a stale
// pooled connection can be sent again on a new one.
const smallBody = 64 << 10

// errStale means a reused connection was closed by the replica before it
// read the request; the request can safely be sent again.
var errStale = errors.New("stale connection")

// exchange is an answer being read from a replica; Close returns the
// connection to the pool once its body was read to the end.
type exchange struct {
	*http.Response
	u    *upstream
	addr string
	c    *upConn
	stop func() bool
}

func (e *exchange) Close() {
	e.stop()
	// Drain what is left of a small body so the connection can be reused.
	if _, err := io.CopyN(io.Discard, e.Body, 4<<10); err == io.EOF && !e.Response.Close {
		e.u.put(e.addr, e.c)
		return
	}
	e.c.c.Close()
}

// do sends a request to addr and returns the response with its body
// unread. header is sent without hop-by-hop headers, Host, framing headers
// and those skip names; extra headers are added.
func (u *upstream) do(ctx context.Context, addr, method, target string, header http.Header, skip func(string) bool, extra [][2]string, body io.Reader, length int64) (*exchange, error) {
	// Small bodies are read up front so a stale connection can be retried.
	var buffered []byte
	if body != nil && length >= 0 && length <= smallBody {
		b, err := io.ReadAll(io.LimitReader(body, length+1))
		if err != nil {
			return nil, err
		}
		buffered, body = b, nil
		length = int64(len(b))
	}
	for attempt := 0; ; attempt++ {
		c, reused, err := u.get(ctx, addr)
		if err != nil {
			return nil, err
		}
		if dl, ok := ctx.Deadline(); ok {
			c.c.SetDeadline(dl)
		}
		stop := context.AfterFunc(ctx, func() { c.c.SetDeadline(time.Unix(1, 0)) })
		var rb io.Reader = body
		if buffered != nil {
			rb = bytes.NewReader(buffered)
		}
		resp, err := roundTrip(c, method, target, header, skip, extra, rb, length)
		if err == nil {
			return &exchange{Response: resp, u: u, addr: addr, c: c, stop: stop}, nil
		}
		stop()
		c.c.Close()
		if ctx.Err() != nil {
			return nil, context.Cause(ctx)
		}
		if errors.Is(err, errStale) && reused && (buffered != nil || body == nil) && attempt < 2 {
			continue
		}
		return nil, err
	}
}

func roundTrip(c *upConn, method, target string, header http.Header, skip func(string) bool, extra [][2]string, body io.Reader, length int64) (*http.Response, error) {
	w := c.bw
	w.WriteString(method)
	w.WriteByte(' ')
	w.WriteString(target)
	w.WriteString(" HTTP/1.1\r\nHost: replica\r\n")
	for _, kv := range extra {
		w.WriteString(kv[0])
		w.WriteString(": ")
		w.WriteString(kv[1])
		w.WriteString("\r\n")
	}
	for k, vs := range header {
		if dropHeader(k) || (skip != nil && skip(k)) {
			continue
		}
		for _, v := range vs {
			w.WriteString(k)
			w.WriteString(": ")
			w.WriteString(v)
			w.WriteString("\r\n")
		}
	}
	chunked := body != nil && length < 0
	switch {
	case chunked:
		w.WriteString("Transfer-Encoding: chunked\r\n\r\n")
	case method == http.MethodGet && length <= 0:
		w.WriteString("\r\n")
	default:
		w.WriteString("Content-Length: ")
		w.WriteString(strconv.FormatInt(max(length, 0), 10))
		w.WriteString("\r\n\r\n")
	}
	var werr error
	if body != nil {
		if chunked {
			cw := httputil.NewChunkedWriter(w)
			_, werr = io.Copy(cw, body)
			if werr == nil {
				werr = cw.Close()
				w.WriteString("\r\n")
			}
		} else {
			_, werr = io.Copy(w, body)
		}
	}
	if werr == nil {
		werr = w.Flush()
	}
	if werr != nil {
		var tooBig *bodyTooLarge
		if errors.As(werr, &tooBig) {
			return nil, werr
		}
		if isReset(werr) {
			return nil, errStale
		}
		return nil, werr
	}
	resp, err := http.ReadResponse(c.br, nil)
	// Informational answers (a replica's 100 Continue) are not the answer.
	for err == nil && resp.StatusCode >= 100 && resp.StatusCode <= 199 && resp.StatusCode != http.StatusSwitchingProtocols {
		resp, err = http.ReadResponse(c.br, nil)
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

// dropHeader: hop-by-hop and framing headers are the front end's own.
func dropHeader(k string) bool {
	switch k {
	case "Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization",
		"Te", "Trailer", "Transfer-Encoding", "Upgrade", "Host", "Content-Length",
		"Expect": // the front end answers the client's expectation itself
		return true
	}
	return false
}
