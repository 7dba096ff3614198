package store_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/berth-ml/berth/internal/testenv/testdb"
)

// BenchmarkShowCompute and BenchmarkList1000Computes back the targets of
// issue 2: show ≤ 1 ms and list 1,000 ≤ 10 ms (median) on SQLite.
func BenchmarkShowCompute(b *testing.B) {
	for _, k := range testdb.Kinds {
		b.Run(k.Name, func(b *testing.B) {
			s := open(b, k)
			ws := newWorkspace(b, s, "bench")
			for i := 0; i < 100; i++ {
				newCompute(b, s, ws, fmt.Sprintf("c%04d", i))
			}
			ctx := context.Background()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := s.GetCompute(ctx, ws.ID, "c0042"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkList1000Computes(b *testing.B) {
	for _, k := range testdb.Kinds {
		b.Run(k.Name, func(b *testing.B) {
			s := open(b, k)
			ws := newWorkspace(b, s, "bench")
			for i := 0; i < 1000; i++ {
				newCompute(b, s, ws, fmt.Sprintf("c%04d", i))
			}
			ctx := context.Background()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				l, err := s.ListComputes(ctx, ws.ID)
				if err != nil || len(l) != 1000 {
					b.Fatal(len(l), err)
				}
			}
		})
	}
}

func BenchmarkList1000ComputeDocs(b *testing.B) {
	for _, k := range testdb.Kinds {
		b.Run(k.Name, func(b *testing.B) {
			s := open(b, k)
			ws := newWorkspace(b, s, "bench")
			for i := 0; i < 1000; i++ {
				newCompute(b, s, ws, fmt.Sprintf("c%04d", i))
			}
			ctx := context.Background()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				l, err := s.ListComputeDocs(ctx, ws.ID)
				if err != nil || len(l) != 1000 {
					b.Fatal(len(l), err)
				}
			}
		})
	}
}
