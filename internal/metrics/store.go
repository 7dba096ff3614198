// Package metrics keeps the scoring front ends' recent traffic per service,
// in memory, in fixed-size rings: the last hour at 10-second resolution and
// the last 24 hours at one minute. A series costs at most SeriesBytes, and
// the store holds at most its MaxSeries, so its memory has a fixed cap.
//
// The server feeds it from the front ends' Prometheus counters (Differ turns
// cumulative counters into the activity of each interval), and Query answers
// the metrics API and the Studio's plots.
package metrics

import (
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/berth-ml/berth/api"
)

const (
	// Fine is the resolution of the last FineSpan.
	Fine     = 10 * time.Second
	FineSpan = time.Hour
	// Coarse is the resolution of the last CoarseSpan.
	Coarse     = time.Minute
	CoarseSpan = 24 * time.Hour

	fineSlots   = int(FineSpan / Fine)
	coarseSlots = int(CoarseSpan / Coarse)
	// maxCodes is how many distinct error codes a series keeps apart;
	// further codes are counted together as "other".
	maxCodes = 6
	// SeriesBytes is the most one series occupies: the two rings of slots
	// and an error-count ring per kept code plus "other" (maps and headers
	// aside, which add well under 1%).
	SeriesBytes = (fineSlots+coarseSlots)*slotBytes + (maxCodes+1)*(fineSlots+coarseSlots)*4
	slotBytes   = 28
	// DefaultMaxSeries bounds a store made by New(0).
	DefaultMaxSeries = 5000
)

// Key names a series: one service on one compute, or with Service empty,
// the compute's front end as a whole.
type Key struct {
	Compute string
	Service string
}

// Delta is one series' activity during one interval.
type Delta struct {
	// Codes counts the requests answered, by HTTP status code.
	Codes map[int]float64
	// Latency and Queue are histograms of this interval only.
	Latency, Queue Histogram
	// Ready and Desired are the replica gauges at the end of the interval.
	Ready, Desired float64
}

// Histogram holds counts per bucket (not cumulative): Counts[i] are the
// observations at most Bounds[i] and above Bounds[i-1]; Counts has one more
// element than Bounds, for the observations above the last bound.
type Histogram struct {
	Bounds []float64
	Counts []float64
}

func (h *Histogram) add(o Histogram) {
	if len(h.Counts) == 0 {
		h.Bounds, h.Counts = o.Bounds, append([]float64(nil), o.Counts...)
		return
	}
	if len(o.Counts) != len(h.Counts) {
		return // the front end changed its buckets: keep what we have
	}
	for i, c := range o.Counts {
		h.Counts[i] += c
	}
}

// Quantile estimates the q-quantile as Prometheus's histogram_quantile does:
// linear interpolation inside the bucket holding the rank. It is NaN
// without observations.
func (h Histogram) Quantile(q float64) float64 {
	var total float64
	for _, c := range h.Counts {
		total += c
	}
	if total == 0 || len(h.Bounds) == 0 {
		return math.NaN()
	}
	rank, seen := q*total, 0.0
	for i, c := range h.Counts {
		if seen+c >= rank && c > 0 {
			if i == len(h.Bounds) {
				return h.Bounds[len(h.Bounds)-1]
			}
			lower := 0.0
			if i > 0 {
				lower = h.Bounds[i-1]
			}
			return lower + (h.Bounds[i]-lower)*(rank-seen)/c
		}
		seen += c
	}
	return h.Bounds[len(h.Bounds)-1]
}

// slot is one interval as kept: 28 bytes.
type slot struct {
	n                  uint32 // interval number since the epoch, plus one; 0 is empty
	requests           uint32
	latP50, latP99     float32 // milliseconds, NaN when idle
	queueP50, queueP99 float32
	ready, desired     uint16
}

// open is the interval being filled: its activity so far, histograms
// still raw. Reports from several front-end pods within one interval add
// up; the replica gauges are the latest report's.
type open struct {
	n   uint32
	sum Delta
}

func (o *open) add(d Delta) {
	o.sum.addCounts(d)
	o.sum.Ready, o.sum.Desired = d.Ready, d.Desired
}

type tier struct {
	step  time.Duration
	slots []slot
	codes map[int][]uint32 // error code (0: other) → counts, by ring index
	open  open
}

func newTier(step time.Duration, n int) tier {
	return tier{step: step, slots: make([]slot, n), codes: map[int][]uint32{}}
}

func (t *tier) interval(at time.Time) uint32 { return uint32(at.Unix()/int64(t.step/time.Second)) + 1 }

func (t *tier) add(at time.Time, d Delta) {
	n := t.interval(at)
	if t.open.n != n {
		t.close()
		t.open = open{n: n}
	}
	t.open.add(d)
}

// summary is the open interval as a slot, and its error counts by code.
func (o *open) summary() (slot, map[int]float64) {
	var total float64
	errs := map[int]float64{}
	d := o.sum
	for code, c := range d.Codes {
		total += c
		if code >= 400 && c > 0 {
			errs[code] = c
		}
	}
	return slot{n: o.n, requests: clampU32(total),
		latP50: ms(d.Latency.Quantile(0.5)), latP99: ms(d.Latency.Quantile(0.99)),
		queueP50: ms(d.Queue.Quantile(0.5)), queueP99: ms(d.Queue.Quantile(0.99)),
		ready: clampU16(d.Ready), desired: clampU16(d.Desired)}, errs
}

// close writes the open interval into the ring.
func (t *tier) close() {
	if t.open.n == 0 {
		return
	}
	s, errs := t.open.summary()
	i := int(s.n) % len(t.slots)
	t.slots[i] = s
	for _, ring := range t.codes {
		ring[i] = 0
	}
	for code, c := range errs {
		if t.codes[code] == nil && len(t.codes) >= maxCodes {
			code = 0
		}
		ring := t.codes[code]
		if ring == nil {
			ring = make([]uint32, len(t.slots))
			t.codes[code] = ring
		}
		ring[i] += clampU32(c)
	}
	t.open = open{}
}

// Point is one interval of a series, as the API returns it.
type Point = api.MetricsPoint

// points are the intervals from..to held, the open one included as far as
// it has come.
func (t *tier) points(from, to uint32) []Point {
	var out []Point
	secs := t.step.Seconds()
	emit := func(s slot, errs map[int]float64) {
		p := Point{Time: time.Unix(int64(s.n-1)*int64(secs), 0).UTC(),
			RequestsPerSec: float64(s.requests) / secs,
			LatencyP50Ms:   opt(s.latP50), LatencyP99Ms: opt(s.latP99),
			QueueP50Ms: opt(s.queueP50), QueueP99Ms: opt(s.queueP99),
			ReadyReplicas: int(s.ready), DesiredReplicas: int(s.desired)}
		for code, c := range errs {
			if p.ErrorsPerSec == nil {
				p.ErrorsPerSec = map[string]float64{}
			}
			p.ErrorsPerSec[codeName(code)] = c / secs
		}
		out = append(out, p)
	}
	for n := from; n <= to; n++ {
		i := int(n) % len(t.slots)
		if s := t.slots[i]; s.n == n && n != t.open.n {
			errs := map[int]float64{}
			for code, ring := range t.codes {
				if ring[i] > 0 {
					errs[code] = float64(ring[i])
				}
			}
			emit(s, errs)
		}
	}
	if t.open.n >= from && t.open.n <= to {
		emit(t.open.summary())
	}
	return out
}

type series struct {
	fine, coarse tier
	last         time.Time
}

// Store keeps the series. Its zero value is not usable; call New.
type Store struct {
	mu        sync.Mutex
	series    map[Key]*series
	maxSeries int
}

// New makes a store holding at most maxSeries series (DefaultMaxSeries if 0).
func New(maxSeries int) *Store {
	if maxSeries <= 0 {
		maxSeries = DefaultMaxSeries
	}
	return &Store{series: map[Key]*series{}, maxSeries: maxSeries}
}

// Add records one interval's activity of a series, ending at at. It returns
// false when the store is full and the series is new.
func (s *Store) Add(k Key, at time.Time, d Delta) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	sr := s.series[k]
	if sr == nil {
		if len(s.series) >= s.maxSeries {
			return false
		}
		sr = &series{fine: newTier(Fine, fineSlots), coarse: newTier(Coarse, coarseSlots)}
		s.series[k] = sr
	}
	sr.fine.add(at, d)
	sr.coarse.add(at, d)
	sr.last = at
	return true
}

// Forget drops a series.
func (s *Store) Forget(k Key) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.series, k)
}

// ForgetCompute drops every series of a compute.
func (s *Store) ForgetCompute(compute string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for key := range s.series {
		if key.Compute == compute {
			delete(s.series, key)
		}
	}
}

// Len is the number of series held.
func (s *Store) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.series)
}

// Query returns a series' points from since ago until now, oldest first: at
// 10-second resolution for at most an hour back, else at one minute. since
// is capped at 24 hours. An unknown series has no points.
func (s *Store) Query(k Key, since time.Duration, now time.Time) (step time.Duration, points []Point) {
	since = min(max(since, Fine), CoarseSpan)
	s.mu.Lock()
	defer s.mu.Unlock()
	sr := s.series[k]
	if sr == nil {
		if since > FineSpan {
			return Coarse, nil
		}
		return Fine, nil
	}
	t := &sr.fine
	if since > FineSpan {
		t = &sr.coarse
	}
	return t.step, t.points(t.interval(now.Add(-since))+1, t.interval(now))
}

func codeName(code int) string {
	if code == 0 {
		return "other"
	}
	return strconv.Itoa(code)
}

func ms(seconds float64) float32 { return float32(seconds * 1000) }

func opt(v float32) *float64 {
	if math.IsNaN(float64(v)) {
		return nil
	}
	f := math.Round(float64(v)*1000) / 1000
	return &f
}

func clampU32(v float64) uint32 { return uint32(min(max(math.Round(v), 0), math.MaxUint32)) }
func clampU16(v float64) uint16 { return uint16(min(max(math.Round(v), 0), math.MaxUint16)) }
