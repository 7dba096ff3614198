// Package server is Berth's control plane: the REST API under /api/v1, its
// authentication, the operation engine that runs compute operations, and
// the health and metrics endpoints.
package server

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/berth-ml/berth/internal/endpoint"
	"github.com/berth-ml/berth/internal/frontend"
	"github.com/berth-ml/berth/internal/httpx"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/berth-ml/berth/api"
	"github.com/berth-ml/berth/internal/artifact"
	"github.com/berth-ml/berth/internal/compute"
	"github.com/berth-ml/berth/internal/imageref"
	"github.com/berth-ml/berth/internal/operation"
	"github.com/berth-ml/berth/internal/preflight"
	"github.com/berth-ml/berth/internal/problem"
	"github.com/berth-ml/berth/internal/provider"
	"github.com/berth-ml/berth/internal/provider/aks"
	"github.com/berth-ml/berth/internal/provider/kubernetes"
	"github.com/berth-ml/berth/internal/provider/local"
	"github.com/berth-ml/berth/internal/secretbox"
	"github.com/berth-ml/berth/internal/service"
	"github.com/berth-ml/berth/internal/store"
	"github.com/berth-ml/berth/internal/studio"
	"github.com/berth-ml/berth/internal/version"
)

// Config is how a server is started.
type Config struct {
	DataDir     string
	Listen      string
	DatabaseURL string
	// Lease is how long an operation claim lasts without renewal.
	Lease time.Duration
	// Poll is how often the engine looks for work from other servers.
	Poll   time.Duration
	Logger *slog.Logger
	Getenv func(string) string
	// Providers are compute types offered beside the built-in ones (a
	// provider of a built-in type replaces it).
	Providers []provider.Provider
	// ReplicaLauncher starts the local compute's replicas in a sandbox that
	// hides the data directory (`berth replica-exec`; `berth server` sets
	// it on Linux). Without it replicas run as plain child processes.
	ReplicaLauncher []string
	// KubernetesVersions is the supported Kubernetes range.
	KubernetesVersions preflight.VersionRange
	// FrontendImage is the full image reference of the berth-fe front end
	// installed into clusters (also service replicas' init containers).
	// Empty: ImageRepository tagged with this server's version. Give one or
	// the other, not both.
	FrontendImage string
	// ImageRepository is where Berth's image is pulled from (a mirror for
	// air-gapped clusters); empty: DefaultImageRepository.
	ImageRepository string
	// MetricsInterval is how often the front ends' metrics are read (0:
	// every 10s; <0: never).
	MetricsInterval time.Duration
	// ReconcileInterval is how often computes are reconciled (0: 5m; <0: never).
	ReconcileInterval time.Duration
	// ReadyTimeout bounds waiting for a cluster's front end (0: 10m).
	ReadyTimeout time.Duration
	// PublicURL is this server's address as pods in clusters reach it
	// (model delivery); empty: services on clusters need models in their image.
	PublicURL string
	// ArtifactStore is where model artifacts are kept: "" for the folder
	// DATA_DIR/artifacts, or s3://BUCKET[/PREFIX]?endpoint=HOST:PORT&...
	// (credentials from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY).
	ArtifactStore string
	// ModelLimits bound what one model artifact may unpack to (zero
	// fields: artifact.DefaultLimits); registration refuses archives
	// beyond them, and replicas unpack under them.
	ModelLimits artifact.Limits
	// Azure configures how the AKS provider reaches Azure (zero: Azure's
	// public cloud with the workspace's credential choice; the default
	// subscription from AZURE_SUBSCRIPTION_ID).
	Azure aks.Options
	// CertificateCheckInterval is how often automatic certificates are
	// checked for renewal (0: 1m; <0: never).
	CertificateCheckInterval time.Duration
	// ACMEHTTPPort is the port certificate authorities check HTTP-01
	// answers on (0: 80).
	ACMEHTTPPort int
	// CertificateRetryBase is the first wait after a failed issuance (0: 30s).
	CertificateRetryBase time.Duration
}

// DefaultImageRepository is where Berth's image is published.
const DefaultImageRepository = "ghcr.io/berth-ml/berth"

// FrontendImage is the image a server of this build installs into clusters
// from repository (DefaultImageRepository when empty): the repository
// tagged with this binary's version, so a server upgrade moves the
// clusters (on reconcile) to the image of the same release or commit.
func FrontendImage(repository string) (string, error) {
	repository = cmp.Or(repository, DefaultImageRepository)
	if err := imageref.Repository(repository); err != nil {
		return "", fmt.Errorf("image repository %q %w", repository, err)
	}
	v := version.Get().Version
	tag := strings.ReplaceAll(v, "+", "_") // semver build metadata, as Helm tags OCI charts
	if err := imageref.Tag(tag); err != nil {
		return "", fmt.Errorf("this server's version %q cannot be an image tag (%v): give the front end's image in full", v, err)
	}
	return repository + ":" + tag, nil
}

// frontendImage resolves the configured image.
func (cfg Config) frontendImage() (string, error) {
	switch {
	case cfg.FrontendImage != "" && cfg.ImageRepository != "":
		return "", errors.New("give the front end's image (FrontendImage) or its repository (ImageRepository), not both")
	case cfg.FrontendImage != "":
		if err := imageref.Reference(cfg.FrontendImage); err != nil {
			return "", fmt.Errorf("front end image %q %w", cfg.FrontendImage, err)
		}
		return cfg.FrontendImage, nil
	}
	return FrontendImage(cfg.ImageRepository)
}

// Server is a running control plane.
type Server struct {
	cfg       Config
	log       *slog.Logger
	store     *store.Store
	engine    *operation.Engine
	computes  *compute.Service
	metrics   *metrics
	traffic   *traffic
	events    *broker
	artifacts artifact.Store
	services  *service.Manager
	endpoints *endpoint.Manager
	tokens    *tokenCache
	handler   http.Handler
	routes    []route
	ready     atomic.Bool
	id        string
}

// New opens the store (applying migrations), makes the first owner token if
// needed, and prepares the API. Call Serve to run it.
func New(ctx context.Context, cfg Config) (*Server, error) {
	cfg.Logger = cmp.Or(cfg.Logger, slog.Default())
	if cfg.Getenv == nil {
		cfg.Getenv = os.Getenv
	}
	if cfg.DataDir == "" {
		return nil, errors.New("a data directory is required")
	}
	image, err := cfg.frontendImage() // before anything is opened or made
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	box, err := secretbox.Load(cfg.DataDir, cfg.Getenv)
	if err != nil {
		return nil, err
	}
	// Checked before the database, so a wrong store changes nothing.
	arts, err := openArtifacts(ctx, cfg)
	if err != nil {
		return nil, err
	}
	st, err := store.Open(ctx, cfg.DatabaseURL, cfg.DataDir, box)
	if err != nil {
		return nil, err
	}
	cfg.KubernetesVersions = cmp.Or(cfg.KubernetesVersions, preflight.DefaultVersions)
	host, _ := os.Hostname()
	b := make([]byte, 3)
	rand.Read(b)
	s := &Server{
		cfg:     cfg,
		log:     cfg.Logger,
		store:   st,
		events:  newBroker(),
		tokens:  &tokenCache{m: map[string]cachedToken{}, ttl: 5 * time.Second},
		metrics: newMetrics(),
		traffic: newTraffic(),
		id:      fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b)),
	}
	s.cfg.FrontendImage = image
	reg := provider.NewRegistry(append(s.builtinProviders(arts), cfg.Providers...)...)
	s.computes = &compute.Service{Store: st, Providers: reg}
	s.artifacts = arts
	s.engine = &operation.Engine{
		Store: st, Owner: s.id, Lease: cfg.Lease, Poll: cfg.Poll, Planner: s.plan,
		Log:     cfg.Logger.With("component", "operations"),
		OnEvent: s.events.publish,
		OnStart: s.metrics.operationStarted,
		OnDone:  s.metrics.operationDone,
	}
	s.computes.Wake = s.engine.Wake
	s.services = &service.Manager{Store: st, Wake: s.engine.Wake, Providers: reg}
	s.endpoints = &endpoint.Manager{Store: st, Services: s.services}
	if err := s.bootstrapOwner(ctx); err != nil {
		st.Close()
		return nil, err
	}
	s.routes = s.routeTable()
	s.handler = s.buildHandler()
	return s, nil
}

// builtinProviders are the compute types every server offers. A new type
// is one line here.
func (s *Server) builtinProviders(arts artifact.Store) []provider.Provider {
	cfg := s.cfg
	kube := kubernetes.Provider{Versions: cfg.KubernetesVersions, Image: cfg.FrontendImage, ReadyTimeout: cfg.ReadyTimeout,
		ACMEHTTPPort: cfg.ACMEHTTPPort, CertificateRetryBase: cfg.CertificateRetryBase, PublicURL: cfg.PublicURL,
		MetricsInterval: cfg.MetricsInterval}
	azure := cfg.Azure
	azure.DefaultSubscription = cmp.Or(azure.DefaultSubscription, cfg.Getenv("AZURE_SUBSCRIPTION_ID"))
	lrt := &local.Runtime{Store: s.store, Log: s.log.With("component", "local"), DataDir: cfg.DataDir, Artifacts: arts, Limits: cfg.ModelLimits,
		Routes: func(ctx context.Context, sv *store.Service) (*frontend.Route, error) {
			return s.services.Route(ctx, sv)
		},
		EndpointRoutes: func(ctx context.Context, workspaceID, computeID string) ([]*frontend.EndpointRoute, error) {
			return s.endpoints.Routes(ctx, workspaceID, computeID)
		},
		RequestLogs: s.storeRequestLogs}
	if len(cfg.ReplicaLauncher) > 0 {
		lrt.Launcher = cfg.ReplicaLauncher
	}
	loc := local.New(lrt)
	loc.ReadyTimeout = cfg.ReadyTimeout
	return []provider.Provider{
		&kube,
		loc,
		aks.New(kube, azure),
	}
}

// openArtifacts opens the configured artifact store; an S3 bucket is
// checked (endpoint, credentials, bucket) before the server goes on.
func openArtifacts(ctx context.Context, cfg Config) (artifact.Store, error) {
	if cfg.ArtifactStore == "" {
		// Uploads that a killed server left half written are removed.
		d := artifact.Dir{Root: filepath.Join(cfg.DataDir, "artifacts")}
		n, err := d.RemoveStaleUploads()
		if err != nil {
			return nil, fmt.Errorf("artifact store %s: %w", d, err)
		}
		if n > 0 {
			cfg.Logger.Info("removed unfinished uploads from the artifact store", "files", n, "artifacts", d.String())
		}
		return d, nil
	}
	c, err := artifact.ParseS3URL(cfg.ArtifactStore, cfg.Getenv)
	if err != nil {
		return nil, err
	}
	s3, err := artifact.OpenS3(ctx, c)
	if err != nil {
		return nil, err
	}
	// Multipart uploads that killed servers left unfinished: other servers
	// share the bucket, so only those older than any upload are aborted.
	// Best effort: a store that lets us write but not list still works.
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if n, err := s3.RemoveStaleUploads(cctx, staleS3UploadAge); err != nil {
		cfg.Logger.Warn("could not remove unfinished uploads from the artifact store", "artifacts", s3.String(), "err", err)
	} else if n > 0 {
		cfg.Logger.Info("removed unfinished uploads from the artifact store", "uploads", n, "artifacts", s3.String())
	}
	return s3, nil
}

// staleS3UploadAge is the age from which an unfinished multipart upload
// is taken for one a killed server left (an upload of the largest model,
// 4 GiB, takes minutes).
const staleS3UploadAge = 24 * time.Hour

// plan dispatches an operation to the life cycle of its target type.
func (s *Server) plan(op *store.Operation) (*operation.Plan, error) {
	if op.TargetType == service.TargetType {
		return s.services.Plan(op)
	}
	return s.computes.Plan(op)
}

// BuildInfo is what GET /api/v1/version answers: this binary's build and
// the front-end image the server installs.
func (s *Server) BuildInfo() api.BuildInfo {
	v := version.Get()
	return api.BuildInfo{Version: v.Version, Commit: v.Commit, GoVersion: v.GoVersion, Platform: v.Platform,
		APIVersion: api.Version, FrontendImage: s.cfg.FrontendImage}
}

// Store gives tests and tools access to the store.
func (s *Server) Store() *store.Store { return s.store }

// Serve answers on ln and runs operations until ctx ends, then shuts down
// gracefully: in-flight requests finish and running operations are
// released so another server (or the next start) resumes them.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	engineCtx, stopEngine := context.WithCancel(context.Background())
	engineDone := make(chan struct{})
	go func() {
		defer close(engineDone)
		s.engine.Run(engineCtx)
	}()
	go s.events.pollLoop(engineCtx)
	go func() {
		n, err := s.services.PublishRoutes(engineCtx)
		if err != nil {
			s.log.Warn("some service routes could not be written again at start", "published", n, "err", err)
		}
		if n, err := s.endpoints.PublishRoutes(engineCtx); err != nil {
			s.log.Warn("some endpoint routes could not be written again at start", "published", n, "err", err)
		}
	}()
	go s.reconcileLoop(engineCtx)
	go s.renewLoop(engineCtx)
	go s.collectLoop(engineCtx)
	// What providers run in this process (the local compute's front ends
	// and replicas).
	var runners sync.WaitGroup
	for _, t := range s.computes.Providers.Types() {
		if p, ok := s.computes.Providers.Get(t); ok {
			if rn, ok := p.(provider.Runner); ok {
				runners.Go(func() { rn.Run(engineCtx) })
			}
		}
	}
	hs := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	s.ready.Store(true)
	s.log.Info("berth server listening", "address", "http://"+ln.Addr().String(), "data_dir", s.cfg.DataDir,
		"database", s.store.Dialect(), "artifacts", fmt.Sprint(s.artifacts), "server_id", s.id,
		"version", version.Get().Version, "frontend_image", s.cfg.FrontendImage)
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	s.ready.Store(false)
	s.log.Info("shutting down")
	shCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s.events.closeAll()
	hs.Shutdown(shCtx)
	stopEngine()
	<-engineDone
	runners.Wait()
	s.store.Close()
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// writeJSON writes v with status. It returns nil, for a handler to end
// with: once the status is sent, a write that fails (the client left) has
// no one left to answer.
func writeJSON(w http.ResponseWriter, status int, v any) error {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	enc.Encode(v)
	return nil
}

// writeError renders any error as the API's error shape. Errors that are not
// problems are internal: logged, and answered without their text.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	if p, ok := problem.As(err); ok {
		writeJSON(w, p.Status, api.ErrorResponse{Error: p.Body})
		return
	}
	if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
		return // the client went away
	}
	id := make([]byte, 4)
	rand.Read(id)
	ref := hex.EncodeToString(id)
	s.log.Error("internal error", "method", r.Method, "path", r.URL.Path, "err", err, "ref", ref)
	writeJSON(w, http.StatusInternalServerError, api.ErrorResponse{Error: api.Error{Code: api.CodeInternal,
		Message: "the server failed to handle the request (reference " + ref + " in its log)"}})
}

func (s *Server) buildHandler() http.Handler {
	mux := http.NewServeMux()
	for _, rt := range s.routes {
		mux.HandleFunc(rt.Method+" "+rt.Path, func(w http.ResponseWriter, r *http.Request) {
			s.serveRoute(w, r, rt)
		})
	}
	// The Studio (the web UI) has every path outside the API; it calls the
	// API in process with its user's token.
	ui, err := studio.New(studio.Options{API: mux, Seal: s.store.Seal, Open: s.store.Open, Log: s.log.With("component", "studio")})
	if err != nil {
		panic(err) // the embedded templates are checked by the tests
	}
	// Everything else under the API gets the JSON error shape.
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api" || strings.HasPrefix(r.URL.Path, "/api/") {
			s.serveUnknown(w, r, mux)
			return
		}
		ui.ServeHTTP(w, r)
	})
	return mux
}

// serveUnknown answers paths no route matches: 405 when another method
// would match, 404 otherwise.
func (s *Server) serveUnknown(w http.ResponseWriter, r *http.Request, mux *http.ServeMux) {
	var allowed []string
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPatch, http.MethodDelete, http.MethodPut} {
		if m == r.Method {
			continue
		}
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, pattern := mux.Handler(probe); pattern != "" && pattern != "/" {
			allowed = append(allowed, m)
		}
	}
	if len(allowed) > 0 {
		w.Header().Set("Allow", strings.Join(allowed, ", "))
		s.writeError(w, r, problem.New(http.StatusMethodNotAllowed, api.CodeMethodNotAllowed, "%s is not allowed on %s (allowed: %s)", r.Method, r.URL.Path, strings.Join(allowed, ", ")))
		return
	}
	s.writeError(w, r, problem.NotFound("no such API path: %s %s (see /api/v1/openapi.json)", r.Method, r.URL.Path))
}

// serveRoute authenticates, authorises, runs the handler and records the
// request in logs and metrics.
func (s *Server) serveRoute(w http.ResponseWriter, r *http.Request, rt route) {
	start := time.Now()
	sw := &httpx.StatusWriter{ResponseWriter: w}
	defer func() {
		if v := recover(); v != nil {
			s.log.Error("panic in handler", "route", rt.ID, "panic", v)
			if sw.Status == 0 {
				s.writeError(sw, r, fmt.Errorf("panic: %v", v))
			}
		}
		d := time.Since(start)
		s.metrics.request(rt.ID, r.Method, sw.Status, d)
		if !rt.Quiet {
			s.log.Info("request", "method", r.Method, "path", r.URL.Path, "status", sw.Status, "duration_ms", float64(d.Microseconds())/1000, "route", rt.ID)
		}
	}()
	if rt.Role == "" {
		if err := rt.Handle(sw, r, nil); err != nil {
			s.writeError(sw, r, err)
		}
		return
	}
	p, err := s.authenticate(r)
	if err != nil {
		s.writeError(sw, r, err)
		return
	}
	if !p.can(rt.Role) {
		s.writeError(sw, r, problem.Forbidden("this call needs the %s role; your token (%s) has role %s", rt.Role, p.token.ID, p.token.Role))
		return
	}
	if ws := r.PathValue("workspace"); ws != "" {
		if !p.inWorkspace(ws) {
			s.writeError(sw, r, problem.Forbidden("your token (%s) is limited to workspace %q", p.token.ID, p.token.Workspace))
			return
		}
		if p.ws, err = s.workspace(r.Context(), ws); err != nil {
			s.writeError(sw, r, err)
			return
		}
	}
	ctx := service.WithRole(context.WithValue(r.Context(), principalKey{}, p), p.token.Role)
	if err := rt.Handle(sw, r.WithContext(ctx), p); err != nil {
		s.writeError(sw, r, err)
	}
}
