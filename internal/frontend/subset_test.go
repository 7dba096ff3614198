package frontend

import (
	"fmt"
	"testing"
)

func TestSubsetNeverOvercommits(t *testing.T) {
	for n := 1; n <= 5; n++ {
		for r := 0; r <= 7; r++ {
			for slots := 1; slots <= 4; slots++ {
				var reps []Replica
				for j := 0; j < r; j++ {
					reps = append(reps, Replica{Name: fmt.Sprintf("pod-%d", j), Addr: fmt.Sprintf("10.0.0.%d:1", j)})
				}
				given := map[string]int{}
				serving := 0
				for self := 0; self < n; self++ {
					a := Subset(reps, slots, n, self)
					for _, rep := range a.Replicas {
						given[rep.Name] += rep.Slots
					}
					if len(a.Replicas) > 0 {
						serving++
					} else if r > 0 {
						if a.Forward < 0 || a.Forward >= n {
							t.Fatalf("n=%d r=%d slots=%d self=%d: no slots and no peer", n, r, slots, self)
						}
						if len(Subset(reps, slots, n, a.Forward).Replicas) == 0 {
							t.Fatalf("n=%d r=%d slots=%d: forwarded to a peer without slots", n, r, slots)
						}
					}
				}
				for name, g := range given {
					if g > slots {
						t.Fatalf("n=%d r=%d slots=%d: %s given %d slots", n, r, slots, name, g)
					}
				}
				if r > 0 && len(given) != r {
					t.Fatalf("n=%d r=%d slots=%d: %d replicas used", n, r, slots, len(given))
				}
				// Every slot is used when front ends ≤ replicas × slots.
				total := 0
				for _, g := range given {
					total += g
				}
				if r > 0 && total != r*slots {
					t.Fatalf("n=%d r=%d slots=%d: %d of %d slots handed out", n, r, slots, total, r*slots)
				}
			}
		}
	}
}
