// Package httpx holds what Berth's two HTTP servers (the control plane's
// API and the front end's gateway) share.
package httpx

import (
	"cmp"
	"net/http"
)

// StatusWriter records the status a handler wrote, for logs and metrics.
type StatusWriter struct {
	http.ResponseWriter
	// Status is the status written (200 once a body is, without a header).
	Status int
}

func (w *StatusWriter) WriteHeader(code int) {
	w.Status = cmp.Or(w.Status, code)
	w.ResponseWriter.WriteHeader(code)
}

func (w *StatusWriter) Write(b []byte) (int, error) {
	w.Status = cmp.Or(w.Status, http.StatusOK)
	return w.ResponseWriter.Write(b)
}

// Flush passes a flush on (server-sent events, streamed logs).
func (w *StatusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the connection.
func (w *StatusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
