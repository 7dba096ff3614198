// Package endpoint is the life cycle of endpoints: one scoring URI over
// several versions, each a service with a share of the traffic
// (docs/endpoints.md). This file holds the traffic rules, checked all at
// once before anything changes.
package endpoint

import (
	"fmt"

	"github.com/berth-ml/berth/api"
	"github.com/berth-ml/berth/internal/problem"
)

// CheckTraffic reports every problem of an endpoint's versions as they
// would be after a change: each traffic and mirror share within 0–100,
// the traffic summing to exactly 100, no mirror on the only version and at
// most one control version.
func CheckTraffic(versions []api.EndpointVersion) []api.ErrorDetail {
	var out []api.ErrorDetail
	add := func(target, format string, args ...any) {
		out = append(out, problem.Detail(api.CodeInvalidValue, target, format, args...))
	}
	sum, controls := 0, 0
	for _, v := range versions {
		if v.Traffic < 0 || v.Traffic > 100 {
			add("traffic", "version %s: traffic %d must be a percentage from 0 to 100", v.Name, v.Traffic)
		}
		if v.MirrorTraffic < 0 || v.MirrorTraffic > 100 {
			add("mirrorTraffic", "version %s: mirror traffic %d must be a percentage from 0 to 100", v.Name, v.MirrorTraffic)
		}
		if v.MirrorTraffic > 0 && len(versions) == 1 {
			add("mirrorTraffic", "version %s is the endpoint's only version: there is no other traffic to mirror to it", v.Name)
		}
		if v.Control {
			controls++
		}
		sum += v.Traffic
	}
	if len(versions) > 0 && sum != 100 {
		add("traffic", "the versions' traffic sums to %d; it must sum to 100 (%s)", sum, shares(versions))
	}
	if controls > 1 {
		add("control", "%d versions are marked control; an endpoint has at most one", controls)
	}
	return out
}

func shares(versions []api.EndpointVersion) string {
	s := ""
	for i, v := range versions {
		if i > 0 {
			s += ", "
		}
		s += fmt.Sprintf("%s %d", v.Name, v.Traffic)
	}
	return s
}
