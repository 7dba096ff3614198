package frontend

import (
	"cmp"
	"context"
	"crypto"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/berth-ml/berth/internal/httpx"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/berth-ml/berth/internal/frontend/h1"
	"github.com/berth-ml/berth/internal/frontend/httpsyntax"
	"github.com/berth-ml/berth/internal/frontend/reqlog"
	"github.com/berth-ml/berth/internal/frontend/upstream"
	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/sync/singleflight"
)

// MaxBodyBytes is the largest scoring payload (REFERENCE.md: 100 MB).
const MaxBodyBytes = 100 << 20

// Frontend serves scoring requests for the services it knows.
type Frontend struct {
	mu        sync.RWMutex
	services  map[string]*service
	endpoints map[string]*endpoint
	// mirrors queues the copies of requests sent to mirrored versions
	// (endpoint.go), started at the first one.
	mirrors    chan mirrorJob
	mirrorOnce sync.Once

	up        *upstream.Client
	metrics   *metrics
	reqlog    *reqlog.Logger
	log       *slog.Logger
	ready     atomic.Bool
	certs     certStore
	acme      atomic.Pointer[map[string]string]
	dialMu    sync.Mutex
	reachable map[string]bool // replica addresses that accepted a connection once
	// AccessLog, when set, gets one line per request.
	AccessLog bool
	// HTTPServer serves the scoring listeners: ServerBerth (or empty) for
	// the lean HTTP/1.1 server, ServerGo for net/http's.
	HTTPServer string
	peers      atomic.Pointer[map[string]bool] // peer front ends' hosts (SetPeers)
	// BodyDir is where request bodies over memBody are spooled while they
	// arrive (os.TempDir when empty).
	BodyDir string
	// waker asks the autoscaler to scale a service up from zero now (autoscale.go).
	waker atomic.Pointer[func(service string, tellPeers bool)]
}

type service struct {
	route  atomic.Pointer[Route]
	jwtKey atomic.Value // crypto.PublicKey
	pool   *pool
	// forward is a peer front end (host:port) to send requests to when
	// this one holds no slots of the service (more front ends than replicas).
	forward atomic.Pointer[string]
	// swagger is the service's swagger document as last fetched from a
	// replica (swagger.go), swaggerFetch the fetch in progress.
	swagger      atomic.Pointer[swaggerDoc]
	swaggerFetch singleflight.Group
	sampler      reqlog.Sampler // picks the requests to log
}

// New makes a front end with no services yet.
func New(log *slog.Logger) *Frontend {
	f := &Frontend{
		services:  map[string]*service{},
		endpoints: map[string]*endpoint{},
		reachable: map[string]bool{},
		log:       cmp.Or(log, slog.Default()),
		metrics:   newMetrics(),
		up:        upstream.New(),
	}
	f.reqlog = &reqlog.Logger{Log: f.log, Dropped: func(svc string, n int) { f.metrics.logDropped.WithLabelValues(svc).Add(float64(n)) }}
	return f
}

// SetReady marks the front end ready (its inputs are synced).
func (f *Frontend) SetReady(ok bool) { f.ready.Store(ok) }

// SetRoute adds or changes a service's route.
func (f *Frontend) SetRoute(r *Route) {
	f.mu.Lock()
	s, ok := f.services[r.Service]
	if !ok {
		s = &service{pool: newPool()}
		f.services[r.Service] = s
	}
	f.mu.Unlock()
	if r.Auth == AuthToken {
		if k, err := parsePublicKey(r.TokenPublicKey); err == nil {
			s.jwtKey.Store(k)
		}
	}
	if old := s.route.Swap(r); old == nil || !reflect.DeepEqual(old, r) {
		s.swagger.Store(nil) // a new version may describe itself otherwise
	}
}

// DeleteRoute removes a service.
func (f *Frontend) DeleteRoute(name string) {
	f.mu.Lock()
	delete(f.services, name)
	f.mu.Unlock()
	f.metrics.forget(name)
}

// SetReplicas sets the replicas this front end may use for a service, and
// the peer to forward to when it may use none although the service has some.
func (f *Frontend) SetReplicas(name string, rs []Replica, forward string) {
	if s := f.service(name); s != nil {
		if s.pool.set(rs) {
			s.swagger.Store(nil) // the copy may be an old version's
		}
		if forward == "" {
			s.forward.Store(nil)
		} else {
			s.forward.Store(&forward)
			if len(rs) == 0 {
				s.pool.forwardWaiters() // woken from zero, with the slots at a peer
			}
		}
		f.metrics.readyReplicas.WithLabelValues(name).Set(float64(len(rs)))
	}
}

// Services lists the known services' routes.
func (f *Frontend) Services() []*Route {
	f.mu.RLock()
	defer f.mu.RUnlock()
	out := make([]*Route, 0, len(f.services))
	for _, s := range f.services {
		out = append(out, s.route.Load())
	}
	return out
}

// LoadOf is a service's current load at this front end.
func (f *Frontend) LoadOf(name string) (Load, bool) {
	s := f.service(name)
	if s == nil {
		return Load{}, false
	}
	return s.pool.load(), true
}

func (f *Frontend) service(name string) *service {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.services[name]
}

// errorBody is the JSON error shape of the front end.
type errorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	var b errorBody
	b.Error.Code, b.Error.Message = code, msg
	data, _ := json.Marshal(b)
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(data)+1))
	w.WriteHeader(status)
	w.Write(append(data, '\n'))
}

// ServeHTTP routes scoring and OIP v2 requests.
func (f *Frontend) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	name, upstreamPath, kind := route(r)
	var code int
	if hw, ok := w.(*h1.Response); ok { // it knows its status: no wrapper to allocate
		name = f.serve(w, r, name, upstreamPath, kind)
		code = hw.WrittenStatus()
	} else {
		sw := &httpx.StatusWriter{ResponseWriter: w}
		name = f.serve(sw, r, name, upstreamPath, kind)
		code = sw.Status
	}
	code = cmp.Or(code, 499) // 499: the client went away before an answer
	f.metrics.observe(name, kind, code, time.Since(start))
	if f.AccessLog {
		f.log.Info("access", "method", r.Method, "path", r.URL.Path, "service", name, "status", code,
			"duration_ms", float64(time.Since(start).Microseconds())/1000, "remote", r.RemoteAddr)
	}
}

// Request kinds.
const (
	kindScore    = "score"
	kindSwagger  = "swagger"
	kindInfer    = "infer"
	kindMetadata = "metadata"
	kindReady    = "ready"
	kindLive     = "live"
	kindHealth   = "health"
	kindUnknown  = "unknown"
)

// endpointPrefix marks the names route returns for endpoint paths.
const endpointPrefix = "endpoint:"

// route parses the path: the service (or endpointPrefix and the endpoint),
// the path to send the replica, and the kind of request.
func route(r *http.Request) (name, upPath, kind string) {
	p := r.URL.Path
	for _, prefix := range [...]string{"/api/v1/service/", "/api/v1/endpoint/"} {
		rest, ok := strings.CutPrefix(p, prefix)
		if !ok {
			continue
		}
		name, tail, _ := strings.Cut(rest, "/")
		if prefix == "/api/v1/endpoint/" {
			name = endpointPrefix + name
		}
		switch tail {
		case "score":
			return name, "/score", kindScore
		case "swagger.json":
			return name, "/swagger.json", kindSwagger
		}
		return name, "", kindUnknown
	}
	if rest, ok := strings.CutPrefix(p, "/v2/"); ok {
		switch rest {
		case "health/live":
			return "", "", kindLive
		case "health/ready":
			return "", "", kindHealth
		}
		if m, ok := strings.CutPrefix(rest, "models/"); ok {
			name, tail, _ := strings.Cut(m, "/")
			switch tail {
			case "infer":
				return name, p, kindInfer
			case "":
				return name, p, kindMetadata
			case "ready":
				return name, p, kindReady
			}
			if strings.HasPrefix(tail, "versions/") && strings.HasSuffix(tail, "/infer") {
				return name, p, kindInfer
			}
		}
	}
	return "", "", kindUnknown
}

// serve answers a request and returns the service that served it, as
// metrics label it (an endpoint's request: its version's service).
func (f *Frontend) serve(w http.ResponseWriter, r *http.Request, name, upPath, kind string) string {
	switch kind {
	case kindUnknown:
		writeError(w, http.StatusNotFound, "NotFound", "no such path: "+r.URL.Path)
		return ""
	case kindLive:
		writeJSON(w, http.StatusOK, map[string]bool{"live": true})
		return ""
	case kindHealth:
		writeJSON(w, readyStatus(f.ready.Load()), map[string]bool{"ready": f.ready.Load()})
		return ""
	}
	// An endpoint's path, or an OIP path naming an endpoint (endpoints
	// first: a version's service is not served on its own).
	if ep, ok := strings.CutPrefix(name, endpointPrefix); ok {
		if e := f.endpoint(ep); e != nil {
			return f.serveEndpoint(w, r, e, upPath, kind)
		}
		writeError(w, http.StatusNotFound, "EndpointNotFound", fmt.Sprintf("endpoint %q not found", ep))
		return ""
	}
	if e := f.endpoint(name); e != nil && upPath != "/score" && upPath != "/swagger.json" {
		return f.serveEndpoint(w, r, e, upPath, kind)
	}
	s := f.service(name)
	var rt *Route
	if s != nil {
		rt = s.route.Load()
	}
	// A version's service answers only whether it is ready (its deploy
	// waits for that), never scoring.
	if rt == nil || rt.Endpoint != "" && kind != kindReady {
		msg := fmt.Sprintf("service %q not found", name)
		if rt != nil {
			msg = fmt.Sprintf("service %q is a version of endpoint %s: score it at /api/v1/endpoint/%s/score (pin the version with %s)", name, rt.Endpoint, rt.Endpoint, VersionHeader)
		}
		writeError(w, http.StatusNotFound, "ServiceNotFound", msg)
		return name
	}
	if !allowMethod(w, r, kind) {
		return name
	}
	if kind == kindSwagger {
		// Served without credentials (as the scoring reference does), so
		// from the front end's copy: the client's request never reaches a
		// replica, its body is not read, and no slot is taken.
		f.serveSwagger(w, s, rt)
		return name
	}
	// Nothing of an unauthenticated request reaches a replica.
	key, _ := s.jwtKey.Load().(crypto.PublicKey)
	if ok, msg := authorize(rt.access(), key, r); !ok {
		w.Header().Set("WWW-Authenticate", `Bearer realm="berth"`)
		writeError(w, http.StatusUnauthorized, "Unauthorized", msg)
		return name
	}
	if kind == kindReady {
		ready := s.canServe()
		writeJSON(w, readyStatus(ready), map[string]any{"name": name, "ready": ready})
		return name
	}
	if r.ContentLength > MaxBodyBytes {
		tooLarge(w)
		return name
	}
	f.proxy(w, r, s, rt, upPath)
	return name
}

func readyStatus(ok bool) int {
	if ok {
		return http.StatusOK
	}
	return http.StatusServiceUnavailable
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	data, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(data, '\n'))
}

// authorize checks the request's key or token against a route's access;
// key verifies tokens.
func authorize(a access, key crypto.PublicKey, r *http.Request) (bool, string) {
	if a.auth == AuthNone {
		return true, ""
	}
	h := r.Header.Get("Authorization")
	scheme, cred, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || cred == "" {
		return false, fmt.Sprintf("%s needs Authorization: Bearer <%s>", a.what, a.auth)
	}
	switch a.auth {
	case AuthKey:
		if a.checkKey(strings.TrimSpace(cred)) {
			return true, ""
		}
		return false, fmt.Sprintf("the key is not valid for %s", a.what)
	case AuthToken:
		if key == nil {
			return false, fmt.Sprintf("the token verification key of %s is not valid", a.what)
		}
		if a.audience == "" {
			return false, fmt.Sprintf("%s's route names no token audience; redeploy it with this release", a.what)
		}
		_, err := jwt.Parse(strings.TrimSpace(cred), func(*jwt.Token) (any, error) { return key, nil },
			jwt.WithValidMethods([]string{"RS256", "ES256"}), jwt.WithExpirationRequired(), jwt.WithAudience(a.audience),
			jwt.WithLeeway(5*time.Second))
		if err != nil {
			if errors.Is(err, jwt.ErrTokenExpired) {
				kind, _, _ := strings.Cut(a.what, " ")
				return false, fmt.Sprintf("the token for %s has expired; get a new one with `berth %s token`", a.what, kind)
			}
			return false, fmt.Sprintf("the token is not valid for %s", a.what)
		}
		return true, ""
	}
	return false, "unknown auth mode"
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// proxy admits the request to a replica and relays the answer.
func (f *Frontend) proxy(w http.ResponseWriter, r *http.Request, s *service, rt *Route, upPath string) {
	// The whole body is read before admission (body.go): a slow upload
	// holds no replica slot, the client's framing errors are answered here,
	// and while the request is queued the client's connection can be
	// watched for a close (h1.Response.WatchClient).
	body, err := readBody(w, r, f.BodyDir)
	if err != nil {
		f.bodyError(w, r, rt, err)
		return
	}
	defer body.close()
	f.send(w, r, s, rt, upPath, &body, reqlog.Labels{Endpoint: rt.Service})
}

// send admits a request whose body is read to a replica of s (or a peer
// front end that has some) and relays the answer. A request the route's
// sampling picks is logged with its answer, under lb (a plain service's
// own name; an endpoint's name and version).
func (f *Frontend) send(w http.ResponseWriter, r *http.Request, s *service, rt *Route, upPath string, body *reqBody, lb reqlog.Labels) {
	var start time.Time
	if rt.LogRequests > 0 {
		start = time.Now()
	}
	deadline := time.Now().Add(rt.scoringTimeout())
	if peer := s.forward.Load(); peer != nil && r.Header.Get(forwardedHeader) == "" && s.pool.load().Replicas == 0 {
		f.relay(deadline, w, r, rt, body, *peer, r.URL.Path, "peer "+*peer, true)
		return // the peer logs it
	}
	if rt.LogRequests > 0 && s.sampler.Sample(rt.LogRequests) {
		c := &capture{StatusWriter: httpx.StatusWriter{ResponseWriter: w}, start: start, limit: cmp.Or(rt.LogBodyLimit, reqlog.DefaultBodyLimit)}
		w = c
		defer f.logRequest(c, rt, lb, body)
	}
	// The request's own context and the deadline, not a context with a
	// deadline: that is a timer and two registrations per request.
	ctx := r.Context()
	wait, timeoutFirst := rt.queueWait(), false
	wakes := rt.wakes()
	cold := wakes && s.pool.load().Replicas == 0
	if cold {
		// Scaled to zero: the request waits for a replica to start, and
		// its scoring timeout counts after that wait.
		wait = rt.coldWait()
		deadline = deadline.Add(wait)
	}
	if left := time.Until(deadline); left < wait {
		wait, timeoutFirst = left, true
	}
	// While the request waits in the queue, berth's server watches the
	// client's connection, so a client that leaves leaves the queue (net/http's
	// server watches every request).
	var stopWatch func()
	queued := func() {
		if cw, ok := w.(clientWatcher); ok && stopWatch == nil {
			stopWatch = cw.WatchClient()
		}
		if cold {
			f.wake(rt.Service) // once it is in the queue, where the autoscaler sees it
		}
	}
	acquire := func() (*replica, time.Duration, error) {
		rep, waited, err := s.pool.acquire(ctx, wait, wakes, queued)
		if stopWatch != nil {
			stopWatch()
			stopWatch = nil
		}
		if timeoutFirst && errors.Is(err, ErrOverloaded) {
			err = context.DeadlineExceeded
		}
		return rep, waited, err
	}
	rep, waited, err := acquire()
	obs := f.metrics.observer(rt.Service)
	obs.queue.Observe(waited.Seconds())
	// A replica that refuses the connection (not listening yet, or just
	// gone) never saw the request: try another one, a few times.
	for attempt := 0; err == nil && attempt < 5; attempt++ {
		if !f.refuses(ctx, deadline, rep) {
			break
		}
		s.pool.refused(rep)
		s.pool.release(rep)
		rep, _, err = acquire()
	}
	switch {
	case errors.Is(err, errForward) && s.forward.Load() != nil && r.Header.Get(forwardedHeader) == "":
		peer := *s.forward.Load()
		f.relay(deadline, w, r, rt, body, peer, r.URL.Path, "peer "+peer, true)
		return
	case errors.Is(err, ErrColdStart):
		w.Header().Set("Retry-After", "5")
		writeError(w, http.StatusServiceUnavailable, "ColdStartTimeout", fmt.Sprintf("Service %s is scaled to zero and no replica became ready within %d ms", rt.Service, wait.Milliseconds()))
		return
	case errors.Is(err, ErrNoReplicas) || errors.Is(err, errForward):
		w.Header().Set("Retry-After", "5")
		writeError(w, http.StatusServiceUnavailable, "NoReadyReplicas", fmt.Sprintf("No ready replicas for service %s", rt.Service))
		return
	case errors.Is(err, ErrOverloaded):
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusServiceUnavailable, "Overloaded", fmt.Sprintf("Too many requests for service %s (overloaded)", rt.Service))
		return
	case err != nil:
		if r.Context().Err() == nil {
			writeError(w, http.StatusGatewayTimeout, "ScoringTimeout", fmt.Sprintf("Scoring request for service %s timed out after %d ms", rt.Service, rt.ScoringTimeoutMs))
		}
		return
	}
	obs.inflight.Inc()
	defer func() {
		s.pool.release(rep)
		obs.inflight.Dec()
	}()

	f.relay(deadline, w, r, rt, body, rep.Addr, upPath, rep.Name, false)
}

// bodyError answers a request whose body could not be read: too large
// (413), too slow (408), or malformed (400); a client that left gets none.
func (f *Frontend) bodyError(w http.ResponseWriter, r *http.Request, rt *Route, err error) {
	switch {
	case errors.As(err, new(*bodyTooLarge)):
		tooLarge(w)
	case errors.Is(err, h1.ErrBodyTooSlow):
		w.Header().Set("Connection", "close")
		writeError(w, http.StatusRequestTimeout, "RequestBodyTooSlow", fmt.Sprintf("the request body arrived slower than %d bytes/s", h1.DefaultMinBodyRate))
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		// The client closed its side early (net/http's server then ends
		// the request's context too); it may still read the answer.
		w.Header().Set("Connection", "close")
		writeError(w, http.StatusBadRequest, "BadRequestBody", "the request body ended before its end")
	case r.Context().Err() != nil:
		// the client went away
	case isLocal(err):
		f.log.Error("spooling a request body failed", "service", rt.Service, "err", err)
		writeError(w, http.StatusInternalServerError, "InternalError", "the request body could not be stored")
	default:
		w.Header().Set("Connection", "close")
		writeError(w, http.StatusBadRequest, "BadRequestBody", "the request body could not be read: "+err.Error())
	}
}

// isLocal: the error is the front end's own file system's (spooling a body).
func isLocal(err error) bool {
	_, ok := errors.AsType[*os.PathError](err)
	return ok
}

// refuses tells whether a replica refuses connections, by taking an idle
// pooled connection or dialling one (kept for the request).
func (f *Frontend) refuses(ctx context.Context, deadline time.Time, rep *replica) bool {
	f.dialMu.Lock()
	ok := f.reachable[rep.Addr]
	f.dialMu.Unlock()
	if ok {
		return false
	}
	d := net.Dialer{Timeout: 2 * time.Second, Deadline: deadline}
	c, err := d.DialContext(ctx, "tcp", rep.Addr)
	if err != nil {
		return errors.Is(err, syscall.ECONNREFUSED)
	}
	c.Close()
	f.dialMu.Lock()
	if len(f.reachable) > 10000 {
		f.reachable = map[string]bool{}
	}
	f.reachable[rep.Addr] = true
	f.dialMu.Unlock()
	return false
}

// clientWatcher is a ResponseWriter that can notice its client leaving
// while the request waits (h1.Response).
type clientWatcher interface {
	WatchClient() (stop func())
}

// forwardedHeader marks a request one front end sent another.
const forwardedHeader = "X-Berth-Forwarded"

// skipForwarded and skipToReplica name the client's headers a request
// to a peer front end or to a replica goes without: those the front end
// sets itself, and the credentials, which replicas never see.
func skipForwarded(k string) bool { return k == "X-Forwarded-For" || k == "X-Forwarded-Proto" }

func skipToReplica(k string) bool {
	return k == "Authorization" || k == "X-Berth-Service" || k == "X-Forwarded-For" || k == "X-Forwarded-Proto"
}

// forwardedProto is the scheme the client used: this connection's, or the
// one a peer front end (by its address) says its client used.
func (f *Frontend) forwardedProto(r *http.Request, host string) string {
	if r.TLS == nil && r.Header.Get(forwardedHeader) != "" && f.isPeer(host) {
		if p := r.Header.Get("X-Forwarded-Proto"); p == "http" || p == "https" {
			return p
		}
	}
	if r.TLS != nil {
		return "https"
	}
	return "http"
}

// SetPeers sets the addresses (host:port) of the other front ends, whose
// X-Forwarded-Proto is trusted on requests they forward.
func (f *Frontend) SetPeers(addrs []string) {
	m := make(map[string]bool, len(addrs))
	for _, a := range addrs {
		if h, _, err := net.SplitHostPort(a); err == nil {
			m[h] = true
		}
	}
	f.peers.Store(&m)
}

func (f *Frontend) isPeer(host string) bool {
	m := f.peers.Load()
	return m != nil && (*m)[host]
}

// relay sends the request to addr (path) and relays the answer, mapping
// failures to the reference's status codes.
func (f *Frontend) relay(deadline time.Time, w http.ResponseWriter, r *http.Request, rt *Route, rb *reqBody, addr, path, to string, toPeer bool) {
	if r.URL.RawQuery != "" {
		path += "?" + r.URL.RawQuery
	}
	extra := make([][2]string, 0, 4)
	// X-Forwarded-For: the client's own list (it may come through other
	// proxies) with the address this front end sees appended; never the
	// client's list alone, which would let it name any address.
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	xff := host
	if prior := r.Header["X-Forwarded-For"]; len(prior) > 0 && !httpsyntax.HasToken(r.Header["Connection"], "X-Forwarded-For") {
		xff = strings.Join(prior, ", ") + ", " + host
	}
	extra = append(extra, [2]string{"X-Forwarded-For", xff}, [2]string{"X-Forwarded-Proto", f.forwardedProto(r, host)})
	var skip func(string) bool
	if toPeer {
		extra = append(extra, [2]string{forwardedHeader, "1"})
		skip = skipForwarded
	} else {
		extra = append(extra, [2]string{"X-Berth-Service", rt.Service})
		skip = skipToReplica
	}
	buffered, body, length := rb.send()
	ex, err := f.up.Do(r.Context(), deadline, addr, r.Method, path, r.Header, skip, extra, buffered, body, length)
	if err != nil {
		switch {
		case r.Context().Err() != nil:
			// the client went away
		case !time.Now().Before(deadline) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded):
			writeError(w, http.StatusGatewayTimeout, "ScoringTimeout", fmt.Sprintf("Scoring request for service %s timed out after %d ms", rt.Service, rt.ScoringTimeoutMs))
		case errors.Is(err, syscall.ECONNREFUSED):
			writeError(w, http.StatusBadGateway, "ReplicaUnreachable", fmt.Sprintf("Could not connect to %s of service %s", to, rt.Service))
		default:
			writeError(w, http.StatusBadGateway, "ReplicaClosedConnection", "Replica closed connection before replying")
		}
		return
	}
	defer ex.Close()
	h := w.Header()
	conn := ex.Header["Connection"]
	for k, v := range ex.Header {
		if (!upstream.DropHeader(k) || k == "Content-Length") && (conn == nil || !httpsyntax.HasToken(conn, k)) {
			h[k] = v
		}
	}
	w.WriteHeader(ex.StatusCode)
	bp := bufPool.Get().(*[]byte)
	if streamed(ex.Header) {
		err = copyFlushing(w, ex.Body, *bp)
	} else {
		_, err = io.CopyBuffer(w, ex.Body, *bp)
	}
	bufPool.Put(bp)
	if err != nil && r.Context().Err() == nil {
		// The status is sent; all that is left is to end the answer early.
		f.log.Warn("relaying the answer failed", "service", rt.Service, "to", to, "err", err)
		panic(http.ErrAbortHandler)
	}
}

// streamed reports whether an answer comes as it is made: server-sent
// events (an LLM's token stream), or a body of no announced length. Such
// an answer is relayed as each part arrives.
func streamed(h http.Header) bool {
	return h.Get("Content-Length") == "" || strings.HasPrefix(h.Get("Content-Type"), "text/event-stream")
}

// copyFlushing relays src to w, sending each part on as soon as it is read.
func copyFlushing(w http.ResponseWriter, src io.Reader, buf []byte) error {
	fl, _ := w.(http.Flusher)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return werr
			}
			if fl != nil {
				fl.Flush()
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

func tooLarge(w http.ResponseWriter) {
	writeError(w, http.StatusRequestEntityTooLarge, "PayloadTooLarge", fmt.Sprintf("the request body is larger than %d bytes", MaxBodyBytes))
}
