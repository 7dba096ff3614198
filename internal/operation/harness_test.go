package operation_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berth-ml/berth/api"
	"github.com/berth-ml/berth/internal/operation"
	"github.com/berth-ml/berth/internal/secretbox"
	"github.com/berth-ml/berth/internal/store"
	"github.com/berth-ml/berth/internal/testenv/testdb"
	"github.com/google/uuid"
)

// The engines under test keep the production lease and poll differently
// from the step backoffs (0.5s, 1s, 2s, … 10s), so a test can tell which
// timer an engine is waiting on by its duration.
const (
	lease     = 15 * time.Second
	heartbeat = lease / 3
	poll      = 3 * time.Second
)

// env is one test's database, fake clock and record of what the plans did.
type env struct {
	t     *testing.T
	url   string
	dir   string
	box   *secretbox.Box
	store *store.Store
	clock *fakeClock

	// owners makes every recorded call name the engine that made it.
	owners bool

	mu    sync.Mutex
	calls []string
	gates []*gate
}

// forEachStore runs fn against a fresh SQLite file and, when
// BERTH_TEST_POSTGRES_URL is set, a fresh PostgreSQL database (skipped
// otherwise, or failed under BERTH_REQUIRE_POSTGRES=1).
func forEachStore(t *testing.T, fn func(t *testing.T, e *env)) {
	t.Parallel()
	for _, k := range testdb.Kinds {
		t.Run(k.Name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			box, err := secretbox.Load(dir, func(string) string { return "" })
			if err != nil {
				t.Fatal(err)
			}
			e := &env{t: t, url: k.URL(t, dir), dir: dir, box: box, clock: newFakeClock()}
			e.store = e.open()
			fn(t, e)
		})
	}
}

// open opens another handle on the test's database, as another server would.
func (e *env) open() *store.Store {
	e.t.Helper()
	s, err := store.Open(context.Background(), e.url, e.dir, e.box)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { s.Close() })
	return s
}

// record notes a call a plan made (on behalf of run r).
func (e *env) record(r *operation.Run, call string) {
	if e.owners {
		call += "@" + r.Op.LeaseOwner
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.calls = append(e.calls, call)
}

func (e *env) recorded() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.calls)
}

func (e *env) wantCalls(want ...string) {
	e.t.Helper()
	if got := e.recorded(); !slices.Equal(got, want) {
		e.t.Fatalf("calls:\n got %q\nwant %q", got, want)
	}
}

// newOp stores a Pending operation on a target of its own.
func (e *env) newOp(kind string) *store.Operation {
	e.t.Helper()
	return e.newOpAt(kind, time.Time{})
}

// newOpAt stores a Pending operation created at the given time (now if zero).
func (e *env) newOpAt(kind string, created time.Time) *store.Operation {
	e.t.Helper()
	id := uuid.NewString()
	op := &store.Operation{
		Operation: api.Operation{ID: id, Workspace: "ws", TargetType: "compute", TargetID: uuid.NewString(),
			TargetName: "target-" + id[:8], CreatedAt: created},
		WorkspaceID: "ws-id",
		Params:      json.RawMessage(`{}`),
	}
	setString(&op.Kind, kind)
	if err := e.store.CreateOperation(context.Background(), op); err != nil {
		e.t.Fatal(err)
	}
	return op
}

func (e *env) get(id string) *store.Operation {
	e.t.Helper()
	op, err := e.store.GetOperation(context.Background(), id)
	if err != nil {
		e.t.Fatal(err)
	}
	return op
}

// waitState waits for the operation to reach state and returns it.
func waitState[S ~string](e *env, id string, state S) *store.Operation {
	e.t.Helper()
	var op *store.Operation
	eventually(e.t, "operation "+string(state), func() bool {
		op = e.get(id)
		return string(op.State) == string(state)
	})
	return op
}

// events returns the operation's events as "level: message".
func (e *env) events(id string) []string {
	e.t.Helper()
	evs, err := e.store.ListEvents(context.Background(), id, 0)
	if err != nil {
		e.t.Fatal(err)
	}
	var out []string
	for _, ev := range evs {
		out = append(out, ev.Level+": "+ev.Message)
	}
	return out
}

// plan is the tests' usual plan: the given steps, an Undo that records
// "undo" and a Finish that records the state and error it is given.
func (e *env) plan(steps ...operation.Step) *operation.Plan {
	return &operation.Plan{
		Steps: steps,
		Undo: func(ctx context.Context, r *operation.Run) error {
			e.record(r, "undo")
			return nil
		},
		Finish: func(ctx context.Context, tx *store.Store, r *operation.Run, err error) error {
			e.record(r, fmt.Sprintf("finish %s %v", r.Op.State, err))
			return nil
		},
	}
}

// planUndoState is plan with an Undo that records the operation's state
// and its context's error when Undo runs.
func (e *env) planUndoState(steps ...operation.Step) *operation.Plan {
	p := e.plan(steps...)
	p.Undo = func(ctx context.Context, r *operation.Run) error {
		e.record(r, fmt.Sprintf("undo %s ctx=%v", r.Op.State, ctx.Err()))
		return nil
	}
	return p
}

// wantLastEvent fails t unless the operation's last event is want.
func (e *env) wantLastEvent(t *testing.T, id, want string) {
	t.Helper()
	evs := e.events(id)
	if last := evs[len(evs)-1]; last != want {
		t.Fatalf("last event %q", last)
	}
}

// step records its name and returns err.
func (e *env) step(name string, err error) operation.Step {
	return operation.Step{Name: name, Run: func(ctx context.Context, r *operation.Run) error {
		e.record(r, name)
		return err
	}}
}

// gate is a step that records its name and blocks until the test opens it
// or (unless deaf) the operation's context ends.
type gate struct {
	e       *env
	name    string
	deaf    bool // ignores its context, as a step stuck in a call might
	entered chan entry
	release chan struct{}
	once    sync.Once
}

// entry is one run of a gate: the engine running it and its context.
type entry struct {
	owner string
	ctx   context.Context
}

func (e *env) gate(name string) *gate {
	g := &gate{e: e, name: name, entered: make(chan entry, 16), release: make(chan struct{})}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.gates = append(e.gates, g)
	return g
}

func (g *gate) step() operation.Step {
	return operation.Step{Name: g.name, Run: func(ctx context.Context, r *operation.Run) error {
		g.e.record(r, g.name)
		g.entered <- entry{r.Op.LeaseOwner, ctx}
		if g.deaf {
			<-g.release
			return nil
		}
		select {
		case <-g.release:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}}
}

// wait waits for the next run of the gate to start.
func (g *gate) wait() entry {
	g.e.t.Helper()
	select {
	case en := <-g.entered:
		return en
	case <-time.After(10 * time.Second):
		g.e.t.Fatalf("step %s did not start", g.name)
		return entry{}
	}
}

func (g *gate) open() { g.once.Do(func() { close(g.release) }) }

// engine is an Engine running in the background.
type engine struct {
	*operation.Engine
	cancel  context.CancelFunc
	done    chan struct{}
	planned atomic.Int32
	started atomic.Int32
	stopped atomic.Int32
}

// start runs an engine named owner on the test's store and clock; opts
// change it before it starts (another store or clock, fewer workers…).
func (e *env) start(owner string, plan func(op *store.Operation) *operation.Plan, opts ...func(*operation.Engine)) *engine {
	e.t.Helper()
	g := &engine{done: make(chan struct{})}
	logOut := io.Discard
	if os.Getenv("BERTH_TEST_ENGINE_LOG") != "" {
		logOut = os.Stderr
	}
	g.Engine = &operation.Engine{
		Store: e.store, Owner: owner, Lease: lease, Poll: poll, Clock: e.clock,
		Planner: func(op *store.Operation) (*operation.Plan, error) {
			g.planned.Add(1)
			return plan(op), nil
		},
		Log:     slog.New(slog.NewTextHandler(logOut, nil)).With("engine", owner),
		OnStart: func(*store.Operation) { g.started.Add(1) },
		OnDone:  func(*store.Operation) { g.stopped.Add(1) },
	}
	for _, o := range opts {
		o(g.Engine)
	}
	ctx, cancel := context.WithCancel(context.Background())
	g.cancel = cancel
	go func() {
		defer close(g.done)
		g.Run(ctx)
	}()
	e.t.Cleanup(func() {
		// A test that failed may have left steps waiting.
		e.mu.Lock()
		gates := slices.Clone(e.gates)
		e.mu.Unlock()
		for _, gt := range gates {
			gt.open()
		}
		g.stop(e.t)
	})
	return g
}

// stop stops the engine as a server shutting down does, and waits for Run
// to return.
func (g *engine) stop(t testing.TB) {
	t.Helper()
	g.cancel()
	select {
	case <-g.done:
	case <-time.After(20 * time.Second):
		t.Fatal("engine did not stop")
	}
}

// idle waits until the engine has looked for work and found none: it
// made a new poll timer on clock.
func (g *engine) idle(t testing.TB, clock *fakeClock) {
	t.Helper()
	n := clock.madeCount(poll)
	g.Wake()
	eventually(t, "the engine to look for work", func() bool { return clock.madeCount(poll) > n })
}

func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func hasEvent(events []string, prefix string) bool {
	return slices.ContainsFunc(events, func(s string) bool { return strings.HasPrefix(s, prefix) })
}

// setString sets a string field whatever string type it has.
func setString[T ~string](field *T, v string) { *field = T(v) }
