package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"mime"
	"net/http"
	"slices"
	"strings"
	"time"
)

// debugTransport writes each HTTP request and its answer to w (--debug),
// with every token, key, secret and credential redacted.
type debugTransport struct {
	w    io.Writer
	next http.RoundTripper
}

const redacted = "[redacted]"

// maxDebugBody is the largest JSON body --debug prints; larger ones and
// other types are shown by size only.
const maxDebugBody = 64 << 10

func (d *debugTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	start := time.Now()
	fmt.Fprintf(d.w, "> %s %s\n", req.Method, req.URL.Redacted())
	writeHeaders(d.w, ">", req.Header)
	if req.Body != nil && req.GetBody != nil && isJSON(req.Header) {
		if body, err := req.GetBody(); err == nil {
			b, _ := io.ReadAll(body)
			fmt.Fprintf(d.w, "> %s\n", redactJSON(b))
		}
	}
	resp, err := d.next.RoundTrip(req)
	took := time.Since(start).Round(time.Millisecond)
	if err != nil {
		fmt.Fprintf(d.w, "< no answer after %s: %v\n", took, err)
		return nil, err
	}
	fmt.Fprintf(d.w, "< %s %s (%s)\n", resp.Proto, resp.Status, took)
	writeHeaders(d.w, "<", resp.Header)
	switch {
	case strings.HasSuffix(req.URL.Path, "/credentials"):
		fmt.Fprintf(d.w, "< %s\n", redacted)
	case isJSON(resp.Header) && resp.ContentLength <= maxDebugBody:
		b, rerr := io.ReadAll(io.LimitReader(resp.Body, maxDebugBody+1))
		resp.Body = struct {
			io.Reader
			io.Closer
		}{io.MultiReader(bytes.NewReader(b), resp.Body), resp.Body}
		if rerr == nil && len(b) <= maxDebugBody {
			fmt.Fprintf(d.w, "< %s\n", redactJSON(b))
		}
	}
	return resp, nil
}

func writeHeaders(w io.Writer, dir string, h http.Header) {
	for _, k := range slices.Sorted(maps.Keys(h)) {
		v := strings.Join(h[k], ", ")
		if secretName(k) || k == "Cookie" || k == "Set-Cookie" {
			scheme, _, found := strings.Cut(v, " ")
			v = redacted
			if found && k == "Authorization" {
				v = scheme + " " + redacted
			}
		}
		fmt.Fprintf(w, "%s %s: %s\n", dir, k, v)
	}
}

func isJSON(h http.Header) bool {
	t, _, _ := mime.ParseMediaType(h.Get("Content-Type"))
	return t == "application/json"
}

// secretName reports whether a header or JSON field holds a secret.
func secretName(name string) bool {
	n := strings.ToLower(name)
	return slices.ContainsFunc([]string{"authorization", "key", "token", "secret", "password", "credential"}, func(s string) bool { return strings.Contains(n, s) })
}

// redactJSON is a JSON document with the string values of secret fields
// replaced, at any depth.
func redactJSON(b []byte) string {
	var v any
	if json.Unmarshal(b, &v) != nil {
		return fmt.Sprintf("[%d bytes]", len(b))
	}
	out, _ := json.Marshal(redactValue(v))
	return string(out)
}

func redactValue(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if _, isStr := e.(string); isStr && secretName(k) {
				x[k] = redacted
			} else {
				x[k] = redactValue(e)
			}
		}
	case []any:
		for i, e := range x {
			x[i] = redactValue(e)
		}
	}
	return v
}
