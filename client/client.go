// Package client is Berth's Go SDK: the client the berth CLI itself uses,
// with typed errors and a wait-for-completion call that can stream an
// operation's events. It depends only on package api, never on the server.
package client

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/berth-ml/berth/api"
)

// Client talks to a Berth server.
type Client struct {
	base  *url.URL
	token string
	http  *http.Client
	// UserAgent is sent with every request.
	UserAgent string
}

// New returns a client for the server at serverURL (http://host:port)
// authenticating with token.
func New(serverURL, token string) (*Client, error) {
	u, err := url.Parse(strings.TrimRight(serverURL, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("server address %q must look like http://HOST:PORT", serverURL)
	}
	return &Client{base: u, token: token, http: &http.Client{}, UserAgent: "berth-go-sdk"}, nil
}

// WithHTTPClient replaces the HTTP client (for custom transports or TLS).
func (c *Client) WithHTTPClient(h *http.Client) *Client { c.http = h; return c }

// Server is the server's base address.
func (c *Client) Server() string { return c.base.String() }

// Error is an error answer of the API.
type Error struct {
	StatusCode int
	Body       api.Error
}

func (e *Error) Error() string { return e.Body.Error() }

// Code is the API's error code (e.g. InvalidComputeName).
func (e *Error) Code() string { return e.Body.Code }

// Sentinels to compare with errors.Is.
var (
	ErrNotFound     = errors.New("not found")
	ErrConflict     = errors.New("conflict")
	ErrValidation   = errors.New("invalid request")
	ErrUnauthorized = errors.New("unauthorized")
	ErrForbidden    = errors.New("forbidden")
	// ErrUnreachable is a request that got no answer: nothing listens at
	// the server's address, or the network is down.
	ErrUnreachable = errors.New("cannot reach the Berth server")
)

// Is maps the status to the sentinels.
func (e *Error) Is(target error) bool {
	switch target {
	case ErrNotFound:
		return e.StatusCode == http.StatusNotFound
	case ErrConflict:
		return e.StatusCode == http.StatusConflict
	case ErrValidation:
		return e.StatusCode == http.StatusBadRequest || e.StatusCode == http.StatusUnprocessableEntity
	case ErrUnauthorized:
		return e.StatusCode == http.StatusUnauthorized
	case ErrForbidden:
		return e.StatusCode == http.StatusForbidden
	}
	return false
}

// Details lists the problems a validation error found.
func (e *Error) Details() []api.ErrorDetail { return e.Body.Details }

func esc(s string) string { return url.PathEscape(s) }

func wsPath(ws string) string { return "/api/v1/workspaces/" + esc(ws) }

func computePath(ws, name string) string { return wsPath(ws) + "/computes/" + esc(name) }

// ListWorkspaces lists the workspaces the token can see.
func (c *Client) ListWorkspaces(ctx context.Context) ([]api.Workspace, error) {
	return list[api.Workspace](ctx, c, "/api/v1/workspaces", nil)
}

// CreateWorkspace creates a workspace.
func (c *Client) CreateWorkspace(ctx context.Context, req api.WorkspaceCreateRequest) (*api.Workspace, error) {
	return fetch[api.Workspace](ctx, c, "POST", "/api/v1/workspaces", nil, req)
}

// UpdateWorkspace changes a workspace's settings (empty fields keep theirs).
func (c *Client) UpdateWorkspace(ctx context.Context, name string, req api.WorkspaceUpdateRequest) (*api.Workspace, error) {
	return fetch[api.Workspace](ctx, c, "PATCH", "/api/v1/workspaces/"+url.PathEscape(name), nil, req)
}

// GetWorkspace shows a workspace with its computes.
func (c *Client) GetWorkspace(ctx context.Context, name string) (*api.Workspace, error) {
	return fetch[api.Workspace](ctx, c, "GET", wsPath(name), nil, nil)
}

// DeleteWorkspace deletes an empty workspace.
func (c *Client) DeleteWorkspace(ctx context.Context, name string) error {
	return c.do(ctx, "DELETE", wsPath(name), nil, nil, nil)
}

// ListComputes lists a workspace's compute targets.
func (c *Client) ListComputes(ctx context.Context, ws string) ([]api.Compute, error) {
	return list[api.Compute](ctx, c, wsPath(ws)+"/computes", nil)
}

// GetCompute shows a compute target.
func (c *Client) GetCompute(ctx context.Context, ws, name string) (*api.Compute, error) {
	return fetch[api.Compute](ctx, c, "GET", computePath(ws, name), nil, nil)
}

// CreateCompute creates or attaches a compute (by req.Origin); it returns
// the operation doing it.
func (c *Client) CreateCompute(ctx context.Context, ws string, req api.ComputeRequest) (*api.Operation, error) {
	return c.operation(ctx, "POST", wsPath(ws)+"/computes", req)
}

// DryRunCompute runs the preflight checks of a create or attach request
// against the real cluster and returns their report; nothing changes.
func (c *Client) DryRunCompute(ctx context.Context, ws string, req api.ComputeRequest) (*api.PreflightReport, error) {
	req.DryRun = true
	return fetch[api.PreflightReport](ctx, c, "POST", wsPath(ws)+"/computes", nil, req)
}

// ListVersions lists the Kubernetes versions Berth supports (for an Azure
// location when given).
func (c *Client) ListVersions(ctx context.Context, location string) (*api.VersionList, error) {
	return c.ListVersionsIn(ctx, "", location)
}

// ListVersionsIn lists the versions of an Azure location with the Azure
// subscription and credentials of workspace ws (empty: the server's).
func (c *Client) ListVersionsIn(ctx context.Context, ws, location string) (*api.VersionList, error) {
	q := url.Values{}
	if location != "" {
		q.Set("location", location)
	}
	if ws != "" && location != "" {
		q.Set("workspace", ws)
	}
	return fetch[api.VersionList](ctx, c, "GET", "/api/v1/versions", q, nil)
}

// UpdateCompute changes load balancer or SSL settings in place.
func (c *Client) UpdateCompute(ctx context.Context, ws, name string, req api.ComputeUpdateRequest) (*api.Operation, error) {
	return c.operation(ctx, "PATCH", computePath(ws, name), req)
}

// DetachCompute removes Berth from the cluster; the cluster stays.
func (c *Client) DetachCompute(ctx context.Context, ws, name string, req api.DetachRequest) (*api.Operation, error) {
	return c.operation(ctx, "POST", computePath(ws, name)+"/detach", req)
}

// DeleteCompute deletes a created cluster.
func (c *Client) DeleteCompute(ctx context.Context, ws, name string) (*api.Operation, error) {
	return c.operation(ctx, "DELETE", computePath(ws, name), nil)
}

// ScaleCompute changes a created cluster's node count.
func (c *Client) ScaleCompute(ctx context.Context, ws, name string, nodeCount int) (*api.Operation, error) {
	return c.operation(ctx, "POST", computePath(ws, name)+"/scale", api.ScaleRequest{NodeCount: nodeCount})
}

// ReconcileCompute re-applies Berth's state to the cluster.
func (c *Client) ReconcileCompute(ctx context.Context, ws, name string) (*api.Operation, error) {
	return c.operation(ctx, "POST", computePath(ws, name)+"/reconcile", nil)
}

// GetCredentials returns the compute's stored credentials (owners only).
func (c *Client) GetCredentials(ctx context.Context, ws, name string) (string, error) {
	var out api.Credentials
	err := c.do(ctx, "GET", computePath(ws, name)+"/credentials", nil, nil, &out)
	return out.Value, err
}

// GetCertificate returns the TLS certificate a compute's front end serves
// (and its key when includeKey, for owners).
func (c *Client) GetCertificate(ctx context.Context, ws, name string, includeKey bool) (*api.Certificate, error) {
	q := url.Values{}
	if includeKey {
		q.Set("includeKey", "true")
	}
	return fetch[api.Certificate](ctx, c, "GET", computePath(ws, name)+"/certificate", q, nil)
}

// ListComputeOperations lists a compute's operations, newest first.
func (c *Client) ListComputeOperations(ctx context.Context, ws, name string) ([]api.Operation, error) {
	return list[api.Operation](ctx, c, computePath(ws, name)+"/operations", nil)
}

func (c *Client) operation(ctx context.Context, method, path string, body any) (*api.Operation, error) {
	return fetch[api.Operation](ctx, c, method, path, nil, body)
}

// GetOperation shows an operation.
func (c *Client) GetOperation(ctx context.Context, id string) (*api.Operation, error) {
	return c.operation(ctx, "GET", "/api/v1/operations/"+esc(id), nil)
}

// CancelOperation asks an operation to stop at its next step.
func (c *Client) CancelOperation(ctx context.Context, id string) (*api.Operation, error) {
	return c.operation(ctx, "POST", "/api/v1/operations/"+esc(id)+"/cancel", nil)
}

// ListOperations lists a workspace's operations, newest first; a state
// (Pending, Running, Succeeded, Failed or Canceled) keeps only those.
func (c *Client) ListOperations(ctx context.Context, ws, state string) ([]api.Operation, error) {
	q := url.Values{}
	if state != "" {
		q.Set("state", state)
	}
	return list[api.Operation](ctx, c, wsPath(ws)+"/operations", q)
}

// ListEvents returns an operation's events after sequence number after.
func (c *Client) ListEvents(ctx context.Context, id string, after int64) ([]api.Event, error) {
	q := url.Values{}
	if after > 0 {
		q.Set("after", fmt.Sprint(after))
	}
	return list[api.Event](ctx, c, "/api/v1/operations/"+esc(id)+"/events", q)
}

// ListTokens lists API tokens (owners only).
func (c *Client) ListTokens(ctx context.Context) ([]api.Token, error) {
	return list[api.Token](ctx, c, "/api/v1/tokens", nil)
}

// CreateToken creates a token; the secret is in the answer's Secret only.
func (c *Client) CreateToken(ctx context.Context, req api.TokenCreateRequest) (*api.TokenCreated, error) {
	return fetch[api.TokenCreated](ctx, c, "POST", "/api/v1/tokens", nil, req)
}

// RevokeToken revokes a token by id.
func (c *Client) RevokeToken(ctx context.Context, id string) error {
	return c.do(ctx, "DELETE", "/api/v1/tokens/"+esc(id), nil, nil, nil)
}

// OpenAPI fetches the server's OpenAPI document.
func (c *Client) OpenAPI(ctx context.Context) (map[string]any, error) {
	var out map[string]any
	err := c.do(ctx, "GET", "/api/v1/openapi.json", nil, nil, &out)
	return out, err
}

// ServerVersion is the server's build (GET /api/v1/version, which needs
// no token) and the front-end image it installs into clusters.
func (c *Client) ServerVersion(ctx context.Context) (*api.BuildInfo, error) {
	return fetch[api.BuildInfo](ctx, c, "GET", "/api/v1/version", nil, nil)
}

// Healthy reports whether the server answers /readyz.
func (c *Client) Healthy(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return c.do(ctx, "GET", "/readyz", nil, nil, nil)
}

// WhoAmI returns the caller's own token: its id, role and workspace scope.
func (c *Client) WhoAmI(ctx context.Context) (*api.Token, error) {
	return fetch[api.Token](ctx, c, "GET", "/api/v1/whoami", nil, nil)
}
