package store

import (
	"context"
	"encoding/json"
	"time"

	"github.com/berth-ml/berth/api"
)

// Model is a model version as stored, with where its artifact lives.
type Model struct {
	api.Model
	WorkspaceID string
	ArtifactKey string
}

// CreateModelVersion records m as the next version of its name (set on m).
func (s *Store) CreateModelVersion(ctx context.Context, m *Model) error {
	return s.InTx(ctx, func(tx *Store) error {
		var v int
		if err := tx.queryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM models WHERE workspace_id = ? AND name_key = ?`,
			m.WorkspaceID, NameKey(m.Name)).Scan(&v); err != nil {
			return err
		}
		m.Version = v + 1
		if m.CreatedAt.IsZero() {
			m.CreatedAt = time.Now().UTC().Truncate(time.Millisecond)
		}
		doc, err := json.Marshal(m.Model)
		if err != nil {
			return err
		}
		_, err = tx.exec(ctx, `INSERT INTO models (id, workspace_id, name, name_key, version, doc, artifact_key, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
			m.ID, m.WorkspaceID, m.Name, NameKey(m.Name), m.Version, string(doc), m.ArtifactKey, ms(m.CreatedAt))
		if isUniqueViolation(err) {
			return ErrNameInUse
		}
		return err
	})
}

func scanModel(sc scanner) (*Model, error) {
	var (
		m   Model
		doc string
	)
	if err := sc.Scan(&m.WorkspaceID, &m.ArtifactKey, &doc); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(doc), &m.Model); err != nil {
		return nil, err
	}
	return &m, nil
}

// GetModel returns a version of a model (version 0: the latest).
func (s *Store) GetModel(ctx context.Context, workspaceID, name string, version int) (*Model, error) {
	q := `SELECT workspace_id, artifact_key, doc FROM models WHERE workspace_id = ? AND name_key = ?`
	args := []any{workspaceID, NameKey(name)}
	if version > 0 {
		q += ` AND version = ?`
		args = append(args, version)
	} else {
		q += ` ORDER BY version DESC LIMIT 1`
	}
	return found(scanModel(s.queryRow(ctx, q, args...)))
}

// ListModels lists a workspace's model versions by name and version; a
// non-empty name keeps only that model's.
func (s *Store) ListModels(ctx context.Context, workspaceID, name string) ([]api.Model, error) {
	q := `SELECT workspace_id, artifact_key, doc FROM models WHERE workspace_id = ?`
	args := []any{workspaceID}
	if name != "" {
		q += ` AND name_key = ?`
		args = append(args, NameKey(name))
	}
	return list(ctx, s, func(sc scanner) (*api.Model, error) {
		m, err := scanModel(sc)
		if err != nil {
			return nil, err
		}
		return &m.Model, nil
	}, q+` ORDER BY name_key, version`, args...)
}

// DeleteModel removes a model version's record.
func (s *Store) DeleteModel(ctx context.Context, id string) error {
	_, err := s.exec(ctx, `DELETE FROM models WHERE id = ?`, id)
	return err
}
