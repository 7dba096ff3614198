package store

import (
	"context"
	"time"

	"github.com/berth-ml/berth/api"
)

// Token is an API token as stored: only the hash of its secret is kept.
type Token struct {
	api.Token
	Hash string
}

// CreateToken inserts a token.
func (s *Store) CreateToken(ctx context.Context, t *Token) error {
	if t.CreatedAt.IsZero() {
		t.CreatedAt = time.Now().UTC().Truncate(time.Millisecond)
	}
	_, err := s.exec(ctx, `INSERT INTO tokens (id, hash, role, workspace, description, created_at) VALUES (?, ?, ?, ?, ?, ?)`,
		t.ID, t.Hash, t.Role, t.Workspace, t.Description, ms(t.CreatedAt))
	return err
}

// TokenByHash finds a token that has not been revoked by the hash of its secret.
func (s *Store) TokenByHash(ctx context.Context, hash string) (*Token, error) {
	var (
		t             Token
		created, used int64
	)
	err := s.queryRow(ctx, `SELECT id, hash, role, workspace, description, created_at, last_used_at FROM tokens WHERE hash = ? AND revoked_at = 0`, hash).
		Scan(&t.ID, &t.Hash, &t.Role, &t.Workspace, &t.Description, &created, &used)
	if err != nil {
		return found[*Token](nil, err)
	}
	t.CreatedAt, t.LastUsedAt = fromMS(created), fromMSPtr(used)
	return &t, nil
}

// TokenWorkspace is the workspace a token (revoked or not) is limited to
// ("" for none); ErrNotFound if no token ever had the id.
func (s *Store) TokenWorkspace(ctx context.Context, id string) (string, error) {
	var ws string
	err := s.queryRow(ctx, `SELECT workspace FROM tokens WHERE id = ?`, id).Scan(&ws)
	return found(ws, err)
}

// ListTokens lists tokens that have not been revoked, oldest first: all of
// them, or those limited to one workspace (any case) when ws is not "".
func (s *Store) ListTokens(ctx context.Context, ws string) ([]api.Token, error) {
	q, args := `SELECT id, role, workspace, description, created_at, last_used_at FROM tokens WHERE revoked_at = 0`, []any{}
	if ws != "" {
		q, args = q+` AND LOWER(workspace) = LOWER(?)`, append(args, ws)
	}
	return list(ctx, s, func(sc scanner) (*api.Token, error) {
		var (
			t             api.Token
			created, used int64
		)
		err := sc.Scan(&t.ID, &t.Role, &t.Workspace, &t.Description, &created, &used)
		t.CreatedAt, t.LastUsedAt = fromMS(created), fromMSPtr(used)
		return &t, err
	}, q+` ORDER BY created_at, id`, args...)
}

// RevokeToken revokes a token by id; ErrNotFound if there is no such live token.
func (s *Store) RevokeToken(ctx context.Context, id string) error {
	res, err := s.exec(ctx, `UPDATE tokens SET revoked_at = ? WHERE id = ? AND revoked_at = 0`, ms(time.Now()), id)
	return changedRow(res, err, ErrNotFound)
}

// TouchToken records a token's last use.
func (s *Store) TouchToken(ctx context.Context, id string, at time.Time) error {
	_, err := s.exec(ctx, `UPDATE tokens SET last_used_at = ? WHERE id = ?`, ms(at), id)
	return err
}
