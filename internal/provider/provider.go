// Package provider is the seam between Berth's generic compute life cycle
// (validation, operations, states) and what each compute type does to a
// real cluster or cloud. Types register themselves; the compute service
// asks the registry for the provider of a compute's type.
package provider

import (
	"context"
	"sort"
	"sync"

	"github.com/berth-ml/berth/api"
	"github.com/berth-ml/berth/internal/operation"
	"github.com/berth-ml/berth/internal/store"
)

// Provider implements one compute type.
type Provider interface {
	// Type is the compute type name (kubernetes, aks, local, …).
	Type() string
	// Origins lists the origins the type supports (created, attached).
	Origins() []string
	// Validate checks the type-specific parts of a create or attach request
	// and returns every problem found, before anything is changed.
	Validate(ctx context.Context, ws *api.Workspace, req *api.ComputeRequest) []api.ErrorDetail
	// ValidateUpdate checks an update against the compute as it is.
	ValidateUpdate(ctx context.Context, c *store.Compute, req *api.ComputeUpdateRequest) []api.ErrorDetail
	// ValidateScale checks a node count (only for types that can scale).
	ValidateScale(ctx context.Context, c *store.Compute, nodeCount int) []api.ErrorDetail
	// Steps returns the steps of an operation kind, or nil if the type does
	// not support it. The compute is as it was when the operation was
	// planned; steps re-read and write it through the run.
	Steps(kind string, c *store.Compute) []operation.Step
}

var (
	mu        sync.RWMutex
	providers = map[string]Provider{}
)

// Register adds a provider; a second one of the same type replaces the first.
func Register(p Provider) {
	mu.Lock()
	defer mu.Unlock()
	providers[p.Type()] = p
}

// Get returns the provider of a type.
func Get(typ string) (Provider, bool) {
	mu.RLock()
	defer mu.RUnlock()
	p, ok := providers[typ]
	return p, ok
}

// Types lists registered types, sorted.
func Types() []string {
	mu.RLock()
	defer mu.RUnlock()
	out := make([]string, 0, len(providers))
	for t := range providers {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}
