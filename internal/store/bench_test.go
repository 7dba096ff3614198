package store_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/berth-ml/berth/internal/store"
	"github.com/berth-ml/berth/internal/testenv/testdb"
)

// BenchmarkShowCompute and BenchmarkList1000Computes back the targets of
// issue 2: show ≤ 1 ms and list 1,000 ≤ 10 ms (median) on SQLite.
func BenchmarkShowCompute(b *testing.B) {
	benchComputes(b, 100, func(b *testing.B, ctx context.Context, s *store.Store, wsID string) {
		if _, err := s.GetCompute(ctx, wsID, "c0042"); err != nil {
			b.Fatal(err)
		}
	})
}

func BenchmarkList1000Computes(b *testing.B) {
	benchComputes(b, 1000, func(b *testing.B, ctx context.Context, s *store.Store, wsID string) {
		l, err := s.ListComputes(ctx, wsID)
		if err != nil || len(l) != 1000 {
			b.Fatal(len(l), err)
		}
	})
}

func BenchmarkList1000ComputeDocs(b *testing.B) {
	benchComputes(b, 1000, func(b *testing.B, ctx context.Context, s *store.Store, wsID string) {
		l, err := s.ListComputeDocs(ctx, wsID)
		if err != nil || len(l) != 1000 {
			b.Fatal(len(l), err)
		}
	})
}

// benchComputes times op on every store kind, in a workspace holding n
// computes named c0000, c0001, ….
func benchComputes(b *testing.B, n int, op func(b *testing.B, ctx context.Context, s *store.Store, wsID string)) {
	for _, k := range testdb.Kinds {
		b.Run(k.Name, func(b *testing.B) {
			s := open(b, k)
			ws := newWorkspace(b, s, "bench")
			for i := 0; i < n; i++ {
				newCompute(b, s, ws, fmt.Sprintf("c%04d", i))
			}
			ctx := context.Background()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				op(b, ctx, s, ws.ID)
			}
		})
	}
}
