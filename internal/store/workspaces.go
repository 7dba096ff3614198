package store

import (
	"context"
	"encoding/json"
	"strings"
	"time"

	"github.com/berth-ml/berth/api"
)

// NameKey is the case-insensitive form names are unique under.
func NameKey(name string) string { return strings.ToLower(name) }

// CreateWorkspace inserts w; ErrNameInUse if the name (any case) exists.
func (s *Store) CreateWorkspace(ctx context.Context, w *api.Workspace) error {
	settings, err := json.Marshal(s.sealSettings(w.Settings))
	if err != nil {
		return err
	}
	if w.CreatedAt.IsZero() {
		w.CreatedAt = time.Now().UTC().Truncate(time.Millisecond)
	}
	_, err = s.exec(ctx, `INSERT INTO workspaces (id, name, name_key, region, settings, created_at) VALUES (?, ?, ?, ?, ?, ?)`,
		w.ID, w.Name, NameKey(w.Name), w.Region, string(settings), ms(w.CreatedAt))
	if isUniqueViolation(err) {
		return ErrNameInUse
	}
	return err
}

const workspaceCols = `id, name, region, settings, created_at`

// scanWorkspace reads a workspace with its secret settings opened.
func (s *Store) scanWorkspace(sc scanner) (*api.Workspace, error) {
	var (
		w        api.Workspace
		settings string
		created  int64
	)
	if err := sc.Scan(&w.ID, &w.Name, &w.Region, &settings, &created); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(settings), &w.Settings); err != nil {
		return nil, err
	}
	w.CreatedAt = fromMS(created)
	var err error
	w.Settings, err = s.openSettings(w.Settings)
	return &w, err
}

// GetWorkspace finds a workspace by name, in any case.
func (s *Store) GetWorkspace(ctx context.Context, name string) (*api.Workspace, error) {
	return found(s.scanWorkspace(s.queryRow(ctx, `SELECT `+workspaceCols+` FROM workspaces WHERE name_key = ?`, NameKey(name))))
}

// UpdateWorkspaceSettings replaces a workspace's settings.
func (s *Store) UpdateWorkspaceSettings(ctx context.Context, id string, settings api.WorkspaceSettings) error {
	b, err := json.Marshal(s.sealSettings(settings))
	if err != nil {
		return err
	}
	res, err := s.exec(ctx, `UPDATE workspaces SET settings = ? WHERE id = ?`, string(b), id)
	return changedRow(res, err, ErrNotFound)
}

// sealSettings encrypts the secret settings (EAB HMAC key, TSIG secret)
// for the database; openSettings reverses it.
func (s *Store) sealSettings(w api.WorkspaceSettings) api.WorkspaceSettings {
	if w.ACMEEABHMACKey != "" {
		w.ACMEEABHMACKey = s.box.Seal([]byte(w.ACMEEABHMACKey))
	}
	w.ACMEEABHMACKeySet = false
	if w.DNS01 != nil {
		d := *w.DNS01
		if d.TSIGSecret != "" {
			d.TSIGSecret = s.box.Seal([]byte(d.TSIGSecret))
		}
		d.TSIGSecretSet = false
		w.DNS01 = &d
	}
	return w
}

func (s *Store) openSettings(w api.WorkspaceSettings) (api.WorkspaceSettings, error) {
	if w.ACMEEABHMACKey != "" {
		b, err := s.box.Open(w.ACMEEABHMACKey)
		if err != nil {
			return w, err
		}
		w.ACMEEABHMACKey = string(b)
	}
	if w.DNS01 != nil && w.DNS01.TSIGSecret != "" {
		d := *w.DNS01
		b, err := s.box.Open(d.TSIGSecret)
		if err != nil {
			return w, err
		}
		d.TSIGSecret = string(b)
		w.DNS01 = &d
	}
	return w, nil
}

// ListWorkspaces lists workspaces by name.
func (s *Store) ListWorkspaces(ctx context.Context) ([]api.Workspace, error) {
	return list(ctx, s, s.scanWorkspace, `SELECT `+workspaceCols+` FROM workspaces ORDER BY name_key`)
}

// DeleteWorkspace removes an empty workspace and its operation history;
// ErrNotEmpty while computes exist.
func (s *Store) DeleteWorkspace(ctx context.Context, id string) error {
	return s.InTx(ctx, func(tx *Store) error {
		if n, err := tx.CountComputes(ctx, id); err != nil {
			return err
		} else if n > 0 {
			return ErrNotEmpty
		}
		for _, q := range []string{
			`DELETE FROM operation_events WHERE operation_id IN (SELECT id FROM operations WHERE workspace_id = ?)`,
			`DELETE FROM operations WHERE workspace_id = ?`,
			`DELETE FROM models WHERE workspace_id = ?`,
		} {
			if _, err := tx.exec(ctx, q, id); err != nil {
				return err
			}
		}
		res, err := tx.exec(ctx, `DELETE FROM workspaces WHERE id = ?`, id)
		return changedRow(res, err, ErrNotFound)
	})
}
