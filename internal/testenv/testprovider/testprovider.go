// Package testprovider is a compute type for tests of the operation engine
// and the compute life cycle, before and beside the real providers. Its
// "cloud" is a directory: each step creates one resource there through an
// idempotency key, so a test can kill the server mid-step and check every
// resource exists exactly once. It is linked into the berth binary only
// with the build tag berthtest, so release builds cannot reach it.
package testprovider

import (
	"context"
	"encoding/json"
	"fmt"
	"github.com/berth-ml/berth/internal/problem"
	"github.com/berth-ml/berth/internal/provider"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/berth-ml/berth/api"
	"github.com/berth-ml/berth/internal/operation"
	"github.com/berth-ml/berth/internal/store"
)

// Type is the compute type name.
const Type = "test"

// Settings are what the type understands.
type Settings struct {
	EffectsDir string            `json:"effectsDir,omitempty"` // required: absolute directory standing in for the cloud
	Steps      *int              `json:"steps,omitempty"`      // resources to create (default 3)
	StepDelay  provider.Duration `json:"stepDelay,omitempty"`  // time each step takes (default 0)
	FailAt     int               `json:"failAt,omitempty"`     // 1-based step that fails for good with two details
	FlakyAt    int               `json:"flakyAt,omitempty"`    // 1-based step that fails once with a retryable error
}

// Status: the type records nothing but what an earlier release left.
type Status struct {
	Legacy map[string]string `json:"legacy,omitempty"`
}

// Provider implements provider.Provider.
type Provider struct{}

func (Provider) Type() string      { return Type }
func (Provider) Origins() []string { return []string{api.OriginCreated, api.OriginAttached} }

type settings struct {
	dir       string
	steps     int
	delay     time.Duration
	failAt    int
	flakyAt   int
	computeID string
}

func parse(raw json.RawMessage) (settings, []api.ErrorDetail) {
	var set Settings
	out := provider.DecodeStrict("settings", raw, &set)
	s := settings{dir: set.EffectsDir, steps: 3, delay: time.Duration(set.StepDelay), failAt: set.FailAt, flakyAt: set.FlakyAt}
	if set.Steps != nil {
		s.steps = *set.Steps
	}
	bad := func(key, format string, args ...any) {
		out = append(out, problem.Detail(api.CodeInvalidProperty, "settings."+key, format, args...))
	}
	for k, n := range map[string]int{"steps": s.steps, "failAt": s.failAt, "flakyAt": s.flakyAt} {
		if n < 0 || n > 50 {
			bad(k, "settings.%s must be an integer from 0 to 50 (got %d)", k, n)
		}
	}
	if s.delay < 0 {
		bad("stepDelay", "settings.stepDelay must not be negative (got %s)", s.delay)
	}
	if s.dir == "" {
		bad("effectsDir", "settings.effectsDir is required for compute type %s", Type)
	} else if !filepath.IsAbs(s.dir) {
		bad("effectsDir", "settings.effectsDir must be an absolute directory (got %q)", s.dir)
	}
	return s, out
}

func (Provider) Validate(_ context.Context, _ *api.Workspace, req *api.ComputeRequest) []api.ErrorDetail {
	_, d := parse(req.Settings)
	return d
}

func (Provider) ValidateUpdate(context.Context, *store.Compute, *api.ComputeUpdateRequest) []api.ErrorDetail {
	return nil
}

func (Provider) ValidateScale(_ context.Context, c *store.Compute, n int) []api.ErrorDetail {
	if c.ClusterPurpose == api.PurposeFastProd && n < 3 {
		return []api.ErrorDetail{{Code: "InsufficientNodes", Target: "nodeCount", Message: fmt.Sprintf("a FastProd cluster needs at least 3 nodes (asked for %d)", n)}}
	}
	return nil
}

func load(ctx context.Context, r *operation.Run) (*store.Compute, settings, error) {
	c, err := r.Store.GetComputeByID(ctx, r.Op.TargetID)
	if err != nil {
		return nil, settings{}, err
	}
	s, _ := parse(c.Settings)
	s.computeID = c.ID
	return c, s, nil
}

// loadSlowly loads like load, waits the configured delay as a cloud call
// would, then decodes the operation's parameters into params (unless nil).
func loadSlowly(ctx context.Context, r *operation.Run, params any) (*store.Compute, settings, error) {
	c, s, err := load(ctx, r)
	if err != nil {
		return nil, settings{}, err
	}
	if err := sleep(ctx, s.delay); err != nil {
		return nil, settings{}, err
	}
	if params != nil {
		if err := json.Unmarshal(r.Op.Params, params); err != nil {
			return nil, settings{}, err
		}
	}
	return c, s, nil
}

// loadResources loads like load and lists the compute's resource files.
func loadResources(ctx context.Context, r *operation.Run) (*store.Compute, settings, map[string][]string, error) {
	c, s, err := load(ctx, r)
	if err != nil {
		return nil, settings{}, nil, err
	}
	have, err := Resources(s.dir, s.computeID)
	return c, s, have, err
}

// Resources lists the resource files of a compute in dir, by key.
func Resources(dir, computeID string) (map[string][]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	out := map[string][]string{}
	for _, e := range entries {
		name := e.Name()
		if !strings.HasPrefix(name, computeID+".") || !strings.HasSuffix(name, ".res") {
			continue
		}
		parts := strings.Split(name, ".")
		key := parts[1]
		out[key] = append(out[key], name)
	}
	return out, nil
}

// ensure creates the resource with key unless one exists: the idempotency
// a real cloud gives through client-chosen names.
func ensure(dir, computeID, key string) (created bool, err error) {
	have, err := Resources(dir, computeID)
	if err != nil {
		return false, err
	}
	if len(have[key]) > 0 {
		return false, nil
	}
	name := fmt.Sprintf("%s.%s.%d.res", computeID, key, time.Now().UnixNano())
	return true, os.WriteFile(filepath.Join(dir, name), []byte(key), 0o644)
}

func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

func (Provider) Steps(kind api.OperationKind, c *store.Compute) []operation.Step {
	switch kind {
	case api.OpCreate, api.OpAttach:
		planned, _ := parse(c.Settings)
		var steps []operation.Step
		for i := 1; i <= planned.steps; i++ {
			steps = append(steps, operation.Step{Name: fmt.Sprintf("create resource %d", i), Run: func(ctx context.Context, r *operation.Run) error {
				_, s, err := load(ctx, r)
				if err != nil {
					return err
				}
				if s.failAt == i {
					return operation.Fail("TestFailure", fmt.Sprintf("step %d failed as asked", i),
						api.ErrorDetail{Code: "CheckA", Message: "check A failed"},
						api.ErrorDetail{Code: "CheckB", Message: "check B failed"})
				}
				if s.flakyAt == i && r.Recall("flaked") == "" {
					if err := r.Remember(ctx, "flaked", "yes"); err != nil {
						return err
					}
					return fmt.Errorf("resource %d: the cloud did not answer", i)
				}
				if err := sleep(ctx, s.delay/2); err != nil {
					return err
				}
				created, err := ensure(s.dir, s.computeID, fmt.Sprintf("r%02d", i))
				if err != nil {
					return err
				}
				if created {
					r.Event("Created resource %d of %d", i, s.steps)
				} else {
					r.Event("Resource %d of %d already exists", i, s.steps)
				}
				return sleep(ctx, s.delay/2)
			}})
		}
		return append(steps, operation.Step{Name: "observe", Run: func(ctx context.Context, r *operation.Run) error {
			c, _, have, err := loadResources(ctx, r)
			if err != nil {
				return err
			}
			c.NodeCount = len(have)
			c.KubernetesVersion = "v0.0.0-test"
			c.Health = api.HealthHealthy
			c.Endpoint = "test.invalid"
			r.Event("Checked: %d resources present", len(have))
			return r.Store.UpdateCompute(ctx, c)
		}})
	case api.OpDetach, api.OpDelete:
		return []operation.Step{{Name: "remove resources", Run: func(ctx context.Context, r *operation.Run) error {
			_, s, err := loadSlowly(ctx, r, nil)
			if err != nil {
				return err
			}
			have, err := Resources(s.dir, s.computeID)
			if err != nil {
				return err
			}
			n := 0
			for _, files := range have {
				for _, f := range files {
					if err := os.Remove(filepath.Join(s.dir, f)); err != nil && !os.IsNotExist(err) {
						return err
					}
					n++
				}
			}
			r.Event("Removed %d resources", n)
			return nil
		}}}
	case api.OpUpdate:
		return []operation.Step{{Name: "apply settings", Run: func(ctx context.Context, r *operation.Run) error {
			var req api.ComputeUpdateRequest
			_, s, err := loadSlowly(ctx, r, &req)
			if err != nil {
				return err
			}
			b, _ := json.Marshal(req)
			r.Event("Applied settings")
			return os.WriteFile(filepath.Join(s.dir, s.computeID+".settings"), b, 0o644)
		}}}
	case api.OpScale:
		return []operation.Step{{Name: "scale", Run: func(ctx context.Context, r *operation.Run) error {
			var req api.ScaleRequest
			c, _, err := loadSlowly(ctx, r, &req)
			if err != nil {
				return err
			}
			c.NodeCount = req.NodeCount
			r.Event("Scaled to %d nodes", req.NodeCount)
			return r.Store.UpdateCompute(ctx, c)
		}}}
	case api.OpReconcile:
		return []operation.Step{{Name: "check resources", Run: func(ctx context.Context, r *operation.Run) error {
			c, s, have, err := loadResources(ctx, r)
			if err != nil {
				return err
			}
			now := time.Now().UTC()
			c.LastReconcile = &now
			c.Health = api.HealthHealthy
			var missing []string
			for i := 1; i <= s.steps; i++ {
				if len(have[fmt.Sprintf("r%02d", i)]) == 0 {
					missing = append(missing, strconv.Itoa(i))
				}
			}
			if len(missing) > 0 {
				c.Health = api.HealthUnhealthy
				r.Warn("Resources missing: %s", strings.Join(missing, ", "))
			} else {
				r.Event("All %d resources present", s.steps)
			}
			return r.Store.UpdateCompute(ctx, c)
		}}}
	}
	return nil
}
