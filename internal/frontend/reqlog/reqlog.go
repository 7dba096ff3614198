// Package reqlog is berth-fe's request logging: it samples scoring
// requests, keeps each sampled request and its answer in a bounded
// in-memory buffer, and a background sender posts them in batches to a
// sink: the control plane (which files them in the artifact store) or an
// HTTP receiver of CloudEvents. Scoring never waits for it: when the
// buffer is full an entry is dropped and counted.
package reqlog

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	neturl "net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/berth-ml/berth/api"
)

// Defaults: the body limit of a route that gives none, and the buffer's
// bounds.
const (
	DefaultBodyLimit  = 64 << 10
	DefaultMaxBytes   = 4 << 20
	DefaultMaxEntries = 10000
	// MaxBodyLimit is the largest body limit a service may set.
	MaxBodyLimit = 1 << 20
)

// CloudEvents sink: the event type and the batched mode's content type.
const (
	EventType        = "dev.berth.request.v1"
	BatchContentType = "application/cloudevents-batch+json"
)

// Labels say what a request was for: the endpoint it was sent to and the
// version that served it. A plain service's requests are filed under the
// service's name, with no version.
type Labels struct {
	Endpoint, Version string
}

// Entry is one logged request and its answer, one line of the JSON Lines
// files.
type Entry = api.RequestLogEntry

// Body encodings.
const (
	EncodingText   = "text"
	EncodingBase64 = "base64"
)

// Record is a sampled request as the front end hands it over: the bodies
// raw (up to the limit); the sender encodes them.
type Record struct {
	Labels
	Service           string
	Time              time.Time
	Status            int
	Latency           time.Duration
	Request, Response []byte
	RequestTruncated  bool
	ResponseTruncated bool
	// Sink is the HTTP sink's URL, "" for the default (the control plane).
	Sink string
}

// size is what a record counts against the buffer's bytes.
func (r *Record) size() int { return len(r.Request) + len(r.Response) + 256 }

// Entry encodes the record's bodies.
func (r *Record) Entry() Entry {
	e := Entry{ID: newID(), Time: r.Time.UTC(), Endpoint: r.Endpoint, Version: r.Version, Service: r.Service, Status: r.Status,
		LatencyMs: float64(r.Latency.Microseconds()) / 1000, RequestTruncated: r.RequestTruncated, ResponseTruncated: r.ResponseTruncated}
	e.Request, e.RequestEncoding = encode(r.Request, r.RequestTruncated)
	e.Response, e.ResponseEncoding = encode(r.Response, r.ResponseTruncated)
	return e
}

// encode gives a body as text when it is UTF-8 (a cut one may end in
// part of a character, which is left off), else as base64.
func encode(b []byte, cut bool) (string, string) {
	if utf8.Valid(b) {
		return string(b), EncodingText
	}
	if cut {
		for k := 1; k < utf8.UTFMax && k <= len(b); k++ {
			if utf8.Valid(b[:len(b)-k]) {
				return string(b[:len(b)-k]), EncodingText
			}
		}
	}
	return base64.StdEncoding.EncodeToString(b), EncodingBase64
}

func newID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Head copies the first limit bytes of b, and tells whether it cut some.
func Head(b []byte, limit int) ([]byte, bool) {
	if len(b) > limit {
		return bytes.Clone(b[:limit]), true
	}
	return bytes.Clone(b), false
}

// Sampler picks p of every 100 requests, evenly spread: a counter, not
// chance, so a percentage holds exactly over each hundred.
type Sampler struct{ n atomic.Uint64 }

// Sample tells whether to log this request at p percent.
func (s *Sampler) Sample(p int) bool {
	switch {
	case p <= 0:
		return false
	case p >= 100:
		return true
	}
	n := s.n.Add(1) - 1
	return (n+1)*uint64(p)/100 != n*uint64(p)/100
}

// Sink takes a batch of entries (the control plane: in process on the
// local compute, over HTTP from a cluster).
type Sink func(ctx context.Context, entries []Entry) error

// Logger is the bounded buffer and its sender.
type Logger struct {
	// MaxBytes and MaxEntries bound the buffer (zero: the defaults); set
	// them before it is used, or with SetBounds.
	MaxBytes, MaxEntries int
	// Interval is how often the sender flushes (zero: 1 s).
	Interval time.Duration
	// Attempts is how often a batch is tried (zero: 3), Backoff the wait
	// before the second try, doubled after each (zero: 200 ms).
	Attempts int
	Backoff  time.Duration
	// Client posts to HTTP sinks (zero: a 10 s timeout).
	Client *http.Client
	// Dropped counts n entries of a service that were dropped: the buffer
	// was full, or their sink failed.
	Dropped func(service string, n int)
	Log     *slog.Logger

	mu      sync.Mutex
	def     Sink
	pending []Record
	bytes   int
	flushMu sync.Mutex
}

// SetDefault sets the sink of the routes that name none.
func (l *Logger) SetDefault(s Sink) {
	l.mu.Lock()
	l.def = s
	l.mu.Unlock()
}

// SetBounds changes the buffer's bounds while it is in use.
func (l *Logger) SetBounds(maxBytes, maxEntries int) {
	l.mu.Lock()
	l.MaxBytes, l.MaxEntries = maxBytes, maxEntries
	l.mu.Unlock()
}

// Add puts a record in the buffer, or drops it (counted) when the buffer
// is full. It never blocks on the sender.
func (l *Logger) Add(r Record) bool {
	n := r.size()
	l.mu.Lock()
	ok := len(l.pending) < cmp.Or(l.MaxEntries, DefaultMaxEntries) && l.bytes+n <= cmp.Or(l.MaxBytes, DefaultMaxBytes)
	if ok {
		l.pending = append(l.pending, r)
		l.bytes += n
	}
	l.mu.Unlock()
	if !ok {
		l.drop(r.Service, 1)
	}
	return ok
}

func (l *Logger) drop(service string, n int) {
	if l.Dropped != nil && n > 0 {
		l.Dropped(service, n)
	}
}

// Run flushes every interval until ctx ends, and once more then.
func (l *Logger) Run(ctx context.Context) {
	t := time.NewTicker(cmp.Or(l.Interval, time.Second))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			l.Flush(fctx)
			cancel()
			return
		case <-t.C:
			l.Flush(ctx)
		}
	}
}

// Flush sends what the buffer holds: one batch per sink, each tried a few
// times with backoff, then dropped (counted).
func (l *Logger) Flush(ctx context.Context) {
	l.flushMu.Lock()
	defer l.flushMu.Unlock()
	l.mu.Lock()
	recs, def := l.pending, l.def
	l.pending, l.bytes = nil, 0
	l.mu.Unlock()
	if len(recs) == 0 {
		return
	}
	var order []string
	groups := map[string][]Entry{}
	for i := range recs {
		s := recs[i].Sink
		if _, ok := groups[s]; !ok {
			order = append(order, s)
		}
		groups[s] = append(groups[s], recs[i].Entry())
	}
	for _, sink := range order {
		entries := groups[sink]
		send := def
		if sink != "" {
			send = func(ctx context.Context, es []Entry) error { return l.postEvents(ctx, sink, es) }
		}
		err := errors.New("no sink: nothing receives the control plane's request logs here")
		if send != nil {
			err = l.retry(ctx, func() error { return send(ctx, entries) })
		}
		if err != nil {
			if l.Log != nil && ctx.Err() == nil {
				l.Log.Warn("request log entries dropped", "sink", cmp.Or(redact(sink), "control plane"), "entries", len(entries), "err", err)
			}
			counts := map[string]int{}
			for _, e := range entries {
				counts[e.Service]++
			}
			for svc, n := range counts {
				l.drop(svc, n)
			}
		}
	}
}

// retry calls try until it succeeds, a permanent error, or the attempts
// run out, waiting between them.
func (l *Logger) retry(ctx context.Context, try func() error) error {
	wait := cmp.Or(l.Backoff, 200*time.Millisecond)
	var err error
	for i := range cmp.Or(l.Attempts, 3) {
		if i > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(wait):
			}
			wait *= 2
		}
		if err = try(); err == nil || errors.As(err, new(permanent)) {
			return err
		}
	}
	return err
}

// permanent is a refusal that trying again would not change (a 4xx).
type permanent struct{ error }

// Event is one CloudEvent of a batch.
type Event struct {
	SpecVersion     string    `json:"specversion"`
	Type            string    `json:"type"`
	Source          string    `json:"source"`
	ID              string    `json:"id"`
	Time            time.Time `json:"time"`
	Subject         string    `json:"subject,omitempty"`
	DataContentType string    `json:"datacontenttype"`
	Data            Entry     `json:"data"`
}

// postEvents posts entries to url as one batch of CloudEvents (HTTP
// binding, batched content mode).
func (l *Logger) postEvents(ctx context.Context, url string, entries []Entry) error {
	events := make([]Event, len(entries))
	for i, e := range entries {
		events[i] = Event{SpecVersion: "1.0", Type: EventType, Source: "berth-fe/" + e.Endpoint, ID: e.ID, Time: e.Time,
			Subject: e.Service, DataContentType: "application/json", Data: e}
	}
	body, err := json.Marshal(events)
	if err != nil {
		return err
	}
	return Post(ctx, cmp.Or(l.Client, &http.Client{Timeout: 10 * time.Second}), url, BatchContentType, "", body)
}

// Post sends body to url, with a bearer token when one is given; an
// answer other than 2xx is an error (permanent for 4xx but 408 and 429).
func Post(ctx context.Context, c *http.Client, url, contentType, token string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return permanent{err}
	}
	req.Header.Set("Content-Type", contentType)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if ue := (*neturl.Error)(nil); errors.As(err, &ue) {
		return ue.Err // without the URL, whose query may hold a secret
	}
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 == 2 {
		io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		return nil
	}
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	err = fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(msg)))
	if resp.StatusCode/100 == 4 && resp.StatusCode != http.StatusRequestTimeout && resp.StatusCode != http.StatusTooManyRequests {
		return permanent{err}
	}
	return err
}

// redact is a sink's URL without its query, which may hold a secret.
func redact(sink string) string {
	if u, err := neturl.Parse(sink); err == nil {
		u.RawQuery, u.Fragment = "", ""
		return u.String()
	}
	return ""
}

// JSONLines encodes entries one a line.
func JSONLines(entries []Entry) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	for i := range entries {
		enc.Encode(&entries[i])
	}
	return b.Bytes()
}

// ReadJSONLines decodes JSON Lines of entries, refusing unknown fields.
func ReadJSONLines(r io.Reader) ([]Entry, error) {
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	var out []Entry
	for {
		var e Entry
		err := dec.Decode(&e)
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("request log entry %d: %w", len(out)+1, err)
		}
		out = append(out, e)
	}
}
