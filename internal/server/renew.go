package server

import (
	"cmp"
	"context"
	"github.com/berth-ml/berth/internal/provider"
	"time"

	"github.com/berth-ml/berth/api"
	"github.com/berth-ml/berth/internal/certificate"
	"github.com/berth-ml/berth/internal/store"
)

// renewLoop starts a renew operation for every automatic certificate that
// has a third of its lifetime left, and again after a failed renewal once
// its backoff has passed (the old certificate keeps serving meanwhile).
// The one-active-operation rule keeps several servers from renewing the
// same compute twice.
func (s *Server) renewLoop(ctx context.Context) {
	every := s.cfg.CertificateCheckInterval
	if every < 0 {
		return
	}
	every = cmp.Or(every, time.Minute)
	periodically(ctx, every, func() { s.renewDue(ctx, time.Now()) })
}

// renewDue reports whether a compute's certificate needs renewing now.
func renewDue(c *store.Compute, now time.Time) bool {
	if c.SSLConfiguration.Status != api.SSLAuto || c.CurrentOperation != "" || c.Health == api.HealthDisplaced ||
		c.ProvisioningState == api.StateAttaching || c.ProvisioningState == api.StateCreating || c.ProvisioningState == api.StateDetaching {
		return false
	}
	if at := provider.Read[api.CertificateStatus](c.Status).CertificateRetryAt; at != nil {
		return !now.Before(*at)
	}
	info, err := certificate.Parse(c.Secrets["tlsCert"])
	if err != nil {
		return c.ProvisioningState == api.StateSucceeded // Auto without a certificate: get one
	}
	return !now.Before(info.RenewAt())
}

func (s *Server) renewDue(ctx context.Context, now time.Time) {
	s.forEachCompute(ctx, func(ws *api.Workspace, listed *store.Compute) {
		if listed.SSLConfiguration.Status != api.SSLAuto {
			return
		}
		c, err := s.store.GetComputeByID(ctx, listed.ID) // with its secrets
		if err != nil || !renewDue(c, now) {
			return
		}
		if op, err := s.computes.Renew(ctx, ws, c.Name); err == nil {
			s.log.Info("certificate renewal started", "compute", c.Name, "workspace", ws.Name, "operation", op.ID)
		}
	})
}
