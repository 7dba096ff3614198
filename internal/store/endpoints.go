package store

import (
	"context"
	"time"

	"github.com/berth-ml/berth/api"
)

// Endpoint is an endpoint as stored: its document (versions and traffic),
// its compute and its keys (sealed at rest).
type Endpoint struct {
	api.Endpoint
	WorkspaceID string
	ComputeID   string
	Secrets     map[string]string
}

// CreateEndpoint inserts an endpoint; ErrNameInUse when the name exists.
func (s *Store) CreateEndpoint(ctx context.Context, e *Endpoint) error {
	now := time.Now().UTC().Truncate(time.Millisecond)
	e.CreatedAt, e.UpdatedAt = now, now
	return s.insertRecord(ctx, "endpoints", e.ID, e.WorkspaceID, e.ComputeID, e.Name, e.Endpoint, e.Secrets, now)
}

// UpdateEndpoint writes an endpoint's document (its whole traffic) and keys.
func (s *Store) UpdateEndpoint(ctx context.Context, e *Endpoint) error {
	e.UpdatedAt = time.Now().UTC().Truncate(time.Millisecond)
	return s.updateRecord(ctx, "endpoints", e.ID, e.Endpoint, e.Secrets, e.UpdatedAt)
}

// DeleteEndpoint removes an endpoint's record.
func (s *Store) DeleteEndpoint(ctx context.Context, id string) error {
	_, err := s.exec(ctx, `DELETE FROM endpoints WHERE id = ?`, id)
	return err
}

func (s *Store) scanEndpoint(sc scanner) (*Endpoint, error) {
	var e Endpoint
	if err := s.scanRecord(sc, &e.ID, &e.WorkspaceID, &e.ComputeID, &e.Endpoint, &e.Secrets); err != nil {
		return nil, err
	}
	if e.Versions == nil {
		e.Versions = []api.EndpointVersion{}
	}
	return &e, nil
}

// GetEndpoint finds an endpoint by workspace and name (any case).
func (s *Store) GetEndpoint(ctx context.Context, workspaceID, name string) (*Endpoint, error) {
	return found(s.scanEndpoint(s.queryRow(ctx, `SELECT `+recordCols+` FROM endpoints WHERE workspace_id = ? AND name_key = ?`, workspaceID, NameKey(name))))
}

// ListEndpoints lists a workspace's endpoints by name (workspaceID "":
// every workspace's; computeID: only that compute's).
func (s *Store) ListEndpoints(ctx context.Context, workspaceID, computeID string) ([]Endpoint, error) {
	q, args := listQuery("endpoints", workspaceID, computeID)
	return list(ctx, s, s.scanEndpoint, q, args...)
}
