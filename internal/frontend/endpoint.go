package frontend

// Endpoints: one scoring URI over several versions, each a service with a
// share of the traffic (docs/endpoints.md). The endpoint's route holds its
// auth and the versions' weights; a request is authorized against it,
// given a version by the splitter (or pinned by x-berth-version), and then
// served as a request of that version's service: its queue, its replicas,
// its limits. Mirrored copies go out after the answer, from a bounded
// queue.

import (
	"bytes"
	"context"
	"crypto"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/berth-ml/berth/internal/frontend/reqlog"
	"github.com/berth-ml/berth/internal/frontend/split"
)

// EndpointKey is the key of a route ConfigMap that holds an endpoint's
// route (RouteKey holds a service's).
const EndpointKey = "endpoint.json"

// VersionHeader pins a request to a version, and names on the answer the
// version that served it.
const VersionHeader = "X-Berth-Version"

// EndpointRoute is one endpoint as the control plane defines it.
type EndpointRoute struct {
	Endpoint string `json:"endpoint"`
	Auth     string `json:"auth"`
	// KeyHashes, TokenPublicKey and TokenAudience are as in Route: the
	// endpoint's own, whatever its versions.
	KeyHashes      []string `json:"keyHashes,omitempty"`
	TokenPublicKey string   `json:"tokenPublicKey,omitempty"`
	TokenAudience  string   `json:"tokenAudience,omitempty"`
	// Versions and their shares: the weights sum to 100 (or there are no
	// versions yet).
	Versions []EndpointVersion `json:"versions"`
}

// EndpointVersion is one version: the service that runs it, its weight
// and mirrored share (percent).
type EndpointVersion struct {
	Name    string `json:"name"`
	Service string `json:"service"`
	Weight  int    `json:"weight"`
	Mirror  int    `json:"mirror,omitempty"`
	Control bool   `json:"control,omitempty"`
}

// ParseEndpointRoute reads and checks an endpoint's route.
func ParseEndpointRoute(data []byte) (*EndpointRoute, error) {
	var e EndpointRoute
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		return nil, fmt.Errorf("endpoint route: %w", err)
	}
	var problems []string
	if e.Endpoint == "" {
		problems = append(problems, "endpoint is required")
	}
	problems = append(problems, e.access().check()...)
	sum := 0
	seen := map[string]bool{}
	for _, v := range e.Versions {
		if v.Name == "" || v.Service == "" || seen[v.Name] {
			problems = append(problems, fmt.Sprintf("version %q needs a unique name and a service", v.Name))
		}
		seen[v.Name] = true
		if v.Weight < 0 || v.Weight > 100 || v.Mirror < 0 || v.Mirror > 100 {
			problems = append(problems, fmt.Sprintf("version %s: weight %d and mirror %d must be from 0 to 100", v.Name, v.Weight, v.Mirror))
		}
		sum += v.Weight
	}
	if len(e.Versions) > 0 && sum != 100 {
		problems = append(problems, fmt.Sprintf("the weights sum to %d, not 100", sum))
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("endpoint route %s: %s", e.Endpoint, strings.Join(problems, "; "))
	}
	return &e, nil
}

func (e *EndpointRoute) access() access {
	return access{e.Auth, e.TokenPublicKey, e.TokenAudience, "endpoint " + e.Endpoint, e.KeyHashes}
}

// version finds a version by name.
func (e *EndpointRoute) version(name string) *EndpointVersion {
	for i := range e.Versions {
		if e.Versions[i].Name == name {
			return &e.Versions[i]
		}
	}
	return nil
}

// endpoint is an endpoint as served: its route and the splitter of its
// current weights, replaced together.
type endpoint struct {
	state  atomic.Pointer[endpointState]
	jwtKey atomic.Value // crypto.PublicKey
}

type endpointState struct {
	route *EndpointRoute
	split *split.Splitter
}

// SetEndpoint adds or changes an endpoint. A change of weights makes a new
// splitter; requests in flight finish on the version they chose.
func (f *Frontend) SetEndpoint(r *EndpointRoute) {
	f.mu.Lock()
	e, ok := f.endpoints[r.Endpoint]
	if !ok {
		e = &endpoint{}
		f.endpoints[r.Endpoint] = e
	}
	f.mu.Unlock()
	if r.Auth == AuthToken {
		if k, err := parsePublicKey(r.TokenPublicKey); err == nil {
			e.jwtKey.Store(k)
		}
	}
	versions := make([]split.Version, len(r.Versions))
	for i, v := range r.Versions {
		versions[i] = split.Version{Name: v.Name, Weight: v.Weight, Mirror: v.Mirror}
	}
	if old := e.state.Load(); old != nil && slices.Equal(old.route.Versions, r.Versions) {
		e.state.Store(&endpointState{route: r, split: old.split}) // same weights: keep the rotation
		return
	}
	e.state.Store(&endpointState{route: r, split: split.New(versions)})
}

// DeleteEndpoint removes an endpoint.
func (f *Frontend) DeleteEndpoint(name string) {
	f.mu.Lock()
	delete(f.endpoints, name)
	f.mu.Unlock()
}

// Endpoints lists the known endpoints' routes.
func (f *Frontend) Endpoints() []*EndpointRoute {
	f.mu.RLock()
	defer f.mu.RUnlock()
	out := make([]*EndpointRoute, 0, len(f.endpoints))
	for _, e := range f.endpoints {
		out = append(out, e.state.Load().route)
	}
	return out
}

func (f *Frontend) endpoint(name string) *endpoint {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.endpoints[name]
}

// canServe tells whether a service has somewhere to send a request now: a
// ready replica here, or a peer front end that has some; or it scales up
// from zero, and the request waits for its replica.
func (s *service) canServe() bool {
	return s.pool.load().Replicas > 0 || s.forward.Load() != nil || s.wakes()
}

// serveEndpoint serves a request to an endpoint and returns the service
// of the version that served it ("" when none did).
func (f *Frontend) serveEndpoint(w http.ResponseWriter, r *http.Request, e *endpoint, upPath, kind string) string {
	st := e.state.Load()
	ert := st.route
	if !allowMethod(w, r, kind) {
		return ""
	}
	pinned := r.Header.Get(VersionHeader)
	ready := func(version string) bool {
		v := ert.version(version)
		s := f.service(v.Service)
		return s != nil && s.canServe()
	}
	if kind == kindSwagger {
		// Without credentials, as a service's: the pinned version's
		// document, else the control version's, else the largest share's.
		v := swaggerVersion(ert, pinned)
		if v == nil {
			writeError(w, http.StatusNotFound, "UnknownVersion", fmt.Sprintf("endpoint %s has no version %q", ert.Endpoint, pinned))
			return ""
		}
		s := f.service(v.Service)
		if s == nil {
			noVersion(w, ert, v.Name)
			return ""
		}
		w.Header().Set(VersionHeader, v.Name)
		f.serveSwagger(w, s, s.route.Load())
		return v.Service
	}
	key, _ := e.jwtKey.Load().(crypto.PublicKey)
	if ok, msg := authorize(ert.access(), key, r); !ok {
		w.Header().Set("WWW-Authenticate", `Bearer realm="berth"`)
		writeError(w, http.StatusUnauthorized, "Unauthorized", msg)
		return ""
	}
	if kind == kindReady && pinned == "" {
		ok := slices.ContainsFunc(ert.Versions, func(v EndpointVersion) bool { return v.Weight > 0 && ready(v.Name) })
		writeJSON(w, readyStatus(ok), map[string]any{"name": ert.Endpoint, "ready": ok})
		return ""
	}
	if len(ert.Versions) == 0 {
		w.Header().Set("Retry-After", "5")
		writeError(w, http.StatusServiceUnavailable, "NoVersions", fmt.Sprintf("endpoint %s has no versions yet; add one with `berth endpoint version add -e %s`", ert.Endpoint, ert.Endpoint))
		return ""
	}
	name, mirrors, err := st.split.Pick(pinned, ready)
	var unknown split.ErrUnknown
	var unavailable split.ErrUnavailable
	switch {
	case errors.As(err, &unknown):
		writeError(w, http.StatusBadRequest, "UnknownVersion", fmt.Sprintf("endpoint %s has no version %q in %s; it has %s", ert.Endpoint, unknown.Version, VersionHeader, strings.Join(unknown.Known, ", ")))
		return ""
	case errors.As(err, &unavailable):
		noVersion(w, ert, unavailable.Version)
		return ""
	case name == "":
		w.Header().Set("Retry-After", "5")
		writeError(w, http.StatusServiceUnavailable, "NoReadyReplicas", fmt.Sprintf("No version of endpoint %s has a ready replica", ert.Endpoint))
		return ""
	}
	v := ert.version(name)
	s := f.service(v.Service)
	if s == nil {
		noVersion(w, ert, name)
		return ""
	}
	rt := s.route.Load()
	w.Header().Set(VersionHeader, name)
	if kind == kindReady {
		writeJSON(w, http.StatusOK, map[string]any{"name": ert.Endpoint, "version": name, "ready": true})
		return v.Service
	}
	if r.ContentLength > MaxBodyBytes {
		tooLarge(w)
		return v.Service
	}
	if upPath != "/score" && upPath != "/swagger.json" {
		// The OIP path names the model: the replica knows it as its service.
		upPath = "/v2/models/" + v.Service + strings.TrimPrefix(upPath, "/v2/models/"+ert.Endpoint)
	}
	body, err := readBody(w, r, f.BodyDir)
	if err != nil {
		f.bodyError(w, r, rt, err)
		return v.Service
	}
	defer body.close()
	f.send(w, r, s, rt, upPath, &body, reqlog.Labels{Endpoint: ert.Endpoint, Version: name})
	for _, m := range mirrors {
		f.mirror(r, ert, m, upPath, &body)
	}
	return v.Service
}

// allowMethod answers 405 to a request of the wrong method for its kind.
func allowMethod(w http.ResponseWriter, r *http.Request, kind string) bool {
	want := http.MethodPost
	if kind == kindSwagger || kind == kindMetadata || kind == kindReady {
		want = http.MethodGet
	}
	if r.Method != want {
		w.Header().Set("Allow", want)
		writeError(w, http.StatusMethodNotAllowed, "MethodNotAllowed", fmt.Sprintf("%s is not allowed on %s (use %s)", r.Method, r.URL.Path, want))
		return false
	}
	return true
}

func noVersion(w http.ResponseWriter, ert *EndpointRoute, version string) {
	w.Header().Set("Retry-After", "5")
	w.Header().Set(VersionHeader, version)
	writeError(w, http.StatusServiceUnavailable, "VersionUnavailable", fmt.Sprintf("version %s of endpoint %s has no ready replica", version, ert.Endpoint))
}

// swaggerVersion is the version whose swagger document an endpoint shows.
func swaggerVersion(ert *EndpointRoute, pinned string) *EndpointVersion {
	if pinned != "" {
		return ert.version(pinned)
	}
	var best *EndpointVersion
	for i := range ert.Versions {
		v := &ert.Versions[i]
		if v.Control {
			return v
		}
		if best == nil || v.Weight > best.Weight {
			best = v
		}
	}
	return best
}

// Mirrored copies: at most mirrorQueue wait, bodies up to mirrorMaxBody are
// copied (larger ones are not mirrored), mirrorWorkers send them.
const (
	mirrorQueue   = 256
	mirrorMaxBody = 1 << 20
	mirrorWorkers = 4
)

type mirrorJob struct {
	service, method, path string
	header                http.Header
	body                  []byte
}

// mirror queues a copy of a request for a version; a full queue, or a body
// too large to copy, drops it (counted).
func (f *Frontend) mirror(r *http.Request, ert *EndpointRoute, version, upPath string, body *reqBody) {
	v := ert.version(version)
	buffered, rd, n := body.send()
	if n > mirrorMaxBody {
		f.metrics.mirrors.WithLabelValues(v.Service, "dropped").Inc()
		return
	}
	data := bytes.Clone(buffered)
	if rd != nil {
		data, _ = io.ReadAll(rd)
	}
	path := upPath
	if p, ok := strings.CutPrefix(upPath, "/v2/models/"); ok {
		_, rest, _ := strings.Cut(p, "/")
		path = "/v2/models/" + v.Service + "/" + rest
	}
	f.mirrorOnce.Do(func() {
		f.mirrors = make(chan mirrorJob, mirrorQueue)
		for range mirrorWorkers {
			go f.mirrorLoop()
		}
	})
	select {
	case f.mirrors <- mirrorJob{v.Service, r.Method, path, r.Header.Clone(), data}:
	default:
		f.metrics.mirrors.WithLabelValues(v.Service, "dropped").Inc()
	}
}

func (f *Frontend) mirrorLoop() {
	for j := range f.mirrors {
		f.metrics.mirrors.WithLabelValues(j.service, f.sendMirror(j)).Inc()
	}
}

// sendMirror sends one copy to a replica of its version, within the
// version's queue wait and scoring timeout, and throws the answer away.
func (f *Frontend) sendMirror(j mirrorJob) string {
	s := f.service(j.service)
	if s == nil {
		return "dropped"
	}
	rt := s.route.Load()
	ctx, cancel := context.WithTimeout(context.Background(), rt.scoringTimeout())
	defer cancel()
	rep, _, err := s.pool.acquire(ctx, rt.queueWait(), false, nil) // a copy wakes no version at zero
	if err != nil {
		return "dropped"
	}
	defer s.pool.release(rep)
	deadline, _ := ctx.Deadline()
	extra := [][2]string{{"X-Berth-Service", rt.Service}, {"X-Berth-Mirror", "1"}}
	ex, err := f.up.Do(ctx, deadline, rep.Addr, j.method, j.path, j.header, skipToReplica, extra, j.body, nil, int64(len(j.body)))
	if err != nil {
		return "failed"
	}
	io.Copy(io.Discard, ex.Body)
	code := ex.StatusCode // before Close, which hands the exchange to the next request
	ex.Close()
	if code >= 500 {
		return "failed"
	}
	return "sent"
}
