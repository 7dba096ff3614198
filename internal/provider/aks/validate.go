package aks

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"github.com/berth-ml/berth/internal/problem"
	"github.com/berth-ml/berth/internal/provider/kubernetes"
	"maps"
	"net/http"
	"net/netip"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/compute/armcompute/v7"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/containerservice/armcontainerservice/v6"
	"github.com/berth-ml/berth/api"
	"github.com/berth-ml/berth/internal/store"
)

// Validate checks a create or attach request: everything offline first,
// then what only Azure knows (locations, VM sizes, versions, the subnet,
// the name), and returns every problem together. Nothing is changed.
func (p *Provider) Validate(ctx context.Context, ws *api.Workspace, req *api.ComputeRequest) []api.ErrorDetail {
	// SSL flags are checked for every compute type by the compute service.
	var out []api.ErrorDetail
	if req.Credentials != "" {
		out = append(out, problem.Detail(api.CodeInvalidValue, "credentials", "an aks compute takes no kubeconfig: Berth gets one from Azure (use `berth compute attach kubernetes` to attach by kubeconfig)"))
	}
	switch req.Origin {
	case api.OriginCreated:
		s, d := p.parseCreate(ws, req)
		out = append(out, d...)
		out = append(out, p.checkCreateInAzure(ctx, ws, req, s)...)
	case api.OriginAttached:
		out = append(out, p.validateAttach(ctx, ws, req)...)
	}
	return out
}

// checkCreateInAzure runs the read-only Azure checks of a create request
// for the fields that passed the offline checks.
func (p *Provider) checkCreateInAzure(ctx context.Context, ws *api.Workspace, req *api.ComputeRequest, s *createSpec) []api.ErrorDetail {
	if s.subscription == "" || len(p.settingsDetails(ws, false)) > 0 {
		return nil
	}
	ctx, cancel := contextWithTimeout(ctx)
	defer cancel()
	az, err := p.connect(ws, s.subscription)
	if err != nil {
		return []api.ErrorDetail{azureError(err, need{action: "connect to Azure"})}
	}
	subScope := "/subscriptions/" + s.subscription
	var out []api.ErrorDetail
	if s.location == "" || s.location == "local" {
		return out
	}
	locs, err := p.locations(ctx, az)
	if err != nil {
		return append(out, azureError(err, need{action: "list the subscription's locations", role: "Reader", scope: subScope}))
	}
	if _, ok := locs[s.location]; !ok {
		return append(out, problem.Detail(api.CodeUnknownLocation, "settings.location", "settings.location %q is not an Azure location of subscription %s; known: %s", s.location, s.subscription, strings.Join(slices.Sorted(maps.Keys(locs)), ", ")))
	}
	// VM size and capacity.
	if s.vmSize != "" && s.agents > 0 {
		cores, lookupErr := p.cores(ctx, az, s.location)
		n, ok := cores[strings.ToLower(s.vmSize)]
		switch {
		case !ok && lookupErr != nil:
			out = append(out, problem.Detail(api.CodeUnknownVMSize, "settings.vmSize", "cannot tell how many vCPUs VM size %q has: Azure's VM size list could not be read (%s) and the size is not in Berth's built-in table", s.vmSize, azureError(lookupErr, need{action: "list VM sizes", role: "Reader", scope: subScope}).Message))
		case !ok:
			out = append(out, problem.Detail(api.CodeUnknownVMSize, "settings.vmSize", "VM size %q is not offered in location %s (or not to this subscription); see `az vm list-sizes -l %s -o table`", s.vmSize, s.location, s.location))
		case s.agents*n < minCPUs(req.ClusterPurpose):
			out = append(out, problem.Detail(api.CodeInsufficientCapacity, "settings.agentCount", "cluster purpose %s needs at least %d vCPUs; %d × %s is %d vCPUs (%d each): use a larger settings.agentCount, a bigger settings.vmSize, or clusterPurpose DevTest", req.ClusterPurpose, minCPUs(req.ClusterPurpose), s.agents, s.vmSize, s.agents*n, n))
		}
	}
	// Kubernetes version.
	vl, err := p.versionsIn(ctx, az, s.location)
	if err != nil {
		out = append(out, azureError(err, need{action: "list Kubernetes versions in " + s.location, role: "Reader", scope: subScope}))
	} else if s.version != "" && !versionAvailable(vl, s.version) {
		out = append(out, problem.Detail(api.CodeKubernetesVersionNotAvailable, "settings.kubernetesVersion", "Kubernetes version %s is not available in %s; available: %s (see `berth versions -l %s`)", s.version, s.location, strings.Join(available(vl), ", "), s.location))
	} else if s.version == "" {
		if _, ok := p.defaultVersion(vl); !ok {
			out = append(out, problem.Detail(api.CodeKubernetesVersionNotAvailable, "settings.location", "no Kubernetes version that Berth supports (%s) is available in %s", p.Kube.Versions, s.location))
		}
	}
	// The custom VNet's subnet.
	if s.vnet && s.vnetGroup != "" && s.vnetName != "" && s.subnetName != "" {
		sub, err := az.subnets.Get(ctx, s.vnetGroup, s.vnetName, s.subnetName, nil)
		if err != nil {
			d := azureError(err, need{action: "read subnet " + s.subnetName + " of virtual network " + s.vnetName, role: "Network Contributor", scope: s.subnetID()})
			d.Target = "subnetName"
			out = append(out, d)
		} else if sub.Properties != nil {
			var prefixes []string
			if sub.Properties.AddressPrefix != nil {
				prefixes = append(prefixes, *sub.Properties.AddressPrefix)
			}
			for _, x := range sub.Properties.AddressPrefixes {
				if x != nil {
					prefixes = append(prefixes, *x)
				}
			}
			for _, x := range prefixes {
				pf, err := netip.ParsePrefix(x)
				if err != nil {
					continue
				}
				if s.serviceCIDR.IsValid() && s.serviceCIDR.Overlaps(pf) {
					out = append(out, problem.Detail(api.CodeCIDROverlap, "settings.serviceCidr", "settings.serviceCidr %s overlaps subnet %s (%s); pick a range the virtual network does not use", s.serviceCIDR, s.subnetName, pf))
				}
				if s.bridgeCIDR.IsValid() && s.bridgeCIDR.Masked().Overlaps(pf) {
					out = append(out, problem.Detail(api.CodeCIDROverlap, "settings.dockerBridgeCidr", "settings.dockerBridgeCidr %s overlaps subnet %s (%s)", s.bridgeCIDR, s.subnetName, pf))
				}
			}
		}
	}
	// The name: creation is not a take-over.
	if s.group != "" {
		_, err := az.clusters.Get(ctx, s.group, req.Name, nil)
		var re *azcore.ResponseError
		switch {
		case err == nil:
			out = append(out, problem.Detail(api.CodeAzureNameConflict, "name", "a managed cluster named %q already exists in resource group %s: pick another name, or attach it (origin attached with settings.resourceGroup %s and settings.clusterName %s)", req.Name, s.group, s.group, req.Name))
		case errors.As(err, &re) && re.StatusCode == http.StatusNotFound && re.ErrorCode != "ResourceGroupNotFound":
		default:
			out = append(out, azureError(err, need{action: "read managed clusters in resource group " + s.group, role: "Reader", scope: s.groupScope()}))
		}
	}
	return out
}

// locations are the subscription's location names (lowercase, like westus2).
func (p *Provider) locations(ctx context.Context, az *clients) (map[string]bool, error) {
	key := "locations/" + az.subscription
	if v, ok := p.cache.get(key, time.Hour); ok {
		return v.(map[string]bool), nil
	}
	out := map[string]bool{}
	pager := az.locations.NewListLocationsPager(az.subscription, nil)
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		for _, l := range page.Value {
			if l != nil && l.Name != nil {
				out[strings.ToLower(*l.Name)] = true
			}
		}
	}
	p.cache.put(key, out)
	return out, nil
}

// cores maps lowercase VM size names offered in a location to their vCPUs,
// from Azure's resource SKU list (cached); if the list cannot be read, the
// built-in table and the error.
func (p *Provider) cores(ctx context.Context, az *clients, location string) (map[string]int, error) {
	key := "skus/" + az.subscription + "/" + location
	if v, ok := p.cache.get(key, time.Hour); ok {
		return v.(map[string]int), nil
	}
	out := map[string]int{}
	filter := "location eq '" + location + "'"
	pager := az.skus.NewListPager(&armcompute.ResourceSKUsClientListOptions{Filter: &filter})
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return builtinCores, err
		}
		for _, sku := range page.Value {
			if sku == nil || sku.Name == nil || sku.ResourceType == nil || !strings.EqualFold(*sku.ResourceType, "virtualMachines") {
				continue
			}
			if !offeredIn(sku.Locations, location) || restricted(sku) {
				continue
			}
			for _, c := range sku.Capabilities {
				if c != nil && c.Name != nil && c.Value != nil && *c.Name == "vCPUs" {
					if n, err := strconv.Atoi(*c.Value); err == nil {
						out[strings.ToLower(*sku.Name)] = n
					}
				}
			}
		}
	}
	p.cache.put(key, out)
	return out, nil
}

// restricted: the size is not available to this subscription in the location.
func restricted(sku *armcompute.ResourceSKU) bool {
	return slices.ContainsFunc(sku.Restrictions, func(r *armcompute.ResourceSKURestrictions) bool {
		return r != nil && r.Type != nil && *r.Type == armcompute.ResourceSKURestrictionsTypeLocation
	})
}

func offeredIn(locs []*string, location string) bool {
	return len(locs) == 0 || slices.ContainsFunc(locs, func(l *string) bool { return l != nil && strings.EqualFold(*l, location) })
}

// versionsIn is Azure's Kubernetes version list for a location (cached).
func (p *Provider) versionsIn(ctx context.Context, az *clients, location string) ([]*armcontainerservice.KubernetesVersion, error) {
	key := "versions/" + az.subscription + "/" + location
	if v, ok := p.cache.get(key, 10*time.Minute); ok {
		return v.([]*armcontainerservice.KubernetesVersion), nil
	}
	resp, err := az.clusters.ListKubernetesVersions(ctx, location, nil)
	if err != nil {
		return nil, err
	}
	p.cache.put(key, resp.Values)
	return resp.Values, nil
}

// versionAvailable: a minor ("1.36") or a patch ("1.36.2") that Azure lists.
func versionAvailable(vl []*armcontainerservice.KubernetesVersion, v string) bool {
	v = strings.TrimPrefix(v, "v")
	for _, kv := range vl {
		if kv == nil || kv.Version == nil {
			continue
		}
		if *kv.Version == v {
			return true
		}
		if _, ok := kv.PatchVersions[v]; ok {
			return true
		}
	}
	return false
}

func available(vl []*armcontainerservice.KubernetesVersion) []string {
	var out []string
	for _, kv := range vl {
		if kv != nil && kv.Version != nil {
			out = append(out, *kv.Version)
		}
	}
	sort.Strings(out)
	return out
}

// defaultVersion is the version a create without --kubernetes-version gets:
// the location's default if Berth supports it, else the newest supported
// generally available one.
func (p *Provider) defaultVersion(vl []*armcontainerservice.KubernetesVersion) (string, bool) {
	best, bestMinor := "", -1
	for _, kv := range vl {
		if kv == nil || kv.Version == nil || !p.Kube.Versions.Contains(*kv.Version) {
			continue
		}
		if kv.IsDefault != nil && *kv.IsDefault {
			return *kv.Version, true
		}
		if kv.IsPreview != nil && *kv.IsPreview {
			continue
		}
		if m := minor(*kv.Version); m > bestMinor {
			best, bestMinor = *kv.Version, m
		}
	}
	return best, best != ""
}

func minor(v string) int {
	parts := strings.Split(strings.TrimPrefix(v, "v"), ".")
	if len(parts) < 2 {
		return -1
	}
	n, err := strconv.Atoi(parts[1])
	if err != nil {
		return -1
	}
	return n
}

// resourceIDRe is the exact shape of an AKS resource id. ARM ids are
// case-insensitive in their fixed segments (the Azure CLI prints
// "resourcegroups"), so any casing of those matches; the names between
// them are kept as given.
var resourceIDRe = regexp.MustCompile(`^(?i:/subscriptions/)([^/]+)(?i:/resourceGroups/)([^/]+)(?i:/providers/Microsoft\.ContainerService/managedClusters/)([^/]+)$`)

// clusterRef names a managed cluster.
type clusterRef struct{ subscription, group, name string }

func (r clusterRef) id() string {
	return fmt.Sprintf("/subscriptions/%s/resourceGroups/%s/providers/Microsoft.ContainerService/managedClusters/%s", r.subscription, r.group, r.name)
}

// parseAttach reads the cluster an attach names, offline.
func (p *Provider) parseAttach(ws *api.Workspace, req *api.ComputeRequest) (clusterRef, []api.ErrorDetail) {
	set, out := decodeSettings(req.Settings)
	createOnly := [][2]string{{"settings.agentCount", ""}, {"settings.vmSize", set.VMSize}, {"settings.location", set.Location}, {"settings.kubernetesVersion", set.KubernetesVersion}}
	if set.AgentCount != nil {
		createOnly[0][1] = "given"
	}
	for _, f := range append(createOnly, set.vnetFields()...) {
		if f[1] != "" {
			out = append(out, problem.Detail(api.CodeInvalidProperty, f[0], "%s only applies to creating a cluster, not to attaching one (attach takes settings.resourceId, or settings.resourceGroup and settings.clusterName)", f[0]))
		}
	}
	out = append(out, (&kubernetes.Settings{CredentialMode: orScoped(set.CredentialMode)}).Validate()...)
	ref := clusterRef{subscription: p.subscription(ws)}
	id, rg, name := set.ResourceID, set.ResourceGroup, set.ClusterName
	switch {
	case id != "" && (rg != "" || name != ""):
		out = append(out, problem.Detail(api.CodeAmbiguousCluster, "settings.resourceId", "name the cluster either by settings.resourceId or by settings.resourceGroup and settings.clusterName, not both"))
	case id != "":
		m := resourceIDRe.FindStringSubmatch(id)
		if m == nil {
			out = append(out, problem.Detail(api.CodeInvalidResourceId, "settings.resourceId", "%q is not an AKS resource id: it must be exactly /subscriptions/{subscription}/resourceGroups/{group}/providers/Microsoft.ContainerService/managedClusters/{name}", id))
			break
		}
		ref = clusterRef{subscription: m[1], group: m[2], name: m[3]}
		if want := p.subscription(ws); want != "" && !strings.EqualFold(want, ref.subscription) {
			out = append(out, problem.Detail(api.CodeSubscriptionMismatch, "settings.resourceId", "the cluster is in subscription %s, but workspace %q uses subscription %s: Berth attaches clusters of the workspace's subscription only", ref.subscription, ws.Name, want))
		}
	case rg != "" && name != "":
		ref.group, ref.name = rg, name
	case rg != "" || name != "":
		out = append(out, problem.Detail(api.CodeIncompleteCluster, "settings.clusterName", "settings.resourceGroup and settings.clusterName go together"))
	default:
		out = append(out, problem.Detail(api.CodeClusterRequired, "settings.resourceId", "name the cluster to attach: settings.resourceId, or settings.resourceGroup and settings.clusterName"))
	}
	if p.subscription(ws) == "" {
		out = append(out, p.settingsDetails(ws, false)...)
	} else if ch := ws.Settings.AzureCredential; ch != "" && !slices.Contains(CredentialChoices, ch) {
		out = append(out, p.settingsDetails(ws, false)...)
	}
	return ref, out
}

// validateAttach checks an attach offline, then that the cluster exists
// and runs a Kubernetes version Berth supports.
func (p *Provider) validateAttach(ctx context.Context, ws *api.Workspace, req *api.ComputeRequest) []api.ErrorDetail {
	ref, out := p.parseAttach(ws, req)
	if len(out) > 0 {
		return out
	}
	ctx, cancel := contextWithTimeout(ctx)
	defer cancel()
	az, err := p.connect(ws, ref.subscription)
	if err != nil {
		return []api.ErrorDetail{azureError(err, need{action: "connect to Azure"})}
	}
	mc, err := az.clusters.Get(ctx, ref.group, ref.name, nil)
	if err != nil {
		if re, ok := errors.AsType[*azcore.ResponseError](err); ok && re.StatusCode == http.StatusNotFound {
			return []api.ErrorDetail{problem.Detail(api.CodeClusterNotFound, "settings.resourceId", "there is no managed cluster %s in resource group %s of subscription %s", ref.name, ref.group, ref.subscription)}
		}
		return []api.ErrorDetail{azureError(err, need{action: "read managed cluster " + ref.name, role: "Reader", scope: ref.id()})}
	}
	if v := clusterVersion(&mc.ManagedCluster); v != "" && !p.Kube.Versions.Contains(v) {
		out = append(out, problem.Detail(api.CodeUnsupportedKubernetesVersion, "settings.resourceId", "Specified kubernetes version %s is not supported. Supported versions are between %s: upgrade the cluster (`az aks upgrade`) first", v, p.Kube.Versions))
	}
	return append(out, accessOf(&mc.ManagedCluster).problems(ws, ref)...)
}

func clusterVersion(mc *armcontainerservice.ManagedCluster) string {
	if mc.Properties == nil {
		return ""
	}
	if mc.Properties.CurrentKubernetesVersion != nil {
		return *mc.Properties.CurrentKubernetesVersion
	}
	return deref(mc.Properties.KubernetesVersion)
}

// vmSize is the VM size of a managed cluster's first (system) agent pool.
func vmSize(mc *armcontainerservice.ManagedCluster) string {
	if mc.Properties == nil || len(mc.Properties.AgentPoolProfiles) == 0 || mc.Properties.AgentPoolProfiles[0] == nil {
		return ""
	}
	return deref(mc.Properties.AgentPoolProfiles[0].VMSize)
}

// ValidateUpdate: the install path's rules.
func (p *Provider) ValidateUpdate(ctx context.Context, c *store.Compute, req *api.ComputeUpdateRequest) []api.ErrorDetail {
	return p.Kube.ValidateUpdate(ctx, c, req)
}

// ValidateScale checks a new node count against the purpose's minimums,
// with the VM size's vCPUs (the VM size itself cannot change).
func (p *Provider) ValidateScale(ctx context.Context, c *store.Compute, nodeCount int) []api.ErrorDetail {
	var out []api.ErrorDetail
	if nodeCount < minNodes(c.ClusterPurpose) {
		out = append(out, problem.Detail(api.CodeInsufficientAgents, "nodeCount", "cluster purpose %s needs at least %d nodes (asked for %d)", c.ClusterPurpose, minNodes(c.ClusterPurpose), nodeCount))
	}
	size, loc := statusOf(c).VMSize, location(c)
	size = cmp.Or(size, settingsOf(c).VMSize)
	if size == "" {
		return out
	}
	n, ok := p.vmCPUs(ctx, workspaceOf(c), loc)[strings.ToLower(size)]
	if ok && nodeCount*n < minCPUs(c.ClusterPurpose) {
		out = append(out, problem.Detail(api.CodeInsufficientCapacity, "nodeCount", "cluster purpose %s needs at least %d vCPUs; %d × %s is %d vCPUs (the VM size cannot change: use more nodes)", c.ClusterPurpose, minCPUs(c.ClusterPurpose), nodeCount, size, nodeCount*n))
	}
	return out
}
