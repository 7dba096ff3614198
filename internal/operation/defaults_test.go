package operation_test

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/berth-ml/berth/internal/operation"
	"github.com/berth-ml/berth/internal/secretbox"
	"github.com/berth-ml/berth/internal/store"
)

// Request handlers call Wake while the server starts Run, and both fill in
// the engine's defaults; under -race this was a data race (and two wake
// channels could be made, losing a wake) until the defaults were set once.
func TestWakeWhileRunStarts(t *testing.T) {
	dir := t.TempDir()
	box, err := secretbox.Load(dir, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	s, err := store.Open(context.Background(), "sqlite:"+filepath.Join(dir, "berth.db"), dir, box)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for range 20 {
		e := &operation.Engine{Store: s, Owner: "A", Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
			Planner: func(*store.Operation) (*operation.Plan, error) { return &operation.Plan{}, nil }}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			e.Run(ctx)
		}()
		e.Wake()
		cancel()
		<-done
	}
}
