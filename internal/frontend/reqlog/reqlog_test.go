package reqlog

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestSamplerTakesItsShare: p% of requests are sampled, exactly p in
// every 100 in a row, for every p.
func TestSamplerTakesItsShare(t *testing.T) {
	for _, p := range []int{0, 1, 10, 33, 50, 99, 100} {
		var s Sampler
		for round := range 100 {
			n := 0
			for range 100 {
				if s.Sample(p) {
					n++
				}
			}
			if n != p {
				t.Fatalf("p=%d: round %d sampled %d of 100", p, round, n)
			}
		}
	}
	var s Sampler
	if s.Sample(-5) || !s.Sample(150) {
		t.Error("a percentage out of 0–100 is not taken as 0 or 100")
	}
}

// TestEncodingAndTruncation: a UTF-8 body is text, cut at a whole
// character when over the limit; anything else is base64.
func TestEncodingAndTruncation(t *testing.T) {
	for _, tc := range []struct {
		body      []byte
		limit     int
		want, enc string
		cut       bool
	}{
		{[]byte(`{"data":[[1,2]]}`), 64, `{"data":[[1,2]]}`, EncodingText, false},
		{[]byte(`{"data":[[1,2]]}`), 8, `{"data":`, EncodingText, true},
		{[]byte("héé"), 4, "hé", EncodingText, true}, // 'é' is 2 bytes: the second one is cut in half
		{[]byte{0xff, 0x00, 0x10}, 64, base64.StdEncoding.EncodeToString([]byte{0xff, 0x00, 0x10}), EncodingBase64, false},
		{nil, 64, "", EncodingText, false},
	} {
		head, cut := Head(tc.body, tc.limit)
		r := Record{Request: head, RequestTruncated: cut, Response: head, ResponseTruncated: cut}
		e := r.Entry()
		if e.Request != tc.want || e.RequestEncoding != tc.enc || e.RequestTruncated != tc.cut || e.Response != tc.want || e.ResponseEncoding != tc.enc {
			t.Errorf("%q at %d: got %q (%s, cut %v), want %q (%s, cut %v)", tc.body, tc.limit, e.Request, e.RequestEncoding, e.RequestTruncated, tc.want, tc.enc, tc.cut)
		}
	}
	// Head copies: the front end's buffer is reused after the request.
	src := []byte("abc")
	head, _ := Head(src, 10)
	src[0] = 'x'
	if string(head) != "abc" {
		t.Error("Head shares the caller's buffer")
	}
}

// drops counts dropped entries by service.
type drops struct {
	mu sync.Mutex
	n  map[string]int
}

func (d *drops) add(svc string, n int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.n == nil {
		d.n = map[string]int{}
	}
	d.n[svc] += n
}

func (d *drops) of(svc string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.n[svc]
}

// TestBufferIsBoundedAndNeverBlocks: with the sink blocked, Add returns at
// once; the buffer holds at most its entries and bytes, and each entry it
// refuses is counted; once the sink answers, what was kept arrives.
func TestBufferIsBoundedAndNeverBlocks(t *testing.T) {
	var d drops
	release := make(chan struct{})
	var got atomic.Int32
	l := &Logger{MaxEntries: 5, MaxBytes: 1 << 20, Dropped: d.add}
	l.SetDefault(func(ctx context.Context, es []Entry) error {
		<-release
		got.Add(int32(len(es)))
		return nil
	})
	for range 5 {
		if !l.Add(Record{Service: "a", Time: time.Now()}) {
			t.Fatal("an entry was refused with room in the buffer")
		}
	}
	flushed := make(chan struct{})
	go func() { l.Flush(context.Background()); close(flushed) }() // the sink blocks this flush
	// The blocked flush took the 5; 5 more fit, the rest are dropped.
	deadline := time.Now().Add(10 * time.Second)
	for {
		l.mu.Lock()
		n := len(l.pending)
		l.mu.Unlock()
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the flush never took the buffer")
		}
		time.Sleep(time.Millisecond)
	}
	kept := 0
	for range 100 {
		if l.Add(Record{Service: "a", Time: time.Now()}) {
			kept++
		}
	}
	if kept != 5 || d.of("a") != 95 {
		t.Fatalf("with the sink blocked: kept %d (want 5), dropped %d (want 95)", kept, d.of("a"))
	}
	close(release)
	<-flushed
	l.Flush(context.Background())
	if got.Load() != 10 {
		t.Errorf("the sink got %d entries, want 10", got.Load())
	}
	// The byte bound: a body as large as the buffer is dropped.
	l2 := &Logger{MaxBytes: 1000, Dropped: d.add}
	if l2.Add(Record{Service: "b", Request: make([]byte, 1000)}) || d.of("b") != 1 {
		t.Errorf("an entry over the byte bound was kept (dropped %d)", d.of("b"))
	}
	if !l2.Add(Record{Service: "b", Request: make([]byte, 500)}) {
		t.Error("an entry within the byte bound was dropped")
	}
}

// TestNoSinkDropsCounted: entries with nowhere to go are counted as
// dropped, per service.
func TestNoSinkDropsCounted(t *testing.T) {
	var d drops
	l := &Logger{Dropped: d.add, Attempts: 1}
	l.Add(Record{Service: "a"})
	l.Add(Record{Service: "b"})
	l.Add(Record{Service: "b"})
	l.Flush(context.Background())
	if d.of("a") != 1 || d.of("b") != 2 {
		t.Errorf("dropped %v", d.n)
	}
}

// TestCloudEventsSink: a route's sink gets the entries as one batch of
// CloudEvents (batched content mode) per flush; a failing sink is tried
// again with backoff, then its entries are dropped and counted; a 4xx is
// not tried again.
func TestCloudEventsSink(t *testing.T) {
	var mu sync.Mutex
	var batches [][]Event
	var posts atomic.Int32
	fail := atomic.Int32{} // answer this many posts 503
	status := atomic.Int32{}
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		posts.Add(1)
		if fail.Add(-1) >= 0 {
			w.WriteHeader(int(status.Load()))
			return
		}
		if ct := r.Header.Get("Content-Type"); ct != BatchContentType || r.Method != http.MethodPost {
			t.Errorf("%s with Content-Type %q", r.Method, ct)
		}
		body, _ := io.ReadAll(r.Body)
		var evs []Event
		dec := json.NewDecoder(strings.NewReader(string(body)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&evs); err != nil {
			t.Errorf("batch: %v: %s", err, body)
		}
		mu.Lock()
		batches = append(batches, evs)
		mu.Unlock()
	}))
	defer recv.Close()
	var d drops
	var def atomic.Int32
	l := &Logger{Dropped: d.add, Backoff: time.Millisecond}
	l.SetDefault(func(_ context.Context, es []Entry) error { def.Add(int32(len(es))); return nil })
	now := time.Now()
	for i := range 3 {
		l.Add(Record{Labels: Labels{Endpoint: "iris"}, Service: "iris", Time: now, Status: 200 + i, Latency: 1500 * time.Microsecond,
			Request: []byte(`{"data":[[1]]}`), Response: []byte(`[0]`), Sink: recv.URL})
	}
	l.Add(Record{Service: "other", Time: now}) // to the default sink
	fail.Store(2)
	status.Store(503)
	l.Flush(context.Background())
	if len(batches) != 1 || len(batches[0]) != 3 || posts.Load() != 3 || def.Load() != 1 {
		t.Fatalf("batches %d (want 1 of 3 events after 2 failures), posts %d, default sink %d", len(batches), posts.Load(), def.Load())
	}
	for i, ev := range batches[0] {
		e := ev.Data
		if ev.SpecVersion != "1.0" || ev.Type != EventType || ev.Source != "berth-fe/iris" || ev.ID == "" || ev.ID != e.ID || ev.DataContentType != "application/json" ||
			!ev.Time.Equal(now) || e.Status != 200+i || e.LatencyMs != 1.5 || e.Request != `{"data":[[1]]}` || e.Response != "[0]" || e.Endpoint != "iris" {
			t.Errorf("event %d = %+v", i, ev)
		}
	}
	// Down for good: tried Attempts times, then dropped and counted. A
	// refusal: not tried again.
	for i, tc := range []struct{ status, posts int32 }{{503, 3}, {400, 1}} {
		fail.Store(100)
		status.Store(tc.status)
		posts.Store(0)
		l.Add(Record{Service: "iris", Sink: recv.URL})
		l.Flush(context.Background())
		if posts.Load() != tc.posts || d.of("iris") != i+1 {
			t.Errorf("a sink that answers %d: %d posts (want %d), %d dropped in all (want %d)", tc.status, posts.Load(), tc.posts, d.of("iris"), i+1)
		}
	}
}

// TestJSONLinesRoundTrip: entries encode one a line and read back; an
// unknown field is refused.
func TestJSONLinesRoundTrip(t *testing.T) {
	es := []Entry{{ID: "1", Endpoint: "a", Request: "<x>"}, {ID: "2", Endpoint: "b", Version: "v2"}}
	b := JSONLines(es)
	if strings.Count(string(b), "\n") != 2 || !strings.Contains(string(b), `"<x>"`) {
		t.Fatalf("JSON Lines: %s", b)
	}
	back, err := ReadJSONLines(strings.NewReader(string(b)))
	if err != nil || len(back) != 2 || back[1].Version != "v2" {
		t.Fatalf("read back: %+v %v", back, err)
	}
	if _, err := ReadJSONLines(strings.NewReader(`{"id":"1","secret":true}`)); err == nil {
		t.Error("an unknown field was accepted")
	}
}

// TestSinkSecretsNotLogged: a sink's query (where a token may be) is not
// in the log of a failed send.
func TestSinkSecretsNotLogged(t *testing.T) {
	var buf strings.Builder
	l := &Logger{Attempts: 1, Log: slog.New(slog.NewTextHandler(&buf, nil))}
	l.Add(Record{Service: "a", Sink: "http://127.0.0.1:1/ingest?token=s3cret-77"}) // nothing listens on port 1
	l.Flush(context.Background())
	if out := buf.String(); !strings.Contains(out, "127.0.0.1:1/ingest") || strings.Contains(out, "s3cret") {
		t.Errorf("log: %s", out)
	}
}
