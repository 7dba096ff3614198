// Package frontend is berth-fe, the scoring front end: it authenticates
// scoring requests, admits them to each service's replicas (at most N at
// once per replica, FIFO queue, least outstanding first), proxies them,
// terminates TLS, and scales services. It reads everything from
// Kubernetes objects, so it serves while the control plane is down.
package frontend

import (
	"crypto"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Auth modes.
const (
	AuthKey   = "key"
	AuthToken = "token"
	AuthNone  = "none"
)

// RouteLabel marks the ConfigMaps that define routes; RouteKey is the
// ConfigMap key holding the route.
const (
	RouteLabel = "berth.dev/route"
	RouteKey   = "route.json"
)

// Route is one scoring service as the control plane defines it.
type Route struct {
	Service   string            `json:"service"`
	Namespace string            `json:"namespace"`
	Selector  map[string]string `json:"selector"`
	Port      int               `json:"port"`
	Auth      string            `json:"auth"`
	// KeyHashes are "sha256:<hex>" of the primary and secondary keys.
	KeyHashes []string `json:"keyHashes,omitempty"`
	// TokenPublicKey verifies JWTs (PEM, RSA or ECDSA) when Auth is token.
	TokenPublicKey string `json:"tokenPublicKey,omitempty"`
	// TokenAudience is the audience a token must name: the service's
	// workspace and unique id (berth:<workspace-id>/<service-id>), so a
	// token for a namesake in another workspace, or for a deleted service
	// deployed again, is refused. A route without one accepts no token.
	TokenAudience                     string    `json:"tokenAudience,omitempty"`
	ScoringTimeoutMs                  int       `json:"scoringTimeoutMs"`
	MaxConcurrentRequestsPerContainer int       `json:"maxConcurrentRequestsPerContainer"`
	MaxQueueWaitMs                    int       `json:"maxQueueWaitMs"`
	Autoscale                         Autoscale `json:"autoscale"`
	// Endpoint, when set, is the endpoint the service is a version of: it
	// is served only through the endpoint's route (its own URI answers 404).
	Endpoint string `json:"endpoint,omitempty"`
	// ColdStartTimeoutMs is how long a request for a service scaled to
	// zero may wait for a replica (at least MaxQueueWaitMs).
	ColdStartTimeoutMs int `json:"coldStartTimeoutMs,omitempty"`
	// LogRequests is the percentage of requests logged with their answers
	// (0: none), their bodies cut at LogBodyLimit bytes, sent to LogSink
	// (CloudEvents) or, when it is empty, to the control plane.
	LogRequests  int    `json:"logRequests,omitempty"`
	LogBodyLimit int    `json:"logBodyLimit,omitempty"`
	LogSink      string `json:"logSink,omitempty"`
}

// Autoscale are a service's scaling settings.
type Autoscale struct {
	Enabled           bool   `json:"enabled"`
	Min               int    `json:"min"`
	Max               int    `json:"max"`
	RefreshSeconds    int    `json:"refreshSeconds"`
	TargetUtilization int    `json:"targetUtilization"`
	Deployment        string `json:"deployment"`
	// ScaleToZeroAfterSeconds, when set with Min 0, lets the service scale
	// to zero after its replicas were idle that long. A route without it
	// (older ones) has Min 1 at least.
	ScaleToZeroAfterSeconds int `json:"scaleToZeroAfterSeconds,omitempty"`
}

// HashKey is how keys are stored in routes.
func HashKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// ParseRoute reads and checks a route, filling defaults.
func ParseRoute(data []byte) (*Route, error) {
	var r Route
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return nil, fmt.Errorf("route: %w", err)
	}
	var problems []string
	if r.Service == "" {
		problems = append(problems, "service is required")
	}
	if len(r.Selector) == 0 {
		problems = append(problems, "selector is required")
	}
	if r.Port <= 0 || r.Port > 65535 {
		problems = append(problems, fmt.Sprintf("port %d is not valid", r.Port))
	}
	problems = append(problems, r.access().check()...)
	if len(problems) > 0 {
		return nil, fmt.Errorf("route %s: %s", r.Service, strings.Join(problems, "; "))
	}
	if r.ScoringTimeoutMs <= 0 {
		r.ScoringTimeoutMs = 60000
	}
	if r.MaxConcurrentRequestsPerContainer <= 0 {
		r.MaxConcurrentRequestsPerContainer = 1
	}
	if r.MaxQueueWaitMs <= 0 {
		r.MaxQueueWaitMs = 500
	}
	a := &r.Autoscale
	switch {
	case a.ScaleToZeroAfterSeconds <= 0:
		a.ScaleToZeroAfterSeconds = 0
		a.Min = max(a.Min, 1)
	case a.Min < 0:
		a.Min = 0
	}
	if r.ColdStartTimeoutMs <= 0 {
		r.ColdStartTimeoutMs = 60000
	}
	if a.Max < max(a.Min, 1) {
		a.Max = max(10, a.Min)
	}
	if a.RefreshSeconds <= 0 {
		a.RefreshSeconds = 1
	}
	if a.TargetUtilization <= 0 || a.TargetUtilization > 100 {
		a.TargetUtilization = 70
	}
	return &r, nil
}

func (r *Route) scoringTimeout() time.Duration {
	return time.Duration(r.ScoringTimeoutMs) * time.Millisecond
}

func (r *Route) queueWait() time.Duration { return time.Duration(r.MaxQueueWaitMs) * time.Millisecond }

// access is who may call a route: its auth mode and credentials. what
// names the route in messages ("service iris").
type access struct {
	auth, tokenPublicKey, audience, what string
	keyHashes                            []string
}

func (r *Route) access() access {
	return access{r.Auth, r.TokenPublicKey, r.TokenAudience, "service " + r.Service, r.KeyHashes}
}

func (a access) check() []string {
	switch a.auth {
	case AuthKey:
		if len(a.keyHashes) == 0 {
			return []string{"key auth needs keyHashes"}
		}
	case AuthToken:
		if _, err := parsePublicKey(a.tokenPublicKey); err != nil {
			return []string{"token auth needs tokenPublicKey: " + err.Error()}
		}
	case AuthNone:
	default:
		return []string{fmt.Sprintf("auth %q is not key, token or none", a.auth)}
	}
	return nil
}

// wakes tells whether the service scales to zero and back: a request
// finding no replica waits for one instead of being refused.
func (r *Route) wakes() bool {
	return r.Autoscale.Enabled && r.Autoscale.Min == 0 && r.Autoscale.ScaleToZeroAfterSeconds > 0
}

// coldWait is how long a request for a service at zero waits for a replica.
func (r *Route) coldWait() time.Duration {
	return max(r.queueWait(), time.Duration(r.ColdStartTimeoutMs)*time.Millisecond)
}

func (r *Route) idleLimit() time.Duration {
	return time.Duration(r.Autoscale.ScaleToZeroAfterSeconds) * time.Second
}

// checkKey compares a presented key with the stored hashes in constant time.
func (a access) checkKey(key string) bool {
	h := []byte(HashKey(key))
	ok := 0
	for _, want := range a.keyHashes {
		ok |= subtle.ConstantTimeCompare(h, []byte(want))
	}
	return ok == 1
}

func parsePublicKey(p string) (crypto.PublicKey, error) {
	block, _ := pem.Decode([]byte(p))
	if block == nil {
		return nil, errors.New("no PEM block")
	}
	return x509.ParsePKIXPublicKey(block.Bytes)
}
