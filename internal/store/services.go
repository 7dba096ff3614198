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
	return s.insertRecord(ctx, "services", sv.ID, sv.WorkspaceID, sv.ComputeID, sv.Name, sv.Service, sv.Secrets, now)
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
	var sv Service
	if err := s.scanRecord(sc, &sv.ID, &sv.WorkspaceID, &sv.ComputeID, &sv.Service, &sv.Secrets); err != nil {
		return nil, err
	}
	if sv.Errors == nil {
		sv.Errors = []api.ErrorDetail{}
	}
	return &sv, nil
}

// recordCols are the columns scanRecord reads.
const recordCols = `id, workspace_id, compute_id, doc, secrets`

// GetService finds a service by workspace and name (any case).
func (s *Store) GetService(ctx context.Context, workspaceID, name string) (*Service, error) {
	return found(s.scanService(s.queryRow(ctx, `SELECT `+recordCols+` FROM services WHERE workspace_id = ? AND name_key = ?`, workspaceID, NameKey(name))))
}

// GetServiceByID finds a service by id.
func (s *Store) GetServiceByID(ctx context.Context, id string) (*Service, error) {
	return found(s.scanService(s.queryRow(ctx, `SELECT `+recordCols+` FROM services WHERE id = ?`, id)))
}

// ListServices lists a workspace's services by name (workspaceID "":
// every workspace's; computeID: only that compute's).
func (s *Store) ListServices(ctx context.Context, workspaceID, computeID string) ([]Service, error) {
	q, args := listQuery("services", workspaceID, computeID)
	return list(ctx, s, s.scanService, q, args...)
}

// insertRecord inserts a workspace's named record of a compute (a service
// or an endpoint) created at now; ErrNameInUse when the name exists.
func (s *Store) insertRecord(ctx context.Context, table, id, workspaceID, computeID, name string, doc any, secrets map[string]string, now time.Time) error {
	d, sec, err := s.sealRecord(doc, secrets)
	if err != nil {
		return err
	}
	_, err = s.exec(ctx, `INSERT INTO `+table+` (id, workspace_id, compute_id, name, name_key, doc, secrets, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		id, workspaceID, computeID, name, NameKey(name), d, sec, ms(now), ms(now))
	if isUniqueViolation(err) {
		return ErrNameInUse
	}
	return err
}

// scanRecord reads recordCols into a record's ids, document and secrets.
func (s *Store) scanRecord(sc scanner, id, workspaceID, computeID *string, doc any, secrets *map[string]string) error {
	var d, sec string
	if err := sc.Scan(id, workspaceID, computeID, &d, &sec); err != nil {
		return err
	}
	if err := json.Unmarshal([]byte(d), doc); err != nil {
		return err
	}
	m, err := s.openSecrets(sec)
	*secrets = m
	return err
}

// listQuery selects a workspace's records of a table by name (every
// workspace's when workspaceID is empty), only one compute's when
// computeID is set.
func listQuery(table, workspaceID, computeID string) (string, []any) {
	q := `SELECT ` + recordCols + ` FROM ` + table + ` WHERE 1 = 1`
	var args []any
	for col, v := range map[string]string{"workspace_id": workspaceID, "compute_id": computeID} {
		if v != "" {
			q += ` AND ` + col + ` = ?`
			args = append(args, v)
		}
	}
	return q + ` ORDER BY name_key`, args
}

// GetMeta reads a meta value; ErrNotFound if unset.
func (s *Store) GetMeta(ctx context.Context, key string) (string, error) {
	var v string
	err := s.queryRow(ctx, `SELECT value FROM meta WHERE key = ?`, key).Scan(&v)
	return found(v, err)
}

// Seal and Open expose the store's secret box for values kept in meta.
func (s *Store) Seal(b []byte) string { return s.box.Seal(b) }

// Open decrypts a value made by Seal.
func (s *Store) Open(v string) ([]byte, error) { return s.box.Open(v) }

// DeleteServicesOfCompute forgets the services and endpoints of a compute
// (its detach removed their objects and routes from the cluster).
func (s *Store) DeleteServicesOfCompute(ctx context.Context, computeID string) error {
	for _, table := range []string{"services", "endpoints"} {
		if _, err := s.exec(ctx, `DELETE FROM `+table+` WHERE compute_id = ?`, computeID); err != nil {
			return err
		}
	}
	return nil
}
