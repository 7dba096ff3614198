package frontend

import (
	"container/list"
	"context"
	"errors"
	"maps"
	"slices"
	"sort"
	"sync"
	"time"
)

// Admission errors.
var (
	ErrNoReplicas = errors.New("no ready replicas")
	ErrOverloaded = errors.New("overloaded")
	// ErrColdStart: the service scaled to zero and no replica became
	// ready while the request waited.
	ErrColdStart = errors.New("no replica started in time")
	// errForward: the request waited for a replica, and a peer front
	// end holds the service's slots (forward to it).
	errForward = errors.New("forward to a peer")
)

// Replica is one ready model pod as this front end may use it.
type Replica struct {
	Name string
	Addr string // host:port
	// Slots is how many requests this front end may send it at once.
	Slots int
}

type replica struct {
	Replica
	inflight int
	gone     bool
	// coolUntil: the replica refused a connection; others go first until then.
	coolUntil time.Time
}

type waiter struct {
	ch   chan *replica
	elem *list.Element
}

// pool admits requests to a service's replicas: at most Slots at once per
// replica, least outstanding first, the rest in a FIFO queue.
type pool struct {
	mu       sync.Mutex
	replicas map[string]*replica
	order    []*replica // by name
	next     int        // rotates the start among equally loaded replicas
	queue    list.List  // of *waiter
	// busyAt is when a request last came or ended, or replicas came after
	// none: the idle time (for scaling to zero) counts from there.
	busyAt time.Time
}

func newPool() *pool { return &pool{replicas: map[string]*replica{}, busyAt: time.Now()} }

// set replaces the replicas (by name); requests in flight on a removed
// replica finish there. Waiters get any new free slots. changed: a replica
// came, went or moved.
func (p *pool) set(rs []Replica) (changed bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.replicas) == 0 && len(rs) > 0 {
		p.busyAt = time.Now() // woken: a full idle time before it may go
	}
	seen := map[string]bool{}
	for _, r := range rs {
		seen[r.Name] = true
		if cur, ok := p.replicas[r.Name]; ok {
			if cur.Addr == r.Addr {
				cur.Slots = r.Slots // read only under the lock
				continue
			}
			cur.gone = true // a new address: requests in flight keep the old one
		}
		p.replicas[r.Name] = &replica{Replica: r}
		changed = true
	}
	for name, r := range p.replicas {
		if !seen[name] {
			r.gone = true
			delete(p.replicas, name)
			changed = true
		}
	}
	p.order = slices.AppendSeq(p.order[:0], maps.Values(p.replicas))
	sort.Slice(p.order, func(i, j int) bool { return p.order[i].Name < p.order[j].Name })
	p.drainLocked()
	return changed
}

// pickLocked returns the free replica with the fewest outstanding
// requests, rotating among equals, or nil. A replica that just refused a
// connection is passed over until its cool-down ends.
func (p *pool) pickLocked() *replica {
	n := len(p.order)
	if n == 0 {
		return nil
	}
	now := time.Now()
	var best *replica
	start := p.next % n
	for k := 0; k < n; k++ {
		r := p.order[(start+k)%n]
		if r.inflight >= r.Slots || now.Before(r.coolUntil) {
			continue
		}
		if best == nil || r.inflight < best.inflight {
			best = r
		}
	}
	p.next++
	return best
}

// refusedCooldown is how long a replica that refused a connection is left alone.
const refusedCooldown = 250 * time.Millisecond

// refused marks a replica that refused a connection; waiters get it back
// when the cool-down ends.
func (p *pool) refused(r *replica) {
	p.mu.Lock()
	r.coolUntil = time.Now().Add(refusedCooldown)
	p.mu.Unlock()
	time.AfterFunc(refusedCooldown+time.Millisecond, func() {
		p.mu.Lock()
		p.drainLocked()
		p.mu.Unlock()
	})
}

// drainLocked gives free slots to waiting requests, oldest first.
func (p *pool) drainLocked() {
	for p.queue.Len() > 0 {
		r := p.pickLocked()
		if r == nil {
			return
		}
		w := p.queue.Remove(p.queue.Front()).(*waiter)
		w.elem = nil
		r.inflight++
		w.ch <- r
	}
}

// forwardWaiters sends the waiting requests to a peer front end: the
// service has replicas again, but this front end holds none of their slots.
func (p *pool) forwardWaiters() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for p.queue.Len() > 0 {
		w := p.queue.Remove(p.queue.Front()).(*waiter)
		w.elem = nil
		w.ch <- nil
	}
}

// acquire takes a slot, waiting up to maxWait in the queue; queued, when
// not nil, is called once the request is in the queue (not when a slot
// is free at once). With no replicas it answers ErrNoReplicas at once,
// unless wakes: the service is scaling up from zero, and the request
// waits for its first replica.
func (p *pool) acquire(ctx context.Context, maxWait time.Duration, wakes bool, queued func()) (*replica, time.Duration, error) {
	p.mu.Lock()
	p.busyAt = time.Now()
	if len(p.replicas) == 0 && !wakes {
		p.mu.Unlock()
		return nil, 0, ErrNoReplicas
	}
	if p.queue.Len() == 0 {
		if r := p.pickLocked(); r != nil {
			r.inflight++
			p.mu.Unlock()
			return r, 0, nil
		}
	}
	w := &waiter{ch: make(chan *replica, 1)}
	w.elem = p.queue.PushBack(w)
	p.mu.Unlock()
	if queued != nil {
		queued()
	}

	start := time.Now()
	t := time.NewTimer(maxWait)
	defer t.Stop()
	var cause error
	select {
	case r := <-w.ch:
		if r == nil {
			return nil, time.Since(start), errForward
		}
		return r, time.Since(start), nil
	case <-t.C:
		cause = ErrOverloaded
	case <-ctx.Done():
		cause = ctx.Err()
	}
	p.mu.Lock()
	if w.elem != nil {
		p.queue.Remove(w.elem)
		w.elem = nil
		if cause == ErrOverloaded && len(p.replicas) == 0 {
			cause = ErrColdStart
		}
		p.mu.Unlock()
		return nil, time.Since(start), cause
	}
	p.mu.Unlock()
	// A slot was handed over just as the wait ended: give it back.
	if r := <-w.ch; r != nil {
		p.release(r)
	}
	return nil, time.Since(start), cause
}

// release returns a slot; the head of the queue gets it first.
func (p *pool) release(r *replica) {
	p.mu.Lock()
	defer p.mu.Unlock()
	r.inflight--
	p.busyAt = time.Now()
	p.drainLocked()
}

// Load is a service's in-flight and queued requests.
type Load struct {
	InFlight int `json:"inFlight"`
	Queued   int `json:"queued"`
	Replicas int `json:"replicas"`
	Slots    int `json:"slots"`
	// IdleMs is how long no request has been in flight or queued (0 while
	// one is): the autoscaler scales a service to zero from it.
	IdleMs int64 `json:"idleMs"`
}

func (p *pool) load() Load {
	p.mu.Lock()
	defer p.mu.Unlock()
	l := Load{Queued: p.queue.Len(), Replicas: len(p.replicas)}
	for _, r := range p.replicas {
		l.InFlight += r.inflight
		l.Slots += r.Slots
	}
	if l.InFlight == 0 && l.Queued == 0 {
		l.IdleMs = max(time.Since(p.busyAt).Milliseconds(), 1)
	}
	return l
}

// anyAddr is the address of a ready replica with the fewest requests in
// flight, for a request that takes no slot (the swagger document).
func (p *pool) anyAddr() (string, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var best *replica
	for _, r := range p.order {
		if best == nil || r.inflight-r.Slots < best.inflight-best.Slots {
			best = r
		}
	}
	if best == nil {
		return "", false
	}
	return best.Addr, true
}
