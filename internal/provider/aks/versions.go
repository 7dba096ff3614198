package aks

import (
	"cmp"
	"context"
	"errors"
	"maps"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/containerservice/armcontainerservice/v6"
	"github.com/berth-ml/berth/api"
	"github.com/berth-ml/berth/internal/problem"
)

// Versions is Azure's list of Kubernetes versions in a location, in the
// reference's get-versions shape, each marked with whether Berth supports
// it. ws may be nil (the server's default subscription).
func (p *Provider) Versions(ctx context.Context, ws *api.Workspace, location string) (*api.VersionList, error) {
	ws = cmp.Or(ws, &api.Workspace{})
	location = strings.ToLower(location)
	sub := p.subscription(ws)
	if sub == "" {
		return nil, problem.New(http.StatusBadRequest, api.CodeAzureSubscriptionRequired,
			"listing versions in an Azure location needs a subscription: pass -w WORKSPACE of a workspace with an Azure subscription, or start the server with AZURE_SUBSCRIPTION_ID")
	}
	az, err := p.connect(ws, sub)
	if err != nil {
		d := azureError(err, need{action: "connect to Azure"})
		return nil, problem.New(http.StatusBadGateway, d.Code, "%s", d.Message)
	}
	vl, err := p.versionsIn(ctx, az, location)
	if err != nil {
		if re, ok := errors.AsType[*azcore.ResponseError](err); ok && (re.StatusCode == http.StatusNotFound || re.StatusCode == http.StatusBadRequest) {
			return nil, problem.New(http.StatusBadRequest, api.CodeUnknownLocation, "Azure has no Kubernetes versions for location %q: check the name (`az account list-locations -o table`)", location)
		}
		d := azureError(err, need{action: "list Kubernetes versions in " + location, role: "Reader", scope: "/subscriptions/" + sub})
		status := http.StatusBadGateway
		if d.Code == "AzureRoleMissing" || d.Code == "AzureCredentialsUnavailable" || d.Code == "AzureCredentialsRejected" {
			status = http.StatusForbidden
		}
		return nil, problem.New(status, d.Code, "%s", d.Message)
	}
	return p.versionList(location, vl), nil
}

// versionList flattens Azure's minors and patches into orchestrators,
// newest first. The default is the newest patch of the default minor.
func (p *Provider) versionList(location string, vl []*armcontainerservice.KubernetesVersion) *api.VersionList {
	out := &api.VersionList{Location: location, Orchestrators: []api.Orchestrator{}}
	for _, kv := range vl {
		if kv == nil || kv.Version == nil {
			continue
		}
		preview := kv.IsPreview != nil && *kv.IsPreview
		patches := slices.Collect(maps.Keys(kv.PatchVersions))
		if len(patches) == 0 {
			patches = []string{*kv.Version}
		}
		sort.Slice(patches, func(i, j int) bool { return versionLess(patches[j], patches[i]) })
		for i, v := range patches {
			o := api.Orchestrator{OrchestratorType: "Kubernetes", OrchestratorVersion: v, IsPreview: preview,
				Default: i == 0 && kv.IsDefault != nil && *kv.IsDefault, Supported: p.Kube.Versions.Contains(v), Upgrades: []api.Upgrade{}}
			if pv := kv.PatchVersions[v]; pv != nil {
				ups := make([]string, 0, len(pv.Upgrades))
				for _, u := range pv.Upgrades {
					if u != nil {
						ups = append(ups, *u)
					}
				}
				sort.Slice(ups, func(i, j int) bool { return versionLess(ups[i], ups[j]) })
				for _, u := range ups {
					o.Upgrades = append(o.Upgrades, api.Upgrade{OrchestratorType: "Kubernetes", OrchestratorVersion: u, IsPreview: isPreviewIn(vl, u)})
				}
			}
			out.Orchestrators = append(out.Orchestrators, o)
		}
	}
	sort.SliceStable(out.Orchestrators, func(i, j int) bool {
		return versionLess(out.Orchestrators[j].OrchestratorVersion, out.Orchestrators[i].OrchestratorVersion)
	})
	return out
}

func isPreviewIn(vl []*armcontainerservice.KubernetesVersion, v string) bool {
	for _, kv := range vl {
		if kv == nil || kv.Version == nil {
			continue
		}
		if _, ok := kv.PatchVersions[v]; ok || *kv.Version == v {
			return kv.IsPreview != nil && *kv.IsPreview
		}
	}
	return false
}

// versionLess compares dotted versions numerically.
func versionLess(a, b string) bool {
	pa, pb := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(pa) || i < len(pb); i++ {
		var x, y int
		if i < len(pa) {
			x, _ = strconv.Atoi(pa[i])
		}
		if i < len(pb) {
			y, _ = strconv.Atoi(pb[i])
		}
		if x != y {
			return x < y
		}
	}
	return false
}
