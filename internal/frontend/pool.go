package frontend

import (
	"container/list"
	"context"
	"errors"
	"sort"
	"sync"
	"time"
)

// Admission errors.
var (
	ErrNoReplicas = errors.New("no ready replicas")
	ErrOverloaded = errors.New("overloaded")
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
}

func newPool() *pool { return &pool{replicas: map[string]*replica{}} }

// set replaces the replicas (by name); requests in flight on a removed
// replica finish there. Waiters get any new free slots. changed: a replica
// came, went or moved.
func (p *pool) set(rs []Replica) (changed bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
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
	p.order = p.order[:0]
	for _, r := range p.replicas {
		p.order = append(p.order, r)
	}
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

// acquire takes a slot, waiting up to maxWait in the queue; queued, when
// not nil, is called once the request is in the queue (not when a slot
// is free at once).
func (p *pool) acquire(ctx context.Context, maxWait time.Duration, queued func()) (*replica, time.Duration, error) {
	p.mu.Lock()
	if len(p.replicas) == 0 {
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
		p.mu.Unlock()
		return nil, time.Since(start), cause
	}
	p.mu.Unlock()
	// A slot was handed over just as the wait ended: give it back.
	p.release(<-w.ch)
	return nil, time.Since(start), cause
}

// release returns a slot; the head of the queue gets it first.
func (p *pool) release(r *replica) {
	p.mu.Lock()
	defer p.mu.Unlock()
	r.inflight--
	p.drainLocked()
}

// Load is a service's in-flight and queued requests.
type Load struct {
	InFlight int `json:"inFlight"`
	Queued   int `json:"queued"`
	Replicas int `json:"replicas"`
	Slots    int `json:"slots"`
}

func (p *pool) load() Load {
	p.mu.Lock()
	defer p.mu.Unlock()
	l := Load{Queued: p.queue.Len(), Replicas: len(p.replicas)}
	for _, r := range p.replicas {
		l.InFlight += r.inflight
		l.Slots += r.Slots
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
