package h1

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/textproto"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// FuzzRequestParser feeds the same bytes, one or more pipelined requests,
// to h1's request parser and to net/http.ReadRequest (followed by the
// checks net/http's server makes of what it read), reads each body, and
// compares: accepted or refused (and with which status), method, target
// and URL, protocol, Host, the headers, Close, and the body's framing and
// bytes. h1 is also run with a 16-byte reader, which takes every head
// line by line, and must give the same results as with its usual reader.
//
// Where h1 differs from net/http on purpose, the rule is written out in
// explain (refusals) and normalize (headers); nothing else may differ.
// The seed corpus is in testdata/fuzz/FuzzRequestParser.
func FuzzRequestParser(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		got := parseH1(data, h1ReaderSize)
		if small := parseH1(data, 16); !sameResults(small, got) {
			t.Fatalf("h1 parses differently with a small reader:\n%s\nvs\n%s", dump(small), dump(got))
		}
		want := parseNetHTTP(data)
		for i := 0; i < len(got) || i < len(want); i++ {
			if i == len(got) || i == len(want) {
				t.Fatalf("h1 read %d requests, net/http %d:\nh1:       %s\nnet/http: %s", len(got), len(want), dump(got), dump(want))
			}
			g, w := got[i], want[i]
			if why := explain(data, g, w); why != "" {
				return // a known difference; what follows is not comparable
			}
			if d := diff(g, w); d != "" {
				t.Fatalf("request %d (at byte %d): %s\nh1:       %s\nnet/http: %s", i, w.start, d, dump(got), dump(want))
			}
		}
	})
}

// fuzzMaxHead is MaxHeaderBytes in the fuzz test: larger than the 8 KiB
// reader, so long heads take both of readHead's paths.
const fuzzMaxHead = 16 << 10

// maxPipelined bounds the requests read from one input.
const maxPipelined = 8

// statusIncomplete: the input ended inside a request's head.
const statusIncomplete = -1

// parsed is one request as a parser read it, or its refusal.
type parsed struct {
	start  int // offset of the request line in the input (net/http's side)
	status int // 0: accepted; statusIncomplete; else the status the server answers
	err    error

	method, target, proto string
	major, minor          int
	url                   url.URL
	host                  string
	header                http.Header
	close                 bool
	contentLength         int64
	chunked               bool
	body                  []byte
	bodyErr               error
}

// nopConn is the connection under h1Conn: the parser only sets deadlines
// (anything else would panic on the nil Conn).
type nopConn struct{ net.Conn }

func (nopConn) SetReadDeadline(time.Time) error { return nil }

// parseH1 reads requests from data as h1Conn.serve does, with a reader of
// size bytes.
func parseH1(data []byte, size int) []parsed {
	s := NewServer(nil, slog.New(slog.DiscardHandler))
	s.MaxHeaderBytes = fuzzMaxHead
	c := &h1Conn{s: s, rwc: nopConn{}, remote: "192.0.2.1:1234"}
	c.br = bufio.NewReaderSize(bytes.NewReader(data), size)
	c.bw = bufio.NewWriter(io.Discard) // 100 Continue
	c.tmpl = *(&http.Request{}).WithContext(context.Background())
	c.header, c.resp.header = http.Header{}, http.Header{}
	c.resp.c, c.body.c = c, c
	var out []parsed
	for len(out) < maxPipelined {
		if _, err := c.br.Peek(1); err != nil {
			break
		}
		if err := c.readRequest(); err != nil {
			p := parsed{status: statusIncomplete, err: err}
			if he := (*h1Error)(nil); errors.As(err, &he) {
				p.status = he.code
			}
			return append(out, p)
		}
		r := &c.req
		p := snapshot(r)
		p.body, p.bodyErr = io.ReadAll(r.Body)
		if out = append(out, p); p.bodyErr != nil {
			break
		}
	}
	return out
}

// parseNetHTTP reads requests from data with http.ReadRequest and the
// checks of net/http's server (conn.readRequest) after it.
func parseNetHTTP(data []byte) []parsed {
	src := bytes.NewReader(data)
	br := bufio.NewReader(src)
	var out []parsed
	for len(out) < maxPipelined {
		if _, err := br.Peek(1); err != nil {
			break
		}
		// Rule: h1 ignores up to four CR or LF bytes before every request
		// line (RFC 9112 section 2.2); net/http's server only after a POST.
		// net/http is given the same tolerance here.
		lead, _ := br.Peek(4)
		n := 0
		for n < len(lead) && (lead[n] == '\r' || lead[n] == '\n') {
			n++
		}
		br.Discard(n)
		start := len(data) - src.Len() - br.Buffered()
		r, err := http.ReadRequest(br)
		if err == nil {
			// ReadRequest drops the Host header; the server checks it.
			head, _ := headAt(data, start)
			err = serverChecks(r, headerValues(headLines(head), "Host"))
		}
		if err != nil {
			p := parsed{start: start, status: http.StatusBadRequest, err: err}
			var se statusError
			switch {
			case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
				p.status = statusIncomplete
			case errors.As(err, &se):
				p.status = se.code
			case strings.Contains(err.Error(), "transfer encoding"): // net/http's unsupportedTEError
				p.status = http.StatusNotImplemented
			}
			return append(out, p)
		}
		p := snapshot(r)
		p.start = start
		p.body, p.bodyErr = io.ReadAll(r.Body)
		if out = append(out, p); p.bodyErr != nil {
			break
		}
	}
	return out
}

type statusError struct {
	code int
	text string
}

func (e statusError) Error() string { return e.text }

// serverChecks are those net/http's server makes of a request
// http.ReadRequest returned (net/http/server.go, conn.readRequest and
// http1ServerSupportsRequest), given its Host header's values.
func serverChecks(r *http.Request, hosts []string) error {
	h2Preface := r.Method == "PRI" && len(r.Header) == 0 && r.URL.Path == "*" && r.Proto == "HTTP/2.0"
	if r.ProtoMajor != 1 && !(r.ProtoMajor == 2 && r.ProtoMinor == 0 && r.Method == "PRI" && r.RequestURI == "*") {
		return statusError{http.StatusHTTPVersionNotSupported, "unsupported protocol version"}
	}
	if r.ProtoAtLeast(1, 1) && len(hosts) == 0 && !h2Preface && r.Method != "CONNECT" {
		return statusError{http.StatusBadRequest, "missing required Host header"}
	}
	if len(hosts) == 1 && !validHostHeader(hosts[0]) {
		return statusError{http.StatusBadRequest, "malformed Host header"}
	}
	// ReadRequest lets a space into a header name; the server does not.
	for k, vs := range r.Header {
		if k == "" || strings.ContainsFunc(k, func(c rune) bool { return !isTokenRune(c) }) {
			return statusError{http.StatusBadRequest, "invalid header name"}
		}
		for _, v := range vs {
			if strings.ContainsFunc(v, func(c rune) bool { return c < ' ' && c != '\t' || c == 0x7f }) {
				return statusError{http.StatusBadRequest, "invalid header value"}
			}
		}
	}
	return nil
}

// isTokenRune: c may be in a token (RFC 9110 section 5.6.2).
func isTokenRune(c rune) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.ContainsRune("!#$%&'*+-.^_`|~", c)
}

// validHostHeader is golang.org/x/net/http/httpguts.ValidHostHeader.
func validHostHeader(h string) bool {
	for i := 0; i < len(h); i++ {
		b := h[i]
		if !('a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9') && !strings.ContainsRune("!$%&'()*+,-.:;=[]_~", rune(b)) {
			return false
		}
	}
	return true
}

func snapshot(r *http.Request) parsed {
	return parsed{method: r.Method, target: r.RequestURI, proto: r.Proto, major: r.ProtoMajor, minor: r.ProtoMinor,
		url: *r.URL, host: r.Host, header: r.Header.Clone(), close: r.Close, contentLength: r.ContentLength,
		chunked: slices.Equal(r.TransferEncoding, []string{"chunked"})}
}

// explain names the rule by which h1's result g may differ from
// net/http's w, or returns "" when it may not.
func explain(data []byte, g, w parsed) string {
	head, complete := headAt(data, w.start)
	lines := headLines(head)
	method, rest, _ := strings.Cut(lines[0], " ") // as both parsers cut it
	target, proto, _ := strings.Cut(rest, " ")
	switch {
	case g.status == w.status && g.status != 0:
		return "" // both refuse alike
	case g.status == statusIncomplete && w.status > 0 && !complete:
		// h1 reads a whole head before it parses it; net/http parses
		// line by line and can find a fault before the input ends.
		return "refused before the head ended"
	case g.status == http.StatusRequestHeaderFieldsTooLarge && len(head) > fuzzMaxHead-2:
		// h1 bounds the head at MaxHeaderBytes; net/http's server does
		// so outside ReadRequest, with 4 KiB of slack.
		return "head over MaxHeaderBytes"
	case g.status == http.StatusHTTPVersionNotSupported && majorVersion(proto) != 1:
		// h1 answers 505 to every version but 1.x, including HTTP/2's
		// "PRI * HTTP/2.0" preface that net/http hands to handlers, and
		// checks the version first, before any other fault net/http
		// finds first.
		return "not HTTP/1.x"
	case method == "CONNECT" && !strings.HasPrefix(target, "/"):
		// h1 is no proxy: it does not read CONNECT's authority-form
		// target specially, as net/http does (into URL.Host).
		return "CONNECT authority-form"
	case g.status == http.StatusBadRequest && slices.ContainsFunc(lines[1:], func(l string) bool { return l != "" && (l[0] == ' ' || l[0] == '\t') }):
		// obs-fold: h1 refuses a header line continued on the next
		// (RFC 9112 section 5.2 allows either); net/http joins the lines.
		return "obs-fold"
	case g.status == http.StatusBadRequest && slices.ContainsFunc(headerValues(lines, "Content-Length"), longLength):
		// h1 refuses a Content-Length of more than 18 digits (no body is
		// that large); net/http reads up to 2^63-1.
		return "Content-Length over 18 digits"
	case g.status == http.StatusBadRequest && w.status == http.StatusNotImplemented && serverFault(lines, proto):
		// h1 checks Host and header names before framing; net/http's
		// server checks them after ReadRequest has refused the framing.
		return "fault net/http's server finds after framing"
	case g.status == 0 && g.chunked && w.status == http.StatusBadRequest &&
		slices.ContainsFunc(headerValues(lines, "Trailer"), forbiddenTrailer):
		// h1 does not read the Trailer header (trailers are dropped);
		// net/http refuses one that names a framing header.
		return "Trailer names a framing header"
	case g.status == 0 && w.status == 0 && g.chunked && g.bodyErr == nil && trailerError(w.bodyErr) && bytes.Equal(g.body, w.body):
		// A chunked body's trailer section: h1 reads its lines up to a
		// blank one (LF or CRLF, as in a head), up to MaxHeaderBytes, and
		// drops them unchecked. net/http reads one only if it sees CRLF
		// CRLF within its reader's 4 KiB buffer, and parses it as headers.
		return "trailer section"
	case g.status == 0 && w.status == 0 && g.chunked && g.bodyErr == nil && errors.Is(w.bodyErr, httputil.ErrLineTooLong):
		// A chunk's size line must fit in the reader: 4 KiB in this test's
		// net/http side, 8 KiB in h1.
		return "chunk size line over 4 KiB"
	}
	return ""
}

// normalize undoes, in h1's headers, what net/http's parser does to
// headers and h1 does not.
func normalize(g parsed) http.Header {
	h := g.header.Clone()
	if g.minor == 0 {
		// HTTP/1.0: both ignore Transfer-Encoding for framing; net/http
		// also removes the header, h1 leaves it (the gateway never
		// forwards it).
		delete(h, "Transfer-Encoding")
	}
	if g.chunked {
		// net/http moves Trailer out of Header into Request.Trailer.
		delete(h, "Trailer")
	}
	if p := h["Pragma"]; len(p) > 0 && p[0] == "no-cache" && h["Cache-Control"] == nil {
		// net/http adds Cache-Control: no-cache for HTTP/1.0 caches.
		h["Cache-Control"] = []string{"no-cache"}
	}
	return h
}

// diff compares two results that no rule explains.
func diff(g, w parsed) string {
	switch {
	case g.status != w.status:
		return "refused differently"
	case g.status != 0:
		return ""
	case g.method != w.method || g.target != w.target || g.proto != w.proto || g.major != w.major || g.minor != w.minor:
		return "request line"
	case !sameURL(g.url, w.url):
		return "URL"
	case g.host != w.host:
		return "Host"
	case g.close != w.close:
		return "Close"
	case g.contentLength != w.contentLength || g.chunked != w.chunked:
		return "framing"
	case (g.bodyErr == nil) != (w.bodyErr == nil):
		return "body read"
	case g.bodyErr == nil && !bytes.Equal(g.body, w.body):
		return "body"
	}
	gh, wh := normalize(g), w.header
	for _, k := range []string{"Host", "Content-Length", "Transfer-Encoding", "Connection"} {
		if !slices.Equal(gh[k], wh[k]) {
			return "header " + k
		}
	}
	if len(gh) != len(wh) {
		return "header names"
	}
	for k, vs := range gh {
		if !sameSet(vs, wh[k]) {
			return "header " + k
		}
	}
	return ""
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(slices.Compact(a), slices.Compact(b)) && (a == nil) == (b == nil)
}

// sameResults: h1 gave the same results with a 16-byte reader (small)
// as with its own (big).
func sameResults(small, big []parsed) bool {
	for i, p := range small {
		if i < len(big) && big[i].chunked && (errors.Is(p.bodyErr, httputil.ErrLineTooLong) || errors.Is(p.bodyErr, bufio.ErrBufferFull)) {
			// A chunk's size line, and a trailer line, must fit in the
			// reader (as in net/http), and 16 bytes is short of many.
			small, big = small[:i], big[:i]
			break
		}
	}
	return dump(small) == dump(big)
}

func sameURL(a, b url.URL) bool {
	if a.User.String() != b.User.String() || (a.User == nil) != (b.User == nil) {
		return false
	}
	a.User, b.User = nil, nil
	return a == b
}

// headAt is the head of the request at start: up to its blank line
// (complete) or the end of the input, without the line end before it.
func headAt(data []byte, start int) (head string, complete bool) {
	s := string(data[start:])
	for i := 0; ; {
		j := strings.IndexByte(s[i:], '\n')
		if j < 0 {
			return s, false
		}
		i += j + 1
		if strings.HasPrefix(s[i:], "\n") || strings.HasPrefix(s[i:], "\r\n") {
			return strings.TrimSuffix(s[:i-1], "\r"), true
		}
	}
}

// headLines splits a head into lines without their line ends.
func headLines(head string) []string {
	lines := strings.Split(head, "\n")
	for i := range lines {
		lines[i] = strings.TrimSuffix(lines[i], "\r")
	}
	return lines
}

func majorVersion(proto string) int {
	major, _, ok := http.ParseHTTPVersion(proto)
	if !ok {
		return 1
	}
	return major
}

// headerValues are the values of the header lines named name (any case).
func headerValues(lines []string, name string) []string {
	var vs []string
	for _, l := range lines[1:] {
		if k, v, ok := strings.Cut(l, ":"); ok && http.CanonicalHeaderKey(k) == name {
			vs = append(vs, strings.Trim(v, " \t"))
		}
	}
	return vs
}

func longLength(v string) bool {
	_, err := strconv.ParseUint(v, 10, 63)
	return err == nil && len(v) > 18
}

// serverFault: the request's Host header is missing (HTTP/1.1), repeated
// or malformed, or a header's name is no token (net/http's parser lets a
// space into one).
func serverFault(lines []string, proto string) bool {
	hosts := headerValues(lines, "Host")
	badName := slices.ContainsFunc(lines[1:], func(l string) bool {
		k, _, _ := strings.Cut(l, ":")
		return k == "" || strings.ContainsFunc(k, func(c rune) bool { return !isTokenRune(c) })
	})
	return len(hosts) == 0 && proto != "HTTP/1.0" || len(hosts) > 1 ||
		len(hosts) == 1 && !validHostHeader(hosts[0]) || badName
}

func forbiddenTrailer(v string) bool {
	for t := range strings.SplitSeq(v, ",") {
		switch http.CanonicalHeaderKey(strings.TrimSpace(t)) {
		case "Transfer-Encoding", "Trailer", "Content-Length":
			return true
		}
	}
	return false
}

// trailerError: net/http failed reading a trailer section (its errors
// are not exported: known by their text).
func trailerError(err error) bool {
	var pe textproto.ProtocolError
	return errors.As(err, &pe) || err != nil &&
		(err.Error() == "http: unexpected EOF reading trailer" || err.Error() == "http: suspiciously long trailer after chunked body")
}

func dump(ps []parsed) string {
	var b strings.Builder
	for i, p := range ps {
		if i > 0 {
			b.WriteString("\n          ")
		}
		if p.status != 0 {
			b.WriteString("status " + strconv.Itoa(p.status) + ": " + p.err.Error())
			continue
		}
		b.WriteString(strconv.Quote(p.method+" "+p.target+" "+p.proto) + " url=" + strconv.Quote(p.url.String()) + " path=" + strconv.Quote(p.url.Path) + " rawPath=" + strconv.Quote(p.url.RawPath) +
			" host=" + strconv.Quote(p.host) + " close=" + strconv.FormatBool(p.close) +
			" cl=" + strconv.FormatInt(p.contentLength, 10) + " chunked=" + strconv.FormatBool(p.chunked) +
			" body=" + strconv.Quote(string(p.body)))
		if p.bodyErr != nil {
			b.WriteString(" bodyErr=" + p.bodyErr.Error())
		}
		b.WriteString(" header=" + strconv.Quote(headerString(p.header)))
	}
	return b.String()
}

func headerString(h http.Header) string {
	var b strings.Builder
	h.Write(&b)
	return b.String()
}
