package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"time"

	"github.com/berth-ml/berth/api"
)

// Service is a scoring service as stored: its document, its compute and
// its keys (sealed at rest).
type Service struct {
	api.Service
	WorkspaceID string
	ComputeID   string
	Secrets     map[string]string
}

// CreateService inserts a service; ErrNameInUse when the name exists.
func (s *Store) CreateService(ctx context.Context, sv *Service) error {
	now := time.Now().UTC().Truncate(time.Millisecond)
	sv.CreatedAt, sv.UpdatedAt = now, now
	doc, err := json.Marshal(sv.Service)
	if err != nil {
		return err
	}
	sec, err := s.sealSecrets(sv.Secrets)
	if err != nil {
		return err
	}
	_, err = s.exec(ctx, `INSERT INTO services (id, workspace_id, compute_id, name, name_key, doc, secrets, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		sv.ID, sv.WorkspaceID, sv.ComputeID, sv.Name, NameKey(sv.Name), string(doc), sec, ms(now), ms(now))
	if isUniqueViolation(err) {
		return ErrNameInUse
	}
	return err
}

// UpdateService writes a service's document and keys.
func (s *Store) UpdateService(ctx context.Context, sv *Service) error {
	sv.UpdatedAt = time.Now().UTC().Truncate(time.Millisecond)
	doc, err := json.Marshal(sv.Service)
	if err != nil {
		return err
	}
	sec, err := s.sealSecrets(sv.Secrets)
	if err != nil {
		return err
	}
	res, err := s.exec(ctx, `UPDATE services SET doc = ?, secrets = ?, updated_at = ? WHERE id = ?`, string(doc), sec, ms(sv.UpdatedAt), sv.ID)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}

// DeleteService removes a service's record.
func (s *Store) DeleteService(ctx context.Context, id string) error {
	_, err := s.exec(ctx, `DELETE FROM services WHERE id = ?`, id)
	return err
}

func (s *Store) scanService(sc interface{ Scan(...any) error }) (*Service, error) {
	var (
		sv       Service
		doc, sec string
	)
	if err := sc.Scan(&sv.ID, &sv.WorkspaceID, &sv.ComputeID, &doc, &sec); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(doc), &sv.Service); err != nil {
		return nil, err
	}
	m, err := s.openSecrets(sec)
	if err != nil {
		return nil, err
	}
	sv.Secrets = m
	if sv.Errors == nil {
		sv.Errors = []api.ErrorDetail{}
	}
	return &sv, nil
}

const serviceCols = `id, workspace_id, compute_id, doc, secrets`

// GetService finds a service by workspace and name (any case).
func (s *Store) GetService(ctx context.Context, workspaceID, name string) (*Service, error) {
	sv, err := s.scanService(s.queryRow(ctx, `SELECT `+serviceCols+` FROM services WHERE workspace_id = ? AND name_key = ?`, workspaceID, NameKey(name)))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	return sv, err
}

// GetServiceByID finds a service by id.
func (s *Store) GetServiceByID(ctx context.Context, id string) (*Service, error) {
	sv, err := s.scanService(s.queryRow(ctx, `SELECT `+serviceCols+` FROM services WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	return sv, err
}

// ListServices lists a workspace's services by name (computeID: only that compute's).
func (s *Store) ListServices(ctx context.Context, workspaceID, computeID string) ([]Service, error) {
	q := `SELECT ` + serviceCols + ` FROM services WHERE workspace_id = ?`
	args := []any{workspaceID}
	if computeID != "" {
		q += ` AND compute_id = ?`
		args = append(args, computeID)
	}
	rows, err := s.query(ctx, q+` ORDER BY name_key`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []Service{}
	for rows.Next() {
		sv, err := s.scanService(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, *sv)
	}
	return out, rows.Err()
}

// GetMeta reads a meta value; ErrNotFound if unset.
func (s *Store) GetMeta(ctx context.Context, key string) (string, error) {
	var v string
	err := s.queryRow(ctx, `SELECT value FROM meta WHERE key = ?`, key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", ErrNotFound
	}
	return v, err
}

// Seal and Open expose the store's secret box for values kept in meta.
func (s *Store) Seal(b []byte) string { return s.box.Seal(b) }

// Open decrypts a value made by Seal.
func (s *Store) Open(v string) ([]byte, error) { return s.box.Open(v) }

// DeleteServicesOfCompute forgets the services of a compute (its detach
// removed their objects from the cluster).
func (s *Store) DeleteServicesOfCompute(ctx context.Context, computeID string) error {
	_, err := s.exec(ctx, `DELETE FROM services WHERE compute_id = ?`, computeID)
	return err
}
