package client

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/berth-ml/berth/api"
)

// Scored is a scoring answer.
type Scored struct {
	StatusCode int
	// Version is the endpoint version that answered (x-berth-version).
	Version  string
	Body     []byte
	Duration time.Duration
}

// maxScoreAnswer bounds the answer a Scorer reads.
const maxScoreAnswer = 8 << 20

// Scorer sends scoring requests to one service as its clients do: with
// its primary key or a token, over TLS that trusts the compute's CA.
type Scorer struct {
	URI    string
	Bearer string // the key or token it sends
	// TLS trusts the system's roots and the compute's CA (for the local
	// compute's own certificates).
	TLS *tls.Config
	// HTTP sends the requests (default: a client with TLS and a timeout
	// a little above the service's scoring timeout).
	HTTP *http.Client
	// Version pins an endpoint's version (x-berth-version), when set.
	Version string
}

// Scorer fetches what scoring sv takes: its primary key (key auth) or a
// fresh token (token auth), which an owner's token may read, and its
// compute's CA.
func (c *Client) Scorer(ctx context.Context, ws string, sv *api.Service) (*Scorer, error) {
	if sv.ScoringURI == "" {
		return nil, fmt.Errorf("service %s has no scoring URI yet (state %s); wait for it with: berth service wait %s", sv.Name, sv.State, sv.Name)
	}
	return c.scorer(ctx, ws, sv.ScoringURI, sv.Auth, sv.Compute, sv.ScoringTimeoutMs,
		func() (*api.ServiceToken, error) { return c.ServiceToken(ctx, ws, sv.Name) },
		func() (*api.ServiceKeys, error) { return c.ServiceKeys(ctx, ws, sv.Name) })
}

// EndpointScorer fetches what scoring an endpoint takes, as Scorer does
// for a service: the endpoint's key or token and its compute's CA.
func (c *Client) EndpointScorer(ctx context.Context, ws string, e *api.Endpoint) (*Scorer, error) {
	return c.scorer(ctx, ws, e.ScoringURI, e.Auth, e.Compute, 60000,
		func() (*api.ServiceToken, error) { return c.EndpointToken(ctx, ws, e.Name) },
		func() (*api.ServiceKeys, error) { return c.EndpointKeys(ctx, ws, e.Name) })
}

func (c *Client) scorer(ctx context.Context, ws, uri, auth, compute string, timeoutMs int,
	token func() (*api.ServiceToken, error), keys func() (*api.ServiceKeys, error)) (*Scorer, error) {
	s := &Scorer{URI: uri}
	switch auth {
	case api.AuthToken:
		t, err := token()
		if err != nil {
			return nil, err
		}
		s.Bearer = t.AccessToken
	case api.AuthNone:
	default:
		k, err := keys()
		if err != nil {
			return nil, err
		}
		s.Bearer = k.PrimaryKey
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	if strings.HasPrefix(uri, "https://") {
		cert, err := c.GetCertificate(ctx, ws, compute, false)
		if err != nil {
			return nil, err
		}
		pool.AppendCertsFromPEM([]byte(cert.CAPEM))
	}
	s.TLS = &tls.Config{RootCAs: pool}
	s.HTTP = &http.Client{Timeout: time.Duration(max(timeoutMs, 1000)+5000) * time.Millisecond,
		Transport: &http.Transport{TLSClientConfig: s.TLS, Proxy: http.ProxyFromEnvironment}}
	return s, nil
}

// Score posts a JSON body and returns the answer (its body trimmed of
// surrounding white space, at most 8 MiB).
func (s *Scorer) Score(ctx context.Context, body []byte) (*Scored, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.URI, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	if s.Version != "" {
		req.Header.Set("X-Berth-Version", s.Version)
	}
	if s.Bearer != "" {
		req.Header.Set("Authorization", "Bearer "+s.Bearer)
	}
	start := time.Now()
	resp, err := s.HTTP.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(io.LimitReader(resp.Body, maxScoreAnswer))
	return &Scored{StatusCode: resp.StatusCode, Version: resp.Header.Get("X-Berth-Version"), Body: []byte(strings.TrimSpace(string(out))), Duration: time.Since(start)}, err
}

// ScoreService scores a JSON body with a service, as Scorer does.
func (c *Client) ScoreService(ctx context.Context, ws, name string, body []byte) (*Scored, error) {
	sv, err := c.GetService(ctx, ws, name)
	if err != nil {
		return nil, err
	}
	s, err := c.Scorer(ctx, ws, sv)
	if err != nil {
		return nil, err
	}
	return s.Score(ctx, body)
}
