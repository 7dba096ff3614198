package aks

// FakeAzure is Azure for tests: the SDK's own fake servers
// (armcontainerservice/v6/fake and the fakes of the compute, subscriptions
// and network modules) behind one transport, so the real SDK clients run —
// request building, the retry policy, long-running operation polling and
// error parsing — against in-memory state. It is exported to this
// package's external tests only (it lives in a _test file).

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	azfake "github.com/Azure/azure-sdk-for-go/sdk/azcore/fake"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/compute/armcompute/v7"
	computefake "github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/compute/armcompute/v7/fake"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/containerservice/armcontainerservice/v6"
	csfake "github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/containerservice/armcontainerservice/v6/fake"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/network/armnetwork/v7"
	netfake "github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/network/armnetwork/v7/fake"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/resources/armsubscriptions"
	subsfake "github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/resources/armsubscriptions/fake"
)

// FakeSubscription is the subscription the fake serves.
const FakeSubscription = "00000000-0000-0000-0000-00000000b0b0"

// FakeAzure holds the fake's state. Its fields may be changed by a test
// between calls (under Mu when operations run).
type FakeAzure struct {
	Mu sync.Mutex
	// Clusters by resource group/name.
	Clusters map[string]*armcontainerservice.ManagedCluster
	// Pools are node counts by resource group/cluster.
	Pools map[string]int32
	// Kubeconfig is what the credentials API returns for every cluster but
	// those in Kubeconfigs (by resource group/name).
	Kubeconfig  []byte
	Kubeconfigs map[string][]byte
	// CreatePolls is how many times a create answers "in progress" first.
	CreatePolls int
	// CreateFailure, when set, makes creation fail at its end with this
	// error code and status (mid-poll, after CreatePolls polls).
	CreateFailure     string
	CreateFailureCode int
	// PollError, when set, breaks the create's second poll.
	PollError error
	// OnScale runs when a scale completes (a test adds simulated nodes).
	OnScale func(count int32)
	// Inject, when it returns a response, answers a request instead of the
	// fake servers (Azure's error bodies, 429 with Retry-After).
	Inject func(req *http.Request) *http.Response
	// Requests logs "METHOD path" of every request the SDK sent.
	Requests []string

	cs   csfake.ServerFactory
	skus computefake.ResourceSKUsServer
	subs subsfake.ServerFactory
	nets netfake.SubnetsServer
}

// NewFakeAzure makes a fake Azure with locations westus2, eastus and
// westeurope, a few VM sizes, Kubernetes 1.32 (unsupported by Berth), 1.36,
// 1.37 (default) and 1.38 (preview), and subnet vnet-rg/vnet/aks-subnet
// (10.1.0.0/16).
func NewFakeAzure() *FakeAzure {
	f := &FakeAzure{Clusters: map[string]*armcontainerservice.ManagedCluster{}, Pools: map[string]int32{}, Kubeconfigs: map[string][]byte{}, CreatePolls: 2}
	f.subs.Server.NewListLocationsPager = func(sub string, _ *armsubscriptions.ClientListLocationsOptions) (resp azfake.PagerResponder[armsubscriptions.ClientListLocationsResponse]) {
		var page armsubscriptions.ClientListLocationsResponse
		for _, l := range []string{"westus2", "eastus", "westeurope"} {
			page.Value = append(page.Value, &armsubscriptions.Location{Name: to.Ptr(l)})
		}
		resp.AddPage(http.StatusOK, page, nil)
		return
	}
	f.skus.NewListPager = func(opts *armcompute.ResourceSKUsClientListOptions) (resp azfake.PagerResponder[armcompute.ResourceSKUsClientListResponse]) {
		loc := "westus2"
		if opts != nil && opts.Filter != nil {
			loc = strings.Trim(strings.TrimPrefix(*opts.Filter, "location eq "), "'")
		}
		sku := func(name string, cores int, restricted bool) *armcompute.ResourceSKU {
			s := &armcompute.ResourceSKU{Name: to.Ptr(name), ResourceType: to.Ptr("virtualMachines"), Locations: []*string{to.Ptr(loc)},
				Capabilities: []*armcompute.ResourceSKUCapabilities{{Name: to.Ptr("vCPUs"), Value: to.Ptr(fmt.Sprint(cores))}}}
			if restricted {
				s.Restrictions = []*armcompute.ResourceSKURestrictions{{Type: to.Ptr(armcompute.ResourceSKURestrictionsTypeLocation)}}
			}
			return s
		}
		var page armcompute.ResourceSKUsClientListResponse
		page.Value = []*armcompute.ResourceSKU{sku("Standard_D3_v2", 4, false), sku("Standard_D2_v2", 2, false), sku("Standard_DS1_v2", 1, false),
			sku("Standard_NC6s_v3", 6, true), {Name: to.Ptr("Standard_LRS"), ResourceType: to.Ptr("disks")}}
		resp.AddPage(http.StatusOK, page, nil)
		return
	}
	f.cs.ManagedClustersServer.ListKubernetesVersions = func(_ context.Context, location string, _ *armcontainerservice.ManagedClustersClientListKubernetesVersionsOptions) (resp azfake.Responder[armcontainerservice.ManagedClustersClientListKubernetesVersionsResponse], errResp azfake.ErrorResponder) {
		if location != "westus2" && location != "eastus" && location != "westeurope" {
			errResp.SetResponseError(http.StatusNotFound, "NoRegisteredProviderFound")
			return
		}
		patch := func(ups ...string) *armcontainerservice.KubernetesPatchVersion {
			p := &armcontainerservice.KubernetesPatchVersion{Upgrades: []*string{}}
			for _, u := range ups {
				p.Upgrades = append(p.Upgrades, to.Ptr(u))
			}
			return p
		}
		var r armcontainerservice.ManagedClustersClientListKubernetesVersionsResponse
		r.Values = []*armcontainerservice.KubernetesVersion{
			{Version: to.Ptr("1.32"), PatchVersions: map[string]*armcontainerservice.KubernetesPatchVersion{"1.32.9": patch("1.36.3")}},
			{Version: to.Ptr("1.36"), PatchVersions: map[string]*armcontainerservice.KubernetesPatchVersion{"1.36.2": patch("1.36.3", "1.37.2"), "1.36.3": patch("1.37.2")}},
			{Version: to.Ptr("1.37"), IsDefault: to.Ptr(true), PatchVersions: map[string]*armcontainerservice.KubernetesPatchVersion{"1.37.2": patch("1.38.0")}},
			{Version: to.Ptr("1.38"), IsPreview: to.Ptr(true), PatchVersions: map[string]*armcontainerservice.KubernetesPatchVersion{"1.38.0": patch()}},
		}
		resp.SetResponse(http.StatusOK, r, nil)
		return
	}
	f.cs.ManagedClustersServer.Get = func(_ context.Context, group, name string, _ *armcontainerservice.ManagedClustersClientGetOptions) (resp azfake.Responder[armcontainerservice.ManagedClustersClientGetResponse], errResp azfake.ErrorResponder) {
		f.Mu.Lock()
		defer f.Mu.Unlock()
		mc, ok := f.cluster(group, name, &errResp)
		if !ok {
			return
		}
		resp.SetResponse(http.StatusOK, armcontainerservice.ManagedClustersClientGetResponse{ManagedCluster: *mc}, nil)
		return
	}
	f.cs.ManagedClustersServer.BeginCreateOrUpdate = func(_ context.Context, group, name string, mc armcontainerservice.ManagedCluster, _ *armcontainerservice.ManagedClustersClientBeginCreateOrUpdateOptions) (resp azfake.PollerResponder[armcontainerservice.ManagedClustersClientCreateOrUpdateResponse], errResp azfake.ErrorResponder) {
		f.Mu.Lock()
		defer f.Mu.Unlock()
		mc.ID = to.Ptr(fmt.Sprintf("/subscriptions/%s/resourceGroups/%s/providers/Microsoft.ContainerService/managedClusters/%s", FakeSubscription, group, name))
		mc.Name = to.Ptr(name)
		if mc.Properties.KubernetesVersion != nil {
			mc.Properties.CurrentKubernetesVersion = mc.Properties.KubernetesVersion
		}
		for i := 0; i < f.CreatePolls; i++ {
			resp.AddNonTerminalResponse(http.StatusCreated, nil)
			if i == 0 && f.PollError != nil {
				resp.AddPollingError(f.PollError)
			}
		}
		if f.CreateFailure != "" {
			mc.Properties.ProvisioningState = to.Ptr("Failed")
			f.Clusters[group+"/"+name] = &mc
			resp.SetTerminalError(f.CreateFailureCode, f.CreateFailure)
			return
		}
		mc.Properties.ProvisioningState = to.Ptr("Succeeded")
		f.Clusters[group+"/"+name] = &mc
		f.Pools[group+"/"+name] = *mc.Properties.AgentPoolProfiles[0].Count
		resp.SetTerminalResponse(http.StatusOK, armcontainerservice.ManagedClustersClientCreateOrUpdateResponse{ManagedCluster: mc}, nil)
		return
	}
	f.cs.ManagedClustersServer.BeginDelete = func(_ context.Context, group, name string, _ *armcontainerservice.ManagedClustersClientBeginDeleteOptions) (resp azfake.PollerResponder[armcontainerservice.ManagedClustersClientDeleteResponse], errResp azfake.ErrorResponder) {
		f.Mu.Lock()
		defer f.Mu.Unlock()
		if _, ok := f.cluster(group, name, &errResp); !ok {
			return
		}
		delete(f.Clusters, group+"/"+name)
		resp.AddNonTerminalResponse(http.StatusAccepted, nil)
		resp.SetTerminalResponse(http.StatusOK, armcontainerservice.ManagedClustersClientDeleteResponse{}, nil)
		return
	}
	f.cs.ManagedClustersServer.ListClusterAdminCredentials = func(_ context.Context, group, name string, _ *armcontainerservice.ManagedClustersClientListClusterAdminCredentialsOptions) (resp azfake.Responder[armcontainerservice.ManagedClustersClientListClusterAdminCredentialsResponse], errResp azfake.ErrorResponder) {
		f.Mu.Lock()
		defer f.Mu.Unlock()
		if _, ok := f.cluster(group, name, &errResp); !ok {
			return
		}
		kc := f.Kubeconfig
		if own, ok := f.Kubeconfigs[group+"/"+name]; ok {
			kc = own
		}
		resp.SetResponse(http.StatusOK, armcontainerservice.ManagedClustersClientListClusterAdminCredentialsResponse{CredentialResults: armcontainerservice.CredentialResults{
			Kubeconfigs: []*armcontainerservice.CredentialResult{{Name: to.Ptr("clusterAdmin"), Value: kc}}}}, nil)
		return
	}
	f.cs.AgentPoolsServer.Get = func(_ context.Context, group, cluster, pool string, _ *armcontainerservice.AgentPoolsClientGetOptions) (resp azfake.Responder[armcontainerservice.AgentPoolsClientGetResponse], errResp azfake.ErrorResponder) {
		f.Mu.Lock()
		defer f.Mu.Unlock()
		n, ok := f.Pools[group+"/"+cluster]
		if !ok || pool != DefaultAgentPoolName {
			errResp.SetResponseError(http.StatusNotFound, "ResourceNotFound")
			return
		}
		resp.SetResponse(http.StatusOK, armcontainerservice.AgentPoolsClientGetResponse{AgentPool: armcontainerservice.AgentPool{Name: to.Ptr(pool),
			Properties: &armcontainerservice.ManagedClusterAgentPoolProfileProperties{Count: to.Ptr(n), VMSize: to.Ptr("Standard_D3_v2")}}}, nil)
		return
	}
	f.cs.AgentPoolsServer.BeginCreateOrUpdate = func(_ context.Context, group, cluster, pool string, ap armcontainerservice.AgentPool, _ *armcontainerservice.AgentPoolsClientBeginCreateOrUpdateOptions) (resp azfake.PollerResponder[armcontainerservice.AgentPoolsClientCreateOrUpdateResponse], errResp azfake.ErrorResponder) {
		f.Mu.Lock()
		defer f.Mu.Unlock()
		f.Pools[group+"/"+cluster] = *ap.Properties.Count
		if f.OnScale != nil {
			f.OnScale(*ap.Properties.Count)
		}
		resp.AddNonTerminalResponse(http.StatusCreated, nil)
		resp.SetTerminalResponse(http.StatusOK, armcontainerservice.AgentPoolsClientCreateOrUpdateResponse{AgentPool: ap}, nil)
		return
	}
	f.nets.Get = func(_ context.Context, group, vnet, subnet string, _ *armnetwork.SubnetsClientGetOptions) (resp azfake.Responder[armnetwork.SubnetsClientGetResponse], errResp azfake.ErrorResponder) {
		if group != "vnet-rg" || vnet != "vnet" || subnet != "aks-subnet" {
			errResp.SetResponseError(http.StatusNotFound, "NotFound")
			return
		}
		resp.SetResponse(http.StatusOK, armnetwork.SubnetsClientGetResponse{Subnet: armnetwork.Subnet{Name: to.Ptr(subnet),
			Properties: &armnetwork.SubnetPropertiesFormat{AddressPrefix: to.Ptr("10.1.0.0/16")}}}, nil)
		return
	}
	return f
}

// cluster is a stored cluster; without one, errResp answers 404 as Azure
// does. f.Mu must be held.
func (f *FakeAzure) cluster(group, name string, errResp *azfake.ErrorResponder) (*armcontainerservice.ManagedCluster, bool) {
	mc, ok := f.Clusters[group+"/"+name]
	if !ok {
		errResp.SetResponseError(http.StatusNotFound, "ResourceNotFound")
	}
	return mc, ok
}

// AddCluster records an existing cluster (one Berth did not create).
func (f *FakeAzure) AddCluster(group, name, location, version string) string {
	f.Mu.Lock()
	defer f.Mu.Unlock()
	id := fmt.Sprintf("/subscriptions/%s/resourceGroups/%s/providers/Microsoft.ContainerService/managedClusters/%s", FakeSubscription, group, name)
	f.Clusters[group+"/"+name] = &armcontainerservice.ManagedCluster{ID: to.Ptr(id), Name: to.Ptr(name), Location: to.Ptr(location),
		Properties: &armcontainerservice.ManagedClusterProperties{CurrentKubernetesVersion: to.Ptr(version), ProvisioningState: to.Ptr("Succeeded"),
			AgentPoolProfiles: []*armcontainerservice.ManagedClusterAgentPoolProfile{{Name: to.Ptr(DefaultAgentPoolName), Count: to.Ptr(int32(3)), VMSize: to.Ptr("Standard_D3_v2")}}}}
	f.Pools[group+"/"+name] = 3
	return id
}

// SetAccess gives a cluster's API server authorized IP ranges, or makes it
// private with a private FQDN, and its own kubeconfig (nil: the default).
func (f *FakeAzure) SetAccess(group, name string, ranges []string, privateFQDN string, kubeconfig []byte) {
	f.Mu.Lock()
	defer f.Mu.Unlock()
	mc := f.Clusters[group+"/"+name]
	ap := &armcontainerservice.ManagedClusterAPIServerAccessProfile{EnablePrivateCluster: to.Ptr(privateFQDN != "")}
	for _, r := range ranges {
		ap.AuthorizedIPRanges = append(ap.AuthorizedIPRanges, to.Ptr(r))
	}
	mc.Properties.APIServerAccessProfile = ap
	if privateFQDN != "" {
		mc.Properties.PrivateFQDN = to.Ptr(privateFQDN)
	}
	if kubeconfig != nil {
		f.Kubeconfigs[group+"/"+name] = kubeconfig
	}
}

// Options are provider options that reach this fake: a fake credential,
// the fake transport, fast polling and quick retries.
func (f *FakeAzure) Options() Options {
	return Options{
		Credential: func(string) (azcore.TokenCredential, error) { return &azfake.TokenCredential{}, nil },
		ClientOptions: &arm.ClientOptions{ClientOptions: policy.ClientOptions{
			Transport: &router{f: f, cs: csfake.NewServerFactoryTransport(&f.cs), skus: computefake.NewResourceSKUsServerTransport(&f.skus),
				subs: subsfake.NewServerFactoryTransport(&f.subs), nets: netfake.NewSubnetsServerTransport(&f.nets)},
			Retry: policy.RetryOptions{MaxRetries: 2, RetryDelay: 10 * time.Millisecond, MaxRetryDelay: 2 * time.Second},
		}},
		DefaultSubscription: "",
		Poll:                10 * time.Millisecond,
	}
}

// Sent reports whether a request matching method and a path fragment was sent.
func (f *FakeAzure) Sent(method, pathPart string) bool {
	f.Mu.Lock()
	defer f.Mu.Unlock()
	for _, r := range f.Requests {
		if strings.HasPrefix(r, method+" ") && strings.Contains(strings.ToLower(r), strings.ToLower(pathPart)) {
			return true
		}
	}
	return false
}

// router sends each request to the fake server of its resource provider.
type router struct {
	f                    *FakeAzure
	cs, skus, subs, nets policy.Transporter
}

func (rt *router) Do(req *http.Request) (*http.Response, error) {
	rt.f.Mu.Lock()
	rt.f.Requests = append(rt.f.Requests, req.Method+" "+req.URL.Path)
	inject := rt.f.Inject
	rt.f.Mu.Unlock()
	if inject != nil {
		if resp := inject(req); resp != nil {
			return resp, nil
		}
	}
	p := strings.ToLower(req.URL.Path)
	switch {
	case strings.Contains(p, "/providers/microsoft.containerservice/"):
		return rt.cs.Do(req)
	case strings.Contains(p, "/providers/microsoft.compute/skus"):
		return rt.skus.Do(req)
	case strings.Contains(p, "/providers/microsoft.network/"):
		return rt.nets.Do(req)
	case strings.HasSuffix(p, "/locations"):
		return rt.subs.Do(req)
	}
	return &http.Response{StatusCode: http.StatusNotFound, Header: http.Header{}, Body: io.NopCloser(strings.NewReader(`{"error":{"code":"NotFound","message":"the fake has no such route"}}`)), Request: req}, nil
}

// AzureError is an error response as Azure sends it.
func AzureError(req *http.Request, status int, code, message string, header ...string) *http.Response {
	body := fmt.Sprintf(`{"error":{"code":%q,"message":%q}}`, code, message)
	h := http.Header{"Content-Type": {"application/json"}, "X-Ms-Error-Code": {code}}
	for i := 0; i+1 < len(header); i += 2 {
		h.Set(header[i], header[i+1])
	}
	return &http.Response{StatusCode: status, Status: fmt.Sprintf("%d %s", status, http.StatusText(status)), Header: h,
		Body: io.NopCloser(bytes.NewReader([]byte(body))), Request: req}
}
