package aks

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/berth-ml/berth/internal/naming"
	"net/http"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/containerservice/armcontainerservice/v6"
	"github.com/berth-ml/berth/api"
	"github.com/berth-ml/berth/internal/kubeconn"
	"github.com/berth-ml/berth/internal/operation"
	"github.com/berth-ml/berth/internal/provider/kubernetes"
	"github.com/berth-ml/berth/internal/store"
)

// Tag on clusters Berth creates: the attachment that created it.
const tagAttachment = "berth.dev-attachment"

// Steps returns the steps of each operation kind: Azure's part, then the
// kubernetes provider's install path.
func (p *Provider) Steps(kind api.OperationKind, c *store.Compute) []operation.Step {
	install := p.Kube.Steps(api.OpAttach, c)
	dns := operation.Step{Name: "endpoint name", Run: p.stepEndpointName}
	switch kind {
	case api.OpCreate:
		steps := []operation.Step{{Name: "create cluster", Run: p.stepCreate}, {Name: "get credentials", Run: p.stepCredentials}}
		return append(append(steps, install...), dns)
	case api.OpAttach:
		steps := []operation.Step{{Name: "find cluster", Run: p.stepFind}, {Name: "get credentials", Run: p.stepCredentials}}
		return append(append(steps, install...), dns)
	case api.OpUpdate:
		return append(append([]operation.Step{{Name: "dns label", Run: p.stepLabelForUpdate}}, p.Kube.Steps(kind, c)...), dns)
	case api.OpReconcile, api.OpDetach:
		return p.Kube.Steps(kind, c)
	case api.OpDelete:
		if c != nil && c.Origin != api.OriginCreated {
			return nil
		}
		return []operation.Step{{Name: "remove Berth's components", Run: p.stepRemoveComponents}, {Name: "delete cluster", Run: p.stepDeleteCluster}}
	case api.OpScale:
		if c != nil && c.Origin != api.OriginCreated {
			return nil
		}
		return []operation.Step{{Name: "scale agent pool", Run: p.stepScale}, p.Kube.ObserveStep()}
	}
	return nil
}

// Undo removes what a failed create or attach installed in the cluster.
// A created AKS cluster stays: deleting it is the user's call.
func (p *Provider) Undo(kind api.OperationKind, c *store.Compute) func(ctx context.Context, r *operation.Run) error {
	if kind != api.OpCreate && kind != api.OpAttach {
		return nil
	}
	undo := p.Kube.Undo(api.OpAttach, c)
	return func(ctx context.Context, r *operation.Run) error {
		if kind == api.OpCreate && r.Recall("created") != "" {
			r.Warn("The AKS cluster %s stays in Azure; remove it with `berth compute delete -n %s`", r.Op.TargetName, r.Op.TargetName)
		}
		if r.Recall("kubeconfig") == "" || undo == nil {
			return nil
		}
		return undo(ctx, r)
	}
}

// loadWithWorkspace is load and the compute's workspace.
func loadWithWorkspace(ctx context.Context, r *operation.Run) (*store.Compute, *api.Workspace, error) {
	c, err := kubernetes.Load(ctx, r)
	if err != nil {
		return nil, nil, err
	}
	ws, err := r.Store.GetWorkspace(ctx, c.Workspace)
	return c, ws, err
}

// loadAzure is kubernetes.Load and the compute's Azure clients (see azure).
func (p *Provider) loadAzure(ctx context.Context, r *operation.Run) (*store.Compute, *clients, error) {
	c, err := kubernetes.Load(ctx, r)
	if err != nil {
		return nil, nil, err
	}
	az, err := p.azure(c)
	return c, az, err
}

// azure opens Azure's clients for a compute as its properties record them.
func (p *Provider) azure(c *store.Compute) (*clients, error) {
	az, err := p.connect(workspaceOf(c), statusOf(c).SubscriptionID)
	if err != nil {
		d := azureError(err, need{action: "connect to Azure"})
		return nil, operation.Fail(d.Code, d.Message, d)
	}
	return az, nil
}

func (p *Provider) clusterScope(c *store.Compute) string {
	st := statusOf(c)
	return clusterRef{st.SubscriptionID, st.ResourceGroup, st.ClusterName}.id()
}

// dnsLabel is the label of a public front end's IP: the leaf domain label
// of automatic TLS, or the compute's name, plus 6 random characters. (A
// later update with --ssl-overwrite-domain keeps it; see the kubernetes
// provider's certificate step.)
func dnsLabel(c *store.Compute) string {
	label := strings.ToLower(c.Name)
	if c.SSLConfiguration.Status == api.SSLAuto && c.SSLConfiguration.LeafDomainLabel != "" {
		label = strings.ToLower(c.SSLConfiguration.LeafDomainLabel)
	}
	if len(label) > 57 {
		label = label[:57]
	}
	return label + naming.RandomSuffix()
}

// prepare records what the operation decided once (the resolved request,
// the DNS label), so a resumed operation decides the same.
func (p *Provider) prepare(ctx context.Context, r *operation.Run, c *store.Compute, ws *api.Workspace, location string) error {
	editStatus(c, func(st *Status) {
		st.SubscriptionID, st.AzureCredential = p.subscription(ws), ws.Settings.AzureCredential
		st.Location, st.DNSZone = location, location+".cloudapp.azure.com"
		if c.LoadBalancerType != api.LoadBalancerInternal && st.DNSLabel == "" {
			st.DNSLabel = dnsLabel(c)
		}
	})
	if c.LoadBalancerType == api.LoadBalancerInternal && c.LoadBalancerSubnet == "" {
		c.LoadBalancerSubnet = DefaultLBSubnet
	}
	return r.Store.UpdateCompute(ctx, c)
}

// managedCluster is the ARM resource a create sends.
func managedCluster(c *store.Compute, s *createSpec) armcontainerservice.ManagedCluster {
	pool := &armcontainerservice.ManagedClusterAgentPoolProfile{
		Name: to.Ptr(DefaultAgentPoolName), Count: to.Ptr(int32(s.agents)), VMSize: to.Ptr(s.vmSize),
		Mode: to.Ptr(armcontainerservice.AgentPoolModeSystem), Type: to.Ptr(armcontainerservice.AgentPoolTypeVirtualMachineScaleSets),
		OSType: to.Ptr(armcontainerservice.OSTypeLinux),
	}
	network := &armcontainerservice.NetworkProfile{LoadBalancerSKU: to.Ptr(armcontainerservice.LoadBalancerSKUStandard)}
	if s.vnet {
		pool.VnetSubnetID = to.Ptr(s.subnetID())
		network.NetworkPlugin = to.Ptr(armcontainerservice.NetworkPluginKubenet)
		network.ServiceCidr = to.Ptr(s.serviceCIDR.String())
		network.DNSServiceIP = to.Ptr(s.dnsIP.String())
	}
	mc := armcontainerservice.ManagedCluster{
		Location: to.Ptr(s.location),
		Tags: map[string]*string{
			tagAttachment: to.Ptr(c.AttachmentID), "berth.dev-workspace": to.Ptr(c.Workspace), "berth.dev-compute": to.Ptr(c.Name),
		},
		Identity: &armcontainerservice.ManagedClusterIdentity{Type: to.Ptr(armcontainerservice.ResourceIdentityTypeSystemAssigned)},
		Properties: &armcontainerservice.ManagedClusterProperties{
			DNSPrefix:         to.Ptr(c.Name),
			AgentPoolProfiles: []*armcontainerservice.ManagedClusterAgentPoolProfile{pool},
			NetworkProfile:    network,
		},
	}
	if s.version != "" {
		mc.Properties.KubernetesVersion = to.Ptr(s.version)
	}
	return mc
}

// spec re-reads the create request of an operation (checked when it was made).
func (p *Provider) spec(ctx context.Context, r *operation.Run, c *store.Compute) (*createSpec, *api.Workspace, error) {
	ws, err := r.Store.GetWorkspace(ctx, c.Workspace)
	if err != nil {
		return nil, nil, err
	}
	req, err := operation.Params[api.ComputeRequest](r)
	if err != nil {
		return nil, nil, err
	}
	req.ClusterPurpose = c.ClusterPurpose
	s, _ := p.parseCreate(ws, &req)
	return s, ws, nil
}

func (p *Provider) stepCreate(ctx context.Context, r *operation.Run) error {
	c, err := kubernetes.Load(ctx, r)
	if err != nil {
		return err
	}
	s, ws, err := p.spec(ctx, r, c)
	if err != nil {
		return err
	}
	if r.Recall("prepared") == "" {
		if err := p.prepare(ctx, r, c, ws, s.location); err != nil {
			return err
		}
		if ws.Region != "" && ws.Region != "local" && ws.Region != s.location {
			r.Warn("Location %s differs from the workspace's region %s: expect more latency and cost between them", s.location, ws.Region)
		}
		if err := r.Remember(ctx, "prepared", "yes"); err != nil {
			return err
		}
	}
	editStatus(c, func(st *Status) {
		st.ResourceGroup, st.ClusterName, st.AgentPoolName = s.group, c.Name, DefaultAgentPoolName
		st.ResourceID = clusterRef{s.subscription, s.group, c.Name}.id()
	})
	az, err := p.azure(c)
	if err != nil {
		return err
	}
	scope := need{action: "create managed cluster " + c.Name + " in resource group " + s.group, role: "Contributor", scope: s.groupScope()}
	token := r.Recall("createToken")
	if token == "" {
		if s.version == "" {
			vl, err := p.versionsIn(ctx, az, s.location)
			if err != nil {
				return failAzure(ctx, err, need{action: "list Kubernetes versions", role: "Reader", scope: "/subscriptions/" + az.subscription})
			}
			v, ok := p.defaultVersion(vl)
			if !ok {
				return operation.Fail(api.CodeKubernetesVersionNotAvailable, fmt.Sprintf("no Kubernetes version that Berth supports (%s) is available in %s", p.Kube.Versions, s.location))
			}
			s.version = v
		}
		existing, err := az.clusters.Get(ctx, s.group, c.Name, nil)
		var re *azcore.ResponseError
		switch {
		case err == nil:
			if existing.Tags[tagAttachment] == nil || *existing.Tags[tagAttachment] != c.AttachmentID {
				return operation.Fail(api.CodeAzureNameConflict, fmt.Sprintf("a managed cluster named %q already exists in resource group %s and Berth did not create it for this compute: pick another name, or attach it with `berth compute attach aks`", c.Name, s.group))
			}
			r.Event("Managed cluster %s exists already (made by this operation): making sure it is as requested", c.Name)
		case errors.As(err, &re) && re.StatusCode == http.StatusNotFound && re.ErrorCode != "ResourceGroupNotFound":
		default:
			return failAzure(ctx, err, need{action: "read managed cluster " + c.Name, role: "Reader", scope: s.groupScope()})
		}
		// The settings as created: the defaults the request left out filled in.
		editSettings(c, func(set *Settings) {
			set.KubernetesVersion, set.AgentCount, set.VMSize, set.Location = s.version, &s.agents, s.vmSize, s.location
			set.CredentialMode = orScoped(set.CredentialMode)
		})
		editStatus(c, func(st *Status) { st.VMSize = s.vmSize })
		if err := r.Store.UpdateCompute(ctx, c); err != nil {
			return err
		}
		p.warnPreview(ctx, r, az, s.location, s.version)
		poller, err := az.clusters.BeginCreateOrUpdate(ctx, s.group, c.Name, managedCluster(c, s), nil)
		if err != nil {
			return failAzure(ctx, err, scope)
		}
		if err := r.Remember(ctx, "created", "yes"); err != nil {
			return err
		}
		r.Event("Creating AKS cluster %s in %s: %d × %s, Kubernetes %s (Azure takes about 10 minutes)", c.Name, s.location, s.agents, s.vmSize, s.version)
		if token, err = poller.ResumeToken(); err == nil {
			if err := r.Remember(ctx, "createToken", token); err != nil {
				return err
			}
		}
		return p.follow(ctx, r, poller, "Creating AKS cluster "+c.Name, scope)
	}
	poller, err := az.clusters.BeginCreateOrUpdate(ctx, s.group, c.Name, armcontainerservice.ManagedCluster{},
		&armcontainerservice.ManagedClustersClientBeginCreateOrUpdateOptions{ResumeToken: token})
	if err != nil {
		return failAzure(ctx, err, scope)
	}
	r.Event("Resuming: following the creation of AKS cluster %s", c.Name)
	return p.follow(ctx, r, poller, "Creating AKS cluster "+c.Name, scope)
}

// rememberResume keeps a new poller's resume token under key, so that the
// step run again follows the same Azure operation (a poller that gives no
// token is followed to its end without one).
func rememberResume[T any](ctx context.Context, r *operation.Run, poller *runtime.Poller[T], key string) error {
	if tok, err := poller.ResumeToken(); err == nil {
		return r.Remember(ctx, key, tok)
	}
	return nil
}

// follow polls a long-running Azure operation to its end, with a progress
// event per poll.
func follow[T any](ctx context.Context, p *Provider, r *operation.Run, poller *runtime.Poller[T], what string, n need) (T, error) {
	start := time.Now()
	for !poller.Done() {
		resp, err := poller.Poll(ctx)
		if err != nil {
			var zero T
			return zero, failAzure(ctx, err, n)
		}
		if poller.Done() {
			break
		}
		r.Event("%s: %s (%s elapsed)", what, lroStatus(resp), time.Since(start).Round(time.Second))
		select {
		case <-ctx.Done():
			var zero T
			return zero, ctx.Err()
		case <-time.After(p.poll()):
		}
	}
	res, err := poller.Result(ctx)
	if err != nil {
		return res, failAzure(ctx, err, n)
	}
	r.Event("%s: done (%s)", what, time.Since(start).Round(time.Second))
	return res, nil
}

// follow polls a create to its end and reports how the new cluster's API
// server is reached.
func (p *Provider) follow(ctx context.Context, r *operation.Run, poller *runtime.Poller[armcontainerservice.ManagedClustersClientCreateOrUpdateResponse], what string, n need) error {
	res, err := follow(ctx, p, r, poller, what, n)
	if err != nil {
		return err
	}
	if res.Properties != nil && res.Properties.ProvisioningState != nil && *res.Properties.ProvisioningState != "Succeeded" {
		return operation.Fail(api.CodeAzureProvisioningFailed, fmt.Sprintf("Azure reports managed cluster provisioning state %s", *res.Properties.ProvisioningState))
	}
	_, ws, err := loadWithWorkspace(ctx, r)
	if err != nil {
		return err
	}
	accessOf(&res.ManagedCluster).report(r, ws)
	return nil
}

// warnPreview warns of a preview Kubernetes version: it works, as in the
// reference, but Azure does not support it for production.
func (p *Provider) warnPreview(ctx context.Context, r *operation.Run, az *clients, location, version string) {
	version = strings.TrimPrefix(version, "v")
	if vl, err := p.versionsIn(ctx, az, location); err == nil && version != "" && isPreviewIn(vl, version) {
		r.Warn("Kubernetes %s is a preview version in %s: it works, but Azure does not support preview versions for production workloads", version, location)
	}
}

// lroStatus is the status of a polling response ("InProgress", …).
func lroStatus(resp *http.Response) string {
	if resp == nil || resp.Body == nil {
		return "in progress"
	}
	b, _ := runtime.Payload(resp) // cached by the SDK, so reading it here takes nothing from the poller
	var v struct {
		Status     string `json:"status"`
		Properties struct {
			ProvisioningState string `json:"provisioningState"`
		} `json:"properties"`
	}
	if json.Unmarshal(b, &v) != nil {
		return "in progress"
	}
	return cmp.Or(v.Status, v.Properties.ProvisioningState, "in progress")
}

// stepCredentials fetches the cluster's kubeconfig through the managed
// cluster's credentials API and stores it (sealed) as the compute's
// credentials; the install path takes it from there.
func (p *Provider) stepCredentials(ctx context.Context, r *operation.Run) error {
	if r.Recall("kubeconfig") != "" {
		return nil // done before a restart; the install path may have replaced it
	}
	c, az, err := p.loadAzure(ctx, r)
	if err != nil {
		return err
	}
	group, name := statusOf(c).ResourceGroup, statusOf(c).ClusterName
	resp, err := az.clusters.ListClusterAdminCredentials(ctx, group, name, nil)
	if err != nil {
		return failAzure(ctx, err, need{action: "get the admin credentials of managed cluster " + name, role: "Azure Kubernetes Service Cluster Admin Role", scope: p.clusterScope(c)})
	}
	var kc []byte
	for _, k := range resp.Kubeconfigs {
		if k != nil && len(k.Value) > 0 {
			kc = k.Value
			break
		}
	}
	if kc == nil {
		return operation.Fail(api.CodeNoKubeconfig, fmt.Sprintf("Azure returned no kubeconfig for managed cluster %s", name))
	}
	if _, _, err := kubeconn.Parse(kc, ""); err != nil {
		return operation.Fail(api.CodeInvalidKubeconfig, fmt.Sprintf("the kubeconfig Azure returned for %s does not work: %v", name, err))
	}
	c.Secrets = map[string]string{"credentials": string(kc)}
	if err := r.Store.UpdateCompute(ctx, c); err != nil {
		return err
	}
	r.Event("Got the cluster's kubeconfig from Azure (stored encrypted)")
	return r.Remember(ctx, "kubeconfig", "yes")
}

// stepFind looks the attached cluster up and records where it is.
func (p *Provider) stepFind(ctx context.Context, r *operation.Run) error {
	c, ws, err := loadWithWorkspace(ctx, r)
	if err != nil {
		return err
	}
	req, err := operation.Params[api.ComputeRequest](r)
	if err != nil {
		return err
	}
	ref, d := p.parseAttach(ws, &req)
	if len(d) > 0 {
		return operation.Fail(api.CodeInvalidRequest, d[0].Message, d...)
	}
	editStatus(c, func(st *Status) {
		st.SubscriptionID, st.AzureCredential = ref.subscription, ws.Settings.AzureCredential
	})
	az, err := p.azure(c)
	if err != nil {
		return err
	}
	mc, err := az.clusters.Get(ctx, ref.group, ref.name, nil)
	if err != nil {
		return failAzure(ctx, err, need{action: "read managed cluster " + ref.name, role: "Reader", scope: ref.id()})
	}
	location := strings.ToLower(deref(mc.Location))
	acc := accessOf(&mc.ManagedCluster)
	editStatus(c, func(st *Status) {
		st.ResourceID, st.ResourceGroup, st.ClusterName, st.Location = ref.id(), ref.group, ref.name, location
		st.AuthorizedIPRanges, st.PrivateCluster, st.PrivateFQDN = acc.ranges, acc.private, acc.privateFQDN
		st.DNSZone = location + ".cloudapp.azure.com"
		if c.LoadBalancerType != api.LoadBalancerInternal && st.DNSLabel == "" {
			st.DNSLabel = dnsLabel(c)
		}
		st.VMSize = vmSize(&mc.ManagedCluster)
	})
	if err := r.Store.UpdateCompute(ctx, c); err != nil {
		return err
	}
	r.Event("Found AKS cluster %s in resource group %s (%s, Kubernetes %s)", ref.name, ref.group, location, clusterVersion(&mc.ManagedCluster))
	if ws.Region != "" && ws.Region != "local" && ws.Region != location {
		r.Warn("The cluster is in %s, the workspace's region is %s: expect more latency and cost between them", location, ws.Region)
	}
	p.warnPreview(ctx, r, az, location, clusterVersion(&mc.ManagedCluster))
	acc.report(r, ws)
	if d := acc.problems(ws, ref); len(d) > 0 {
		return operation.Fail(api.CodeControlPlaneNotAuthorized, d[0].Message, d...)
	}
	return nil
}

// stepLabelForUpdate gives a front end switched to a public load balancer
// the DNS label it did not have behind an internal one.
func (p *Provider) stepLabelForUpdate(ctx context.Context, r *operation.Run) error {
	c, err := kubernetes.Load(ctx, r)
	if err != nil {
		return err
	}
	req, err := operation.Params[api.ComputeUpdateRequest](r)
	if err != nil {
		return err
	}
	if st := statusOf(c); req.LoadBalancerType != api.LoadBalancerPublicIP || st.DNSLabel != "" || st.DNSZone == "" {
		return nil
	}
	editStatus(c, func(st *Status) { st.DNSLabel = dnsLabel(c) })
	return r.Store.UpdateCompute(ctx, c)
}

// stepEndpointName records the front end's DNS name, which the DNS label
// on its public IP gives it.
func (p *Provider) stepEndpointName(ctx context.Context, r *operation.Run) error {
	c, err := kubernetes.Load(ctx, r)
	if err != nil {
		return err
	}
	st := statusOf(c)
	label, lbType := st.DNSLabel, c.LoadBalancerType
	if r.Op.Kind == api.OpUpdate {
		// The compute takes the update's values when the operation ends.
		if req, err := operation.Params[api.ComputeUpdateRequest](r); err == nil && req.LoadBalancerType != "" {
			lbType = req.LoadBalancerType
		}
	}
	if lbType == api.LoadBalancerInternal || label == "" {
		if st.FQDN != "" {
			editStatus(c, func(st *Status) { st.FQDN = "" })
			return r.Store.UpdateCompute(ctx, c)
		}
		return nil
	}
	fqdn := label + "." + st.DNSZone
	editStatus(c, func(st *Status) { st.FQDN = fqdn })
	if c.SSLConfiguration.Status == api.SSLAuto {
		c.SSLConfiguration.FQDN = fqdn
	}
	if err := r.Store.UpdateCompute(ctx, c); err != nil {
		return err
	}
	r.Event("The front end's public IP has DNS label %s: its name is %s", label, fqdn)
	return nil
}

// stepRemoveComponents removes Berth's objects before the cluster goes;
// an unreachable cluster is deleted with them.
func (p *Provider) stepRemoveComponents(ctx context.Context, r *operation.Run) error {
	steps := p.Kube.Steps(api.OpDetach, nil)
	if err := steps[0].Run(ctx, r); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		r.Warn("Cannot check the cluster before deleting it (%v): deleting it with whatever Berth installed", err)
		return r.Remember(ctx, "skip", "unreachable")
	}
	return steps[1].Run(ctx, r)
}

func (p *Provider) stepDeleteCluster(ctx context.Context, r *operation.Run) error {
	c, az, err := p.loadAzure(ctx, r)
	if err != nil {
		return err
	}
	group, name := statusOf(c).ResourceGroup, statusOf(c).ClusterName
	if group == "" || name == "" {
		r.Event("The create never reached Azure: there is no AKS cluster to delete")
		return nil
	}
	n := need{action: "delete managed cluster " + name, role: "Contributor", scope: p.clusterScope(c)}
	var opts *armcontainerservice.ManagedClustersClientBeginDeleteOptions
	if tok := r.Recall("deleteToken"); tok != "" {
		opts = &armcontainerservice.ManagedClustersClientBeginDeleteOptions{ResumeToken: tok}
	}
	poller, err := az.clusters.BeginDelete(ctx, group, name, opts)
	if re, ok := errors.AsType[*azcore.ResponseError](err); ok && re.StatusCode == http.StatusNotFound {
		r.Event("AKS cluster %s is already gone", name)
		return nil
	}
	if err != nil {
		return failAzure(ctx, err, n)
	}
	if opts == nil {
		if err := rememberResume(ctx, r, poller, "deleteToken"); err != nil {
			return err
		}
	}
	r.Event("Deleting AKS cluster %s in resource group %s", name, group)
	_, err = follow(ctx, p, r, poller, "Deleting AKS cluster "+name, n)
	return err
}

func (p *Provider) stepScale(ctx context.Context, r *operation.Run) error {
	req, err := operation.Params[api.ScaleRequest](r)
	if err != nil {
		return err
	}
	c, az, err := p.loadAzure(ctx, r)
	if err != nil {
		return err
	}
	st := statusOf(c)
	group, name, pool := st.ResourceGroup, st.ClusterName, st.AgentPoolName
	pool = cmp.Or(pool, DefaultAgentPoolName)
	n := need{action: "scale agent pool " + pool + " of managed cluster " + name, role: "Azure Kubernetes Service Contributor Role", scope: p.clusterScope(c)}
	var opts *armcontainerservice.AgentPoolsClientBeginCreateOrUpdateOptions
	var params armcontainerservice.AgentPool
	if tok := r.Recall("scaleToken"); tok != "" {
		opts = &armcontainerservice.AgentPoolsClientBeginCreateOrUpdateOptions{ResumeToken: tok}
	} else {
		cur, err := az.pools.Get(ctx, group, name, pool, nil)
		if err != nil {
			return failAzure(ctx, err, need{action: "read agent pool " + pool + " of managed cluster " + name, role: "Reader", scope: p.clusterScope(c)})
		}
		params = cur.AgentPool
		params.Properties = cmp.Or(params.Properties, &armcontainerservice.ManagedClusterAgentPoolProfileProperties{})
		r.Event("Scaling agent pool %s of %s from %d to %d nodes", pool, name, deref(params.Properties.Count), req.NodeCount)
		params.Properties.Count = to.Ptr(int32(req.NodeCount))
	}
	poller, err := az.pools.BeginCreateOrUpdate(ctx, group, name, pool, params, opts)
	if err != nil {
		return failAzure(ctx, err, n)
	}
	if opts == nil {
		if err := rememberResume(ctx, r, poller, "scaleToken"); err != nil {
			return err
		}
	}
	if _, err := follow(ctx, p, r, poller, "Scaling agent pool "+pool, n); err != nil {
		return err
	}
	c, err = kubernetes.Load(ctx, r)
	if err != nil {
		return err
	}
	editSettings(c, func(set *Settings) { set.AgentCount = &req.NodeCount })
	return r.Store.UpdateCompute(ctx, c)
}
