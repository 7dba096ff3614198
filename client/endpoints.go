package client

import (
	"context"

	"github.com/berth-ml/berth/api"
)

func endpointPath(ws, name string) string { return wsPath(ws) + "/endpoints/" + esc(name) }

func versionPath(ws, name, version string) string {
	return endpointPath(ws, name) + "/versions/" + esc(version)
}

// CreateEndpoint creates an endpoint with no versions yet.
func (c *Client) CreateEndpoint(ctx context.Context, ws string, req api.EndpointRequest) (*api.Endpoint, error) {
	return fetch[api.Endpoint](ctx, c, "POST", wsPath(ws)+"/endpoints", nil, req)
}

// GetEndpoint shows an endpoint with its versions and their traffic.
func (c *Client) GetEndpoint(ctx context.Context, ws, name string) (*api.Endpoint, error) {
	return fetch[api.Endpoint](ctx, c, "GET", endpointPath(ws, name), nil, nil)
}

// ListEndpoints lists a workspace's endpoints.
func (c *Client) ListEndpoints(ctx context.Context, ws string) ([]api.Endpoint, error) {
	return list[api.Endpoint](ctx, c, wsPath(ws)+"/endpoints", nil)
}

// DeleteEndpoint stops serving an endpoint and starts deleting its
// versions' services (the change lists those operations).
func (c *Client) DeleteEndpoint(ctx context.Context, ws, name string) (*api.EndpointChange, error) {
	return fetch[api.EndpointChange](ctx, c, "DELETE", endpointPath(ws, name), nil, nil)
}

// SetEndpointTraffic sets several versions' traffic in one atomic change.
func (c *Client) SetEndpointTraffic(ctx context.Context, ws, name string, traffic map[string]int) (*api.EndpointChange, error) {
	return fetch[api.EndpointChange](ctx, c, "PATCH", endpointPath(ws, name), nil, api.EndpointTrafficRequest{Traffic: traffic})
}

// AddEndpointVersion deploys a version with its share of the traffic; the
// change lists its deploy operation.
func (c *Client) AddEndpointVersion(ctx context.Context, ws, name string, req api.EndpointVersionRequest) (*api.EndpointChange, error) {
	return fetch[api.EndpointChange](ctx, c, "POST", endpointPath(ws, name)+"/versions", nil, req)
}

// UpdateEndpointVersion changes a version's traffic and, with service
// settings, rolls its service (the change lists that operation).
func (c *Client) UpdateEndpointVersion(ctx context.Context, ws, name, version string, req api.EndpointVersionUpdate) (*api.EndpointChange, error) {
	return fetch[api.EndpointChange](ctx, c, "PATCH", versionPath(ws, name, version), nil, req)
}

// DeleteEndpointVersion deletes a version with no traffic left.
func (c *Client) DeleteEndpointVersion(ctx context.Context, ws, name, version string) (*api.EndpointChange, error) {
	return fetch[api.EndpointChange](ctx, c, "DELETE", versionPath(ws, name, version), nil, nil)
}

// EndpointKeys returns a key-auth endpoint's keys (owners only).
func (c *Client) EndpointKeys(ctx context.Context, ws, name string) (*api.ServiceKeys, error) {
	return fetch[api.ServiceKeys](ctx, c, "GET", endpointPath(ws, name)+"/keys", nil, nil)
}

// RegenEndpointKey replaces the endpoint's primary or secondary key.
func (c *Client) RegenEndpointKey(ctx context.Context, ws, name string, req api.RegenKeyRequest) (*api.ServiceKeys, error) {
	return fetch[api.ServiceKeys](ctx, c, "POST", endpointPath(ws, name)+"/regen-key", nil, req)
}

// EndpointToken returns a short-lived token for a token-auth endpoint.
func (c *Client) EndpointToken(ctx context.Context, ws, name string) (*api.ServiceToken, error) {
	return fetch[api.ServiceToken](ctx, c, "POST", endpointPath(ws, name)+"/token", nil, nil)
}
