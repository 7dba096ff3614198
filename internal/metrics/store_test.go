package metrics

import (
	"bytes"
	"fmt"
	"math"
	"runtime"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
)

var t0 = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

func hist(bounds []float64, values ...float64) Histogram {
	h := Histogram{Bounds: bounds, Counts: make([]float64, len(bounds)+1)}
	for _, v := range values {
		i := 0
		for i < len(bounds) && v > bounds[i] {
			i++
		}
		h.Counts[i]++
	}
	return h
}

func TestQuantile(t *testing.T) {
	bounds := []float64{0.001, 0.002, 0.004, 0.008}
	var vals []float64
	for range 98 {
		vals = append(vals, 0.0015)
	}
	vals = append(vals, 0.006, 0.006)
	h := hist(bounds, vals...)
	if got := h.Quantile(0.5); got <= 0.001 || got > 0.002 {
		t.Errorf("p50 = %v, want within (0.001, 0.002]", got)
	}
	if got := h.Quantile(0.99); got <= 0.004 || got > 0.008 {
		t.Errorf("p99 = %v, want within (0.004, 0.008]", got)
	}
	if got := (Histogram{Bounds: bounds, Counts: make([]float64, 5)}).Quantile(0.5); !math.IsNaN(got) {
		t.Errorf("empty p50 = %v, want NaN", got)
	}
	over := hist(bounds, 1, 2)
	if got := over.Quantile(0.99); got != 0.008 {
		t.Errorf("p99 above the last bound = %v, want the last bound 0.008", got)
	}
}

func TestStoreFineAndCoarse(t *testing.T) {
	s := New(0)
	k := Key{"c1", "iris"}
	bounds := []float64{0.01, 0.1, 1}
	// Three minutes of 10-second scrapes: 20 requests each, one 503 every
	// other scrape, latencies all in the (0.01, 0.1] bucket.
	for i := 1; i <= 18; i++ {
		codes := map[int]float64{200: 20}
		if i%2 == 0 {
			codes[200], codes[503] = 19, 1
		}
		lat := hist(bounds, make20(0.05)...)
		s.Add(k, t0.Add(time.Duration(i)*Fine), Delta{Codes: codes, Latency: lat, Ready: 2, Desired: 3})
	}
	now := t0.Add(18*Fine + time.Second)
	step, pts := s.Query(k, time.Hour, now)
	if step != Fine || len(pts) != 18 {
		t.Fatalf("fine query: step %v, %d points, want 10s and 18", step, len(pts))
	}
	for _, p := range pts {
		if p.RequestsPerSec != 2 {
			t.Errorf("%v: %v requests/s, want 2", p.Time, p.RequestsPerSec)
		}
		if p.LatencyP50Ms == nil || *p.LatencyP50Ms <= 10 || *p.LatencyP50Ms > 100 {
			t.Errorf("%v: p50 %v ms, want within (10, 100]", p.Time, p.LatencyP50Ms)
		}
		if p.QueueP50Ms != nil {
			t.Errorf("%v: queue p50 %v, want none without observations", p.Time, *p.QueueP50Ms)
		}
		if p.ReadyReplicas != 2 || p.DesiredReplicas != 3 {
			t.Errorf("%v: replicas %d/%d, want 2/3", p.Time, p.ReadyReplicas, p.DesiredReplicas)
		}
	}
	if e := pts[1].ErrorsPerSec["503"]; e != 0.1 {
		t.Errorf("503s/s in the second interval = %v, want 0.1", e)
	}
	if pts[0].ErrorsPerSec != nil {
		t.Errorf("first interval errors = %v, want none", pts[0].ErrorsPerSec)
	}
	step, pts = s.Query(k, 2*time.Hour, now)
	if step != Coarse || len(pts) != 4 {
		t.Fatalf("coarse query: step %v, %d points, want 1m and 4 (10:00 to 10:03)", step, len(pts))
	}
	var total float64
	for _, p := range pts {
		total += p.RequestsPerSec * 60
	}
	if total != 18*20 {
		t.Errorf("coarse points hold %v requests, want %d", total, 18*20)
	}
	if _, pts := s.Query(Key{"c1", "other"}, time.Hour, now); pts != nil {
		t.Errorf("unknown series has points %v", pts)
	}
}

// TestStoreAddsReportsWithinAnInterval: the front end's pods report apart;
// their reports within one interval add up.
func TestStoreAddsReportsWithinAnInterval(t *testing.T) {
	s := New(0)
	k := Key{"c1", "iris"}
	s.Add(k, t0.Add(time.Second), Delta{Codes: map[int]float64{200: 30, 503: 2}, Ready: 3})
	s.Add(k, t0.Add(4*time.Second), Delta{Codes: map[int]float64{200: 20}, Ready: 3})
	_, pts := s.Query(k, time.Minute, t0.Add(5*time.Second))
	if len(pts) != 1 || pts[0].RequestsPerSec != 5.2 || pts[0].ErrorsPerSec["503"] != 0.2 || pts[0].ReadyReplicas != 3 {
		t.Fatalf("two pods' reports in one interval = %+v", pts)
	}
}

func make20(v float64) []float64 {
	out := make([]float64, 20)
	for i := range out {
		out[i] = v
	}
	return out
}

func TestStoreForgetsOldAndBounds(t *testing.T) {
	s := New(2)
	k := Key{"c1", "a"}
	for i := range 500 { // 83 minutes: the fine ring wraps
		s.Add(k, t0.Add(time.Duration(i)*Fine), Delta{Codes: map[int]float64{200: 1}})
	}
	now := t0.Add(499 * Fine)
	if _, pts := s.Query(k, time.Hour, now); len(pts) != 360 {
		t.Errorf("fine points after wrapping = %d, want 360", len(pts))
	}
	if _, pts := s.Query(k, 10*time.Minute, now); len(pts) != 60 || !pts[0].Time.Equal(now.Add(-10*time.Minute+Fine)) {
		t.Errorf("10 minutes = %d points from %v, want 60 from %v", len(pts), pts[0].Time, now.Add(-10*time.Minute+Fine))
	}
	if !s.Add(Key{"c1", "b"}, now, Delta{}) || s.Add(Key{"c1", "c"}, now, Delta{}) {
		t.Error("a store of 2 series took a third")
	}
	for code := 500; code < 510; code++ {
		s.Add(k, now.Add(Fine), Delta{Codes: map[int]float64{code: 1}})
	}
	s.Add(k, now.Add(2*Fine), Delta{}) // closes the interval with ten codes
	_, pts := s.Query(k, time.Minute, now.Add(2*Fine))
	errs := pts[len(pts)-2].ErrorsPerSec
	if len(errs) != maxCodes+1 || errs["other"] != float64(10-maxCodes)/10 {
		t.Errorf("ten codes kept as %v, want %d codes and other", errs, maxCodes)
	}
	s.Forget(Key{"c1", "b"})
	if s.Len() != 1 {
		t.Errorf("after forgetting one series, %d remain, want 1", s.Len())
	}
	s.ForgetCompute("c1")
	if s.Len() != 0 {
		t.Errorf("after forgetting the compute, %d series remain", s.Len())
	}
}

func TestDifferFromPrometheus(t *testing.T) {
	reg := prometheus.NewRegistry()
	req := prometheus.NewCounterVec(prometheus.CounterOpts{Name: requestsTotal}, []string{"service", "kind", "code"})
	lat := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: latencyHist, Buckets: prometheus.ExponentialBuckets(0.0005, 2, 18)}, []string{"service"})
	ready := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: readyGauge}, []string{"service"})
	reg.MustRegister(req, lat, ready)
	var d Differ
	scrape := func() map[string]Delta {
		t.Helper()
		fams, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		// Through the text format, as a cluster's front end serves it.
		var buf bytes.Buffer
		for _, f := range fams {
			if _, err := expfmt.MetricFamilyToText(&buf, f); err != nil {
				t.Fatal(err)
			}
		}
		parsed, err := ParseText(&buf)
		if err != nil {
			t.Fatal(err)
		}
		return d.Next("pod-a", parsed)
	}
	req.WithLabelValues("iris", "score", "200").Add(5)
	if got := scrape(); got != nil {
		t.Fatalf("first scrape = %v, want only a baseline", got)
	}
	req.WithLabelValues("iris", "score", "200").Add(7)
	req.WithLabelValues("iris", "score", "429").Add(2)
	for range 9 {
		lat.WithLabelValues("iris").Observe(0.003)
	}
	ready.WithLabelValues("iris").Set(2)
	got := scrape()["iris"]
	if got.Codes[200] != 7 || got.Codes[429] != 2 || got.Ready != 2 {
		t.Errorf("delta = %+v, want 7×200, 2×429, ready 2", got)
	}
	if p := got.Latency.Quantile(0.5); p < 0.002 || p > 0.004 {
		t.Errorf("p50 = %v, want within [0.002, 0.004]", p)
	}
	// The pod restarted: its counters start again from zero.
	reg.Unregister(req)
	req2 := prometheus.NewCounterVec(prometheus.CounterOpts{Name: requestsTotal}, []string{"service", "kind", "code"})
	reg.MustRegister(req2)
	req2.WithLabelValues("iris", "score", "200").Add(3)
	if got := scrape()["iris"]; got.Codes[200] != 3 {
		t.Errorf("after a restart, delta = %v, want 3×200", got.Codes)
	}
	// A front end that started after the reader began: everything it
	// counted is new, from its first report.
	fresh := prometheus.NewRegistry()
	started := prometheus.NewGauge(prometheus.GaugeOpts{Name: startGauge})
	started.SetToCurrentTime()
	freq := prometheus.NewCounterVec(prometheus.CounterOpts{Name: requestsTotal}, []string{"service", "kind", "code"})
	fresh.MustRegister(started, freq)
	freq.WithLabelValues("iris", "score", "200").Add(4)
	fams, _ := fresh.Gather()
	young := Differ{Since: time.Now().Add(-time.Minute)}
	if got := young.Next("pod-b", fams)["iris"]; got.Codes[200] != 4 {
		t.Errorf("first report of a front end younger than the reader = %v, want 4×200", got.Codes)
	}
	old := Differ{Since: time.Now().Add(time.Minute)}
	if got := old.Next("pod-b", fams); got != nil {
		t.Errorf("first report of a front end older than the reader = %v, want only a baseline", got)
	}
	tot := Total(map[string]Delta{"a": {Codes: map[int]float64{200: 1}, Ready: 1}, "b": {Codes: map[int]float64{200: 2}, Ready: 2}})
	if tot.Codes[200] != 3 || tot.Ready != 3 {
		t.Errorf("total = %+v, want 3×200 and ready 3", tot)
	}
}

// BenchmarkStoreMemory fills 1,000 services with 24 hours of 10-second
// scrapes, each with traffic, latencies and two error codes, and reports the
// heap they hold (target: at most 200 MB).
func BenchmarkStoreMemory(b *testing.B) {
	const services = 1000
	bounds := prometheus.ExponentialBuckets(0.0005, 2, 18)
	lat := hist(bounds, 0.002, 0.004, 0.03, 0.2)
	for range b.N {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		s := New(services)
		for i := range int(CoarseSpan / Fine) {
			at := t0.Add(time.Duration(i) * Fine)
			for svc := range services {
				s.Add(Key{"c", fmt.Sprint(svc)}, at, Delta{Codes: map[int]float64{200: 40, 429: 1, 503: 1}, Latency: lat, Queue: lat, Ready: 3, Desired: 3})
			}
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/1e6, "MB")
		b.ReportMetric(float64(SeriesBytes)*services/1e6, "cap-MB")
		runtime.KeepAlive(s)
	}
}
