package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/berth-ml/berth/api"
	"github.com/berth-ml/berth/client"
	"github.com/berth-ml/berth/internal/cli/output"
)

// progress shows an operation's events: a spinner line on a terminal,
// plain timestamped lines otherwise.
type progress struct {
	a       *app
	tty     bool
	mu      sync.Mutex
	current string
	start   time.Time // --verbose: events show the time since (the operation's creation)
	stop    chan struct{}
	done    chan struct{}
}

var spinnerFrames = []string{"⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"}

func (a *app) newProgress() *progress {
	p := &progress{a: a}
	if f, ok := a.stderr.(*os.File); ok && output.IsTerminal(f) && a.getenv("TERM") != "dumb" {
		p.tty = true
		p.stop, p.done = make(chan struct{}), make(chan struct{})
		go p.spin()
	}
	return p
}

func (p *progress) spin() {
	defer close(p.done)
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for i := 0; ; i++ {
		select {
		case <-p.stop:
			p.mu.Lock()
			fmt.Fprint(p.a.stderr, "\r\033[K")
			p.mu.Unlock()
			return
		case <-t.C:
		}
		p.mu.Lock()
		if p.current != "" {
			fmt.Fprintf(p.a.stderr, "\r\033[K%s %s", spinnerFrames[i%len(spinnerFrames)], p.current)
		}
		p.mu.Unlock()
	}
}

func (p *progress) event(ev api.Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	line := client.FormatEvent(ev)
	if p.a.verbose {
		line = fmt.Sprintf("%+7.1fs  %s", ev.Time.Sub(p.start).Seconds(), line)
	}
	if p.tty {
		fmt.Fprintf(p.a.stderr, "\r\033[K%s\n", line)
		p.current = ev.Message
		return
	}
	fmt.Fprintln(p.a.stderr, line)
}

func (p *progress) close() {
	if p.tty {
		close(p.stop)
		<-p.done
	}
}

// follow waits for an operation while printing its events. Ctrl-C stops
// waiting (not the operation) and says how to resume. It returns the final
// operation and its failure, if any.
func (a *app) follow(ctx context.Context, c *client.Client, op *api.Operation, resume string) (*api.Operation, error) {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	if a.verbose {
		fmt.Fprintf(a.stderr, "Operation %s: %s of %s %s, %s\n", op.ID, op.Kind, op.TargetType, op.TargetName, op.State)
	}
	begun := time.Now()
	p := a.newProgress()
	p.start = op.CreatedAt
	final, err := c.Wait(ctx, op.ID, client.WaitOptions{OnEvent: p.event})
	p.close()
	if a.verbose && final != nil {
		fmt.Fprintf(a.stderr, "Operation %s %s; waited %s%s\n", final.ID, final.State, time.Since(begun).Round(100*time.Millisecond), opTimes(final))
	}
	if ctx.Err() != nil && final == nil {
		fmt.Fprintf(a.stderr, "\nStopped waiting. Operation %s (%s of %s) goes on in the server.\nResume waiting with: %s\n",
			op.ID, op.Kind, op.TargetName, resume)
		return nil, &exitError{code: ExitInterrupted, err: errSilent}
	}
	return final, err
}

// runOperation handles an operation a command started: with --no-wait it
// prints the operation; otherwise it follows it and prints the compute at
// the end (or the operation, when the compute is gone).
func (a *app) runOperation(ctx context.Context, c *client.Client, ws string, op *api.Operation, noWait bool) error {
	if noWait {
		fmt.Fprintf(a.stderr, "Started %s of %s: operation %s. Follow it with: berth compute wait -n %s -w %s\n", op.Kind, op.TargetName, op.ID, op.TargetName, ws)
		return a.print(op, operationColumns)
	}
	return a.finishOperation(ctx, c, ws, op)
}

func (a *app) finishOperation(ctx context.Context, c *client.Client, ws string, op *api.Operation) error {
	return a.finish(ctx, c, op, fmt.Sprintf("berth compute wait -n %s -w %s", op.TargetName, ws), computeColumns, func(name string) (any, error) {
		return c.GetCompute(ctx, ws, name)
	})
}

// finish follows an operation to its end, then prints its target as it is
// now (get), or the operation when the target is gone; a failed operation
// then exits 1 with what went wrong.
func (a *app) finish(ctx context.Context, c *client.Client, op *api.Operation, resume string, cols []output.Column, get func(name string) (any, error)) error {
	final, err := a.follow(ctx, c, op, resume)
	var opErr *client.OperationError
	if err != nil && !errors.As(err, &opErr) {
		return err
	}
	target, gerr := get(final.TargetName)
	switch {
	case gerr == nil:
		err = a.print(target, cols)
	case errors.Is(gerr, client.ErrNotFound):
		err = a.print(final, operationColumns)
	default:
		return gerr
	}
	if err != nil {
		return err
	}
	if opErr != nil {
		fmt.Fprintf(a.stderr, "Error: %s\n", a.describeFailure(final))
		return &exitError{code: ExitFailed, err: errSilent}
	}
	return nil
}

// opTimes is how long an operation waited to start and then ran, as the
// server recorded.
func opTimes(op *api.Operation) string {
	if op.StartedAt == nil || op.FinishedAt == nil {
		return ""
	}
	return fmt.Sprintf(" (queued %s, ran %s)", op.StartedAt.Sub(op.CreatedAt).Round(time.Millisecond), op.FinishedAt.Sub(*op.StartedAt).Round(time.Millisecond))
}

func (a *app) describeFailure(op *api.Operation) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s of %s %s", op.Kind, op.TargetName, strings.ToLower(string(op.State)))
	if op.Error != nil {
		f := a.flagNames()
		fmt.Fprintf(&b, ": %s (%s)", f.message(op.Error.Message), op.Error.Code)
		for _, d := range op.Error.Details {
			fmt.Fprintf(&b, "\n  - %s", f.detail(d))
		}
	}
	return b.String()
}
