package server

import (
	"cmp"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	dto "github.com/prometheus/client_model/go"
	"golang.org/x/sync/errgroup"

	"github.com/berth-ml/berth/api"
	trafficstore "github.com/berth-ml/berth/internal/metrics"
	"github.com/berth-ml/berth/internal/problem"
	"github.com/berth-ml/berth/internal/provider"
	"github.com/berth-ml/berth/internal/store"
)

// traffic keeps what the computes' front ends served, for the metrics API
// and the Studio's plots. Cluster front ends report their metrics to the
// server (provider.MetricsReporter); the server reads the ones in its own
// process (provider.MetricsSource). Either way, each report's activity
// since the same front end's previous one is recorded per service and for
// the compute as a whole.
type traffic struct {
	store   *trafficstore.Store
	started time.Time // when this server began recording

	mu       sync.Mutex
	differs  map[string]*trafficstore.Differ // by compute id
	tokens   map[[32]byte]reviewed           // front-end tokens checked lately
	services map[string]servicesSeen         // by compute id
}

// servicesSeen is a compute's services as last read: every pod of every
// front end reports each interval, and one read serves them all for that
// long.
type servicesSeen struct {
	list []store.Service
	at   time.Time
}

type reviewed struct {
	compute, source string
	until           time.Time
}

// reviewFor is how long a checked front-end token is trusted without
// asking its cluster again (front ends report every 10 seconds).
const reviewFor = 5 * time.Minute

func newTraffic() *traffic {
	return &traffic{store: trafficstore.New(0), started: time.Now(),
		differs: map[string]*trafficstore.Differ{}, tokens: map[[32]byte]reviewed{}, services: map[string]servicesSeen{}}
}

// record adds one front end's report to its compute's series.
// services gives the compute's services, sure to be fresh for the names
// asked for (a service deployed a moment ago is in it).
func (t *traffic) record(c *store.Compute, services func(names []string) ([]store.Service, bool), source string, families []*dto.MetricFamily, now time.Time) {
	t.mu.Lock()
	d := t.differs[c.ID]
	if d == nil {
		d = &trafficstore.Differ{Since: t.started}
		t.differs[c.ID] = d
	}
	deltas := d.Next(source, families)
	d.Prune(now.Add(-reviewFor))
	t.mu.Unlock()
	if deltas == nil {
		return
	}
	t.store.Add(trafficstore.Key{Compute: c.ID}, now, trafficstore.Total(deltas))
	names := make([]string, 0, len(deltas))
	for svc := range deltas {
		if svc != "" {
			names = append(names, svc)
		}
	}
	svcs, ok := services(names)
	if !ok {
		return
	}
	known := map[string]bool{"": true}
	for _, sv := range svcs {
		known[sv.Name] = true
		if d, ok := deltas[sv.Name]; ok {
			// Only the autoscaler reports what it wants; a fixed count is
			// the spec's.
			if a := sv.Autoscale; d.Desired == 0 && (a == nil || !a.Enabled) {
				d.Desired = float64(sv.Replicas)
			}
			t.store.Add(trafficstore.Key{Compute: c.ID, Service: sv.Name}, now, d)
		}
	}
	// A front end goes on reporting a deleted service's counters: its
	// series goes with it.
	for svc := range deltas {
		if !known[svc] {
			t.store.Forget(trafficstore.Key{Compute: c.ID, Service: svc})
		}
	}
}

// forget drops the series and state of computes not in live, and the
// front-end tokens whose check has expired.
func (t *traffic) forget(live map[string]bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for id := range t.differs {
		if !live[id] {
			delete(t.differs, id)
			delete(t.services, id)
			t.store.ForgetCompute(id)
		}
	}
	now := time.Now()
	for k, r := range t.tokens {
		if now.After(r.until) {
			delete(t.tokens, k)
		}
	}
}

// collectLoop reads the front ends in this process every interval, and
// forgets computes that are gone, until ctx ends.
func (s *Server) collectLoop(ctx context.Context) {
	every := s.cfg.MetricsInterval
	if every < 0 {
		return
	}
	periodically(ctx, cmp.Or(every, trafficstore.Fine), func() { s.collect(ctx, time.Now()) })
}

func (s *Server) collect(ctx context.Context, now time.Time) {
	live := map[string]bool{}
	var local []store.Compute
	s.forEachCompute(ctx, func(_ *api.Workspace, c *store.Compute) {
		live[c.ID] = true
		p, _ := s.computes.Providers.Get(c.Type)
		if _, ok := p.(provider.MetricsSource); ok && c.ProvisioningState == api.StateSucceeded {
			local = append(local, *c)
		}
	})
	s.traffic.forget(live)
	var g errgroup.Group
	g.SetLimit(8)
	for _, c := range local {
		g.Go(func() error {
			rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			p, _ := s.computes.Providers.Get(c.Type)
			bySource, err := p.(provider.MetricsSource).FrontendMetrics(rctx, &c)
			if err != nil {
				s.log.Debug("front-end metrics unavailable", "compute", c.Name, "err", err)
				return nil
			}
			for source, fams := range bySource {
				s.traffic.record(&c, s.servicesOf(rctx, &c), source, fams, now)
			}
			return nil
		})
	}
	g.Wait()
}

// reportFrontendMetrics takes a cluster front end's report: its metrics
// in Prometheus's text format, with its projected service-account token.
// It has no Berth token: the compute's cluster vouches for the pod.
func (s *Server) reportFrontendMetrics(w http.ResponseWriter, r *http.Request, _ *principal) error {
	return s.frontendReport(w, r, 8<<20, func(c *store.Compute, source string, body io.Reader) error {
		fams, err := trafficstore.ParseText(body)
		if err != nil {
			return problem.New(http.StatusBadRequest, api.CodeValidation, "%v", err)
		}
		s.traffic.record(c, s.servicesOf(r.Context(), c), source, fams, time.Now())
		return nil
	})
}

// frontendReport takes what a cluster's front end sends (its body up to
// limit bytes) once its token is checked (frontendCompute), and answers
// 204.
func (s *Server) frontendReport(w http.ResponseWriter, r *http.Request, limit int64, take func(c *store.Compute, source string, body io.Reader) error) error {
	c, source, err := s.frontendCompute(r)
	if err != nil {
		return err
	}
	if err := take(c, source, io.LimitReader(r.Body, limit)); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// frontendCompute checks a cluster front end's projected service-account
// token with the path's compute and returns the compute and the front
// end's name.
func (s *Server) frontendCompute(r *http.Request) (*store.Compute, string, error) {
	ctx := r.Context()
	c, err := s.store.GetComputeByID(ctx, r.PathValue("compute"))
	if errors.Is(err, store.ErrNotFound) {
		return nil, "", problem.NotFound("compute %q not found", r.PathValue("compute"))
	}
	if err != nil {
		return nil, "", err
	}
	p, _ := s.computes.Providers.Get(c.Type)
	rep, ok := p.(provider.MetricsReporter)
	if !ok {
		return nil, "", problem.NotFound("compute %q has no front end that reports metrics", c.Name)
	}
	token, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	token = strings.TrimSpace(token)
	if token == "" {
		return nil, "", problem.New(http.StatusUnauthorized, api.CodeUnauthorized, "a front end reports with its projected service-account token (Authorization: Bearer)")
	}
	key := sha256.Sum256([]byte(token))
	s.traffic.mu.Lock()
	known, ok := s.traffic.tokens[key]
	s.traffic.mu.Unlock()
	if !ok || known.compute != c.ID || time.Now().After(known.until) {
		source, err := rep.ReviewFrontendToken(ctx, c, token)
		if err != nil {
			return nil, "", err
		}
		known = reviewed{compute: c.ID, source: source, until: time.Now().Add(reviewFor)}
		s.traffic.mu.Lock()
		s.traffic.tokens[key] = known
		s.traffic.mu.Unlock()
	}
	return c, known.source, nil
}

// servicesOf gives a compute's services for record: read at most once per
// interval (every pod of every front end reports each interval), and again
// when a name asked for is not among them, a service deployed a moment ago
// (front ends drop a deleted service's counters, so a name they report is
// one that exists, or did until a moment ago). It reports false when the
// read failed.
func (s *Server) servicesOf(ctx context.Context, c *store.Compute) func(names []string) ([]store.Service, bool) {
	return func(names []string) ([]store.Service, bool) {
		t := s.traffic
		t.mu.Lock()
		seen, ok := t.services[c.ID]
		t.mu.Unlock()
		if ok && time.Since(seen.at) < trafficstore.Fine && allNamed(seen.list, names) {
			return seen.list, true
		}
		list, err := s.store.ListServices(ctx, c.WorkspaceID, c.ID)
		if err != nil {
			s.log.Debug("services unavailable for front-end metrics", "compute", c.Name, "err", err)
			return nil, false
		}
		t.mu.Lock()
		t.services[c.ID] = servicesSeen{list: list, at: time.Now()}
		t.mu.Unlock()
		return list, true
	}
}

func allNamed(list []store.Service, names []string) bool {
	for _, n := range names {
		if !slices.ContainsFunc(list, func(sv store.Service) bool { return sv.Name == n }) {
			return false
		}
	}
	return true
}

var sinceParam = queryParam{Name: "since", Type: "string", Doc: "how far back, as a duration (10s to 24h; default 1h)"}

// metricsSince reads ?since= (default an hour).
func metricsSince(r *http.Request) (time.Duration, error) {
	v := r.URL.Query().Get("since")
	if v == "" {
		return time.Hour, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < trafficstore.Fine || d > trafficstore.CoarseSpan {
		return 0, problem.Validation("", []api.ErrorDetail{problem.Detail(api.CodeInvalidValue, "since",
			"since %q: give a duration from 10s to 24h, like 15m or 6h (the server keeps 24 hours)", v)})
	}
	return d, nil
}

func (s *Server) writeMetrics(w http.ResponseWriter, r *http.Request, computeID string, out api.Metrics) error {
	since, err := metricsSince(r)
	if err != nil {
		return err
	}
	step, points := s.traffic.store.Query(trafficstore.Key{Compute: computeID, Service: out.Service}, since, time.Now())
	out.Since, out.StepSeconds, out.Points = since.String(), int(step/time.Second), points
	if out.Points == nil {
		out.Points = []api.MetricsPoint{}
	}
	return writeJSON(w, http.StatusOK, out)
}

func (s *Server) serviceMetrics(w http.ResponseWriter, r *http.Request, p *principal) error {
	sv, err := s.services.Get(r.Context(), p.ws, r.PathValue("service"))
	if err != nil {
		return err
	}
	return s.writeMetrics(w, r, sv.ComputeID, api.Metrics{Compute: sv.Compute, Service: sv.Name})
}

func (s *Server) computeMetrics(w http.ResponseWriter, r *http.Request, p *principal) error {
	c, err := s.computes.Get(r.Context(), p.ws, r.PathValue("compute"))
	if err != nil {
		return err
	}
	return s.writeMetrics(w, r, c.ID, api.Metrics{Compute: c.Name})
}
