package frontend

import (
	"cmp"
	"context"
	"encoding/json"
	"math"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
)

// Autoscaler sets each autoscaled service's replica count from its load,
// as the reference does: eager up, conservative down. Only the holder of
// the Lease decides.
type Autoscaler struct {
	Client    kubernetes.Interface
	Frontend  *Frontend
	Namespace string // where the Lease lives
	Identity  string // this front end (pod name)
	// Peers returns the other front ends' admin addresses (host:port).
	Peers func() []string
	// DownWindow is how long lower demand must last before scaling down (default 60s).
	DownWindow time.Duration
	// Tick is the loop's resolution (default 250ms); services are checked
	// every refreshSeconds.
	Tick time.Duration
	// Scaler reads and writes replica counts; by default the Deployment's
	// scale subresource (Client must be set).
	Scaler Scaler
	// NoElection runs without a Lease: for a single front end that is the
	// only one deciding (the local compute).
	NoElection bool

	mu      sync.Mutex
	history map[string][]sample
	last    map[string]time.Time
	since   map[string]time.Time
	http    *http.Client

	// Waking from zero (wake): the services to check now, a signal for
	// the loop, and when this front end last told its peers of each.
	wakeMu  sync.Mutex
	woken   map[string]bool
	told    map[string]time.Time
	kicked  chan struct{}
	leading atomic.Bool
}

type sample struct {
	at   time.Time
	want int
}

// Scaler reads and sets a service's replica count.
type Scaler interface {
	Replicas(ctx context.Context, rt *Route) (int, error)
	SetReplicas(ctx context.Context, rt *Route, n int) error
}

// deploymentScaler scales the service's Deployment.
type deploymentScaler struct{ client kubernetes.Interface }

func (d deploymentScaler) Replicas(ctx context.Context, rt *Route) (int, error) {
	sc, err := d.client.AppsV1().Deployments(rt.Namespace).GetScale(ctx, rt.Autoscale.Deployment, metav1.GetOptions{})
	if err != nil {
		return 0, err
	}
	return int(sc.Spec.Replicas), nil
}

func (d deploymentScaler) SetReplicas(ctx context.Context, rt *Route, n int) error {
	deps := d.client.AppsV1().Deployments(rt.Namespace)
	sc, err := deps.GetScale(ctx, rt.Autoscale.Deployment, metav1.GetOptions{})
	if err != nil {
		return err
	}
	_, err = deps.UpdateScale(ctx, rt.Autoscale.Deployment, &autoscalingv1.Scale{
		ObjectMeta: metav1.ObjectMeta{Name: rt.Autoscale.Deployment, Namespace: rt.Namespace, ResourceVersion: sc.ResourceVersion},
		Spec:       autoscalingv1.ScaleSpec{Replicas: int32(n)},
	}, metav1.UpdateOptions{FieldManager: "berth-fe-autoscaler"})
	return err
}

// LeaseName is the autoscaler's Lease.
const LeaseName = "berth-fe-autoscaler"

// Run takes part in the leader election and, while leading, scales.
func (a *Autoscaler) Run(ctx context.Context) {
	a.init()
	if a.NoElection {
		a.lead(ctx)
		return
	}
	lock := &resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Name: LeaseName, Namespace: a.Namespace},
		Client:     a.Client.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: a.Identity},
	}
	for ctx.Err() == nil {
		leaderelection.RunOrDie(ctx, leaderelection.LeaderElectionConfig{
			Lock: lock, ReleaseOnCancel: true,
			LeaseDuration: 15 * time.Second, RenewDeadline: 10 * time.Second, RetryPeriod: 2 * time.Second,
			Callbacks: leaderelection.LeaderCallbacks{
				OnStartedLeading: func(ctx context.Context) {
					a.history, a.since = map[string][]sample{}, map[string]time.Time{}
					a.Frontend.log.Info("autoscaler: leading", "identity", a.Identity)
					a.lead(ctx)
				},
				OnStoppedLeading: func() { a.Frontend.log.Info("autoscaler: not leading", "identity", a.Identity) },
			},
		})
	}
}

func (a *Autoscaler) lead(ctx context.Context) {
	t := time.NewTicker(a.Tick)
	defer t.Stop()
	a.leading.Store(true)
	defer a.leading.Store(false)
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-a.kicked:
		}
		a.wakeMu.Lock()
		woken := a.woken
		a.woken = map[string]bool{}
		a.wakeMu.Unlock()
		now := time.Now()
		for _, rt := range a.Frontend.Services() {
			if !rt.Autoscale.Enabled || rt.Autoscale.Deployment == "" {
				continue
			}
			every := time.Duration(rt.Autoscale.RefreshSeconds) * time.Second
			if now.Sub(a.last[rt.Service]) < every && !woken[rt.Service] {
				continue
			}
			a.last[rt.Service] = now
			a.scale(ctx, rt, now)
		}
	}
}

// wake has a service scaled up from zero now, without waiting for the
// loop's period: a request for it waits in a queue. The leader reads the
// loads (its peers' too, as always) at once and sees that request; a front
// end that does not lead tells its peers (POST /internal/wake), one of
// which leads. Only the loads decide, so a wake without a waiting request
// scales nothing.
func (a *Autoscaler) wake(service string, tellPeers bool) {
	a.wakeMu.Lock()
	a.woken[service] = true
	tell := tellPeers && a.Peers != nil && !a.leading.Load() && time.Since(a.told[service]) > 500*time.Millisecond
	if tell {
		a.told[service] = time.Now()
	}
	a.wakeMu.Unlock()
	select {
	case a.kicked <- struct{}{}:
	default:
	}
	if !tell {
		return
	}
	go func() {
		for _, p := range a.Peers() {
			resp, err := a.http.Post("http://"+p+"/internal/wake?service="+url.QueryEscape(service), "", nil)
			if err != nil {
				a.Frontend.log.Warn("autoscaler: waking a service through a peer", "service", service, "peer", p, "err", err)
				continue
			}
			resp.Body.Close()
		}
	}()
}

// wake asks this front end's autoscaler, if it runs one, to scale a
// service up from zero now.
func (f *Frontend) wake(service string) {
	if w := f.waker.Load(); w != nil {
		(*w)(service, true)
	}
}

// serveWake is a peer's word that a request waits for a service at zero
// (POST /internal/wake?service=NAME).
func (f *Frontend) serveWake(w http.ResponseWriter, r *http.Request) {
	if wk := f.waker.Load(); wk != nil && f.service(r.URL.Query().Get("service")) != nil {
		(*wk)(r.URL.Query().Get("service"), false)
	}
	w.WriteHeader(http.StatusNoContent)
}

// wakes tells whether the service scales up from zero: a request finding
// it at 0 replicas waits for one, so for choosing among services (versions)
// it counts as ready.
func (s *service) wakes() bool {
	rt := s.route.Load()
	return rt != nil && rt.wakes()
}

// init fills the defaults and takes the front end's wake-ups.
func (a *Autoscaler) init() {
	a.DownWindow = cmp.Or(a.DownWindow, 60*time.Second)
	a.Tick = cmp.Or(a.Tick, 250*time.Millisecond)
	a.history, a.last, a.since = map[string][]sample{}, map[string]time.Time{}, map[string]time.Time{}
	a.http = &http.Client{Timeout: 500 * time.Millisecond}
	a.Scaler = cmp.Or[Scaler](a.Scaler, deploymentScaler{a.Client})
	a.woken, a.told, a.kicked = map[string]bool{}, map[string]time.Time{}, make(chan struct{}, 1)
	wake := a.wake
	a.Frontend.waker.Store(&wake)
}

// Wanted is the replica count for a load: (in flight + queued) in replica
// units over the target utilisation, within [min, max].
func Wanted(l Load, rt *Route) int {
	c := float64(max(rt.MaxConcurrentRequestsPerContainer, 1))
	load := float64(l.InFlight+l.Queued) / c
	want := int(math.Ceil(load / (float64(rt.Autoscale.TargetUtilization) / 100)))
	return min(max(want, rt.Autoscale.Min), rt.Autoscale.Max)
}

// totalLoad adds this front end's load and its peers'.
func (a *Autoscaler) totalLoad(ctx context.Context, service string) Load {
	total, _ := a.Frontend.LoadOf(service)
	if a.Peers == nil {
		return total
	}
	for _, p := range a.Peers() {
		req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+p+"/internal/load", nil)
		resp, err := a.http.Do(req)
		if err != nil {
			continue
		}
		var m map[string]Load
		json.NewDecoder(resp.Body).Decode(&m)
		resp.Body.Close()
		l := m[service]
		total.InFlight += l.InFlight
		total.Queued += l.Queued
		total.Replicas += l.Replicas
		total.IdleMs = min(total.IdleMs, l.IdleMs)
	}
	return total
}

func (a *Autoscaler) scale(ctx context.Context, rt *Route, now time.Time) {
	load := a.totalLoad(ctx, rt.Service)
	want := Wanted(load, rt)
	if _, ok := a.since[rt.Service]; !ok {
		a.since[rt.Service] = now
	}
	h := append(a.history[rt.Service], sample{now, want})
	for len(h) > 0 && now.Sub(h[0].at) > a.DownWindow {
		h = h[1:]
	}
	a.history[rt.Service] = h
	a.Frontend.metrics.desiredReplicas.WithLabelValues(rt.Service).Set(float64(want))
	cur, err := a.Scaler.Replicas(ctx, rt)
	if err != nil {
		a.Frontend.log.Warn("autoscaler: read scale", "service", rt.Service, "err", err)
		return
	}
	target := cur
	switch {
	case want > cur:
		target = want // eager up
	case want < cur:
		// Down only to the most wanted over the window.
		peak := 0
		for _, s := range h {
			peak = max(peak, s.want)
		}
		if now.Sub(a.since[rt.Service]) < a.DownWindow {
			peak = cur // not watched for a full window yet (a new leader)
		}
		target = max(peak, rt.Autoscale.Min)
	}
	if cur < rt.Autoscale.Min {
		target = rt.Autoscale.Min
	}
	if rt.wakes() {
		target = toZero(load, rt, cur, target)
	}
	if target == cur {
		return
	}
	if err := a.Scaler.SetReplicas(ctx, rt, target); err != nil {
		a.Frontend.log.Warn("autoscaler: write scale", "service", rt.Service, "err", err)
		return
	}
	a.Frontend.log.Info("autoscaler: scaled", "service", rt.Service, "from", cur, "to", target, "wanted", want)
}

// toZero adjusts the target of a service that scales to zero. While none
// of its replicas is ready (waking from 0), it asks for the replicas the
// waiting requests fill (one for one request), not the usual headroom. It
// goes to 0 only once its replicas are ready (not while the first one
// starts) and every front end has seen them idle for the scale-to-zero
// time; down to 1 at most before that.
func toZero(l Load, rt *Route, cur, target int) int {
	switch {
	case l.Replicas == 0 && target > cur:
		full := *rt
		full.Autoscale.TargetUtilization = 100
		return max(cur, Wanted(l, &full))
	case cur > 0 && l.Replicas > 0 && l.InFlight+l.Queued == 0 && time.Duration(l.IdleMs)*time.Millisecond >= rt.idleLimit():
		return 0
	case cur > 0:
		return max(target, 1)
	}
	return target
}
