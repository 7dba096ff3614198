package store

import (
	"context"
	"encoding/json"
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
	doc, sec, err := s.sealRecord(sv.Service, sv.Secrets)
	if err != nil {
		return err
	}
	_, err = s.exec(ctx, `INSERT INTO services (id, workspace_id, compute_id, name, name_key, doc, secrets, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		sv.ID, sv.WorkspaceID, sv.ComputeID, sv.Name, NameKey(sv.Name), doc, sec, ms(now), ms(now))
	if isUniqueViolation(err) {
		return ErrNameInUse
	}
	return err
}

// UpdateService writes a service's document and keys.
func (s *Store) UpdateService(ctx context.Context, sv *Service) error {
	sv.UpdatedAt = time.Now().UTC().Truncate(time.Millisecond)
	return s.updateRecord(ctx, "services", sv.ID, sv.Service, sv.Secrets, sv.UpdatedAt)
}

// DeleteService removes a service's record.
func (s *Store) DeleteService(ctx context.Context, id string) error {
	_, err := s.exec(ctx, `DELETE FROM services WHERE id = ?`, id)
	return err
}

func (s *Store) scanService(sc scanner) (*Service, error) {
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
	return found(s.scanService(s.queryRow(ctx, `SELECT `+serviceCols+` FROM services WHERE workspace_id = ? AND name_key = ?`, workspaceID, NameKey(name))))
}

// GetServiceByID finds a service by id.
func (s *Store) GetServiceByID(ctx context.Context, id string) (*Service, error) {
	return found(s.scanService(s.queryRow(ctx, `SELECT `+serviceCols+` FROM services WHERE id = ?`, id)))
}

// ListServices lists a workspace's services by name (computeID: only that compute's).
func (s *Store) ListServices(ctx context.Context, workspaceID, computeID string) ([]Service, error) {
	q := `SELECT ` + serviceCols + ` FROM services WHERE workspace_id = ?`
	args := []any{workspaceID}
	if computeID != "" {
		q += ` AND compute_id = ?`
		args = append(args, computeID)
	}
	return list(ctx, s, s.scanService, q+` ORDER BY name_key`, args...)
}

// GetMeta reads a meta value; ErrNotFound if unset.
func (s *Store) GetMeta(ctx context.Context, key string) (string, error) {
	var v string
	if err := s.queryRow(ctx, `SELECT value FROM meta WHERE key = ?`, key).Scan(&v); err != nil {
		return found("", err)
	}
	return v, nil
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
