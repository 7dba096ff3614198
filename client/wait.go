package client

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/berth-ml/berth/api"
)

// OperationError is returned by Wait when the operation ends Failed or Canceled.
type OperationError struct {
	Operation *api.Operation
}

func (e *OperationError) Error() string {
	op := e.Operation
	if op.Error != nil {
		return fmt.Sprintf("%s of %s %s: %s", op.Kind, op.TargetName, strings.ToLower(string(op.State)), op.Error.Error())
	}
	return fmt.Sprintf("%s of %s %s", op.Kind, op.TargetName, strings.ToLower(string(op.State)))
}

// WaitOptions says what to do with events while waiting.
type WaitOptions struct {
	// OnEvent is called with each event, in order, once.
	OnEvent func(api.Event)
	// Events, if set, gets one line per event: "TIME  LEVEL  MESSAGE".
	Events io.Writer
	// After skips events up to this sequence number.
	After int64
}

// FormatEvent is the plain one-line form of an event.
func FormatEvent(ev api.Event) string {
	level := ""
	if ev.Level != api.LevelInfo {
		level = strings.ToUpper(ev.Level) + ": "
	}
	return fmt.Sprintf("%s  %s%s", ev.Time.Local().Format("15:04:05"), level, ev.Message)
}

// Wait follows an operation's events (server-sent events, reconnecting
// after a dropped stream) until it ends. It returns the final operation, and
// an *OperationError as well if it did not succeed.
func (c *Client) Wait(ctx context.Context, id string, opts WaitOptions) (*api.Operation, error) {
	after := opts.After
	emit := func(ev api.Event) {
		if ev.Seq <= after {
			return
		}
		after = ev.Seq
		if opts.OnEvent != nil {
			opts.OnEvent(ev)
		}
		if opts.Events != nil {
			fmt.Fprintln(opts.Events, FormatEvent(ev))
		}
	}
	backoff := 200 * time.Millisecond
	for {
		op, err := c.follow(ctx, id, after, emit)
		if op != nil {
			if op.State == api.OpSucceeded {
				return op, nil
			}
			return op, &OperationError{Operation: op}
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if apiErr, ok := errors.AsType[*Error](err); ok && apiErr.StatusCode < 500 {
			return nil, err
		}
		// The stream broke (server restarting, network): try again.
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

// follow reads one event stream; it returns the operation when the stream
// ends with it, or an error when the stream breaks first.
func (c *Client) follow(ctx context.Context, id string, after int64, emit func(api.Event)) (*api.Operation, error) {
	q := url.Values{"follow": {"true"}, "after": {strconv.FormatInt(after, 10)}}
	r := request{method: "GET", path: "/api/v1/operations/" + esc(id) + "/events", query: q, accept: "text/event-stream"}
	resp, err := c.send(ctx, r)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, apiError(r, resp)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64*1024), 4<<20)
	var event, data string
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			switch event {
			case "event":
				var ev api.Event
				if err := json.Unmarshal([]byte(data), &ev); err == nil {
					emit(ev)
				}
			case "end":
				var op api.Operation
				if err := json.Unmarshal([]byte(data), &op); err != nil {
					return nil, err
				}
				return &op, nil
			}
			event, data = "", ""
		case strings.HasPrefix(line, "event:"):
			event = strings.TrimSpace(strings.TrimPrefix(line, "event:"))
		case strings.HasPrefix(line, "data:"):
			data += strings.TrimPrefix(strings.TrimPrefix(line, "data:"), " ")
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return nil, io.ErrUnexpectedEOF
}
