package server

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/berth-ml/berth/api"
	"github.com/berth-ml/berth/internal/problem"
	"github.com/berth-ml/berth/internal/store"
)

// broker wakes live event streams. Events of operations this server runs
// arrive through publish at once; those run by another server sharing the
// database are found by pollLoop.
type broker struct {
	mu   sync.Mutex
	subs map[string]map[chan struct{}]struct{}
	done chan struct{}
	once sync.Once
}

func newBroker() *broker {
	return &broker{subs: map[string]map[chan struct{}]struct{}{}, done: make(chan struct{})}
}

func (b *broker) subscribe(opID string) (chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	b.mu.Lock()
	if b.subs[opID] == nil {
		b.subs[opID] = map[chan struct{}]struct{}{}
	}
	b.subs[opID][ch] = struct{}{}
	b.mu.Unlock()
	return ch, func() {
		b.mu.Lock()
		delete(b.subs[opID], ch)
		if len(b.subs[opID]) == 0 {
			delete(b.subs, opID)
		}
		b.mu.Unlock()
	}
}

func (b *broker) publish(opID string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for ch := range b.subs[opID] {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// pollLoop wakes every stream periodically so streams of operations run
// elsewhere see new events.
func (b *broker) pollLoop(ctx context.Context) {
	periodically(ctx, 300*time.Millisecond, func() {
		b.mu.Lock()
		ids := slices.Collect(maps.Keys(b.subs))
		b.mu.Unlock()
		for _, id := range ids {
			b.publish(id)
		}
	})
}

func (b *broker) closeAll() { b.once.Do(func() { close(b.done) }) }

// streamEvents serves GET /operations/{id}/events?follow=true as
// server-sent events: every event (from ?after=SEQ or Last-Event-ID), then
// an "end" event carrying the terminal operation.
func (s *Server) streamEvents(w http.ResponseWriter, r *http.Request, op *store.Operation, after int64) error {
	fl, ok := w.(http.Flusher)
	if !ok {
		return errors.New("streaming unsupported")
	}
	wake, unsubscribe := s.events.subscribe(op.ID)
	defer unsubscribe()
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	fl.Flush()
	keepalive := time.NewTicker(15 * time.Second)
	defer keepalive.Stop()
	ctx := r.Context()
	for {
		// Read the state before the events so no event written before the
		// operation ended can be missed.
		cur, err := s.store.GetOperation(ctx, op.ID)
		if err != nil {
			return nil
		}
		evs, err := s.store.ListEvents(ctx, op.ID, after)
		if err != nil {
			return nil
		}
		for _, ev := range evs {
			b, _ := json.Marshal(ev)
			if _, err := fmt.Fprintf(w, "id: %d\nevent: event\ndata: %s\n\n", ev.Seq, b); err != nil {
				return nil
			}
			after = ev.Seq
		}
		if cur.Terminal() {
			b, _ := json.Marshal(cur.Operation)
			fmt.Fprintf(w, "event: end\ndata: %s\n\n", b)
			fl.Flush()
			return nil
		}
		fl.Flush()
		select {
		case <-ctx.Done():
			return nil
		case <-s.events.done:
			return nil
		case <-keepalive.C:
			if _, err := fmt.Fprint(w, ": keep-alive\n\n"); err != nil {
				return nil
			}
			fl.Flush()
		case <-wake:
		}
	}
}

func parseAfter(r *http.Request) (int64, error) {
	v := cmp.Or(r.URL.Query().Get("after"), r.Header.Get("Last-Event-ID"))
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0, problem.New(http.StatusBadRequest, api.CodeBadRequest, "after must be a non-negative event number (got %q)", v)
	}
	return n, nil
}
