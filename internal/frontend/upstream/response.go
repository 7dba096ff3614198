package upstream

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httputil"
	"net/textproto"
	"slices"
	"strconv"
	"strings"

	"github.com/berth-ml/berth/internal/frontend/httpsyntax"
)

// Response is a replica's answer as the front end relays it.
type Response struct {
	StatusCode int
	// Header is reused for every answer on the connection: a value equal
	// to the previous answer's keeps its slice, so answers that repeat
	// their headers (most do) allocate nothing for them. Its slices are
	// never changed in place, so copies of them in a response already sent
	// stay as they were.
	Header http.Header
	Body   io.Reader
	// Close: the connection ends with this answer.
	Close bool
}

// maxResponseHead bounds a replica's status line and headers.
const maxResponseHead = 1 << 20

var errMalformedResponse = errors.New("malformed HTTP response from the replica")

// readResponse reads an answer's head from the connection, as
// http.ReadResponse would but into the connection's reused Response; the
// body is left to be read from Body. method is the request's.
func (c *upConn) readResponse(method string) (*Response, error) {
	line, err := c.readLine()
	if err != nil {
		return nil, err
	}
	// HTTP/1.x NNN reason
	if len(line) < 12 || string(line[:7]) != "HTTP/1." || (line[7] != '0' && line[7] != '1') || line[8] != ' ' ||
		(len(line) > 12 && line[12] != ' ') {
		return nil, fmt.Errorf("%w: status line %q", errMalformedResponse, truncate(line))
	}
	code := 0
	for _, d := range line[9:12] {
		if d < '0' || d > '9' {
			return nil, fmt.Errorf("%w: status line %q", errMalformedResponse, truncate(line))
		}
		code = code*10 + int(d-'0')
	}
	if code < 100 {
		return nil, fmt.Errorf("%w: status code %d", errMalformedResponse, code)
	}
	http10 := line[7] == '0'
	r := &c.resp
	r.StatusCode, r.Close, r.Body = code, http10, nil
	if r.Header == nil {
		r.Header = http.Header{}
	}
	h := r.Header
	c.seen = c.seen[:0]
	size := len(line)
	for {
		line, err := c.readLine()
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		if len(line) == 0 {
			break
		}
		if size += len(line); size > maxResponseHead {
			return nil, fmt.Errorf("%w: its head is over %d bytes", errMalformedResponse, maxResponseHead)
		}
		i := bytes.IndexByte(line, ':')
		if i <= 0 || !httpsyntax.ValidToken(line[:i]) {
			return nil, fmt.Errorf("%w: header line %q", errMalformedResponse, truncate(line))
		}
		v := bytes.Trim(line[i+1:], " \t")
		if !httpsyntax.ValidHeaderValue(v) {
			return nil, fmt.Errorf("%w: header line %q", errMalformedResponse, truncate(line))
		}
		c.addHeader(c.headerKey(line[:i]), v)
	}
	for k := range h {
		if !slices.Contains(c.seen, k) {
			delete(h, k)
		}
	}

	if conn, ok := h["Connection"]; ok {
		for _, v := range conn {
			for tok := range strings.SplitSeq(v, ",") {
				switch tok = strings.TrimSpace(tok); {
				case strings.EqualFold(tok, "close"):
					r.Close = true
				case strings.EqualFold(tok, "keep-alive") && http10:
					r.Close = false
				}
			}
		}
	}
	switch te, cl := h["Transfer-Encoding"], h["Content-Length"]; {
	case method == http.MethodHead || code < 200 || code == http.StatusNoContent || code == http.StatusNotModified:
		r.Body = http.NoBody
	case len(te) > 0:
		if len(te) != 1 || !strings.EqualFold(strings.TrimSpace(te[0]), "chunked") {
			return nil, fmt.Errorf("%w: unsupported Transfer-Encoding %q", errMalformedResponse, te)
		}
		delete(h, "Content-Length") // chunked framing wins (RFC 9112 6.3)
		c.chunked = chunkedBody{cr: httputil.NewChunkedReader(c.br), c: c}
		r.Body = &c.chunked
	case len(cl) > 0:
		n, err := strconv.ParseInt(cl[0], 10, 64)
		if err != nil || n < 0 || cl[0][0] == '+' {
			return nil, fmt.Errorf("%w: Content-Length %q", errMalformedResponse, cl[0])
		}
		for _, v := range cl[1:] {
			if v != cl[0] {
				return nil, fmt.Errorf("%w: differing Content-Lengths %q", errMalformedResponse, cl)
			}
		}
		h["Content-Length"] = cl[:1]
		c.cl = clBody{br: c.br, left: n}
		r.Body = &c.cl
	default: // the body ends with the connection
		r.Body = c.br
		r.Close = true
	}
	return r, nil
}

// readLine reads a line without its CR LF; a line longer than the buffer
// is gathered in lineBuf.
func (c *upConn) readLine() ([]byte, error) {
	line, err := c.br.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		c.lineBuf = append(c.lineBuf[:0], line...)
		for err == bufio.ErrBufferFull {
			line, err = c.br.ReadSlice('\n')
			c.lineBuf = append(c.lineBuf, line...)
			if len(c.lineBuf) > maxResponseHead {
				return nil, fmt.Errorf("%w: a line over %d bytes", errMalformedResponse, maxResponseHead)
			}
		}
		line = c.lineBuf
	}
	if err != nil {
		if err == io.EOF && len(line) > 0 {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, nil
}

// headerKey is the canonical form of a header name, from the connection's
// cache when the replica sent the name before.
func (c *upConn) headerKey(b []byte) string {
	if k, ok := c.keys[string(b)]; ok {
		return k
	}
	k := textproto.CanonicalMIMEHeaderKey(string(b))
	if c.keys == nil {
		c.keys = map[string]string{}
	}
	if len(c.keys) < 64 {
		c.keys[string(b)] = k
	}
	return k
}

// addHeader adds a value, keeping the previous answer's slice when this
// answer's first value for the name is the same.
func (c *upConn) addHeader(k string, v []byte) {
	h := c.resp.Header
	old := h[k]
	if !slices.Contains(c.seen, k) {
		c.seen = append(c.seen, k)
		if len(old) == 1 && old[0] == string(v) {
			return
		}
		h[k] = []string{string(v)}
		return
	}
	h[k] = append(old[:len(old):len(old)], string(v))
}

func truncate(b []byte) []byte {
	if len(b) > 64 {
		return b[:64]
	}
	return b
}

// clBody is a body of known length.
type clBody struct {
	br   *bufio.Reader
	left int64
}

func (b *clBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.br.Read(p)
	b.left -= int64(n)
	if err == io.EOF {
		err = io.ErrUnexpectedEOF // the replica closed before the end
	}
	return n, err
}

// chunkedBody is a chunked body; at its end it reads the trailer, so the
// connection is at the next answer.
type chunkedBody struct {
	cr   io.Reader
	c    *upConn
	done bool
}

func (b *chunkedBody) Read(p []byte) (int, error) {
	if b.done {
		return 0, io.EOF
	}
	n, err := b.cr.Read(p)
	if err == io.EOF {
		for {
			line, lerr := b.c.readLine()
			if lerr != nil {
				if lerr == io.EOF {
					lerr = io.ErrUnexpectedEOF
				}
				return n, lerr
			}
			if len(line) == 0 {
				break
			}
		}
		b.done = true
	}
	return n, err
}
