package client

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

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
	u := *c.base
	u.Path = c.base.Path + wsPath(ws) + "/models"
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, "POST", u.String(), m.Body)
	if err != nil {
		return nil, err
	}
	req.ContentLength = m.Size
	req.Header.Set("Content-Type", "application/octet-stream")
	var out api.Model
	if err := c.send(req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// send performs a prepared request and decodes a JSON answer.
func (c *Client) send(req *http.Request, out any) error {
	req.Header.Set("User-Agent", c.UserAgent)
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("cannot reach the Berth server at %s: %w", c.base, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 400 {
		return errorFrom(resp)
	}
	if out == nil {
		return nil
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

func errorFrom(resp *http.Response) error {
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var er api.ErrorResponse
	if json.Unmarshal(data, &er) != nil || er.Error.Code == "" {
		er.Error = api.Error{Code: http.StatusText(resp.StatusCode), Message: fmt.Sprintf("HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(data)))}
	}
	return &Error{StatusCode: resp.StatusCode, Body: er.Error}
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
	var out api.ModelList
	q := url.Values{}
	if name != "" {
		q.Set("name", name)
	}
	_, err := c.do(ctx, "GET", wsPath(ws)+"/models", q, nil, &out)
	return out.Value, err
}

// GetModel shows a model version (0: the latest).
func (c *Client) GetModel(ctx context.Context, ws, name string, version int) (*api.Model, error) {
	var out api.Model
	if _, err := c.do(ctx, "GET", modelPath(ws, name), url.Values{"version": {versionString(version)}}, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// DownloadModel writes a model version's artifact to w.
func (c *Client) DownloadModel(ctx context.Context, ws, name string, version int, w io.Writer) error {
	u := *c.base
	u.Path = c.base.Path + modelPath(ws, name) + "/versions/" + versionString(version) + "/download"
	req, err := http.NewRequestWithContext(ctx, "GET", u.String(), nil)
	if err != nil {
		return err
	}
	req.Header.Set("User-Agent", c.UserAgent)
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("cannot reach the Berth server at %s: %w", c.base, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 400 {
		return errorFrom(resp)
	}
	_, err = io.Copy(w, resp.Body)
	return err
}

// DeleteModel deletes a model version.
func (c *Client) DeleteModel(ctx context.Context, ws, name string, version int) error {
	_, err := c.do(ctx, "DELETE", modelPath(ws, name)+"/versions/"+strconv.Itoa(version), nil, nil, nil)
	return err
}

func servicePath(ws, name string) string { return wsPath(ws) + "/services/" + esc(name) }

// DeployService deploys models as a scoring service; it returns the operation.
func (c *Client) DeployService(ctx context.Context, ws string, req api.ServiceRequest) (*api.Operation, error) {
	return c.operation(ctx, "POST", wsPath(ws)+"/services", req)
}

// GetService shows a service.
func (c *Client) GetService(ctx context.Context, ws, name string) (*api.Service, error) {
	var out api.Service
	if _, err := c.do(ctx, "GET", servicePath(ws, name), nil, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ListServices lists a workspace's services.
func (c *Client) ListServices(ctx context.Context, ws string) ([]api.Service, error) {
	var out api.ServiceList
	_, err := c.do(ctx, "GET", wsPath(ws)+"/services", nil, nil, &out)
	return out.Value, err
}

// DeleteService deletes a service; it returns the operation.
func (c *Client) DeleteService(ctx context.Context, ws, name string) (*api.Operation, error) {
	return c.operation(ctx, "DELETE", servicePath(ws, name), nil)
}

// ServiceKeys returns a key-auth service's keys (owners only).
func (c *Client) ServiceKeys(ctx context.Context, ws, name string) (*api.ServiceKeys, error) {
	var out api.ServiceKeys
	if _, err := c.do(ctx, "GET", servicePath(ws, name)+"/keys", nil, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// RegenServiceKey replaces the primary or secondary key.
func (c *Client) RegenServiceKey(ctx context.Context, ws, name string, req api.RegenKeyRequest) (*api.ServiceKeys, error) {
	var out api.ServiceKeys
	if _, err := c.do(ctx, "POST", servicePath(ws, name)+"/regen-key", nil, req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ServiceToken returns a short-lived token for a token-auth service.
func (c *Client) ServiceToken(ctx context.Context, ws, name string) (*api.ServiceToken, error) {
	var out api.ServiceToken
	if _, err := c.do(ctx, "POST", servicePath(ws, name)+"/token", nil, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// UpdateService changes a service in place; empty fields keep their values.
func (c *Client) UpdateService(ctx context.Context, ws, name string, ch api.ServiceSpec) (*api.Operation, error) {
	return c.operation(ctx, "PATCH", servicePath(ws, name), ch)
}

// ServiceLogs returns the last lines of a service's replica logs.
func (c *Client) ServiceLogs(ctx context.Context, ws, name, replica string, tail int) (string, error) {
	u := *c.base
	u.Path = c.base.Path + servicePath(ws, name) + "/logs"
	q := url.Values{}
	if replica != "" {
		q.Set("replica", replica)
	}
	if tail > 0 {
		q.Set("tail", strconv.Itoa(tail))
	}
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, "GET", u.String(), nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("User-Agent", c.UserAgent)
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return "", fmt.Errorf("cannot reach the Berth server at %s: %w", c.base, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 400 {
		return "", errorFrom(resp)
	}
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}
