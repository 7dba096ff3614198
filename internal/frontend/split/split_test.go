package split

import (
	"errors"
	"math"
	"sync"
	"testing"
)

func allReady(string) bool { return true }

func count(t *testing.T, s *Splitter, n int, ready func(string) bool) (picked, mirrored map[string]int) {
	t.Helper()
	picked, mirrored = map[string]int{}, map[string]int{}
	for range n {
		v, ms, err := s.Pick("", ready)
		if err != nil {
			t.Fatal(err)
		}
		picked[v]++
		for _, m := range ms {
			mirrored[m]++
		}
	}
	return
}

// TestSplitHoldsTheWeights: over 10,000 requests each version's share is
// within 2 percentage points of its weight (smooth weighted round robin
// gets within a request).
func TestSplitHoldsTheWeights(t *testing.T) {
	for _, weights := range [][]int{{90, 10}, {50, 50}, {1, 99}, {33, 33, 34}, {70, 20, 10, 0}, {100, 0}} {
		var vs []Version
		for i, w := range weights {
			vs = append(vs, Version{Name: string(rune('a' + i)), Weight: w})
		}
		picked, _ := count(t, New(vs), 10000, allReady)
		for _, v := range vs {
			share := float64(picked[v.Name]) / 100
			if math.Abs(share-float64(v.Weight)) > 2 {
				t.Errorf("weights %v: %s got %.2f%%, want %d±2", weights, v.Name, share, v.Weight)
			}
			if v.Weight == 0 && picked[v.Name] != 0 {
				t.Errorf("weights %v: %s at 0 got %d requests", weights, v.Name, picked[v.Name])
			}
		}
	}
}

// TestUnreadyVersionsShareOut: a version with no ready replica gets none
// of the traffic and the others absorb its share in proportion; pinned, it
// is refused with its name; an unknown pin names the versions.
func TestUnreadyVersionsShareOut(t *testing.T) {
	s := New([]Version{{Name: "v1", Weight: 60}, {Name: "v2", Weight: 30}, {Name: "v3", Weight: 10}})
	noV2 := func(v string) bool { return v != "v2" }
	picked, _ := count(t, s, 10000, noV2)
	if picked["v2"] != 0 || math.Abs(float64(picked["v1"])/100-85.7) > 2 || math.Abs(float64(picked["v3"])/100-14.3) > 2 {
		t.Errorf("with v2 down: %v, want v1 ≈ 85.7%%, v3 ≈ 14.3%%, v2 none", picked)
	}
	if _, _, err := s.Pick("v2", noV2); !errors.As(err, &ErrUnavailable{}) || err.Error() != "version v2 has no ready replica" {
		t.Errorf("pinned to v2 while down: %v", err)
	}
	if v, _, err := s.Pick("v3", noV2); err != nil || v != "v3" {
		t.Errorf("pinned to v3: %q %v", v, err)
	}
	var unknown ErrUnknown
	if _, _, err := s.Pick("v9", allReady); !errors.As(err, &unknown) || len(unknown.Known) != 3 {
		t.Errorf("pinned to an unknown version: %v", err)
	}
	if v, _, err := s.Pick("", func(string) bool { return false }); v != "" || err != nil {
		t.Errorf("nothing ready: %q %v, want no version and no error", v, err)
	}
}

// TestMirror: a version mirrored at P% gets a copy of P% of the requests,
// never of one it serves itself.
func TestMirror(t *testing.T) {
	s := New([]Version{{Name: "v1", Weight: 100}, {Name: "v2", Weight: 0, Mirror: 25}})
	picked, mirrored := count(t, s, 10000, allReady)
	if picked["v1"] != 10000 || mirrored["v2"] != 2500 {
		t.Errorf("picked %v, mirrored %v; want all to v1 and 2500 copies to v2", picked, mirrored)
	}
	self := New([]Version{{Name: "v1", Weight: 50, Mirror: 100}, {Name: "v2", Weight: 50}})
	_, mirrored = count(t, self, 1000, allReady)
	if mirrored["v1"] != 500 {
		t.Errorf("a version mirrored at 100%% that serves half got %d copies, want 500 (never its own)", mirrored["v1"])
	}
}

// TestConcurrentPicks: concurrent requests keep the split.
func TestConcurrentPicks(t *testing.T) {
	s := New([]Version{{Name: "v1", Weight: 90}, {Name: "v2", Weight: 10}})
	var mu sync.Mutex
	picked := map[string]int{}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 1250 {
				v, _, _ := s.Pick("", allReady)
				mu.Lock()
				picked[v]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if picked["v1"] != 9000 || picked["v2"] != 1000 {
		t.Errorf("concurrent split: %v, want exactly 9000/1000", picked)
	}
}
