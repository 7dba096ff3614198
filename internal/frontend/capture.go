package frontend

import (
	"cmp"
	"time"

	"github.com/berth-ml/berth/internal/frontend/reqlog"
	"github.com/berth-ml/berth/internal/httpx"
)

// capture is what a sampled request is answered through: it passes
// everything on, and keeps the status and the body up to the route's
// limit for the request log.
type capture struct {
	httpx.StatusWriter
	start time.Time
	limit int
	body  []byte
	cut   bool
}

func (c *capture) Write(p []byte) (int, error) {
	room := max(c.limit-len(c.body), 0)
	c.body = append(c.body, p[:min(room, len(p))]...)
	c.cut = c.cut || len(p) > room
	return c.StatusWriter.Write(p)
}

// WatchClient keeps what the writer beneath does.
func (c *capture) WatchClient() (stop func()) {
	if cw, ok := c.ResponseWriter.(clientWatcher); ok {
		return cw.WatchClient()
	}
	return func() {}
}

// logRequest hands the sampled request and its answer to the request log
// (which drops it, counted, when its buffer is full).
func (f *Frontend) logRequest(c *capture, rt *Route, lb reqlog.Labels, body *reqBody) {
	req, cut := body.head(c.limit)
	status := cmp.Or(c.Status, 499) // 499: the client went away before an answer
	f.reqlog.Add(reqlog.Record{Labels: lb, Service: rt.Service, Time: c.start, Status: status, Latency: time.Since(c.start),
		Request: req, RequestTruncated: cut, Response: c.body, ResponseTruncated: c.cut, Sink: rt.LogSink})
}

// SetRequestLogSink sets where the request logs of routes that name no
// sink go: the control plane.
func (f *Frontend) SetRequestLogSink(s reqlog.Sink) { f.reqlog.SetDefault(s) }

// RequestLog is the front end's request log buffer (its bounds may be
// set before it serves).
func (f *Frontend) RequestLog() *reqlog.Logger { return f.reqlog }
