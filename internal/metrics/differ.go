package metrics

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// The front end's metric names (internal/frontend/metrics.go).
const (
	requestsTotal = "berth_fe_requests_total"
	latencyHist   = "berth_fe_request_duration_seconds"
	queueHist     = "berth_fe_queue_seconds"
	readyGauge    = "berth_fe_ready_replicas"
	desiredGauge  = "berth_fe_desired_replicas"
	startGauge    = "berth_fe_start_time_seconds"
)

// cumulative is one service's counters as a front end reports them.
type cumulative struct {
	codes          map[int]float64
	latency, queue histogram
	ready, desired float64
}

// histogram is a cumulative Prometheus histogram.
type histogram struct {
	bounds []float64
	cum    []float64 // cumulative count at each bound
	count  float64
}

// Differ turns each source's cumulative counters into the activity since
// that source's previous report. A source is one front-end process (a pod,
// or the local compute's front end); a counter that went down means the
// process restarted, and its new value is the activity since.
type Differ struct {
	// Since is when the reader began: a source that started after it is
	// new, and everything it counted is activity not yet recorded. The
	// first report of an older source only sets its baseline, since its
	// counts hold activity from before, at times unknown.
	Since time.Time
	last  map[string]map[string]cumulative
	seen  map[string]time.Time
}

// Next returns the activity per service since source's previous report.
func (d *Differ) Next(source string, families []*dto.MetricFamily) map[string]Delta {
	now, started := parse(families)
	if d.last == nil {
		d.last, d.seen = map[string]map[string]cumulative{}, map[string]time.Time{}
	}
	prev, seen := d.last[source]
	d.last[source], d.seen[source] = now, time.Now()
	if !seen && (started.IsZero() || started.Before(d.Since)) {
		return nil
	}
	out := make(map[string]Delta, len(now))
	for svc, cur := range now {
		out[svc] = cur.since(prev[svc])
	}
	return out
}

// Prune forgets the sources that last reported before t (pods that are
// gone).
func (d *Differ) Prune(t time.Time) {
	for s, at := range d.seen {
		if at.Before(t) {
			delete(d.last, s)
			delete(d.seen, s)
		}
	}
}

func (c cumulative) since(p cumulative) Delta {
	reset := c.latency.count < p.latency.count || c.queue.count < p.queue.count
	for code, v := range c.codes {
		if v < p.codes[code] {
			reset = true
		}
	}
	if reset {
		p = cumulative{}
	}
	d := Delta{Codes: map[int]float64{}, Ready: c.ready, Desired: c.desired,
		Latency: c.latency.since(p.latency), Queue: c.queue.since(p.queue)}
	for code, v := range c.codes {
		if n := v - p.codes[code]; n > 0 {
			d.Codes[code] = n
		}
	}
	return d
}

// since is the non-cumulative histogram of the observations after p.
func (h histogram) since(p histogram) Histogram {
	if len(h.bounds) == 0 {
		return Histogram{}
	}
	if len(p.cum) != len(h.cum) {
		p = histogram{cum: make([]float64, len(h.cum))}
	}
	out := Histogram{Bounds: h.bounds, Counts: make([]float64, len(h.bounds)+1)}
	below := 0.0
	for i := range h.bounds {
		c := h.cum[i] - p.cum[i]
		out.Counts[i] = max(c-below, 0)
		below = max(c, below)
	}
	out.Counts[len(h.bounds)] = max(h.count-p.count-below, 0)
	return out
}

// parse reads families into each service's counters, and the front end's
// start time when it reports one.
func parse(families []*dto.MetricFamily) (out map[string]cumulative, started time.Time) {
	out = map[string]cumulative{}
	for _, f := range families {
		if f.GetName() == startGauge && len(f.GetMetric()) == 1 {
			sec := f.GetMetric()[0].GetGauge().GetValue()
			started = time.Unix(0, int64(sec*1e9))
			continue
		}
		for _, m := range f.GetMetric() {
			svc := label(m, "service")
			c, ok := out[svc]
			if !ok {
				c = cumulative{codes: map[int]float64{}}
			}
			switch f.GetName() {
			case requestsTotal:
				code, err := strconv.Atoi(label(m, "code"))
				if err != nil {
					continue
				}
				c.codes[code] += m.GetCounter().GetValue()
			case latencyHist:
				c.latency = histogramOf(m.GetHistogram())
			case queueHist:
				c.queue = histogramOf(m.GetHistogram())
			case readyGauge:
				c.ready = m.GetGauge().GetValue()
			case desiredGauge:
				c.desired = m.GetGauge().GetValue()
			default:
				continue
			}
			out[svc] = c
		}
	}
	return out, started
}

func histogramOf(h *dto.Histogram) histogram {
	out := histogram{count: float64(h.GetSampleCount())}
	for _, b := range h.GetBucket() {
		if b.GetUpperBound() > 1e300 { // +Inf
			continue
		}
		out.bounds = append(out.bounds, b.GetUpperBound())
		out.cum = append(out.cum, float64(b.GetCumulativeCount()))
	}
	return out
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// ParseText reads metrics in Prometheus's text format, as a front end's
// admin port serves them.
func ParseText(r io.Reader) ([]*dto.MetricFamily, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	byName, err := p.TextToMetricFamilies(r)
	if err != nil {
		return nil, fmt.Errorf("reading front-end metrics: %w", err)
	}
	return slices.AppendSeq(make([]*dto.MetricFamily, 0, len(byName)), maps.Values(byName)), nil
}

// addCounts adds o's requests and histograms to d.
func (d *Delta) addCounts(o Delta) {
	if d.Codes == nil {
		d.Codes = map[int]float64{}
	}
	for code, c := range o.Codes {
		d.Codes[code] += c
	}
	d.Latency.add(o.Latency)
	d.Queue.add(o.Queue)
}

// Total sums all services into the front end's total: counts and replicas
// add up across services.
func Total(byService map[string]Delta) Delta {
	var out Delta
	for _, d := range byService {
		out.addCounts(d)
		out.Ready += d.Ready
		out.Desired += d.Desired
	}
	return out
}
