package client

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"time"

	"github.com/berth-ml/berth/api"
)

// Scored is a scoring answer.
type Scored struct {
	StatusCode int
	Body       []byte
	Duration   time.Duration
}

// maxScoreAnswer bounds the answer ScoreService reads.
const maxScoreAnswer = 8 << 20

// ScoreService posts a JSON body to a service's scoring URI, as a client of
// the service would: with its primary key or a fresh token (both need an
// owner's token, as keys do), trusting the compute's certificate (and its
// CA, for the local compute's own).
func (c *Client) ScoreService(ctx context.Context, ws, name string, body []byte) (*Scored, error) {
	sv, err := c.GetService(ctx, ws, name)
	if err != nil {
		return nil, err
	}
	var auth string
	switch sv.Auth {
	case api.AuthKey:
		k, err := c.ServiceKeys(ctx, ws, name)
		if err != nil {
			return nil, err
		}
		auth = k.PrimaryKey
	case api.AuthToken:
		t, err := c.ServiceToken(ctx, ws, name)
		if err != nil {
			return nil, err
		}
		auth = t.AccessToken
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	if cert, err := c.GetCertificate(ctx, ws, sv.Compute, false); err == nil {
		pool.AppendCertsFromPEM([]byte(cert.CAPEM))
		pool.AppendCertsFromPEM([]byte(cert.CertPEM))
	}
	hc := &http.Client{Timeout: time.Duration(max(sv.ScoringTimeoutMs, 1000)+5000) * time.Millisecond,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, Proxy: http.ProxyFromEnvironment}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, sv.ScoringURI, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	if auth != "" {
		req.Header.Set("Authorization", "Bearer "+auth)
	}
	start := time.Now()
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(io.LimitReader(resp.Body, maxScoreAnswer))
	return &Scored{StatusCode: resp.StatusCode, Body: out, Duration: time.Since(start)}, err
}
