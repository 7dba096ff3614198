package aks

import (
	"context"
	"encoding/json"
	"fmt"
	"github.com/berth-ml/berth/internal/preflight"
	"github.com/berth-ml/berth/internal/provider"
	"github.com/berth-ml/berth/internal/provider/kubernetes"
	"strings"

	"github.com/berth-ml/berth/api"
	"github.com/berth-ml/berth/internal/store"
)

// armEndpoint is Azure Resource Manager's address in the public cloud, as
// the dry run shows the request.
const armEndpoint = "https://management.azure.com"

// apiVersion is the ARM API version armcontainerservice/v6 sends.
const apiVersion = "2025-02-01"

// DryRun answers a create with the ARM request it would send (validation
// has passed by then), and an attach with the cluster's preflight checks,
// through the kubeconfig Azure gives.
func (p *Provider) DryRun(ctx context.Context, ws *api.Workspace, req *api.ComputeRequest) (*api.PreflightReport, error) {
	if req.Origin == api.OriginAttached {
		return p.dryRunAttach(ctx, ws, req)
	}
	s, d := p.parseCreate(ws, req)
	if len(d) > 0 {
		return nil, fmt.Errorf("%s", d[0].Message)
	}
	az, err := p.connect(ws, s.subscription)
	if err != nil {
		return nil, err
	}
	if s.version == "" {
		vl, err := p.versionsIn(ctx, az, s.location)
		if err != nil {
			return nil, fmt.Errorf("%s", azureError(err, need{action: "list Kubernetes versions", role: "Reader", scope: "/subscriptions/" + s.subscription}).Message)
		}
		s.version, _ = p.defaultVersion(vl)
	}
	c := &store.Compute{Compute: api.Compute{Name: req.Name, Workspace: ws.Name, AttachmentID: "(assigned at create)"}}
	body, err := json.Marshal(managedCluster(c, s))
	if err != nil {
		return nil, err
	}
	ref := clusterRef{subscription: s.subscription, group: s.group, name: req.Name}
	msg := fmt.Sprintf("%d × %s in %s, Kubernetes %s, purpose %s, load balancer %s", s.agents, s.vmSize, s.location, s.version, req.ClusterPurpose, req.LoadBalancerType)
	return &api.PreflightReport{Passed: true,
		Checks:  []api.Check{{Name: "validation", Status: api.CheckPassed, Message: "every rule passed: " + msg}},
		Request: &api.CloudRequest{Method: "PUT", URL: armEndpoint + ref.id() + "?api-version=" + apiVersion, Body: json.RawMessage(body)},
	}, nil
}

func (p *Provider) dryRunAttach(ctx context.Context, ws *api.Workspace, req *api.ComputeRequest) (*api.PreflightReport, error) {
	ref, d := p.parseAttach(ws, req)
	if len(d) > 0 {
		return nil, fmt.Errorf("%s", d[0].Message)
	}
	az, err := p.connect(ws, ref.subscription)
	if err != nil {
		return nil, err
	}
	mc, err := az.clusters.Get(ctx, ref.group, ref.name, nil)
	if err != nil {
		return nil, fmt.Errorf("%s", azureError(err, need{action: "read managed cluster " + ref.name, role: "Reader", scope: ref.id()}).Message)
	}
	acc := accessOf(&mc.ManagedCluster)
	if d := acc.problems(ws, ref); len(d) > 0 {
		return nil, fmt.Errorf("%s", d[0].Message)
	}
	resp, err := az.clusters.ListClusterAdminCredentials(ctx, ref.group, ref.name, nil)
	if err != nil {
		return nil, fmt.Errorf("%s", azureError(err, need{action: "get the admin credentials of managed cluster " + ref.name, role: "Azure Kubernetes Service Cluster Admin Role", scope: ref.id()}).Message)
	}
	var kc []byte
	for _, k := range resp.Kubeconfigs {
		if k != nil && len(k.Value) > 0 {
			kc = k.Value
			break
		}
	}
	kreq := *req
	kreq.Type, kreq.Credentials = api.ComputeKubernetes, string(kc)
	kreq.Settings = provider.Encode(kubernetes.Settings{CredentialMode: provider.Read[Settings](req.Settings).CredentialMode})
	vms := &preflight.VMSizes{Default: vmSize(&mc.ManagedCluster), CPUs: p.vmCPUs(ctx, ws, strings.ToLower(deref(mc.Location)))}
	rep, err := p.Kube.DryRunWith(ctx, &kreq, preflight.Input{VMSizes: vms, Unreachable: acc.unreachable()})
	if err != nil {
		return nil, err
	}
	rep.Checks = append([]api.Check{{Name: "azure", Status: api.CheckPassed, Message: "found managed cluster " + ref.name + " and got its kubeconfig"}}, rep.Checks...)
	return rep, nil
}
