package endpoint

import (
	"strings"
	"testing"

	"github.com/berth-ml/berth/api"
)

func TestCheckTraffic(t *testing.T) {
	v := func(name string, traffic, mirror int, control bool) api.EndpointVersion {
		return api.EndpointVersion{Name: name, Traffic: traffic, MirrorTraffic: mirror, Control: control}
	}
	for _, tc := range []struct {
		versions []api.EndpointVersion
		want     []string // each must appear in some problem; none: valid
	}{
		{[]api.EndpointVersion{v("v1", 100, 0, false)}, nil},
		{[]api.EndpointVersion{v("v1", 90, 0, true), v("v2", 10, 0, false)}, nil},
		{[]api.EndpointVersion{v("v1", 100, 0, false), v("v2", 0, 20, false)}, nil},
		{[]api.EndpointVersion{v("v1", 80, 0, false), v("v2", 10, 0, false)}, []string{"sums to 90", "v1 80, v2 10"}},
		{[]api.EndpointVersion{v("v1", 100, 0, false), v("v2", 10, 0, false)}, []string{"sums to 110"}},
		{[]api.EndpointVersion{v("v1", 110, 0, false), v("v2", -10, 0, false)}, []string{"traffic 110 must be", "traffic -10 must be"}},
		{[]api.EndpointVersion{v("v1", 100, 10, false)}, []string{"only version"}},
		{[]api.EndpointVersion{v("v1", 50, 0, true), v("v2", 50, 0, true)}, []string{"2 versions are marked control"}},
		{[]api.EndpointVersion{v("v1", 100, 0, false), v("v2", 0, 101, false)}, []string{"mirror traffic 101"}},
	} {
		got := CheckTraffic(tc.versions)
		var msgs []string
		for _, d := range got {
			msgs = append(msgs, d.Message)
		}
		all := strings.Join(msgs, "\n")
		if len(tc.want) == 0 && len(got) != 0 {
			t.Errorf("%+v: unexpected problems:\n%s", tc.versions, all)
		}
		for _, w := range tc.want {
			if !strings.Contains(all, w) {
				t.Errorf("%+v: problems lack %q:\n%s", tc.versions, w, all)
			}
		}
	}
}

// A change to one version's traffic is balanced by the one other version
// that carries traffic; with two or more, the sum is left for
// CheckTraffic to refuse.
func TestRebalance(t *testing.T) {
	for _, tc := range []struct {
		before  []int // traffic of v1, v2, v3 …
		changed int   // index of the version changed
		to      int
		want    []int
	}{
		{[]int{100, 0}, 1, 10, []int{90, 10}},        // add a canary
		{[]int{90, 10}, 1, 100, []int{0, 100}},       // promote
		{[]int{0, 100}, 0, 100, []int{100, 0}},       // roll back
		{[]int{50, 50, 0}, 2, 10, []int{50, 50, 10}}, // ambiguous: refused later
		{[]int{100, 0}, 0, -10, []int{-10, 0}},       // nothing to balance with
		{[]int{100}, 0, 90, []int{90}},
	} {
		var vs []api.EndpointVersion
		for i, tr := range tc.before {
			vs = append(vs, api.EndpointVersion{Name: string(rune('a' + i)), Traffic: tr})
		}
		apply(vs, vs[tc.changed].Name, &tc.to, nil, nil)
		rebalance(vs, vs[tc.changed].Name)
		for i, w := range tc.want {
			if vs[i].Traffic != w {
				t.Errorf("%v, %s to %d: got %v, want %v", tc.before, vs[tc.changed].Name, tc.to, vs, tc.want)
				break
			}
		}
	}
}
