package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/berth-ml/berth/api"
)

// Operation is an operation as stored: the public view plus what the
// engine needs to run it (its step, parameters, scratch memory and lease).
type Operation struct {
	api.Operation
	WorkspaceID string
	// StepIndex is the index of the next step to run.
	StepIndex int
	// Params is the operation's input (sealed at rest: it may hold secrets).
	Params json.RawMessage
	// Scratch is memory steps keep across restarts (ids of things they
	// made), sealed at rest.
	Scratch         map[string]string
	LeaseOwner      string
	LeaseExpires    time.Time
	CancelRequested bool
}

const operationCols = `id, workspace_id, workspace_name, target_type, target_id, target_name, kind, state, step, step_index,
	attempt, params, scratch, error, cancel_requested, lease_owner, lease_expires, created_at, started_at, finished_at`

func (s *Store) scanOperation(sc scanner) (*Operation, error) {
	var (
		o                                  Operation
		params, scratch, errJSON           string
		cancel                             int
		leaseExp, created, started, finish int64
	)
	err := sc.Scan(&o.ID, &o.WorkspaceID, &o.Workspace, &o.TargetType, &o.TargetID, &o.TargetName, &o.Kind, &o.State,
		&o.Step, &o.StepIndex, &o.Attempt, &params, &scratch, &errJSON, &cancel, &o.LeaseOwner, &leaseExp,
		&created, &started, &finish)
	if err != nil {
		return nil, err
	}
	if params != "" {
		b, err := s.box.Open(params)
		if err != nil {
			return nil, err
		}
		o.Params = b
	}
	if o.Scratch, err = s.openSecrets(scratch); err != nil {
		return nil, err
	}
	if o.Scratch == nil {
		o.Scratch = map[string]string{}
	}
	if errJSON != "" {
		o.Error = &api.Error{}
		if err := json.Unmarshal([]byte(errJSON), o.Error); err != nil {
			return nil, err
		}
	}
	o.CancelRequested = cancel != 0
	o.LeaseExpires = fromMS(leaseExp)
	o.CreatedAt = fromMS(created)
	o.StartedAt = fromMSPtr(started)
	o.FinishedAt = fromMSPtr(finish)
	return &o, nil
}

// CreateOperation inserts a Pending operation. If its target has an active
// operation it returns *ActiveOperationError naming that one.
func (s *Store) CreateOperation(ctx context.Context, o *Operation) error {
	if o.CreatedAt.IsZero() {
		o.CreatedAt = time.Now().UTC().Truncate(time.Millisecond)
	}
	o.State = api.OpPending
	params := ""
	if len(o.Params) > 0 {
		params = s.box.Seal(o.Params)
	}
	scratch, err := s.sealSecrets(o.Scratch)
	if err != nil {
		return err
	}
	// Look first so the usual conflict names the running operation; the
	// unique index still settles races between servers.
	if active, err := s.ActiveOperation(ctx, o.TargetID); err == nil {
		return &ActiveOperationError{Operation: active}
	} else if !errors.Is(err, ErrNotFound) {
		return err
	}
	_, err = s.exec(ctx, `INSERT INTO operations (id, workspace_id, workspace_name, target_type, target_id, target_name, kind, state,
		params, scratch, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		o.ID, o.WorkspaceID, o.Workspace, o.TargetType, o.TargetID, o.TargetName, o.Kind, o.State, params, scratch,
		ms(o.CreatedAt), ms(o.CreatedAt))
	if isUniqueViolation(err) {
		// Lost a race. Inside a PostgreSQL transaction nothing more can be
		// read, so the caller looks the winner up after rolling back.
		if _, inTx := s.q.(*sql.Tx); inTx {
			return &ActiveOperationError{}
		}
		active, _ := s.ActiveOperation(ctx, o.TargetID) // nil if it cannot be read
		return &ActiveOperationError{Operation: active}
	}
	return err
}

// ActiveOperation returns the Pending or Running operation of a target, or ErrNotFound.
func (s *Store) ActiveOperation(ctx context.Context, targetID string) (*Operation, error) {
	return found(s.scanOperation(s.queryRow(ctx, `SELECT `+operationCols+` FROM operations WHERE target_id = ? AND state IN ('Pending', 'Running')`, targetID)))
}

// GetOperation finds an operation by id.
func (s *Store) GetOperation(ctx context.Context, id string) (*Operation, error) {
	return found(s.scanOperation(s.queryRow(ctx, `SELECT `+operationCols+` FROM operations WHERE id = ?`, id)))
}

// ListOperations lists a workspace's operations, newest first; a non-empty
// targetName keeps only that target's (any case), a non-empty state only
// the operations in it.
func (s *Store) ListOperations(ctx context.Context, workspaceID, targetName string, state api.OperationState, limit int) ([]Operation, error) {
	if limit <= 0 {
		limit = 100
	}
	q := `SELECT ` + operationCols + ` FROM operations WHERE workspace_id = ?`
	args := []any{workspaceID}
	if targetName != "" {
		q += ` AND LOWER(target_name) = ?`
		args = append(args, NameKey(targetName))
	}
	if state != "" {
		q += ` AND state = ?`
		args = append(args, string(state))
	}
	q += ` ORDER BY created_at DESC, id LIMIT ?`
	return list(ctx, s, s.scanOperation, q, append(args, limit)...)
}

// Claim gives owner the oldest operation that is Pending, or Running with
// an expired lease (its server died), leased until now+lease, leaving out
// the operations owner is running itself (its own lease may lapse when
// renewals are late: its heartbeat renews it, and no new attempt starts).
// It returns ErrNotFound when there is none. The re-check in the outer
// WHERE makes two servers claiming at once safe on both databases: only
// one update matches.
func (s *Store) Claim(ctx context.Context, owner string, now time.Time, lease time.Duration, running ...string) (*Operation, error) {
	notMine, args := "", []any{owner, ms(now.Add(lease)), ms(now), ms(now), ms(now)}
	if len(running) > 0 {
		notMine = " AND id NOT IN (?" + strings.Repeat(", ?", len(running)-1) + ")"
		for _, id := range running {
			args = append(args, id)
		}
	}
	args = append(args, ms(now))
	var id string
	err := s.queryRow(ctx, `UPDATE operations SET state = 'Running', lease_owner = ?, lease_expires = ?, attempt = attempt + 1,
			started_at = CASE WHEN started_at = 0 THEN ? ELSE started_at END, updated_at = ?
		WHERE id = (SELECT id FROM operations WHERE state IN ('Pending', 'Running') AND lease_expires < ?`+notMine+` ORDER BY created_at, id LIMIT 1)
		  AND state IN ('Pending', 'Running') AND lease_expires < ?
		RETURNING id`, args...).Scan(&id)
	if err != nil {
		return found[*Operation](nil, err)
	}
	return s.GetOperation(ctx, id)
}

// Renew extends owner's lease; ErrLeaseLost if owner no longer holds it.
// It reports whether a cancel was requested.
func (s *Store) Renew(ctx context.Context, id, owner string, until time.Time) (cancelRequested bool, err error) {
	var c int
	err = s.queryRow(ctx, `UPDATE operations SET lease_expires = ? WHERE id = ? AND lease_owner = ? AND state = 'Running' RETURNING cancel_requested`,
		ms(until), id, owner).Scan(&c)
	if errors.Is(err, sql.ErrNoRows) {
		return false, ErrLeaseLost
	}
	return c != 0, err
}

// SaveProgress records the step reached and the scratch memory, if owner
// still holds the lease.
func (s *Store) SaveProgress(ctx context.Context, o *Operation) error {
	scratch, err := s.sealSecrets(o.Scratch)
	if err != nil {
		return err
	}
	res, err := s.exec(ctx, `UPDATE operations SET step = ?, step_index = ?, scratch = ?, updated_at = ? WHERE id = ? AND lease_owner = ? AND state = 'Running'`,
		o.Step, o.StepIndex, scratch, ms(time.Now()), o.ID, o.LeaseOwner)
	return changedRow(res, err, ErrLeaseLost)
}

// Finish moves an operation owned by o.LeaseOwner to its terminal state.
func (s *Store) Finish(ctx context.Context, o *Operation) error {
	now := time.Now().UTC().Truncate(time.Millisecond)
	errJSON := ""
	if o.Error != nil {
		b, err := json.Marshal(o.Error)
		if err != nil {
			return err
		}
		errJSON = string(b)
	}
	res, err := s.exec(ctx, `UPDATE operations SET state = ?, error = ?, step = ?, step_index = ?, finished_at = ?, lease_expires = 0, updated_at = ?
		WHERE id = ? AND lease_owner = ? AND state = 'Running'`,
		o.State, errJSON, o.Step, o.StepIndex, ms(now), ms(now), o.ID, o.LeaseOwner)
	if err := changedRow(res, err, ErrLeaseLost); err != nil {
		return err
	}
	o.FinishedAt = &now
	return nil
}

// Release gives up owner's lease so another server may take the operation
// at once (used on graceful shutdown).
func (s *Store) Release(ctx context.Context, id, owner string) error {
	_, err := s.exec(ctx, `UPDATE operations SET lease_expires = 0 WHERE id = ? AND lease_owner = ? AND state = 'Running'`, id, owner)
	return err
}

// RequestCancel asks for an operation to stop, and tells whether it was
// still Pending: such an operation is Canceled here and now (it never
// started); a Running one is marked for its engine to stop.
func (s *Store) RequestCancel(ctx context.Context, id string) (pending bool, err error) {
	now := ms(time.Now())
	res, err := s.exec(ctx, `UPDATE operations SET state = 'Canceled', finished_at = ?, updated_at = ? WHERE id = ? AND state = 'Pending'`, now, now, id)
	if err != nil {
		return false, err
	}
	if n, _ := res.RowsAffected(); n > 0 {
		return true, nil
	}
	_, err = s.exec(ctx, `UPDATE operations SET cancel_requested = 1, updated_at = ? WHERE id = ? AND state = 'Running'`, now, id)
	return false, err
}

// AppendEvent adds a timestamped event to an operation.
func (s *Store) AppendEvent(ctx context.Context, opID, level, message string) (api.Event, error) {
	ev := api.Event{Time: time.Now().UTC().Truncate(time.Millisecond), Level: level, Message: message}
	for attempt := 0; ; attempt++ {
		err := s.queryRow(ctx, `INSERT INTO operation_events (operation_id, seq, time, level, message)
			SELECT ?, COALESCE(MAX(seq), 0) + 1, ?, ?, ? FROM operation_events WHERE operation_id = ? RETURNING seq`,
			opID, ms(ev.Time), level, message, opID).Scan(&ev.Seq)
		if isUniqueViolation(err) && attempt < 5 {
			continue
		}
		return ev, err
	}
}

// ListEvents returns an operation's events with seq > after, in order.
func (s *Store) ListEvents(ctx context.Context, opID string, after int64) ([]api.Event, error) {
	return list(ctx, s, func(sc scanner) (*api.Event, error) {
		var (
			ev api.Event
			t  int64
		)
		err := sc.Scan(&ev.Seq, &t, &ev.Level, &ev.Message)
		ev.Time = fromMS(t)
		return &ev, err
	}, `SELECT seq, time, level, message FROM operation_events WHERE operation_id = ? AND seq > ? ORDER BY seq`, opID, after)
}
