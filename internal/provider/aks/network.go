package aks

import (
	"cmp"
	"fmt"
	"net/netip"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/containerservice/armcontainerservice/v6"
	"github.com/berth-ml/berth/api"
	"github.com/berth-ml/berth/internal/operation"
	"github.com/berth-ml/berth/internal/problem"
)

// The network conditions the reference warns about, read from the managed
// cluster before Berth changes anything: authorized IP ranges on the API
// server, and private clusters.

// access is how the API server of a managed cluster can be reached.
type access struct {
	ranges      []string // apiServerAccessProfile.authorizedIPRanges
	private     bool     // apiServerAccessProfile.enablePrivateCluster
	privateFQDN string
}

func accessOf(mc *armcontainerservice.ManagedCluster) access {
	var a access
	if mc.Properties == nil {
		return a
	}
	if ap := mc.Properties.APIServerAccessProfile; ap != nil {
		for _, r := range ap.AuthorizedIPRanges {
			if r != nil && *r != "" {
				a.ranges = append(a.ranges, *r)
			}
		}
		a.private = ap.EnablePrivateCluster != nil && *ap.EnablePrivateCluster
	}
	a.privateFQDN = deref(mc.Properties.PrivateFQDN)
	return a
}

// prefixes reads CIDRs (a bare address is its own /32 or /128); what does
// not parse is skipped, as Azure would have refused it.
func prefixes(list []string) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range list {
		s = strings.TrimSpace(s)
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
		} else if a, err := netip.ParseAddr(s); err == nil {
			out = append(out, netip.PrefixFrom(a, a.BitLen()))
		}
	}
	return out
}

// outside are the egress CIDRs that no authorized range contains whole.
func (a access) outside(egress string) []string {
	var out []string
	ranges := prefixes(a.ranges)
	for _, e := range prefixes(strings.Split(egress, ",")) {
		in := false
		for _, r := range ranges {
			in = in || (r.Bits() <= e.Bits() && r.Contains(e.Addr()))
		}
		if !in {
			out = append(out, e.String())
		}
	}
	return out
}

// unreachable says why a private cluster's API server may not answer the
// control plane ("" for a public one).
func (a access) unreachable() string {
	if !a.private {
		return ""
	}
	fqdn := cmp.Or(a.privateFQDN, "its private endpoint")
	return fmt.Sprintf("the cluster is private (enablePrivateCluster): its API server %s answers only inside its virtual network (and networks peered or linked to its private DNS zone); run Berth's control plane there, or attach a cluster with a public API server", fqdn)
}

// problems are what refuses an attach before any change: the control
// plane's recorded egress addresses outside the authorized ranges.
func (a access) problems(ws *api.Workspace, ref clusterRef) []api.ErrorDetail {
	egress := ws.Settings.ControlPlaneEgressCIDR
	if len(a.ranges) == 0 || egress == "" {
		return nil
	}
	out := a.outside(egress)
	if len(out) == 0 {
		return nil
	}
	return []api.ErrorDetail{problem.Detail(api.CodeControlPlaneNotAuthorized, "settings.resourceId",
		"the API server of %s accepts only its authorized IP ranges (apiServerAccessProfile.authorizedIPRanges: %s), and the control plane's egress addresses %s (workspace.settings.controlPlaneEgressCidr) are not inside them, so Berth could not reach it: add them (`az aks update -g %s -n %s --api-server-authorized-ip-ranges %s,%s`)",
		ref.name, strings.Join(a.ranges, ", "), strings.Join(out, ", "), ref.group, ref.name, strings.Join(a.ranges, ","), strings.Join(out, ","))}
}

// report tells, as events of the operation, how the control plane reaches
// the API server: any address, authorized ranges (with or without the
// control plane's addresses inside them), or a private endpoint.
func (a access) report(r *operation.Run, ws *api.Workspace) {
	egress := ws.Settings.ControlPlaneEgressCIDR
	switch {
	case len(a.ranges) == 0 && !a.private:
		r.Event("The API server accepts connections from any address (no authorized IP ranges)")
	case len(a.ranges) > 0 && egress == "":
		r.Warn("The API server accepts only its authorized IP ranges %s: Berth's control plane must connect from inside them (record its egress addresses with `berth workspace update --control-plane-egress-cidr CIDR` and Berth checks them)", strings.Join(a.ranges, ", "))
	case len(a.ranges) > 0:
		r.Event("The API server accepts only its authorized IP ranges %s; the control plane's egress addresses %s are inside them", strings.Join(a.ranges, ", "), egress)
	}
	if a.private {
		r.Warn("The cluster is private (enablePrivateCluster): Berth reaches its API server %s only from inside its virtual network", a.privateFQDN)
	}
}
