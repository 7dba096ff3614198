// Package operation runs Berth's durable operations. An operation is a list
// of named, idempotent steps; the engine claims pending operations from the
// store under a lease, runs their steps, records progress after each one and
// renews the lease while it works. If a server dies, another (or the same
// one restarted) claims the operation when the lease expires and resumes at
// the step that was running, so every step must be safe to run twice.
package operation

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/berth-ml/berth/api"
	"github.com/berth-ml/berth/internal/store"
)

// Step is one idempotent piece of an operation.
type Step struct {
	Name string
	Run  func(ctx context.Context, r *Run) error
}

// Plan is what an operation does: its steps and how the target's record
// changes when it ends.
type Plan struct {
	Steps []Step
	// Undo, if set, runs when the operation fails or is canceled, before
	// Finish: it removes what the steps did (a failed attach leaves nothing
	// in the cluster). It must be safe when nothing was done.
	Undo func(ctx context.Context, r *Run) error
	// Finish runs in the transaction that makes the operation terminal;
	// err is nil on success. It updates the target (state, errors, facts).
	Finish func(ctx context.Context, tx *store.Store, r *Run, err error) error
}

// Planner returns the plan of an operation.
type Planner func(op *store.Operation) (*Plan, error)

// Run is an operation in progress as its steps see it, for one attempt
// (a server running it from its recorded step).
type Run struct {
	Op     *store.Operation
	Store  *store.Store
	engine *Engine
	memo   map[string]any
}

// Memo returns what make made under key earlier in this attempt (a
// connected cluster, say), or calls it; a failed make is not kept. The
// steps of one attempt run one at a time, so no lock is needed.
func Memo[T any](r *Run, key string, make func() (T, error)) (T, error) {
	if v, ok := r.memo[key].(T); ok {
		return v, nil
	}
	v, err := make()
	if err != nil {
		return v, err
	}
	if r.memo == nil {
		r.memo = map[string]any{}
	}
	r.memo[key] = v
	return v, nil
}

// Params decodes the operation's request (checked when it was made).
func Params[T any](r *Run) (T, error) {
	var v T
	err := json.Unmarshal(r.Op.Params, &v)
	return v, err
}

// Event records a progress event on the operation.
func (r *Run) Event(format string, args ...any) {
	r.engine.event(r.Op.ID, api.LevelInfo, fmt.Sprintf(format, args...))
}

// Warn records a warning event.
func (r *Run) Warn(format string, args ...any) {
	r.engine.event(r.Op.ID, api.LevelWarn, fmt.Sprintf(format, args...))
}

// Remember keeps a value across restarts of the operation (saved at once).
func (r *Run) Remember(ctx context.Context, key, value string) error {
	r.Op.Scratch[key] = value
	return r.Store.SaveProgress(ctx, r.Op)
}

// Recall returns a value kept with Remember.
func (r *Run) Recall(key string) string { return r.Op.Scratch[key] }

// Failure is a terminal error with a code and the details of every
// problem found; a step returns one to fail the operation for good.
type Failure = api.Error

// Fail makes a terminal failure.
func Fail(code, message string, details ...api.ErrorDetail) error {
	return &api.Error{Code: code, Message: message, Details: details}
}

// terminal marks an error that must not be retried.
type terminal struct{ err error }

func (e terminal) Error() string { return e.err.Error() }
func (e terminal) Unwrap() error { return e.err }

// Terminal marks err as final: the operation fails at once with it (as
// OperationFailed, naming the step). Errors a step returns unmarked are
// retried with backoff, as a controller requeues, since most are a cluster,
// a cloud or the store not answering; a Failure (Fail) is terminal too.
func Terminal(err error) error {
	if err == nil {
		return nil
	}
	return terminal{err}
}

// IsTerminal tells whether err ends an operation without a retry.
func IsTerminal(err error) bool {
	var t terminal
	var f *Failure
	return errors.As(err, &t) || errors.As(err, &f)
}

// Engine claims and runs operations.
type Engine struct {
	Store *store.Store
	// Owner identifies this server in leases.
	Owner string
	// Lease is how long a claim lasts without renewal (default 15s).
	Lease time.Duration
	// Poll is how often the engine looks for work when not woken (default 1s).
	Poll time.Duration
	// Workers bounds the operations run at once (default 8).
	Workers int
	// StepRetries bounds retries of a step's (or the planner's) error that
	// is not terminal (default 5).
	StepRetries int
	// UndoTimeout bounds a failed operation's undo (default 5m).
	UndoTimeout time.Duration
	Planner     Planner
	Log         *slog.Logger
	// OnEvent is called after every event is stored (for live streams).
	OnEvent func(opID string)
	// OnStart and OnDone are called when this engine starts running an
	// operation and when it stops (finished, released or lost), for metrics.
	OnStart, OnDone func(op *store.Operation)
	// Clock is the time the engine leases, renews, backs off and polls by
	// (default the real one; tests move a fake one by hand).
	Clock Clock

	wake    chan struct{}
	running sync.WaitGroup
	init    sync.Once
	active  sync.Map // ids of the operations this engine is running
	cancels sync.Map // operation id → its context's cancel, while it runs here
}

// Canceled tells the engine that a cancel of an operation was recorded:
// if it runs the operation, it stops it now instead of at its next lease
// renewal (another server running it notices at its own).
func (e *Engine) Canceled(opID string) {
	if c, ok := e.cancels.Load(opID); ok {
		c.(context.CancelCauseFunc)(errCanceled)
	}
}

// defaults fills in the settings left zero, once: Wake may be called (by
// a request handler) while Run starts.
func (e *Engine) defaults() { e.init.Do(e.setDefaults) }

func (e *Engine) setDefaults() {
	e.Lease = cmp.Or(e.Lease, 15*time.Second)
	e.Poll = cmp.Or(e.Poll, time.Second)
	e.Workers = cmp.Or(e.Workers, 8)
	e.StepRetries = cmp.Or(e.StepRetries, 5)
	e.UndoTimeout = cmp.Or(e.UndoTimeout, 5*time.Minute)
	e.Log = cmp.Or(e.Log, slog.Default())
	e.wake = cmp.Or(e.wake, make(chan struct{}, 1))
	e.Clock = cmp.Or[Clock](e.Clock, realClock{})
}

// Wake tells the engine new work is waiting.
func (e *Engine) Wake() {
	e.defaults()
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// Run claims and executes operations until ctx ends, then waits for the
// running ones to stop at a step boundary or be released.
func (e *Engine) Run(ctx context.Context) {
	e.defaults()
	sem := make(chan struct{}, e.Workers)
	defer e.running.Wait()
	for {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return
		}
		var mine []string
		e.active.Range(func(id, _ any) bool { mine = append(mine, id.(string)); return true })
		op, err := e.Store.Claim(ctx, e.Owner, e.Clock.Now(), e.Lease, mine...)
		if err != nil {
			<-sem
			if !errors.Is(err, store.ErrNotFound) && ctx.Err() == nil {
				e.Log.Error("claim operation", "err", err)
			}
			select {
			case <-ctx.Done():
				return
			case <-e.wake:
			case <-e.Clock.After(e.Poll):
			}
			continue
		}
		// Claim leaves out what this engine runs, even when its own lease
		// lapsed (renewals late, say the database was away): that run goes
		// on alone and its heartbeat renews the lease.
		e.active.Store(op.ID, true)
		e.running.Add(1)
		go func() {
			defer e.running.Done()
			defer func() { <-sem }()
			defer e.active.Delete(op.ID)
			e.execute(ctx, op)
		}()
	}
}

func (e *Engine) event(opID, level, msg string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := e.Store.AppendEvent(ctx, opID, level, msg); err != nil {
		e.Log.Error("record operation event", "operation", opID, "err", err)
		return
	}
	if e.OnEvent != nil {
		e.OnEvent(opID)
	}
}

var errCanceled = errors.New("operation canceled")

// execute runs one claimed operation from its recorded step.
func (e *Engine) execute(serverCtx context.Context, op *store.Operation) {
	log := e.Log.With("operation", op.ID, "kind", op.Kind, "target", op.TargetName, "attempt", op.Attempt)
	if e.OnStart != nil {
		e.OnStart(op)
	}
	if e.OnDone != nil {
		defer e.OnDone(op)
	}
	// The operation's context ends when the server stops, the lease is
	// lost, or a cancel is requested.
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	go func() {
		select {
		case <-serverCtx.Done():
			cancel(serverCtx.Err())
		case <-ctx.Done():
		}
	}()
	go e.heartbeat(ctx, cancel, op)
	e.cancels.Store(op.ID, cancel)
	defer e.cancels.Delete(op.ID)

	run := &Run{Op: op, Store: e.Store, engine: e}
	var plan *Plan
	err := e.retry(ctx, run, "plan "+string(op.Kind), log, func() error {
		var err error
		plan, err = e.Planner(op)
		return err
	})
	if err != nil {
		if ctx.Err() != nil {
			e.stop(ctx, op, run, nil, err, log)
			return
		}
		e.finish(op, run, nil, fmt.Errorf("plan %s: %w", op.Kind, err), log)
		return
	}
	if op.Attempt > 1 {
		run.Event("Resuming at step %d of %d on server %s (attempt %d): the server that ran it stopped", op.StepIndex+1, len(plan.Steps), e.Owner, op.Attempt)
	} else {
		run.Event("Started %s of %s on server %s", op.Kind, op.TargetName, e.Owner)
	}
	// Each step is recorded as started, run (retrying errors that are not
	// terminal), and recorded as done.
	for op.StepIndex < len(plan.Steps) {
		step := plan.Steps[op.StepIndex]
		op.Step = step.Name
		err := e.Store.SaveProgress(ctx, op)
		if err == nil {
			err = e.retry(ctx, run, step.Name, log, func() error { return step.Run(ctx, run) })
		}
		if err == nil {
			op.StepIndex++
			err = e.Store.SaveProgress(ctx, op)
		}
		if err != nil {
			e.stop(ctx, op, run, plan, err, log)
			return
		}
	}
	e.finish(op, run, plan, nil, log)
}

// retry calls f until it succeeds, returns a terminal error, or has been
// retried StepRetries times, waiting 0.5s, 1s, 2s… (at most 10s) between
// tries.
func (e *Engine) retry(ctx context.Context, run *Run, what string, log *slog.Logger, f func() error) error {
	backoff := 500 * time.Millisecond
	for try := 0; ; try++ {
		err := f()
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		if err == nil {
			return nil
		}
		if IsTerminal(err) || try >= e.StepRetries {
			return err
		}
		run.Warn("%s: %v; retrying in %s", what, err, backoff)
		log.Warn("failed, retrying", "step", what, "err", err)
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-e.Clock.After(backoff):
		}
		backoff = min(backoff*2, 10*time.Second)
	}
}

// stop handles a step that did not complete: the server stopping releases
// the operation for another to resume, a lost lease leaves it to its new
// owner, a cancel or a failure ends it.
func (e *Engine) stop(ctx context.Context, op *store.Operation, run *Run, plan *Plan, err error, log *slog.Logger) {
	cause := context.Cause(ctx)
	switch {
	case errors.Is(err, store.ErrLeaseLost) || errors.Is(cause, store.ErrLeaseLost):
		log.Warn("lease lost; another server owns the operation now")
	case cause != nil && !errors.Is(cause, errCanceled):
		// The server is shutting down: hand the operation over at once.
		rctx, c := context.WithTimeout(context.Background(), 5*time.Second)
		defer c()
		e.event(op.ID, api.LevelInfo, fmt.Sprintf("Server stopping during step %q; the operation will resume", op.Step))
		if err := e.Store.Release(rctx, op.ID, op.LeaseOwner); err != nil {
			log.Error("release operation", "err", err)
		}
		log.Info("released operation on shutdown", "step", op.Step)
	case errors.Is(cause, errCanceled):
		// The cancel ended the heartbeat with the steps' context. Keep the
		// lease while Undo and Finish run, or after a lease's time another
		// server would take the operation over and run its steps again.
		keep, stopKeeping := context.WithCancelCause(context.Background())
		defer stopKeeping(nil)
		go e.heartbeat(keep, func(cause error) {
			if !errors.Is(cause, errCanceled) {
				stopKeeping(cause)
			}
		}, op)
		op.State = api.OpCanceled
		e.finish(op, run, plan, errCanceled, log)
	default:
		e.finish(op, run, plan, err, log)
	}
}

// finish makes the operation terminal and updates its target, in one transaction.
func (e *Engine) finish(op *store.Operation, run *Run, plan *Plan, err error, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	switch {
	case err == nil:
		op.State = api.OpSucceeded
		op.Error = nil
	case errors.Is(err, errCanceled):
		op.State = api.OpCanceled
		op.Error = &api.Error{Code: string(api.OpCanceled), Message: "The operation was canceled at step " + op.Step}
	default:
		op.State = api.OpFailed
		if apiErr, ok := errors.AsType[*api.Error](err); ok {
			op.Error = apiErr
		} else {
			op.Error = &api.Error{Code: api.CodeOperationFailed, Message: fmt.Sprintf("%s: %v", op.Step, err)}
		}
	}
	if err != nil && plan != nil && plan.Undo != nil {
		uctx, ucancel := context.WithTimeout(context.Background(), e.UndoTimeout)
		if uerr := plan.Undo(uctx, run); uerr != nil {
			e.event(op.ID, api.LevelWarn, fmt.Sprintf("Could not undo everything: %v", uerr))
		}
		ucancel()
	}
	level, msg := api.LevelInfo, fmt.Sprintf("Succeeded: %s of %s", op.Kind, op.TargetName)
	switch op.State {
	case api.OpCanceled:
		level, msg = api.LevelWarn, op.Error.Message
	case api.OpFailed:
		level, msg = api.LevelError, "Failed: "+op.Error.Error()
	}
	// The last event is written with the terminal state, so a follower that
	// sees the operation end has seen its last event too.
	ferr := e.Store.InTx(ctx, func(tx *store.Store) error {
		if plan != nil && plan.Finish != nil {
			if err := plan.Finish(ctx, tx, run, err); err != nil {
				return err
			}
		}
		if _, err := tx.AppendEvent(ctx, op.ID, level, msg); err != nil {
			return err
		}
		return tx.Finish(ctx, op)
	})
	if ferr != nil {
		log.Error("finish operation", "err", ferr)
		return
	}
	if e.OnEvent != nil {
		e.OnEvent(op.ID)
	}
	log.Info("operation finished", "state", op.State)
}

// heartbeat renews the lease until ctx ends; a lost lease or a cancel
// request cancels the operation's context.
func (e *Engine) heartbeat(ctx context.Context, cancel context.CancelCauseFunc, op *store.Operation) {
	tick, stop := e.Clock.NewTicker(e.Lease / 3)
	defer stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick:
		}
		rctx, c := context.WithTimeout(ctx, e.Lease/3)
		canceled, err := e.Store.Renew(rctx, op.ID, op.LeaseOwner, e.Clock.Now().Add(e.Lease))
		c()
		switch {
		case errors.Is(err, store.ErrLeaseLost):
			cancel(store.ErrLeaseLost)
			return
		case err != nil:
			if ctx.Err() == nil {
				e.Log.Warn("renew lease", "operation", op.ID, "err", err)
			}
		case canceled:
			cancel(errCanceled) // ends ctx, and this loop, unless ignored
		}
	}
}
