package operation

import "time"

// Clock is where the engine reads the time and waits: the lease it claims
// and renews, the heartbeat, step backoff and polling. Tests give the
// engine a fake one to move time by hand; nil means the real clock.
type Clock interface {
	Now() time.Time
	// After is time.After.
	After(d time.Duration) <-chan time.Time
	// NewTicker is time.NewTicker: its channel, and the function that stops it.
	NewTicker(d time.Duration) (c <-chan time.Time, stop func())
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }
func (realClock) NewTicker(d time.Duration) (<-chan time.Time, func()) {
	t := time.NewTicker(d)
	return t.C, t.Stop
}
