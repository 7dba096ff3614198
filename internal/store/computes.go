package store

import (
	"context"
	"encoding/json"
	"time"

	"github.com/berth-ml/berth/api"
)

// Compute is a compute target as stored: its public document, the id of
// its workspace, and its secrets (sealed at rest, clear in memory).
type Compute struct {
	api.Compute
	WorkspaceID string
	Secrets     map[string]string
}

func (s *Store) sealSecrets(m map[string]string) (string, error) {
	if len(m) == 0 {
		return "", nil
	}
	b, err := json.Marshal(m)
	if err != nil {
		return "", err
	}
	return s.box.Seal(b), nil
}

func (s *Store) openSecrets(sealed string) (map[string]string, error) {
	if sealed == "" {
		return nil, nil
	}
	b, err := s.box.Open(sealed)
	if err != nil {
		return nil, err
	}
	m := map[string]string{}
	return m, json.Unmarshal(b, &m)
}

// document is what the doc column keeps of c.
func (c *Compute) document() api.Compute {
	d := c.Compute
	d.HasCredentials = c.Secrets["credentials"] != ""
	return d
}

// sealRecord is a compute's or service's JSON document and its sealed secrets.
func (s *Store) sealRecord(doc any, secrets map[string]string) (string, string, error) {
	b, err := json.Marshal(doc)
	if err != nil {
		return "", "", err
	}
	sec, err := s.sealSecrets(secrets)
	return string(b), sec, err
}

// updateRecord writes a compute's or service's document and secrets.
func (s *Store) updateRecord(ctx context.Context, table, id string, doc any, secrets map[string]string, at time.Time) error {
	d, sec, err := s.sealRecord(doc, secrets)
	if err != nil {
		return err
	}
	res, err := s.exec(ctx, `UPDATE `+table+` SET doc = ?, secrets = ?, updated_at = ? WHERE id = ?`, d, sec, ms(at), id)
	return changedRow(res, err, ErrNotFound)
}

// CreateCompute inserts c; ErrNameInUse if its name (any case) exists in the workspace.
func (s *Store) CreateCompute(ctx context.Context, c *Compute) error {
	now := time.Now().UTC().Truncate(time.Millisecond)
	c.CreatedAt, c.UpdatedAt = now, now
	doc, sec, err := s.sealRecord(c.document(), c.Secrets)
	if err != nil {
		return err
	}
	_, err = s.exec(ctx, `INSERT INTO computes (id, workspace_id, name, name_key, doc, secrets, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		c.ID, c.WorkspaceID, c.Name, NameKey(c.Name), doc, sec, ms(now), ms(now))
	if isUniqueViolation(err) {
		return ErrNameInUse
	}
	return err
}

// UpdateCompute writes c's document and secrets.
func (s *Store) UpdateCompute(ctx context.Context, c *Compute) error {
	c.UpdatedAt = time.Now().UTC().Truncate(time.Millisecond)
	return s.updateRecord(ctx, "computes", c.ID, c.document(), c.Secrets, c.UpdatedAt)
}

// DeleteCompute removes a compute target's record.
func (s *Store) DeleteCompute(ctx context.Context, id string) error {
	_, err := s.exec(ctx, `DELETE FROM computes WHERE id = ?`, id)
	return err
}

func (s *Store) scanCompute(sc scanner, withSecrets bool) (*Compute, error) {
	var (
		c                Compute
		doc, sec         string
		created, updated int64
	)
	if err := sc.Scan(&c.ID, &c.WorkspaceID, &doc, &sec, &created, &updated); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(doc), &c.Compute); err != nil {
		return nil, err
	}
	c.CreatedAt, c.UpdatedAt = fromMS(created), fromMS(updated)
	if withSecrets {
		m, err := s.openSecrets(sec)
		if err != nil {
			return nil, err
		}
		c.Secrets = m
	}
	if c.ProvisioningErrors == nil {
		c.ProvisioningErrors = []api.ErrorDetail{}
	}
	return &c, nil
}

const computeCols = `id, workspace_id, doc, secrets, created_at, updated_at`

// GetCompute finds a compute by workspace id and name (any case), secrets included.
func (s *Store) GetCompute(ctx context.Context, workspaceID, name string) (*Compute, error) {
	return found(s.scanCompute(s.queryRow(ctx, `SELECT `+computeCols+` FROM computes WHERE workspace_id = ? AND name_key = ?`,
		workspaceID, NameKey(name)), true))
}

// GetComputeByID finds a compute by id, secrets included.
func (s *Store) GetComputeByID(ctx context.Context, id string) (*Compute, error) {
	return found(s.scanCompute(s.queryRow(ctx, `SELECT `+computeCols+` FROM computes WHERE id = ?`, id), true))
}

// ListComputes lists a workspace's computes by name, without secrets.
func (s *Store) ListComputes(ctx context.Context, workspaceID string) ([]Compute, error) {
	return list(ctx, s, func(sc scanner) (*Compute, error) { return s.scanCompute(sc, false) },
		`SELECT `+computeCols+` FROM computes WHERE workspace_id = ? ORDER BY name_key`, workspaceID)
}

// CountComputes counts a workspace's computes.
func (s *Store) CountComputes(ctx context.Context, workspaceID string) (int, error) {
	var n int
	err := s.queryRow(ctx, `SELECT COUNT(*) FROM computes WHERE workspace_id = ?`, workspaceID).Scan(&n)
	return n, err
}

// ListComputeDocs lists a workspace's computes as their stored JSON
// documents, by name. The API writes them out as they are: listing many
// computes costs no decoding.
func (s *Store) ListComputeDocs(ctx context.Context, workspaceID string) ([]json.RawMessage, error) {
	return list(ctx, s, func(sc scanner) (*json.RawMessage, error) {
		var doc []byte
		err := sc.Scan(&doc)
		return (*json.RawMessage)(&doc), err
	}, `SELECT doc FROM computes WHERE workspace_id = ? ORDER BY name_key`, workspaceID)
}
