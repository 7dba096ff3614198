package operation_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berth-ml/berth/api"
	"github.com/berth-ml/berth/internal/operation"
	"github.com/berth-ml/berth/internal/store"
)

// The engine's unit tests. Each runs against SQLite and PostgreSQL with a
// fake clock: leases expire, heartbeats tick and backoffs end when the test
// advances the clock, never by waiting. A "dead" server is a lease taken
// straight from the store, or an engine whose clock stands still (it never
// renews, as a hung or cut-off server would not).

// A claimed operation runs its steps in order under this engine's lease,
// recording the step it is at, and ends Succeeded with Finish called once
// and no Undo.
func TestEngineRunsAClaimedOperation(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		b := e.gate("b")
		op := e.newOp("attach")
		eng := e.start("A", func(*store.Operation) *operation.Plan {
			return e.plan(e.step("a", nil), b.step(), e.step("c", nil))
		})
		if en := b.wait(); en.owner != "A" {
			t.Fatalf("step run under %q's lease", en.owner)
		}
		got := e.get(op.ID)
		if got.State != api.OpRunning || got.LeaseOwner != "A" || !got.LeaseExpires.Equal(e.clock.Now().Add(lease)) ||
			got.Attempt != 1 || got.Step != "b" || got.StepIndex != 1 || got.StartedAt == nil {
			t.Fatalf("while at step b: state %s owner %q lease until %s (now %s) attempt %d step %q/%d started %v",
				got.State, got.LeaseOwner, got.LeaseExpires, e.clock.Now(), got.Attempt, got.Step, got.StepIndex, got.StartedAt)
		}
		b.open()
		done := waitState(e, op.ID, api.OpSucceeded)
		e.wantCalls("a", "b", "c", "finish Succeeded <nil>")
		if done.Error != nil || done.Step != "c" || done.StepIndex != 3 || done.Attempt != 1 || done.FinishedAt == nil ||
			!done.LeaseExpires.IsZero() {
			t.Fatalf("finished: error %v step %q/%d attempt %d finished %v lease %s",
				done.Error, done.Step, done.StepIndex, done.Attempt, done.FinishedAt, done.LeaseExpires)
		}
		want := []string{
			"info: Started attach of " + op.TargetName + " on server A",
			"info: Succeeded: attach of " + op.TargetName,
		}
		if evs := e.events(op.ID); !slices.Equal(evs, want) {
			t.Fatalf("events:\n got %q\nwant %q", evs, want)
		}
		eventually(t, "OnDone", func() bool { return eng.stopped.Load() == 1 })
		if eng.started.Load() != 1 || eng.planned.Load() != 1 {
			t.Fatalf("OnStart %d, planned %d times", eng.started.Load(), eng.planned.Load())
		}
	})
}

// The oldest operation is claimed first, and an engine runs no more than
// Workers operations at once.
func TestEngineClaimsOldestFirstWithinWorkers(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		first := e.gate("first.b")
		now := time.Now().UTC().Truncate(time.Millisecond)
		later := e.newOpAt("later", now.Add(time.Second))
		e.newOpAt("older", now) // stored second, but older
		e.start("A", func(op *store.Operation) *operation.Plan {
			if op.Kind == "older" {
				return e.plan(e.step("first.a", nil), first.step())
			}
			return e.plan(e.step("second.a", nil))
		}, func(en *operation.Engine) { en.Workers = 1 })
		first.wait()
		if got := e.get(later.ID); got.State != api.OpPending {
			t.Fatalf("with one worker busy, the second operation is %s", got.State)
		}
		first.open()
		waitState(e, later.ID, api.OpSucceeded)
		e.wantCalls("first.a", "first.b", "finish Succeeded <nil>", "second.a", "finish Succeeded <nil>")
	})
}

// A server that dies keeps its operation until the lease it took runs out;
// then another engine claims it and resumes at the step that was running,
// with what the dead server's steps remembered.
func TestTakeoverAfterLeaseExpiry(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		op := e.newOp("attach")
		// A server claims the operation, gets past step a, remembers what
		// step b made, and dies.
		dead, err := e.store.Claim(ctx, "dead", e.clock.Now(), lease)
		if err != nil {
			t.Fatal(err)
		}
		expires := dead.LeaseExpires
		dead.Step, dead.StepIndex, dead.Scratch["made"] = "b", 1, "thing-1"
		if err := e.store.SaveProgress(ctx, dead); err != nil {
			t.Fatal(err)
		}
		eng := e.start("B", func(*store.Operation) *operation.Plan {
			return e.plan(e.step("a", nil), operation.Step{Name: "b", Run: func(ctx context.Context, r *operation.Run) error {
				e.record(r, "b made="+r.Recall("made"))
				return nil
			}}, e.step("c", nil))
		})
		held := func(when string) {
			t.Helper()
			eng.idle(t, e.clock)
			if got := e.get(op.ID); got.LeaseOwner != "dead" || got.State != api.OpRunning || got.Attempt != 1 {
				t.Fatalf("%s: owner %q state %s attempt %d", when, got.LeaseOwner, got.State, got.Attempt)
			}
		}
		held("at once")
		e.clock.Advance(lease - time.Millisecond)
		held("a millisecond before the lease ends")
		e.clock.Advance(time.Millisecond)
		if !e.clock.Now().Equal(expires) {
			t.Fatalf("now %s, lease until %s", e.clock.Now(), expires)
		}
		held("the instant the lease ends")
		e.clock.Advance(time.Millisecond)
		eng.Wake()
		done := waitState(e, op.ID, api.OpSucceeded)
		e.wantCalls("b made=thing-1", "c", "finish Succeeded <nil>")
		if done.LeaseOwner != "B" || done.Attempt != 2 {
			t.Fatalf("owner %q attempt %d", done.LeaseOwner, done.Attempt)
		}
		if evs := e.events(op.ID); !hasEvent(evs, "info: Resuming at step 2 of 3 on server B (attempt 2)") {
			t.Fatalf("no resume event: %q", evs)
		}
	})
}

// An engine that stopped renewing (hung, or cut off from the database)
// loses its operation to another once the lease runs out. When it comes
// back it must neither advance nor end the operation: its heartbeat
// cancels the step it was running, or its next progress write is refused.
// The step the new owner resumes at runs twice, which is why steps must
// be idempotent; every other step and Finish run once.
func TestStaleOwnerStopsWhenItsLeaseIsLost(t *testing.T) {
	for _, via := range []string{"heartbeat", "progress"} {
		t.Run(via, func(t *testing.T) {
			forEachStore(t, func(t *testing.T, e *env) {
				e.owners = true
				b := e.gate("b")
				op := e.newOp("attach")
				plan := func(*store.Operation) *operation.Plan {
					return e.plan(e.step("a", nil), b.step(), e.step("c", nil))
				}
				frozen := newFakeClockAt(e.clock.Now())
				stale := e.start("A", plan, func(en *operation.Engine) { en.Clock = frozen })
				atA := b.wait()
				rescuer := e.start("B", plan)
				rescuer.idle(t, e.clock)
				if got := e.get(op.ID); got.LeaseOwner != "A" {
					t.Fatalf("B took the operation from a live lease: owner %q", got.LeaseOwner)
				}
				e.clock.Advance(lease + time.Millisecond)
				rescuer.Wake()
				if atB := b.wait(); atB.owner != "B" {
					t.Fatalf("step b resumed by %q", atB.owner)
				}
				switch via {
				case "heartbeat":
					// A's clock moves again: its next renewal finds B's lease.
					frozen.waitPending(t, heartbeat)
					frozen.Advance(heartbeat)
					select {
					case <-atA.ctx.Done():
					case <-time.After(10 * time.Second):
						t.Fatal("A's step was not stopped when A's lease was found lost")
					}
					if cause := context.Cause(atA.ctx); !errors.Is(cause, store.ErrLeaseLost) {
						t.Fatalf("A's step stopped by %v", cause)
					}
					eventually(t, "A to let go", func() bool { return stale.stopped.Load() == 1 })
					b.open()
				case "progress":
					// A's step returns while B runs it too; A's clock never
					// moves, so only its progress write can tell it.
					b.open()
					eventually(t, "A to let go", func() bool { return stale.stopped.Load() == 1 })
				}
				done := waitState(e, op.ID, api.OpSucceeded)
				e.wantCalls("a@A", "b@A", "b@B", "c@B", "finish Succeeded <nil>@B")
				if done.LeaseOwner != "B" || done.Attempt != 2 || done.StepIndex != 3 {
					t.Fatalf("owner %q attempt %d step %d", done.LeaseOwner, done.Attempt, done.StepIndex)
				}
				if evs := e.events(op.ID); hasEvent(evs, "info: Server stopping") {
					t.Fatalf("A released an operation it no longer held: %q", evs)
				}
			})
		})
	}
}

// While a step runs, the heartbeat renews the lease every third of it, so
// another engine cannot claim the operation however long the step takes.
func TestHeartbeatRenewsTheLease(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		b := e.gate("b")
		op := e.newOp("attach")
		plan := func(*store.Operation) *operation.Plan { return e.plan(e.step("a", nil), b.step()) }
		e.start("A", plan)
		b.wait()
		other := e.start("B", plan)
		e.clock.waitPending(t, heartbeat)
		for i := 0; i < 6; i++ { // twice the lease
			e.clock.Advance(heartbeat)
			want := e.clock.Now().Add(lease)
			eventually(t, "the lease renewed to "+want.String(), func() bool { return e.get(op.ID).LeaseExpires.Equal(want) })
			other.idle(t, e.clock)
			if got := e.get(op.ID); got.LeaseOwner != "A" || got.Attempt != 1 {
				t.Fatalf("after %s: owner %q attempt %d", time.Duration(i+1)*heartbeat, got.LeaseOwner, got.Attempt)
			}
		}
		b.open()
		done := waitState(e, op.ID, api.OpSucceeded)
		e.wantCalls("a", "b", "finish Succeeded <nil>")
		if done.LeaseOwner != "A" || done.Attempt != 1 || other.planned.Load() != 0 {
			t.Fatalf("owner %q attempt %d; B planned %d times", done.LeaseOwner, done.Attempt, other.planned.Load())
		}
	})
}

// A graceful stop interrupts the running step and releases the operation
// at once, without Undo or Finish; the next engine claims it without
// waiting for the lease and resumes at that step.
func TestResumeAtTheRunningStepAfterRelease(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		e.owners = true
		b := e.gate("b")
		op := e.newOp("attach")
		plan := func(*store.Operation) *operation.Plan {
			return e.plan(e.step("a", nil), b.step(), e.step("c", nil))
		}
		first := e.start("A", plan)
		b.wait()
		first.stop(t)
		got := e.get(op.ID)
		if got.State != api.OpRunning || !got.LeaseExpires.IsZero() || got.Step != "b" || got.StepIndex != 1 {
			t.Fatalf("released: state %s lease %s step %q/%d", got.State, got.LeaseExpires, got.Step, got.StepIndex)
		}
		if evs := e.events(op.ID); !hasEvent(evs, `info: Server stopping during step "b"; the operation will resume`) {
			t.Fatalf("no release event: %q", evs)
		}
		e.wantCalls("a@A", "b@A")
		if first.stopped.Load() != 1 {
			t.Fatal("OnDone not called on release")
		}
		e.start("B", plan) // the clock has not moved
		b.wait()
		b.open()
		done := waitState(e, op.ID, api.OpSucceeded)
		e.wantCalls("a@A", "b@A", "b@B", "c@B", "finish Succeeded <nil>@B")
		if done.Attempt != 2 {
			t.Fatalf("attempt %d", done.Attempt)
		}
		if evs := e.events(op.ID); !hasEvent(evs, "info: Resuming at step 2 of 3 on server B (attempt 2)") {
			t.Fatalf("no resume event: %q", evs)
		}
	})
}

// A stop while a step waits to retry releases the operation too: it is
// not a failure.
func TestStopDuringBackoffReleases(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		op := e.newOp("attach")
		eng := e.start("A", func(*store.Operation) *operation.Plan {
			return e.plan(e.step("flaky", errors.New("cluster did not answer")))
		})
		e.clock.waitPending(t, 500*time.Millisecond)
		eng.stop(t)
		got := e.get(op.ID)
		if got.State != api.OpRunning || !got.LeaseExpires.IsZero() || got.Step != "flaky" {
			t.Fatalf("state %s lease %s step %q", got.State, got.LeaseExpires, got.Step)
		}
		e.wantCalls("flaky")
	})
}

// A step's error that is not marked terminal (a cluster or the store not
// answering) runs the step again after 0.5s, 1s, 2s… (doubling, at most
// 10s) on the engine's clock, StepRetries times at most, then fails the
// operation.
func TestErrorsRetryWithBackoff(t *testing.T) {
	for _, tc := range []struct {
		name     string
		retries  int // StepRetries; 0 for the default
		failures int // errors before the step succeeds
		backoffs []time.Duration
		want     string
	}{
		{"recovers", 0, 3, []time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second}, string(api.OpSucceeded)},
		{"default bound", 0, 100, []time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second}, string(api.OpFailed)},
		{"capped", 7, 100, []time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 10 * time.Second, 10 * time.Second}, string(api.OpFailed)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			forEachStore(t, func(t *testing.T, e *env) {
				var runs atomic.Int32
				op := e.newOp("attach")
				e.start("A", func(*store.Operation) *operation.Plan {
					return e.plan(e.step("a", nil), operation.Step{Name: "flaky", Run: func(ctx context.Context, r *operation.Run) error {
						e.record(r, "flaky")
						if int(runs.Add(1)) <= tc.failures {
							return errors.New("cluster did not answer")
						}
						return nil
					}}, e.step("c", nil))
				}, func(en *operation.Engine) {
					en.StepRetries = tc.retries
					en.Lease = time.Hour // out of the way of the backoffs
				})
				var warnings []string
				for i, d := range tc.backoffs {
					e.clock.waitPending(t, d)
					e.clock.Advance(d - time.Millisecond)
					if n := runs.Load(); int(n) != i+1 {
						t.Fatalf("step ran %d times before backoff %d (%s) ended", n, i+1, d)
					}
					e.clock.Advance(time.Millisecond)
					warnings = append(warnings, "warning: flaky: cluster did not answer; retrying in "+d.String())
				}
				done := waitState(e, op.ID, tc.want)
				want := []string{"a"}
				for range len(tc.backoffs) + 1 {
					want = append(want, "flaky")
				}
				if tc.want == string(api.OpSucceeded) {
					want = append(want, "c", "finish Succeeded <nil>")
				} else {
					want = append(want, "undo", "finish Failed cluster did not answer")
					if done.Error == nil || done.Error.Code != api.CodeOperationFailed || done.Error.Message != "flaky: cluster did not answer" {
						t.Fatalf("error %+v", done.Error)
					}
				}
				e.wantCalls(want...)
				var gotWarnings []string
				for _, ev := range e.events(op.ID) {
					if strings.HasPrefix(ev, "warning: ") {
						gotWarnings = append(gotWarnings, ev)
					}
				}
				if !slices.Equal(gotWarnings, warnings) {
					t.Fatalf("warnings:\n got %q\nwant %q", gotWarnings, warnings)
				}
			})
		})
	}
}

// operation.Fail ends the operation at once: no retry, no later step, Undo
// then Finish once with the failure, which the operation keeps as its error.
func TestFailIsTerminal(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		op := e.newOp("attach")
		fail := operation.Fail("Broken", "the cluster refused", api.ErrorDetail{Code: "Quota", Message: "no quota left", Target: "nodes"})
		e.start("A", func(*store.Operation) *operation.Plan {
			return e.planUndoState(e.step("a", nil), e.step("b", fail), e.step("c", nil))
		})
		done := waitState(e, op.ID, api.OpFailed)
		e.wantCalls("a", "b", "undo Failed ctx=<nil>", "finish Failed the cluster refused\n  - no quota left")
		if done.Error == nil || done.Error.Code != "Broken" || done.Error.Message != "the cluster refused" ||
			len(done.Error.Details) != 1 || done.Error.Details[0].Target != "nodes" || done.Step != "b" {
			t.Fatalf("error %+v at step %q", done.Error, done.Step)
		}
		e.wantLastEvent(t, op.ID, "error: Failed: the cluster refused\n  - no quota left")
	})
}

// An error marked Terminal fails the operation without a retry, like Fail
// but with the code OperationFailed and the step's name.
func TestTerminalErrorFailsWithoutRetry(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		op := e.newOp("attach")
		e.start("A", func(*store.Operation) *operation.Plan {
			return e.plan(e.step("a", nil), e.step("b", operation.Terminal(errors.New("boom"))), e.step("c", nil))
		})
		done := waitState(e, op.ID, api.OpFailed)
		e.wantCalls("a", "b", "undo", "finish Failed boom")
		if done.Error == nil || done.Error.Code != api.CodeOperationFailed || done.Error.Message != "b: boom" {
			t.Fatalf("error %+v", done.Error)
		}
	})
}

// A cancel request reaches a running operation at its next heartbeat: the
// step's context ends (a step that ignores it is not waited past), no
// later step runs, and Undo — with a live context — then Finish run once.
func TestCancelRunningOperation(t *testing.T) {
	for _, deaf := range []bool{false, true} {
		t.Run(map[bool]string{false: "step stops", true: "step ignores its context"}[deaf], func(t *testing.T) {
			forEachStore(t, func(t *testing.T, e *env) {
				b := e.gate("b")
				b.deaf = deaf
				op := e.newOp("attach")
				e.start("A", func(*store.Operation) *operation.Plan {
					return e.planUndoState(e.step("a", nil), b.step(), e.step("c", nil))
				})
				atA := b.wait()
				if _, err := e.store.RequestCancel(context.Background(), op.ID); err != nil {
					t.Fatal(err)
				}
				if got := e.get(op.ID); got.State != api.OpRunning || !got.CancelRequested {
					t.Fatalf("after the request: state %s, requested %v", got.State, got.CancelRequested)
				}
				e.clock.waitPending(t, heartbeat)
				e.clock.Advance(heartbeat)
				select {
				case <-atA.ctx.Done():
				case <-time.After(10 * time.Second):
					t.Fatal("the step's context did not end")
				}
				if deaf {
					if got := e.get(op.ID); got.State != api.OpRunning {
						t.Fatalf("ended (%s) before the step returned", got.State)
					}
					b.open()
				}
				done := waitState(e, op.ID, api.OpCanceled)
				e.wantCalls("a", "b", "undo Canceled ctx=<nil>", "finish Canceled operation canceled")
				if done.Error == nil || done.Error.Code != "Canceled" || done.Error.Message != "The operation was canceled at step b" || done.StepIndex != 1 {
					t.Fatalf("error %+v step %d", done.Error, done.StepIndex)
				}
				e.wantLastEvent(t, op.ID, "warning: The operation was canceled at step b")
			})
		})
	}
}

// The server that records a cancel tells its engine (Canceled): the
// operation it runs stops at once, with no heartbeat (the clock stands
// still), so the target is free for the next operation.
func TestCanceledStopsAtOnce(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		b := e.gate("b")
		op := e.newOp("attach")
		eng := e.start("A", func(*store.Operation) *operation.Plan { return e.plan(b.step(), e.step("c", nil)) })
		atB := b.wait()
		eng.Canceled("another-operation")
		if got := e.get(op.ID); got.State != api.OpRunning {
			t.Fatalf("another operation's cancel: %s", got.State)
		}
		// Not pending: the server must not finish it as never started
		// (it read it Canceled right after this once, and said so).
		if pending, err := e.store.RequestCancel(context.Background(), op.ID); err != nil || pending {
			t.Fatalf("cancel of a running operation: pending %v, %v", pending, err)
		}
		eng.Canceled(op.ID)
		select {
		case <-atB.ctx.Done():
		case <-time.After(10 * time.Second):
			t.Fatal("the step's context did not end")
		}
		if done := waitState(e, op.ID, api.OpCanceled); done.StartedAt == nil {
			t.Fatal("a canceled operation that ran has no start time")
		}
		e.wantCalls("b", "undo", "finish Canceled operation canceled")
	})
}

// A Pending operation is canceled by the store at once: no engine plans it.
func TestCancelPendingOperation(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		op := e.newOp("attach")
		if pending, err := e.store.RequestCancel(context.Background(), op.ID); err != nil || !pending {
			t.Fatalf("cancel of a pending operation: pending %v, %v", pending, err)
		}
		if got := e.get(op.ID); got.State != api.OpCanceled || got.FinishedAt == nil || got.StartedAt != nil {
			t.Fatalf("state %s started %v finished %v", got.State, got.StartedAt, got.FinishedAt)
		}
		eng := e.start("A", func(*store.Operation) *operation.Plan { return e.plan(e.step("a", nil)) })
		eng.idle(t, e.clock)
		if eng.planned.Load() != 0 || len(e.recorded()) != 0 {
			t.Fatalf("planned %d times, calls %q", eng.planned.Load(), e.recorded())
		}
	})
}

// Undo sees what the steps remembered; it runs when the first step fails
// with nothing done (the plan's Undo must cope), and a failing Undo is a
// warning that changes neither the outcome nor the error.
func TestUndo(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fails int // the step that fails
		want  []string
	}{
		{"after work", 2, []string{"a", "b", "c", "undo made=thing-1", "finish Failed c: boom"}},
		{"nothing done", 0, []string{"a", "undo made=", "finish Failed a: boom"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			forEachStore(t, func(t *testing.T, e *env) {
				op := e.newOp("attach")
				e.start("A", func(*store.Operation) *operation.Plan {
					steps := []operation.Step{e.step("a", nil), {Name: "b", Run: func(ctx context.Context, r *operation.Run) error {
						e.record(r, "b")
						return r.Remember(ctx, "made", "thing-1")
					}}, e.step("c", nil)}
					steps[tc.fails] = e.step(steps[tc.fails].Name, operation.Fail("Broken", steps[tc.fails].Name+": boom"))
					p := e.plan(steps...)
					p.Undo = func(ctx context.Context, r *operation.Run) error {
						e.record(r, "undo made="+r.Recall("made"))
						return errors.New("the cluster is gone")
					}
					return p
				})
				done := waitState(e, op.ID, api.OpFailed)
				e.wantCalls(tc.want...)
				if done.Error == nil || done.Error.Code != "Broken" {
					t.Fatalf("error %+v", done.Error)
				}
				evs := e.events(op.ID)
				if !hasEvent(evs, "warning: Could not undo everything: the cluster is gone") || !strings.HasPrefix(evs[len(evs)-1], "error: Failed: ") {
					t.Fatalf("events %q", evs)
				}
			})
		})
	}
}

// An operation whose plan cannot be made (a terminal planner error) fails
// without steps, Undo or Finish (there is no plan to call them on).
func TestPlannerErrorFailsTheOperation(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		op := e.newOp("frobnicate")
		e.start("A", nil, func(en *operation.Engine) {
			en.Planner = func(*store.Operation) (*operation.Plan, error) {
				return nil, operation.Terminal(errors.New("unknown kind"))
			}
		})
		done := waitState(e, op.ID, api.OpFailed)
		if done.Error == nil || done.Error.Code != api.CodeOperationFailed || !strings.Contains(done.Error.Message, "plan frobnicate: unknown kind") {
			t.Fatalf("error %+v", done.Error)
		}
	})
}

// A planner's error that is not terminal (the store did not answer while
// it loaded the target) is retried with the steps' backoff; the operation
// then runs.
func TestPlannerErrorIsRetried(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		var calls atomic.Int32
		op := e.newOp("attach")
		e.start("A", nil, func(en *operation.Engine) {
			en.Planner = func(*store.Operation) (*operation.Plan, error) {
				if calls.Add(1) == 1 {
					return nil, errors.New("database is locked")
				}
				return e.plan(e.step("a", nil)), nil
			}
		})
		e.clock.waitPending(t, 500*time.Millisecond)
		e.clock.Advance(500 * time.Millisecond)
		waitState(e, op.ID, api.OpSucceeded)
		e.wantCalls("a", "finish Succeeded <nil>")
		if evs := e.events(op.ID); !slices.Contains(evs, "warning: plan attach: database is locked; retrying in 500ms") {
			t.Fatalf("events %q", evs)
		}
	})
}

// Finish runs inside the transaction that makes the operation terminal:
// it sees the operation still Running, and if it fails nothing it wrote is
// kept and the operation stays Running under its lease. The next owner
// after the lease runs out calls Finish again without rerunning any step.
func TestFinishIsPartOfTheTerminalTransaction(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		op := e.newOp("attach")
		var finishes atomic.Int32
		eng := e.start("A", func(*store.Operation) *operation.Plan {
			p := e.plan(e.step("a", nil), e.step("b", nil))
			p.Finish = func(ctx context.Context, tx *store.Store, r *operation.Run, err error) error {
				n := finishes.Add(1)
				e.record(r, fmt.Sprintf("finish #%d %v", n, err))
				seen, gerr := tx.GetOperation(ctx, r.Op.ID)
				if gerr != nil {
					return gerr
				}
				if seen.State != api.OpRunning {
					t.Errorf("Finish saw the operation %s", seen.State)
				}
				if _, aerr := tx.AppendEvent(ctx, r.Op.ID, api.LevelInfo, fmt.Sprintf("target updated by finish #%d", n)); aerr != nil {
					return aerr
				}
				if n == 1 {
					return errors.New("target record conflict")
				}
				return nil
			}
			return p
		})
		eventually(t, "the first attempt to end", func() bool { return eng.stopped.Load() == 1 })
		got := e.get(op.ID)
		if got.State != api.OpRunning || got.LeaseOwner != "A" || got.StepIndex != 2 || got.FinishedAt != nil {
			t.Fatalf("after a failed Finish: state %s owner %q step %d finished %v", got.State, got.LeaseOwner, got.StepIndex, got.FinishedAt)
		}
		if evs := e.events(op.ID); hasEvent(evs, "info: target updated by finish #1") || hasEvent(evs, "info: Succeeded") {
			t.Fatalf("a failed Finish left writes behind: %q", evs)
		}
		eventually(t, "the heartbeat to stop", func() bool { return e.clock.pending(heartbeat) == 0 })
		e.clock.waitPending(t, poll)
		e.clock.Advance(lease + time.Millisecond)
		eng.Wake()
		done := waitState(e, op.ID, api.OpSucceeded)
		e.wantCalls("a", "b", "finish #1 <nil>", "finish #2 <nil>")
		evs := e.events(op.ID)
		if done.Attempt != 2 || len(evs) < 2 || evs[len(evs)-2] != "info: target updated by finish #2" ||
			evs[len(evs)-1] != "info: Succeeded: attach of "+op.TargetName {
			t.Fatalf("attempt %d, events %q", done.Attempt, evs)
		}
	})
}

// Engines racing for the same operations, each on its own connection to
// the database as separate servers are: every operation is claimed by one
// engine, each of its steps runs once, and it finishes once.
func TestOneEnginePerOperationUnderContention(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		e.owners = true
		const ops, engines, workers = 20, 3, 4
		// Every engine looks for work and finds none before the operations
		// appear, then all are woken at once.
		hold := make(chan struct{})
		var all []*engine
		for i := range engines {
			s := e.open()
			g := e.start(fmt.Sprintf("E%d", i), func(op *store.Operation) *operation.Plan {
				step := func(name string) operation.Step { return e.step(op.ID+" "+name, nil) }
				first := step("s1")
				run := first.Run
				first.Run = func(ctx context.Context, r *operation.Run) error {
					select { // keep the worker busy until every engine is full
					case <-hold:
					case <-ctx.Done():
					}
					return run(ctx, r)
				}
				p := e.plan(first, step("s2"), step("s3"))
				finish := p.Finish
				p.Finish = func(ctx context.Context, tx *store.Store, r *operation.Run, err error) error {
					e.record(r, op.ID+" finish")
					return finish(ctx, tx, r, err)
				}
				return p
			}, func(en *operation.Engine) { en.Store = s; en.Workers = workers })
			g.idle(t, e.clock)
			all = append(all, g)
		}
		var ids []string
		for range ops {
			ids = append(ids, e.newOp("attach").ID)
		}
		for _, g := range all {
			g.Wake()
		}
		// An engine that loses a race for the oldest operation finds no work
		// and waits for its next poll; waking them stands in for the poll.
		eventually(t, "every engine to fill its workers", func() bool {
			for _, g := range all {
				g.Wake()
			}
			n := 0
			for _, id := range ids {
				if e.get(id).State == api.OpRunning {
					n++
				}
			}
			return n == engines*workers
		})
		close(hold)
		eventually(t, "every operation to succeed", func() bool {
			for _, g := range all {
				g.Wake()
			}
			for _, id := range ids {
				if e.get(id).State != api.OpSucceeded {
					return false
				}
			}
			return true
		})
		count := map[string]int{}
		owner := map[string]string{}
		perEngine := map[string]int{}
		for _, c := range e.recorded() {
			call, who, _ := strings.Cut(c, "@")
			id, _, _ := strings.Cut(call, " ")
			if id == "finish" { // the usual plan's own record
				continue
			}
			count[call]++
			if owner[id] == "" {
				owner[id] = who
				perEngine[who]++
			} else if owner[id] != who {
				t.Errorf("operation %s ran on %s and %s", id, owner[id], who)
			}
		}
		for _, id := range ids {
			for _, what := range []string{"s1", "s2", "s3", "finish"} {
				if n := count[id+" "+what]; n != 1 {
					t.Errorf("%s of %s ran %d times", what, id, n)
				}
			}
			if a := e.get(id).Attempt; a != 1 {
				t.Errorf("%s claimed %d times", id, a)
			}
		}
		for _, g := range all {
			if perEngine[g.Owner] < workers {
				t.Errorf("operations per engine: %v; want each engine to have claimed at least %d", perEngine, workers)
			}
		}
	})
}

// The lease is renewed while Undo runs — after a failure and after a
// cancel — so a slow Undo does not let another engine take the operation
// over and run its steps again.
func TestLeaseKeptWhileUndoing(t *testing.T) {
	for _, why := range []string{"failed", "canceled"} {
		t.Run(why, func(t *testing.T) {
			forEachStore(t, func(t *testing.T, e *env) {
				e.owners = true
				b := e.gate("b")
				undoing := e.gate("undo")
				op := e.newOp("attach")
				plan := func(*store.Operation) *operation.Plan {
					p := e.plan(e.step("a", nil), b.step(), e.step("c", nil))
					if why == "failed" {
						p.Steps[1] = e.step("b", operation.Fail("Broken", "b broke"))
					}
					undoStep := undoing.step()
					p.Undo = func(ctx context.Context, r *operation.Run) error { return undoStep.Run(ctx, r) }
					return p
				}
				e.start("A", plan)
				if why == "canceled" {
					b.wait()
					if _, err := e.store.RequestCancel(context.Background(), op.ID); err != nil {
						t.Fatal(err)
					}
					e.clock.waitPending(t, heartbeat)
					e.clock.Advance(heartbeat)
				}
				undoing.wait()
				other := e.start("B", plan)
				// One heartbeat, and after a cancel the one that keeps the
				// lease while the operation ends (the first has stopped).
				beats := map[string]int{"failed": 1, "canceled": 2}[why]
				eventually(t, "the heartbeat", func() bool {
					return e.clock.madeCount(heartbeat) == beats && e.clock.pending(heartbeat) == 1
				})
				for i := 0; i < 6; i++ { // twice the lease
					e.clock.Advance(heartbeat)
					want := e.clock.Now().Add(lease)
					eventually(t, "the lease renewed to "+want.String(), func() bool { return e.get(op.ID).LeaseExpires.Equal(want) })
					other.idle(t, e.clock)
					if got := e.get(op.ID); got.LeaseOwner != "A" {
						t.Fatalf("taken over by %q during Undo", got.LeaseOwner)
					}
				}
				undoing.open()
				done := e.get(op.ID)
				eventually(t, "the operation to end", func() bool { done = e.get(op.ID); return done.Terminal() })
				state := map[string]string{"failed": "Failed b broke", "canceled": "Canceled operation canceled"}[why]
				e.wantCalls("a@A", "b@A", "undo@A", "finish "+state+"@A")
				if other.planned.Load() != 0 {
					t.Fatalf("B planned the operation %d times", other.planned.Load())
				}
			})
		})
	}
}

// If an engine's own renewals fail until its lease runs out (the database
// was away for longer than a lease, say), its next poll does not claim the
// operation it is still running: the running attempt goes on (its
// heartbeat renews the lease), no second one runs its steps beside it, and
// the attempt count stays.
func TestEngineDoesNotRunItsOwnOperationTwice(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		b := e.gate("b")
		op := e.newOp("attach")
		eng := e.start("A", func(*store.Operation) *operation.Plan {
			return e.plan(e.step("a", nil), b.step(), e.step("c", nil))
		})
		b.wait()
		// The renewals that failed: the lease has run out.
		if _, err := e.store.Renew(ctx, op.ID, "A", e.clock.Now().Add(-time.Second)); err != nil {
			t.Fatal(err)
		}
		eng.idle(t, e.clock)
		got := e.get(op.ID)
		if got.Attempt != 1 || got.LeaseOwner != "A" {
			t.Fatalf("after the engine looked for work: attempt %d owner %q lease %s", got.Attempt, got.LeaseOwner, got.LeaseExpires)
		}
		b.open()
		waitState(e, op.ID, api.OpSucceeded)
		e.wantCalls("a", "b", "c", "finish Succeeded <nil>")
		if n := eng.planned.Load(); n != 1 {
			t.Fatalf("planned %d times", n)
		}
	})
}
