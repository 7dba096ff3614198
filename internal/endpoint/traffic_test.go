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
