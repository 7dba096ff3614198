package client

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/berth-ml/berth/api"
)

// ServiceRequestLogs returns the requests a service logged (--log-requests)
// in the last since (0: the server's default, an hour), oldest first.
func (c *Client) ServiceRequestLogs(ctx context.Context, ws, name string, since time.Duration) ([]api.RequestLogEntry, error) {
	return c.requestLogs(ctx, servicePath(ws, name)+"/request-logs", since)
}

// EndpointRequestLogs reads an endpoint's request logs (every version's)
// from the last since (the server's default, an hour, when 0).
func (c *Client) EndpointRequestLogs(ctx context.Context, ws, name string, since time.Duration) ([]api.RequestLogEntry, error) {
	return c.requestLogs(ctx, endpointPath(ws, name)+"/request-logs", since)
}

// requestLogs reads the JSON Lines of request logs at path.
func (c *Client) requestLogs(ctx context.Context, path string, since time.Duration) ([]api.RequestLogEntry, error) {
	resp, err := c.send(ctx, request{method: "GET", path: path, query: sinceQuery(since)})
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out := []api.RequestLogEntry{}
	dec := json.NewDecoder(resp.Body)
	for {
		var e api.RequestLogEntry
		if err := dec.Decode(&e); err == io.EOF {
			return out, nil
		} else if err != nil {
			return nil, fmt.Errorf("request logs: %w", err)
		}
		out = append(out, e)
	}
}
