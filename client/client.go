// Package client is Berth's Go SDK: the client the berth CLI itself uses,
// with typed errors and a wait-for-completion call that can stream an
// operation's events. It depends only on package api, never on the server.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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

// do sends a request and decodes a JSON answer into out (if not nil).
func (c *Client) do(ctx context.Context, method, path string, query url.Values, body, out any) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	u := *c.base
	u.Path = c.base.Path + path
	if query != nil {
		u.RawQuery = query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.UserAgent)
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("cannot reach the Berth server at %s: %w", c.base, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp, fmt.Errorf("read answer of %s %s: %w", method, path, err)
	}
	if resp.StatusCode >= 400 {
		var er api.ErrorResponse
		if json.Unmarshal(data, &er) != nil || er.Error.Code == "" {
			er.Error = api.Error{Code: http.StatusText(resp.StatusCode), Message: fmt.Sprintf("%s %s: HTTP %d: %s", method, path, resp.StatusCode, strings.TrimSpace(string(data)))}
		}
		return resp, &Error{StatusCode: resp.StatusCode, Body: er.Error}
	}
	if out != nil && len(data) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			return resp, fmt.Errorf("decode answer of %s %s: %w", method, path, err)
		}
	}
	return resp, nil
}

func esc(s string) string { return url.PathEscape(s) }

func wsPath(ws string) string { return "/api/v1/workspaces/" + esc(ws) }

func computePath(ws, name string) string { return wsPath(ws) + "/computes/" + esc(name) }

// ListWorkspaces lists the workspaces the token can see.
func (c *Client) ListWorkspaces(ctx context.Context) ([]api.Workspace, error) {
	var out api.WorkspaceList
	_, err := c.do(ctx, "GET", "/api/v1/workspaces", nil, nil, &out)
	return out.Value, err
}

// CreateWorkspace creates a workspace.
func (c *Client) CreateWorkspace(ctx context.Context, req api.WorkspaceCreateRequest) (*api.Workspace, error) {
	var out api.Workspace
	if _, err := c.do(ctx, "POST", "/api/v1/workspaces", nil, req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// UpdateWorkspace changes a workspace's settings (empty fields keep theirs).
func (c *Client) UpdateWorkspace(ctx context.Context, name string, req api.WorkspaceUpdateRequest) (*api.Workspace, error) {
	var out api.Workspace
	if _, err := c.do(ctx, "PATCH", "/api/v1/workspaces/"+url.PathEscape(name), nil, req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// GetWorkspace shows a workspace with its computes.
func (c *Client) GetWorkspace(ctx context.Context, name string) (*api.Workspace, error) {
	var out api.Workspace
	if _, err := c.do(ctx, "GET", wsPath(name), nil, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// DeleteWorkspace deletes an empty workspace.
func (c *Client) DeleteWorkspace(ctx context.Context, name string) error {
	_, err := c.do(ctx, "DELETE", wsPath(name), nil, nil, nil)
	return err
}

// ListComputes lists a workspace's compute targets.
func (c *Client) ListComputes(ctx context.Context, ws string) ([]api.Compute, error) {
	var out api.ComputeList
	_, err := c.do(ctx, "GET", wsPath(ws)+"/computes", nil, nil, &out)
	return out.Value, err
}

// GetCompute shows a compute target.
func (c *Client) GetCompute(ctx context.Context, ws, name string) (*api.Compute, error) {
	var out api.Compute
	if _, err := c.do(ctx, "GET", computePath(ws, name), nil, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
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
	var out api.PreflightReport
	if _, err := c.do(ctx, "POST", wsPath(ws)+"/computes", nil, req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ListVersions lists the Kubernetes versions Berth supports (for an Azure
// location when given).
func (c *Client) ListVersions(ctx context.Context, location string) (*api.VersionList, error) {
	return c.ListVersionsIn(ctx, "", location)
}

// ListVersionsIn lists the versions of an Azure location with the Azure
// subscription and credentials of workspace ws (empty: the server's).
func (c *Client) ListVersionsIn(ctx context.Context, ws, location string) (*api.VersionList, error) {
	var out api.VersionList
	q := url.Values{}
	if location != "" {
		q.Set("location", location)
	}
	if ws != "" && location != "" {
		q.Set("workspace", ws)
	}
	if _, err := c.do(ctx, "GET", "/api/v1/versions", q, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
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
	_, err := c.do(ctx, "GET", computePath(ws, name)+"/credentials", nil, nil, &out)
	return out.Value, err
}

// GetCertificate returns the TLS certificate a compute's front end serves
// (and its key when includeKey, for owners).
func (c *Client) GetCertificate(ctx context.Context, ws, name string, includeKey bool) (*api.Certificate, error) {
	var out api.Certificate
	q := url.Values{}
	if includeKey {
		q.Set("includeKey", "true")
	}
	if _, err := c.do(ctx, "GET", computePath(ws, name)+"/certificate", q, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ListComputeOperations lists a compute's operations, newest first.
func (c *Client) ListComputeOperations(ctx context.Context, ws, name string) ([]api.Operation, error) {
	var out api.OperationList
	_, err := c.do(ctx, "GET", computePath(ws, name)+"/operations", nil, nil, &out)
	return out.Value, err
}

func (c *Client) operation(ctx context.Context, method, path string, body any) (*api.Operation, error) {
	var out api.Operation
	if _, err := c.do(ctx, method, path, nil, body, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// GetOperation shows an operation.
func (c *Client) GetOperation(ctx context.Context, id string) (*api.Operation, error) {
	return c.operation(ctx, "GET", "/api/v1/operations/"+esc(id), nil)
}

// CancelOperation asks an operation to stop at its next step.
func (c *Client) CancelOperation(ctx context.Context, id string) (*api.Operation, error) {
	return c.operation(ctx, "POST", "/api/v1/operations/"+esc(id)+"/cancel", nil)
}

// ListEvents returns an operation's events after sequence number after.
func (c *Client) ListEvents(ctx context.Context, id string, after int64) ([]api.Event, error) {
	var out api.EventList
	q := url.Values{}
	if after > 0 {
		q.Set("after", fmt.Sprint(after))
	}
	_, err := c.do(ctx, "GET", "/api/v1/operations/"+esc(id)+"/events", q, nil, &out)
	return out.Value, err
}

// ListTokens lists API tokens (owners only).
func (c *Client) ListTokens(ctx context.Context) ([]api.Token, error) {
	var out api.TokenList
	_, err := c.do(ctx, "GET", "/api/v1/tokens", nil, nil, &out)
	return out.Value, err
}

// CreateToken creates a token; the secret is in the answer's Secret only.
func (c *Client) CreateToken(ctx context.Context, req api.TokenCreateRequest) (*api.TokenCreated, error) {
	var out api.TokenCreated
	if _, err := c.do(ctx, "POST", "/api/v1/tokens", nil, req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// RevokeToken revokes a token by id.
func (c *Client) RevokeToken(ctx context.Context, id string) error {
	_, err := c.do(ctx, "DELETE", "/api/v1/tokens/"+esc(id), nil, nil, nil)
	return err
}

// OpenAPI fetches the server's OpenAPI document.
func (c *Client) OpenAPI(ctx context.Context) (map[string]any, error) {
	var out map[string]any
	_, err := c.do(ctx, "GET", "/api/v1/openapi.json", nil, nil, &out)
	return out, err
}

// ServerVersion is the server's build (GET /api/v1/version, which needs
// no token) and the front-end image it installs into clusters.
func (c *Client) ServerVersion(ctx context.Context) (*api.BuildInfo, error) {
	var out api.BuildInfo
	if _, err := c.do(ctx, "GET", "/api/v1/version", nil, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Healthy reports whether the server answers /readyz.
func (c *Client) Healthy(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_, err := c.do(ctx, "GET", "/readyz", nil, nil, nil)
	return err
}
