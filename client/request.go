package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/berth-ml/berth/api"
)

// Every call of the SDK, JSON or stream, takes one pipeline, as in Nomad's
// api package (newRequest → doRequest → requireOK) but context-first:
//
//	newRequest  method, path, query, body and its type, Accept, User-Agent
//	send        the token (the only place Authorization is set), the round
//	            trip, and a status >= 400 turned into *Error by apiError,
//	            the one error decoder, which reads at most maxErrorBody
//	call        the JSON answer decoded; streams read send's body instead

// request is what one call sends.
type request struct {
	method, path string
	query        url.Values
	json         any       // sent as application/json when not nil
	body         io.Reader // else sent as application/octet-stream when not nil
	size         int64     // body's length, -1 when unknown (sent chunked)
	accept       string    // the Accept header, when not empty
}

// newRequest builds the HTTP request of r.
func (c *Client) newRequest(ctx context.Context, r request) (*http.Request, error) {
	body, ctype := r.body, "application/octet-stream"
	if r.json != nil {
		b, err := json.Marshal(r.json)
		if err != nil {
			return nil, err
		}
		body, ctype = bytes.NewReader(b), "application/json"
	}
	u := *c.base
	u.Path = c.base.Path + r.path
	u.RawQuery = r.query.Encode()
	req, err := http.NewRequestWithContext(ctx, r.method, u.String(), body)
	if err != nil {
		return nil, err
	}
	if r.body != nil && r.json == nil {
		req.ContentLength = r.size
	}
	if body != nil {
		req.Header.Set("Content-Type", ctype)
	}
	if r.accept != "" {
		req.Header.Set("Accept", r.accept)
	}
	req.Header.Set("User-Agent", c.UserAgent)
	return req, nil
}

// send sends r and returns the answer when its status is below 400, else
// the API's error; the caller closes the answer's body.
func (c *Client) send(ctx context.Context, r request) (*http.Response, error) {
	req, err := c.newRequest(ctx, r)
	if err != nil {
		return nil, err
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("request to the Berth server at %s: %w", c.base, err)
		}
		return nil, fmt.Errorf("%w at %s: %w", ErrUnreachable, c.base, err)
	}
	if resp.StatusCode >= 400 {
		defer resp.Body.Close()
		return nil, apiError(r, resp)
	}
	return resp, nil
}

const (
	// maxErrorBody is as much of an error answer as is read: far more than
	// any API error, and a broken server or proxy cannot make the client
	// read gigabytes.
	maxErrorBody = 1 << 20
	// maxErrorText is as much of an answer that is not the API's error as
	// an error message quotes.
	maxErrorText = 1 << 10
)

// apiError decodes the error answer to r: the API's
// {"error":{code,message,details}}, or else the status and the body's text.
func apiError(r request, resp *http.Response) error {
	data, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	var er api.ErrorResponse
	if json.Unmarshal(data, &er) != nil || er.Error.Code == "" {
		text := strings.TrimSpace(string(data))
		if len(text) > maxErrorText {
			text = strings.ToValidUTF8(text[:maxErrorText], "") + " …"
		}
		er.Error = api.Error{Code: http.StatusText(resp.StatusCode), Message: fmt.Sprintf("%s %s: HTTP %d: %s", r.method, r.path, resp.StatusCode, text)}
	}
	return &Error{StatusCode: resp.StatusCode, Body: er.Error}
}

// call sends r and decodes the JSON answer into out (if not nil).
func (c *Client) call(ctx context.Context, r request, out any) error {
	r.accept = "application/json"
	resp, err := c.send(ctx, r)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("read answer of %s %s: %w", r.method, r.path, err)
	}
	if out != nil && len(data) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("decode answer of %s %s: %w", r.method, r.path, err)
		}
	}
	return nil
}

// do is call for a JSON body (if not nil).
func (c *Client) do(ctx context.Context, method, path string, query url.Values, body, out any) error {
	return c.call(ctx, request{method: method, path: path, query: query, json: body}, out)
}

// fetch is do returning a new T.
func fetch[T any](ctx context.Context, c *Client, method, path string, query url.Values, body any) (*T, error) {
	var out T
	if err := c.do(ctx, method, path, query, body, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// list is a GET of a list answer, {"value": [...]}.
func list[T any](ctx context.Context, c *Client, path string, query url.Values) ([]T, error) {
	var out struct {
		Value []T `json:"value"`
	}
	err := c.do(ctx, "GET", path, query, nil, &out)
	return out.Value, err
}
