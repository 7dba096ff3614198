package api

import "time"

// RequestLogEntry is one logged scoring request and its answer: a line of
// the JSON Lines that GET .../request-logs answers (docs/endpoints.md
// "Request logging"). A body is text when it is valid UTF-8 (its encoding
// "text"), base64 otherwise ("base64"); it is cut at the service's body
// limit (its Truncated flag set), a text body at a whole character.
// Endpoint is what the request was sent to (a plain service's own name),
// Version the endpoint's version that served it ("" for a service).
type RequestLogEntry struct {
	ID                string    `json:"id"`
	Time              time.Time `json:"time"`
	Endpoint          string    `json:"endpoint"`
	Version           string    `json:"version"`
	Service           string    `json:"service"`
	Status            int       `json:"status"`
	LatencyMs         float64   `json:"latencyMs"`
	Request           string    `json:"request"`
	RequestEncoding   string    `json:"requestEncoding"`
	RequestTruncated  bool      `json:"requestTruncated"`
	Response          string    `json:"response"`
	ResponseEncoding  string    `json:"responseEncoding"`
	ResponseTruncated bool      `json:"responseTruncated"`
}
