package store_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-ml/berth/api"
	"github.com/berth-ml/berth/internal/secretbox"
	"github.com/berth-ml/berth/internal/store"
	"github.com/berth-ml/berth/internal/testenv/testdb"
	"github.com/google/uuid"
)

func open(t testing.TB, kind testdb.Kind) *store.Store {
	t.Helper()
	dir := t.TempDir()
	box, err := secretbox.Load(dir, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	s, err := store.Open(context.Background(), kind.URL(t, dir), dir, box)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func forEachKind(t *testing.T, fn func(t *testing.T, s *store.Store)) {
	for _, k := range testdb.Kinds {
		t.Run(k.Name, func(t *testing.T) {
			t.Parallel()
			fn(t, open(t, k))
		})
	}
}

func newWorkspace(t testing.TB, s *store.Store, name string) *api.Workspace {
	t.Helper()
	w := &api.Workspace{ID: uuid.NewString(), Name: name, Region: "westus2"}
	if err := s.CreateWorkspace(context.Background(), w); err != nil {
		t.Fatal(err)
	}
	return w
}

func newCompute(t testing.TB, s *store.Store, ws *api.Workspace, name string) *store.Compute {
	t.Helper()
	c := &store.Compute{WorkspaceID: ws.ID, Compute: api.Compute{ID: uuid.NewString(), Name: name, Workspace: ws.Name,
		Type: "test", Origin: api.OriginAttached, ClusterPurpose: api.PurposeFastProd, LoadBalancerType: api.LoadBalancerPublicIP,
		ProvisioningState: api.StateAttaching, Health: api.HealthUnknown, SSLConfiguration: api.SSLConfiguration{Status: api.SSLDisabled}}}
	if err := s.CreateCompute(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestMigrationsAreIdempotent(t *testing.T) {
	for _, k := range testdb.Kinds {
		t.Run(k.Name, func(t *testing.T) {
			dir := t.TempDir()
			box, _ := secretbox.Load(dir, func(string) string { return "" })
			u := k.URL(t, dir)
			for i := 0; i < 2; i++ {
				s, err := store.Open(context.Background(), u, dir, box)
				if err != nil {
					t.Fatalf("open #%d: %v", i+1, err)
				}
				v, err := s.SchemaVersion(context.Background())
				if err != nil || v != 5 {
					t.Fatalf("schema version %d, %v", v, err)
				}
				s.Close()
			}
		})
	}
}

func TestWorkspaces(t *testing.T) {
	forEachKind(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		ws := newWorkspace(t, s, "Team-A")
		if err := s.CreateWorkspace(ctx, &api.Workspace{ID: uuid.NewString(), Name: "team-a", Region: "x"}); !errors.Is(err, store.ErrNameInUse) {
			t.Fatalf("same name in another case: %v, want ErrNameInUse", err)
		}
		got, err := s.GetWorkspace(ctx, "TEAM-a")
		if err != nil || got.ID != ws.ID || got.Name != "Team-A" {
			t.Fatalf("get: %+v %v", got, err)
		}
		c := newCompute(t, s, ws, "gpu-1")
		if err := s.DeleteWorkspace(ctx, ws.ID); !errors.Is(err, store.ErrNotEmpty) {
			t.Fatalf("delete with computes: %v", err)
		}
		if err := s.DeleteCompute(ctx, c.ID); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteWorkspace(ctx, ws.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := s.GetWorkspace(ctx, "team-a"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("after delete: %v", err)
		}
	})
}

func TestComputesAndSecrets(t *testing.T) {
	forEachKind(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		ws := newWorkspace(t, s, "ws")
		c := &store.Compute{WorkspaceID: ws.ID, Secrets: map[string]string{"credentials": "kubeconfig-with-SECRET-9f8e7d"},
			Compute: api.Compute{ID: uuid.NewString(), Name: "Prod-1", Workspace: "ws", Type: "test"}}
		if err := s.CreateCompute(ctx, c); err != nil {
			t.Fatal(err)
		}
		dup := &store.Compute{WorkspaceID: ws.ID, Compute: api.Compute{ID: uuid.NewString(), Name: "prod-1"}}
		if err := s.CreateCompute(ctx, dup); !errors.Is(err, store.ErrNameInUse) {
			t.Fatalf("duplicate name in another case: %v", err)
		}
		got, err := s.GetCompute(ctx, ws.ID, "PROD-1")
		if err != nil {
			t.Fatal(err)
		}
		if got.Secrets["credentials"] != "kubeconfig-with-SECRET-9f8e7d" || !got.HasCredentials {
			t.Fatalf("secrets not round-tripped: %+v", got)
		}
		list, err := s.ListComputes(ctx, ws.ID)
		if err != nil || len(list) != 1 || list[0].Secrets != nil {
			t.Fatalf("list: %+v %v", list, err)
		}
		if s.Path != "" {
			s.Close() // flush the WAL into the file
			for _, f := range []string{s.Path, s.Path + "-wal"} {
				data, err := os.ReadFile(f)
				if err != nil && !os.IsNotExist(err) {
					t.Fatal(err)
				}
				if bytes.Contains(data, []byte("SECRET-9f8e7d")) {
					t.Fatalf("%s holds the secret in clear", filepath.Base(f))
				}
			}
		}
	})
}

func TestOneActiveOperationPerTarget(t *testing.T) {
	forEachKind(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		ws := newWorkspace(t, s, "ws")
		c := newCompute(t, s, ws, "c1")
		op := func(kind api.OperationKind) *store.Operation {
			return &store.Operation{WorkspaceID: ws.ID, Operation: api.Operation{ID: uuid.NewString(), Workspace: ws.Name,
				TargetType: "compute", TargetID: c.ID, TargetName: c.Name, Kind: kind}}
		}
		first := op(api.OpAttach)
		if err := s.CreateOperation(ctx, first); err != nil {
			t.Fatal(err)
		}
		var active *store.ActiveOperationError
		if err := s.CreateOperation(ctx, op(api.OpDetach)); !errors.As(err, &active) || active.Operation.ID != first.ID || active.Operation.Kind != api.OpAttach {
			t.Fatalf("second operation: %v", err)
		}
		claimed, err := s.Claim(ctx, "server-a", time.Now(), time.Minute)
		if err != nil || claimed.ID != first.ID || claimed.Attempt != 1 {
			t.Fatalf("claim: %+v %v", claimed, err)
		}
		claimed.State = api.OpSucceeded
		if err := s.Finish(ctx, claimed); err != nil {
			t.Fatal(err)
		}
		if err := s.CreateOperation(ctx, op(api.OpDetach)); err != nil {
			t.Fatalf("after the first finished: %v", err)
		}
	})
}

func TestClaimIsExclusiveAndLeasesExpire(t *testing.T) {
	forEachKind(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		ws := newWorkspace(t, s, "ws")
		const n = 20
		for i := 0; i < n; i++ {
			c := newCompute(t, s, ws, fmt.Sprintf("c%02d", i))
			if err := s.CreateOperation(ctx, &store.Operation{WorkspaceID: ws.ID, Operation: api.Operation{ID: uuid.NewString(),
				Workspace: ws.Name, TargetType: "compute", TargetID: c.ID, TargetName: c.Name, Kind: api.OpAttach}}); err != nil {
				t.Fatal(err)
			}
		}
		var (
			mu     sync.Mutex
			counts = map[string]int{}
			wg     sync.WaitGroup
		)
		for w := 0; w < 6; w++ {
			wg.Add(1)
			go func(owner string) {
				defer wg.Done()
				misses := 0
				for misses < 20 {
					o, err := s.Claim(ctx, owner, time.Now(), time.Hour)
					if errors.Is(err, store.ErrNotFound) {
						misses++
						time.Sleep(5 * time.Millisecond)
						continue
					}
					if err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					counts[o.ID]++
					mu.Unlock()
				}
			}(fmt.Sprintf("w%d", w))
		}
		wg.Wait()
		if len(counts) != n {
			t.Fatalf("claimed %d operations, want %d", len(counts), n)
		}
		for id, c := range counts {
			if c != 1 {
				t.Fatalf("operation %s claimed %d times", id, c)
			}
		}
		// An expired lease is taken over; the old owner's writes are refused.
		ops, _ := s.ListOperations(ctx, ws.ID, "c00", "", 1)
		old, _ := s.GetOperation(ctx, ops[0].ID)
		if _, err := s.Renew(ctx, old.ID, old.LeaseOwner, time.Now().Add(-time.Second)); err != nil {
			t.Fatal(err)
		}
		taken, err := s.Claim(ctx, "rescuer", time.Now(), time.Minute)
		if err != nil || taken.ID != old.ID || taken.Attempt != 2 {
			t.Fatalf("takeover: %+v %v", taken, err)
		}
		if _, err := s.Renew(ctx, old.ID, old.LeaseOwner, time.Now().Add(time.Minute)); !errors.Is(err, store.ErrLeaseLost) {
			t.Fatalf("old owner renew: %v", err)
		}
		old.Step = "x"
		if err := s.SaveProgress(ctx, old); !errors.Is(err, store.ErrLeaseLost) {
			t.Fatalf("old owner save: %v", err)
		}
	})
}

func TestEventsAndTokens(t *testing.T) {
	forEachKind(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		for i := 1; i <= 3; i++ {
			ev, err := s.AppendEvent(ctx, "op1", api.LevelInfo, fmt.Sprintf("step %d", i))
			if err != nil || ev.Seq != int64(i) {
				t.Fatalf("append: %+v %v", ev, err)
			}
		}
		evs, err := s.ListEvents(ctx, "op1", 1)
		if err != nil || len(evs) != 2 || evs[0].Message != "step 2" {
			t.Fatalf("events after 1: %+v %v", evs, err)
		}
		tok := &store.Token{Token: api.Token{ID: "t1", Role: api.RoleReader}, Hash: "h1"}
		if err := s.CreateToken(ctx, tok); err != nil {
			t.Fatal(err)
		}
		if got, err := s.TokenByHash(ctx, "h1"); err != nil || got.Role != api.RoleReader {
			t.Fatalf("by hash: %+v %v", got, err)
		}
		if err := s.RevokeToken(ctx, "t1"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.TokenByHash(ctx, "h1"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("revoked token still found: %v", err)
		}
		if first, _ := s.ClaimMeta(ctx, "k", "v"); !first {
			t.Fatal("first ClaimMeta lost")
		}
		if again, _ := s.ClaimMeta(ctx, "k", "v"); again {
			t.Fatal("second ClaimMeta won")
		}
	})
}

// A workspace's certificate secrets (EAB HMAC key, TSIG secret) are sealed
// in the database and come back in clear from reads.
func TestWorkspaceSettingsSecretsAreSealed(t *testing.T) {
	forEachKind(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		w := &api.Workspace{ID: uuid.NewString(), Name: "certs", Region: "westus2", Settings: api.WorkspaceSettings{
			DNSZone: "apps.example.com", ACMEEABKeyID: "kid", ACMEEABHMACKey: "HMAC-SECRET-1a2b3c",
			DNS01: &api.DNS01Settings{Provider: "rfc2136", Nameserver: "ns:53", TSIGKey: "k", TSIGSecret: "TSIG-SECRET-4d5e6f"}}}
		if err := s.CreateWorkspace(ctx, w); err != nil {
			t.Fatal(err)
		}
		got, err := s.GetWorkspace(ctx, "certs")
		if err != nil || got.Settings.ACMEEABHMACKey != "HMAC-SECRET-1a2b3c" || got.Settings.DNS01.TSIGSecret != "TSIG-SECRET-4d5e6f" {
			t.Fatalf("get: %v %+v", err, got)
		}
		upd := got.Settings
		upd.DNS01 = &api.DNS01Settings{Provider: "rfc2136", Nameserver: "ns2:53", TSIGKey: "k", TSIGSecret: "TSIG-SECRET-7a8b9c"}
		if err := s.UpdateWorkspaceSettings(ctx, got.ID, upd); err != nil {
			t.Fatal(err)
		}
		all, err := s.ListWorkspaces(ctx)
		if err != nil || len(all) != 1 || all[0].Settings.DNS01.TSIGSecret != "TSIG-SECRET-7a8b9c" || all[0].Settings.DNS01.Nameserver != "ns2:53" {
			t.Fatalf("list: %v %+v", err, all)
		}
		if s.Path != "" {
			s.Close()
			for _, f := range []string{s.Path, s.Path + "-wal"} {
				data, _ := os.ReadFile(f)
				if bytes.Contains(data, []byte("SECRET-")) {
					t.Fatalf("%s holds a workspace secret in clear", filepath.Base(f))
				}
			}
		}
	})
}

// A server older than the database's schema refuses to start on it,
// naming both versions, and changes nothing.
func TestNewerSchemaRefused(t *testing.T) {
	for _, k := range testdb.Kinds {
		t.Run(k.Name, func(t *testing.T) {
			dir := t.TempDir()
			box, _ := secretbox.Load(dir, func(string) string { return "" })
			u := k.URL(t, dir)
			s, err := store.Open(context.Background(), u, dir, box)
			if err != nil {
				t.Fatal(err)
			}
			db, err := sql.Open(map[bool]string{true: "sqlite", false: "pgx"}[k.Name == "sqlite"], strings.TrimPrefix(u, "sqlite:"))
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if _, err := db.Exec(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (99, '0099_future', 0)`); err != nil {
				t.Fatal(err)
			}
			s.Close()
			_, err = store.Open(context.Background(), u, dir, box)
			if err == nil || !strings.Contains(err.Error(), "schema is at version 99, newer than this berth") || !strings.Contains(err.Error(), "knows (5)") {
				t.Fatalf("open a newer schema: %v", err)
			}
		})
	}
}
