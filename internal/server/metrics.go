package server

import (
	"net/http"
	"strconv"
	"time"

	"github.com/berth-ml/berth/internal/store"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

type metrics struct {
	reg        *prometheus.Registry
	requests   *prometheus.CounterVec
	latency    *prometheus.HistogramVec
	operations *prometheus.CounterVec
	running    prometheus.Gauge
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "berth_api_requests_total", Help: "API requests by route, method and status code.",
		}, []string{"route", "method", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "berth_api_request_duration_seconds", Help: "API request latency by route.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"route"}),
		operations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "berth_operations_total", Help: "Operations started or finished by this server, by kind and state.",
		}, []string{"kind", "state"}),
		running: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "berth_operations_running", Help: "Operations this server is running now.",
		}),
	}
	m.reg.MustRegister(m.requests, m.latency, m.operations, m.running,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func (m *metrics) request(route, method string, code int, d time.Duration) {
	m.requests.WithLabelValues(route, method, strconv.Itoa(code)).Inc()
	m.latency.WithLabelValues(route).Observe(d.Seconds())
}

func (m *metrics) operationStarted(op *store.Operation) {
	m.operations.WithLabelValues(string(op.Kind), "Started").Inc()
	m.running.Inc()
}

func (m *metrics) operationDone(op *store.Operation) {
	if op.Terminal() {
		m.operations.WithLabelValues(string(op.Kind), string(op.State)).Inc()
	}
	m.running.Dec()
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}
