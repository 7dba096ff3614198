package server

import (
	"cmp"
	"context"
	"fmt"
	"time"

	"github.com/berth-ml/berth/api"
	"github.com/berth-ml/berth/internal/preflight"
	"github.com/berth-ml/berth/internal/store"
)

// reconcileLoop starts a reconcile of every settled compute whose last one
// is older than the interval, so drift is repaired and unreachable clusters
// recover by themselves. Several servers may run it: the one-active-
// operation rule keeps it to one reconcile per compute at a time.
func (s *Server) reconcileLoop(ctx context.Context) {
	every := s.cfg.ReconcileInterval
	if every < 0 {
		return
	}
	every = cmp.Or(every, 5*time.Minute)
	periodically(ctx, min(every/5, 30*time.Second), func() { s.reconcileDue(ctx, every) })
}

func (s *Server) reconcileDue(ctx context.Context, every time.Duration) {
	s.forEachCompute(ctx, func(ws *api.Workspace, c *store.Compute) {
		if c.CurrentOperation != "" || c.ProvisioningState != api.StateSucceeded || c.Health == api.HealthDisplaced {
			return
		}
		if c.LastReconcile != nil && time.Since(*c.LastReconcile) < every {
			return
		}
		if p, ok := s.computes.Providers.Get(c.Type); !ok || p.Steps(api.OpReconcile, c) == nil {
			return
		}
		if _, err := s.computes.Reconcile(ctx, ws, c.Name); err == nil {
			s.log.Debug("periodic reconcile started", "compute", c.Name, "workspace", ws.Name)
		}
	})
}

// periodically runs fn every tick until ctx ends.
func periodically(ctx context.Context, tick time.Duration, fn func()) {
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		fn()
	}
}

// forEachCompute calls fn with every compute of every workspace, as listed
// (without secrets); stores it cannot list are skipped until the next round.
func (s *Server) forEachCompute(ctx context.Context, fn func(ws *api.Workspace, c *store.Compute)) {
	wss, err := s.store.ListWorkspaces(ctx)
	if err != nil {
		return
	}
	for i := range wss {
		cs, err := s.store.ListComputes(ctx, wss[i].ID)
		if err != nil {
			continue
		}
		for j := range cs {
			fn(&wss[i], &cs[j])
		}
	}
}

// supportedVersions lists the Kubernetes versions Berth supports, newest
// (the default) first, in the reference's get-versions shape.
func supportedVersions(r preflight.VersionRange) api.VersionList {
	out := api.VersionList{Orchestrators: []api.Orchestrator{}}
	for m := r.MaxMinor; m >= r.MinMinor; m-- {
		o := api.Orchestrator{OrchestratorType: "Kubernetes", OrchestratorVersion: fmt.Sprintf("1.%d", m),
			Default: m == r.MaxMinor, Supported: true, Upgrades: []api.Upgrade{}}
		for u := m + 1; u <= r.MaxMinor && u <= m+1; u++ {
			o.Upgrades = append(o.Upgrades, api.Upgrade{OrchestratorType: "Kubernetes", OrchestratorVersion: fmt.Sprintf("1.%d", u)})
		}
		out.Orchestrators = append(out.Orchestrators, o)
	}
	return out
}
