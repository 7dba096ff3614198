package frontend

import (
	"maps"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
)

type metrics struct {
	reg             *prometheus.Registry
	requests        *prometheus.CounterVec
	latency         *prometheus.HistogramVec
	queueTime       *prometheus.HistogramVec
	inflight        *prometheus.GaugeVec
	desiredReplicas *prometheus.GaugeVec
	readyReplicas   *prometheus.GaugeVec
	mirrors         *prometheus.CounterVec
	logDropped      *prometheus.CounterVec
	observers       sync.Map // service → *observer
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "berth_fe_requests_total",
			Help: "Scoring requests by service, kind and status code."}, []string{"service", "kind", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "berth_fe_request_duration_seconds",
			Help: "Request latency through the front end, by service.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 18)}, []string{"service"}),
		queueTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "berth_fe_queue_seconds",
			Help: "Time requests waited for a free replica, by service.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)}, []string{"service"}),
		inflight: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "berth_fe_inflight_requests",
			Help: "Requests being scored now, by service."}, []string{"service"}),
		desiredReplicas: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "berth_fe_desired_replicas",
			Help: "Replicas the autoscaler wants, by service."}, []string{"service"}),
		readyReplicas: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "berth_fe_ready_replicas",
			Help: "Ready replicas this front end may use, by service."}, []string{"service"}),
		mirrors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "berth_fe_mirrored_requests_total",
			Help: "Copies of requests for mirrored versions, by service and result (sent, failed, dropped)."}, []string{"service", "result"}),
		logDropped: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "berth_fe_request_log_dropped_total",
			Help: "Sampled requests not logged, by service: the log buffer was full, or the sink failed."}, []string{"service"}),
	}
	// The control plane counts everything a front end started after it
	// began reading as new activity, and only the change since its first
	// read of older ones.
	started := prometheus.NewGauge(prometheus.GaugeOpts{Name: "berth_fe_start_time_seconds",
		Help: "When this front end started, in seconds since the Unix epoch."})
	started.SetToCurrentTime()
	m.reg.MustRegister(started, m.requests, m.latency, m.queueTime, m.inflight, m.desiredReplicas, m.readyReplicas, m.mirrors, m.logDropped,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// observer caches one service's metric children, so the hot path does no
// label lookups.
type observer struct {
	latency, queue prometheus.Observer
	inflight       prometheus.Gauge
	// codes: the request counters by kind and status, copied on write so
	// that reading needs neither a lock nor an allocation.
	codes   atomic.Pointer[map[codeKey]prometheus.Counter]
	codesMu sync.Mutex
}

type codeKey struct {
	kind string
	code int
}

func (m *metrics) observer(service string) *observer {
	if o, ok := m.observers.Load(service); ok {
		return o.(*observer)
	}
	o := &observer{latency: m.latency.WithLabelValues(service), queue: m.queueTime.WithLabelValues(service),
		inflight: m.inflight.WithLabelValues(service)}
	actual, _ := m.observers.LoadOrStore(service, o)
	return actual.(*observer)
}

func (m *metrics) observe(service, kind string, code int, d time.Duration) {
	o := m.observer(service)
	key := codeKey{kind, code}
	var c prometheus.Counter
	if codes := o.codes.Load(); codes != nil {
		c = (*codes)[key]
	}
	if c == nil {
		o.codesMu.Lock()
		old := o.codes.Load()
		if old != nil {
			c = (*old)[key]
		}
		if c == nil {
			c = m.requests.WithLabelValues(service, kind, strconv.Itoa(code))
			codes := make(map[codeKey]prometheus.Counter, 1)
			if old != nil {
				maps.Copy(codes, *old)
			}
			codes[key] = c
			o.codes.Store(&codes)
		}
		o.codesMu.Unlock()
	}
	c.Inc()
	if service != "" {
		o.latency.Observe(d.Seconds())
	}
}

// forget drops a removed service's metrics, its counters included, so
// that neither this front end nor the control plane keeps them.
func (m *metrics) forget(service string) {
	m.observers.Delete(service)
	m.inflight.DeleteLabelValues(service)
	m.readyReplicas.DeleteLabelValues(service)
	m.desiredReplicas.DeleteLabelValues(service)
	m.latency.DeleteLabelValues(service)
	m.queueTime.DeleteLabelValues(service)
	m.logDropped.DeleteLabelValues(service)
	m.requests.DeletePartialMatch(prometheus.Labels{"service": service})
	m.mirrors.DeletePartialMatch(prometheus.Labels{"service": service})
}

// Gather returns the front end's metrics, as its admin port serves them.
func (f *Frontend) Gather() ([]*dto.MetricFamily, error) { return f.metrics.reg.Gather() }

// MetricsHandler serves the front end's Prometheus metrics.
func (f *Frontend) MetricsHandler() http.Handler {
	return promhttp.HandlerFor(f.metrics.reg, promhttp.HandlerOpts{})
}
