package frontend

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"
)

// zeroRoute is a route that scales to zero after idle (autoscale min 0).
func zeroRoute(t *testing.T, idle time.Duration, coldStartMs int) *Route {
	t.Helper()
	rt, err := ParseRoute(mustJSON(Route{Service: "cold", Namespace: "default", Selector: map[string]string{"app": "cold"}, Port: 5001,
		Auth: AuthNone, MaxQueueWaitMs: 100, ColdStartTimeoutMs: coldStartMs,
		// A long refresh period: only a kick scales up soon.
		// Utilisation 100: one request in flight is one replica's worth.
		Autoscale: Autoscale{Enabled: true, Min: 0, Max: 3, RefreshSeconds: 60, TargetUtilization: 100, Deployment: "cold",
			ScaleToZeroAfterSeconds: int(idle / time.Second)}}))
	if err != nil {
		t.Fatal(err)
	}
	return rt
}

// replicaScaler is the autoscaler's view of a service whose replicas are
// loopback model servers: setting n replicas hands the front end the
// first n of them (started on demand), as a Deployment's ready pods would.
type replicaScaler struct {
	t     *testing.T
	fes   []*Frontend   // that see the replicas
	start time.Duration // how long a replica takes to be ready
	mu    sync.Mutex
	n     int
	sets  []int
	backs []*backend
}

func (s *replicaScaler) Replicas(context.Context, *Route) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n, nil
}

func (s *replicaScaler) SetReplicas(_ context.Context, rt *Route, n int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.n = n
	s.sets = append(s.sets, n)
	var reps []Replica
	for i := 0; i < n; i++ {
		if i == len(s.backs) {
			s.backs = append(s.backs, newBackend(s.t, nil))
		}
		reps = append(reps, Replica{Name: "pod-" + string(rune('a'+i)), Addr: s.backs[i].addr(), Slots: 1})
	}
	for _, fe := range s.fes {
		time.AfterFunc(s.start, func() { fe.SetReplicas(rt.Service, reps, "") })
	}
	return nil
}

func (s *replicaScaler) history() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]int(nil), s.sets...)
}

func runAutoscaler(t *testing.T, f *Frontend, sc Scaler) {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go (&Autoscaler{Frontend: f, NoElection: true, Scaler: sc, Tick: 20 * time.Millisecond}).Run(ctx)
	for f.waker.Load() == nil {
		time.Sleep(time.Millisecond)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(10 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("not within 10s: %s", what)
		}
	}
}

// A request for a service at 0 replicas is held, the autoscaler is kicked
// to start one replica (not two, not after its 60 s period), and the
// request is served by it.
func TestHeldRequestServedAfterTheReplicaStarts(t *testing.T) {
	f, base := frontWith(t, zeroRoute(t, time.Hour, 30000))
	sc := &replicaScaler{t: t, fes: []*Frontend{f}}
	runAutoscaler(t, f, sc)
	if !f.service("cold").wakes() {
		t.Fatal("a min-0 service must count as able to wake")
	}
	a := post(t, base+"/api/v1/service/cold/score", "", `{"x":1}`)
	if a.code != 200 || !strings.Contains(a.body, `"path":"/score"`) {
		t.Fatalf("held request: %d %s", a.code, a.body)
	}
	if h := sc.history(); len(h) != 1 || h[0] != 1 {
		t.Fatalf("scaled %v, want one step to 1 replica", h)
	}
}

// With no replica coming, the request gets 503 once the cold-start timeout
// (above the queue wait) has passed, and the queue is empty again.
func TestColdStartTimeoutIs503(t *testing.T) {
	f, base := frontWith(t, zeroRoute(t, time.Hour, 400))
	start := time.Now()
	a := post(t, base+"/api/v1/service/cold/score", "", `{}`)
	if a.code != 503 || !strings.Contains(a.body, "ColdStartTimeout") || !strings.Contains(a.body, "within 400 ms") {
		t.Fatalf("got %d %s", a.code, a.body)
	}
	if waited := time.Since(start); waited < 400*time.Millisecond {
		t.Fatalf("answered after %s, before the 400 ms cold-start timeout", waited)
	}
	if l, _ := f.LoadOf("cold"); l.Queued != 0 {
		t.Fatalf("left %d in the queue", l.Queued)
	}
}

// The autoscaler scales to 0 once the replicas were idle for the
// scale-to-zero time, not while a request is in flight; a later request
// wakes the service again.
func TestIdleServiceScalesToZeroAndWakes(t *testing.T) {
	rt := zeroRoute(t, time.Second, 30000)
	rt.Autoscale.RefreshSeconds = 1
	f, base := frontWith(t, rt)
	sc := &replicaScaler{t: t, fes: []*Frontend{f}}
	sc.SetReplicas(context.Background(), f.service("cold").route.Load(), 1)
	waitFor(t, "1 replica", func() bool { l, _ := f.LoadOf("cold"); return l.Replicas == 1 })
	sc.backs[0].delay.Store(int64(1500 * time.Millisecond)) // in flight longer than the idle time
	runAutoscaler(t, f, sc)
	if a := post(t, base+"/api/v1/service/cold/score", "", `{}`); a.code != 200 {
		t.Fatalf("slow request: %d %s", a.code, a.body)
	}
	if h := sc.history(); len(h) != 1 {
		t.Fatalf("scaled %v while a request was in flight", h)
	}
	waitFor(t, "scaled to 0 after 1 s idle", func() bool { n, _ := sc.Replicas(context.Background(), nil); return n == 0 })
	waitFor(t, "0 replicas at the front end", func() bool { l, _ := f.LoadOf("cold"); return l.Replicas == 0 })
	sc.backs[0].delay.Store(0)
	if a := post(t, base+"/api/v1/service/cold/score", "", `{}`); a.code != 200 {
		t.Fatalf("request after scaling to zero: %d %s", a.code, a.body)
	}
	if h := sc.history(); len(h) != 3 || h[1] != 0 || h[2] != 1 {
		t.Fatalf("scaled %v, want 1, 0, 1", h)
	}
}

// Routes written before scale to zero (no scaleToZeroAfterSeconds) keep
// meaning at least 1 replica, and a service at 0 replicas that cannot
// wake refuses at once.
func TestOldRouteKeepsMinOne(t *testing.T) {
	old := `{"service":"s","namespace":"d","selector":{"app":"s"},"port":5001,"auth":"none",
		"autoscale":{"enabled":true,"min":0,"max":0,"refreshSeconds":1,"targetUtilization":70,"deployment":"s"}}`
	rt, err := ParseRoute([]byte(old))
	if err != nil {
		t.Fatal(err)
	}
	if rt.Autoscale.Min != 1 || rt.Autoscale.Max != 10 || rt.wakes() {
		t.Fatalf("old route: %+v wakes=%v", rt.Autoscale, rt.wakes())
	}
	rt.Service = "cold"
	_, base := frontWith(t, rt)
	if a := post(t, base+"/api/v1/service/cold/score", "", `{}`); a.code != 503 || !strings.Contains(a.body, "NoReadyReplicas") {
		t.Fatalf("no replicas, cannot wake: %d %s", a.code, a.body)
	}
	if z := zeroRoute(t, 2*time.Second, 0); z.Autoscale.Min != 0 || z.Autoscale.Max != 3 || !z.wakes() || z.ColdStartTimeoutMs != 60000 || z.coldWait() != time.Minute {
		t.Fatalf("scale-to-zero route: %+v, cold start %d", z.Autoscale, z.ColdStartTimeoutMs)
	}
}

// A request held at one front end goes to the peer that got the slots
// of the replica that woke.
func TestHeldRequestForwardedWhenThePeerHoldsTheSlots(t *testing.T) {
	f, base := frontWith(t, zeroRoute(t, time.Hour, 30000))
	b := newBackend(t, nil)
	_, peerBase := frontWith(t, zeroRoute(t, time.Hour, 30000), b)
	done := make(chan answer, 1)
	go func() { done <- post(t, base+"/api/v1/service/cold/score", "", `{}`) }()
	waitFor(t, "the request queued", func() bool { l, _ := f.LoadOf("cold"); return l.Queued == 1 })
	f.SetReplicas("cold", nil, strings.TrimPrefix(peerBase, "http://"))
	if a := <-done; a.code != 200 || b.hits.Load() != 1 {
		t.Fatalf("forwarded: %d %s", a.code, a.body)
	}
}

// With two front ends, a request held at the one that does not lead gets
// the leader to wake the service: it tells its peers (/internal/wake), and
// the leader reads its load and sees the request. The leader's refresh
// period is 60 s, the cold-start timeout 5 s: only the wake-up serves it.
func TestHeldRequestAtAFollowerWakesTheLeader(t *testing.T) {
	follower, base := frontWith(t, zeroRoute(t, time.Hour, 5000))
	leader, _ := frontWith(t, zeroRoute(t, time.Hour, 5000))
	followerAdmin := strings.TrimPrefix(ServeForTest(t, follower.AdminHandler(), nil), "http://")
	leaderAdmin := strings.TrimPrefix(ServeForTest(t, leader.AdminHandler(), nil), "http://")
	sc := &replicaScaler{t: t, fes: []*Frontend{follower, leader}}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go (&Autoscaler{Frontend: leader, NoElection: true, Scaler: sc, Tick: 20 * time.Millisecond,
		Peers: func() []string { return []string{followerAdmin} }}).Run(ctx)
	// The follower's autoscaler takes wake-ups but never leads.
	(&Autoscaler{Frontend: follower, Peers: func() []string { return []string{leaderAdmin} }}).init()
	waitFor(t, "the leader's first look", func() bool { return leader.waker.Load() != nil && len(sc.history()) == 0 })
	time.Sleep(100 * time.Millisecond) // past the leader's first pass over the services
	if a := post(t, base+"/api/v1/service/cold/score", "", `{}`); a.code != 200 {
		t.Fatalf("request held at the follower: %d %s", a.code, a.body)
	}
	if h := sc.history(); len(h) != 1 || h[0] != 1 {
		t.Fatalf("scaled %v, want one step to 1", h)
	}
}

// A replica that is starting (the Deployment has 1, no pod is ready yet,
// a cluster's deploy waits for it) is not scaled away, however long it
// takes: only ready replicas are idle.
func TestStartingReplicaNotScaledToZero(t *testing.T) {
	rt := zeroRoute(t, time.Second, 30000)
	rt.Autoscale.RefreshSeconds = 1
	f, _ := frontWith(t, rt)
	sc := &replicaScaler{t: t, n: 1} // its pod never gets ready here
	runAutoscaler(t, f, sc)
	time.Sleep(2500 * time.Millisecond) // past the idle time and two refreshes
	if h := sc.history(); len(h) != 0 {
		t.Fatalf("scaled %v while the first replica started", h)
	}
}

// While the first replica starts, the request waiting for it asks for that
// one replica only: not the headroom of the target utilisation (70 %:
// 2 replicas for 1 request), at the autoscaler's next periods either.
func TestWakingAsksOneReplicaPerWaitingRequest(t *testing.T) {
	rt := zeroRoute(t, time.Hour, 30000)
	rt.Autoscale.RefreshSeconds, rt.Autoscale.TargetUtilization = 1, 70
	f, base := frontWith(t, rt)
	sc := &replicaScaler{t: t, fes: []*Frontend{f}, start: 2500 * time.Millisecond}
	runAutoscaler(t, f, sc)
	if a := post(t, base+"/api/v1/service/cold/score", "", `{}`); a.code != 200 {
		t.Fatalf("held request: %d %s", a.code, a.body)
	}
	if h := sc.history(); len(h) != 1 || h[0] != 1 {
		t.Fatalf("scaled %v while the first replica started, want one step to 1", h)
	}
}

// An endpoint's version at zero replicas that scales up from zero counts
// as ready: a request pinned to it waits while it wakes and is served
// there.
func TestEndpointVersionAtZeroWakes(t *testing.T) {
	f, url, _ := endpointFront(t, EndpointVersion{Name: "v1", Weight: 50}, EndpointVersion{Name: "v2", Weight: 50})
	rt := zeroRoute(t, time.Hour, 30000)
	rt.Service, rt.Endpoint = "e--v2", "e"
	f.SetRoute(rt)
	f.SetReplicas("e--v2", nil, "")
	sc := &replicaScaler{t: t, fes: []*Frontend{f}}
	runAutoscaler(t, f, sc)
	if a := scoreEndpoint(t, url, "v2"); a.code != 200 || a.header.Get(VersionHeader) != "v2" {
		t.Fatalf("pinned to the version at zero: %+v", a)
	}
	if h := sc.history(); len(h) != 1 || h[0] != 1 {
		t.Fatalf("scaled %v, want one step to 1", h)
	}
}
