package client

import (
	"context"
	"io"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/berth-ml/berth/api"
)

// ModelUpload is a model version to register.
type ModelUpload struct {
	Name        string
	FileName    string
	Format      string // "file" or "tar.gz"
	Description string
	Tags        map[string]string
	Body        io.Reader
	// Size of Body, or -1 when unknown (sent chunked).
	Size int64
}

// RegisterModel uploads a new version of a model.
func (c *Client) RegisterModel(ctx context.Context, ws string, m ModelUpload) (*api.Model, error) {
	q := url.Values{"name": {m.Name}, "fileName": {m.FileName}, "format": {m.Format}}
	if m.Description != "" {
		q.Set("description", m.Description)
	}
	for k, v := range m.Tags {
		q.Add("tag", k+"="+v)
	}
	var out api.Model
	r := request{method: "POST", path: wsPath(ws) + "/models", query: q, body: m.Body, size: m.Size}
	if err := c.call(ctx, r, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

func modelPath(ws, name string) string { return wsPath(ws) + "/models/" + esc(name) }

func versionString(v int) string {
	if v <= 0 {
		return "latest"
	}
	return strconv.Itoa(v)
}

// ListModels lists model versions (only name's when not empty).
func (c *Client) ListModels(ctx context.Context, ws, name string) ([]api.Model, error) {
	q := url.Values{}
	if name != "" {
		q.Set("name", name)
	}
	return list[api.Model](ctx, c, wsPath(ws)+"/models", q)
}

// GetModel shows a model version (0: the latest).
func (c *Client) GetModel(ctx context.Context, ws, name string, version int) (*api.Model, error) {
	return fetch[api.Model](ctx, c, "GET", modelPath(ws, name), url.Values{"version": {versionString(version)}}, nil)
}

// DownloadModel writes a model version's artifact to w.
func (c *Client) DownloadModel(ctx context.Context, ws, name string, version int, w io.Writer) error {
	resp, err := c.send(ctx, request{method: "GET", path: modelPath(ws, name) + "/versions/" + versionString(version) + "/download"})
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, err = io.Copy(w, resp.Body)
	return err
}

// DeleteModel deletes a model version.
func (c *Client) DeleteModel(ctx context.Context, ws, name string, version int) error {
	return c.do(ctx, "DELETE", modelPath(ws, name)+"/versions/"+strconv.Itoa(version), nil, nil, nil)
}

func servicePath(ws, name string) string { return wsPath(ws) + "/services/" + esc(name) }

// DeployService deploys models as a scoring service; it returns the operation.
func (c *Client) DeployService(ctx context.Context, ws string, req api.ServiceRequest) (*api.Operation, error) {
	return c.operation(ctx, "POST", wsPath(ws)+"/services", req)
}

// GetService shows a service.
func (c *Client) GetService(ctx context.Context, ws, name string) (*api.Service, error) {
	return fetch[api.Service](ctx, c, "GET", servicePath(ws, name), nil, nil)
}

// ListServices lists a workspace's services.
func (c *Client) ListServices(ctx context.Context, ws string) ([]api.Service, error) {
	return list[api.Service](ctx, c, wsPath(ws)+"/services", nil)
}

// DeleteService deletes a service; it returns the operation.
func (c *Client) DeleteService(ctx context.Context, ws, name string) (*api.Operation, error) {
	return c.operation(ctx, "DELETE", servicePath(ws, name), nil)
}

// ServiceKeys returns a key-auth service's keys (owners only).
func (c *Client) ServiceKeys(ctx context.Context, ws, name string) (*api.ServiceKeys, error) {
	return fetch[api.ServiceKeys](ctx, c, "GET", servicePath(ws, name)+"/keys", nil, nil)
}

// RegenServiceKey replaces the primary or secondary key.
func (c *Client) RegenServiceKey(ctx context.Context, ws, name string, req api.RegenKeyRequest) (*api.ServiceKeys, error) {
	return fetch[api.ServiceKeys](ctx, c, "POST", servicePath(ws, name)+"/regen-key", nil, req)
}

// ServiceToken returns a short-lived token for a token-auth service.
func (c *Client) ServiceToken(ctx context.Context, ws, name string) (*api.ServiceToken, error) {
	return fetch[api.ServiceToken](ctx, c, "POST", servicePath(ws, name)+"/token", nil, nil)
}

// UpdateService changes a service in place; empty fields keep their values.
func (c *Client) UpdateService(ctx context.Context, ws, name string, ch api.ServiceSpec) (*api.Operation, error) {
	return c.operation(ctx, "PATCH", servicePath(ws, name), ch)
}

// ServiceLogs returns the last lines of a service's replica logs.
func (c *Client) ServiceLogs(ctx context.Context, ws, name, replica string, tail int) (string, error) {
	var b strings.Builder
	err := c.StreamServiceLogs(ctx, ws, name, LogOptions{Replica: replica, Tail: tail}, &b)
	return b.String(), err
}

// LogOptions choose the logs StreamServiceLogs copies.
type LogOptions struct {
	// Replica chooses one replica, when not empty.
	Replica string
	// Tail is how many last lines of each replica's log to start with
	// (0: the server's default, 100).
	Tail int
	// Previous chooses what ran before: the local compute's earlier
	// generations of the service, a cluster's previous (crashed) containers.
	Previous bool
	// Follow keeps copying what the replicas print until ctx ends.
	Follow bool
}

// StreamServiceLogs copies a service's replica logs to w, as the server
// sends them (with Follow, until ctx ends).
func (c *Client) StreamServiceLogs(ctx context.Context, ws, name string, o LogOptions, w io.Writer) error {
	q := url.Values{}
	if o.Replica != "" {
		q.Set("replica", o.Replica)
	}
	if o.Tail > 0 {
		q.Set("tail", strconv.Itoa(o.Tail))
	}
	if o.Previous {
		q.Set("previous", "true")
	}
	if o.Follow {
		q.Set("follow", "true")
	}
	resp, err := c.send(ctx, request{method: "GET", path: servicePath(ws, name) + "/logs", query: q})
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, err = io.Copy(w, resp.Body)
	if o.Follow && ctx.Err() != nil {
		return nil // the caller stopped following
	}
	return err
}

// ServiceMetrics returns a service's recent traffic; since is how far back
// (0: the server's default, an hour).
func (c *Client) ServiceMetrics(ctx context.Context, ws, name string, since time.Duration) (*api.Metrics, error) {
	return fetch[api.Metrics](ctx, c, "GET", servicePath(ws, name)+"/metrics", sinceQuery(since), nil)
}

// ComputeMetrics returns the recent traffic of a compute's front end.
func (c *Client) ComputeMetrics(ctx context.Context, ws, name string, since time.Duration) (*api.Metrics, error) {
	return fetch[api.Metrics](ctx, c, "GET", computePath(ws, name)+"/metrics", sinceQuery(since), nil)
}

func sinceQuery(since time.Duration) url.Values {
	if since == 0 {
		return nil
	}
	return url.Values{"since": {since.String()}}
}
