package operation_test

import (
	"sync"
	"testing"
	"time"
)

// fakeClock is an operation.Clock that moves only when a test advances it,
// so leases expire, heartbeats tick and backoffs end exactly when the test
// says, and never because the machine was slow.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
	made   map[time.Duration]int // timers and tickers ever made, by duration
}

type fakeTimer struct {
	at     time.Time
	d      time.Duration
	ticker bool
	c      chan time.Time
}

func newFakeClock() *fakeClock {
	// Whole milliseconds, as the store keeps them, so leases compare exactly.
	return newFakeClockAt(time.UnixMilli(time.Now().UnixMilli()).UTC())
}

func newFakeClockAt(now time.Time) *fakeClock {
	return &fakeClock{now: now, made: map[time.Duration]int{}}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.made[d]++
	ch := make(chan time.Time, 1)
	if d <= 0 {
		ch <- c.now
		return ch
	}
	c.timers = append(c.timers, &fakeTimer{at: c.now.Add(d), d: d, c: ch})
	return ch
}

func (c *fakeClock) NewTicker(d time.Duration) (<-chan time.Time, func()) {
	if d <= 0 {
		panic("fakeClock: non-positive interval for NewTicker")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.made[d]++
	t := &fakeTimer{at: c.now.Add(d), d: d, ticker: true, c: make(chan time.Time, 1)}
	c.timers = append(c.timers, t)
	return t.c, func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		for i, x := range c.timers {
			if x == t {
				c.timers = append(c.timers[:i], c.timers[i+1:]...)
				return
			}
		}
	}
}

// Advance moves the time on by d and fires every timer that falls due; a
// ticker that falls due several times ticks once, as a real one drops
// ticks its reader was too slow for.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	kept := c.timers[:0]
	for _, t := range c.timers {
		if t.at.After(c.now) {
			kept = append(kept, t)
			continue
		}
		select {
		case t.c <- c.now:
		default:
		}
		if t.ticker {
			for !t.at.After(c.now) {
				t.at = t.at.Add(t.d)
			}
			kept = append(kept, t)
		}
	}
	clear(c.timers[len(kept):])
	c.timers = kept
}

// pending counts the timers and tickers of duration d not yet fired.
func (c *fakeClock) pending(d time.Duration) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, t := range c.timers {
		if t.d == d {
			n++
		}
	}
	return n
}

// madeCount counts the timers and tickers of duration d ever made.
func (c *fakeClock) madeCount(d time.Duration) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.made[d]
}

// waitPending waits until someone waits on a timer or ticker of duration
// d, so that advancing the clock fires it (a timer made after an advance
// would count from the new time).
func (c *fakeClock) waitPending(t testing.TB, d time.Duration) {
	t.Helper()
	eventually(t, "a timer of "+d.String(), func() bool { return c.pending(d) > 0 })
}

func TestFakeClock(t *testing.T) {
	c := newFakeClock()
	start := c.Now()
	after := c.After(2 * time.Second)
	tick, stop := c.NewTicker(time.Second)
	fired := func(ch <-chan time.Time) bool {
		select {
		case <-ch:
			return true
		default:
			return false
		}
	}
	c.Advance(999 * time.Millisecond)
	if fired(after) || fired(tick) {
		t.Fatal("fired early")
	}
	c.Advance(time.Millisecond)
	if fired(after) || !fired(tick) {
		t.Fatal("at 1s: want the ticker only")
	}
	c.Advance(5 * time.Second) // several ticks missed: one is delivered
	if !fired(after) || !fired(tick) || fired(tick) {
		t.Fatal("at 6s: want the timer and one tick")
	}
	if c.pending(2*time.Second) != 0 || c.pending(time.Second) != 1 {
		t.Fatal("the timer should be gone and the ticker kept")
	}
	c.Advance(500 * time.Millisecond) // the ticker counts from 6s, not from now
	if fired(tick) {
		t.Fatal("ticked at 6.5s")
	}
	c.Advance(500 * time.Millisecond)
	if !fired(tick) {
		t.Fatal("no tick at 7s")
	}
	stop()
	c.Advance(time.Hour)
	if fired(tick) || c.pending(time.Second) != 0 {
		t.Fatal("a stopped ticker ticked")
	}
	if got := c.Now().Sub(start); got != time.Hour+7*time.Second {
		t.Fatalf("advanced %s", got)
	}
	if !fired(c.After(0)) {
		t.Fatal("After(0) should fire at once")
	}
}
