package aks

import (
	"context"
	"encoding/json"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/berth-ml/berth/api"
	"github.com/berth-ml/berth/internal/preflight"
	"github.com/berth-ml/berth/internal/provider/kubernetes"
	"github.com/berth-ml/berth/internal/store"
)

func newTestProvider(f *FakeAzure) *Provider {
	return New(kubernetes.Provider{Versions: preflight.DefaultVersions}, f.Options())
}

func testWorkspace() *api.Workspace {
	return &api.Workspace{Name: "ml", Region: "westus2", Settings: api.WorkspaceSettings{AzureSubscriptionID: FakeSubscription, AzureResourceGroup: "berth-rg"}}
}

func createReq(props map[string]string) *api.ComputeRequest {
	return &api.ComputeRequest{Name: "aks1", Type: Type, Origin: api.OriginCreated, ClusterPurpose: api.PurposeFastProd,
		LoadBalancerType: api.LoadBalancerPublicIP, Settings: settingsJSON(props)}
}

var fullVNet = map[string]string{PropVNetResourceGroup: "vnet-rg", PropVNetName: "vnet", PropSubnetName: "aks-subnet",
	PropServiceCIDR: "10.0.0.0/16", PropDNSServiceIP: "10.0.0.10", PropDockerBridgeCIDR: "172.17.0.1/16"}

// Settings' JSON names, and the settings of a request in the form the
// CLI sends them (agentCount a number unless it is not one).
const (
	PropAgentCount        = "agentCount"
	PropVMSize            = "vmSize"
	PropLocation          = "location"
	PropKubernetesVersion = "kubernetesVersion"
	PropVNetResourceGroup = "vnetResourceGroupName"
	PropVNetName          = "vnetName"
	PropSubnetName        = "subnetName"
	PropServiceCIDR       = "serviceCidr"
	PropDNSServiceIP      = "dnsServiceIp"
	PropDockerBridgeCIDR  = "dockerBridgeCidr"
	PropResourceID        = "resourceId"
	PropResourceGroup     = "resourceGroup"
	PropClusterName       = "clusterName"
	PropCredentialMode    = "credentialMode"
	PropDNSLabel          = "dnsLabel"
	PropDNSZone           = "dnsZone"
)

func settingsJSON(props map[string]string) json.RawMessage {
	if props == nil {
		return nil
	}
	m := map[string]any{}
	for k, v := range props {
		m[k] = v
		if n, err := strconv.Atoi(v); err == nil && k == PropAgentCount {
			m[k] = n
		}
	}
	b, _ := json.Marshal(m)
	return b
}

func with(base map[string]string, kv ...string) map[string]string {
	out := map[string]string{}
	for k, v := range base {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "-" {
			delete(out, kv[i])
		} else {
			out[kv[i]] = kv[i+1]
		}
	}
	return out
}

// want is one expected problem: its code and a part of its message.
type want struct{ code, msg string }

func checkDetails(t *testing.T, got []api.ErrorDetail, wants []want) {
	t.Helper()
	if len(got) != len(wants) {
		t.Fatalf("got %d problems, want %d:\n%s", len(got), len(wants), show(got))
	}
	for i, w := range wants {
		if got[i].Code != w.code || !strings.Contains(got[i].Message, w.msg) {
			t.Errorf("problem %d = %s: %s\nwant %s containing %q", i, got[i].Code, got[i].Message, w.code, w.msg)
		}
	}
}

func show(d []api.ErrorDetail) string {
	var b strings.Builder
	for _, x := range d {
		b.WriteString("  " + x.Code + ": " + x.Message + "\n")
	}
	return b.String()
}

// TestValidateCreate pins every create rule and its message; problems of
// one request come together.
func TestValidateCreate(t *testing.T) {
	f := NewFakeAzure()
	f.AddCluster("berth-rg", "taken", "westus2", "1.37.2")
	p := newTestProvider(f)
	cases := []struct {
		name    string
		props   map[string]string
		purpose string
		edit    func(r *api.ComputeRequest, ws *api.Workspace)
		want    []want
	}{
		{name: "defaults: 3 × Standard_D3_v2 in the workspace's region", props: nil},
		{name: "agent count zero", props: map[string]string{PropAgentCount: "0"},
			want: []want{{"InvalidAgentCount", `settings.agentCount must be a positive integer (got 0)`}}},
		{name: "agent count not a number", props: map[string]string{PropAgentCount: "three"},
			want: []want{{"InvalidValue", `settings.agentCount must be an integer, not a JSON string`}}},
		{name: "FastProd needs 3 agents and 12 vCPUs, reported together", props: map[string]string{PropAgentCount: "2"},
			want: []want{{"InsufficientAgents", "cluster purpose FastProd needs at least 3 agents (got 2)"},
				{"InsufficientCapacity", "needs at least 12 vCPUs; 2 × Standard_D3_v2 is 8 vCPUs (4 each)"}}},
		{name: "FastProd vCPUs from Azure's SKU list", props: map[string]string{PropVMSize: "Standard_D2_v2"},
			want: []want{{"InsufficientCapacity", "cluster purpose FastProd needs at least 12 vCPUs; 3 × Standard_D2_v2 is 6 vCPUs (2 each)"}}},
		{name: "DevTest needs 2 vCPUs", purpose: api.PurposeDevTest, props: map[string]string{PropAgentCount: "1", PropVMSize: "Standard_DS1_v2"},
			want: []want{{"InsufficientCapacity", "cluster purpose DevTest needs at least 2 vCPUs; 1 × Standard_DS1_v2 is 1 vCPUs"}}},
		{name: "DevTest with one 2-vCPU agent", purpose: api.PurposeDevTest, props: map[string]string{PropAgentCount: "1", PropVMSize: "Standard_D2_v2"}},
		{name: "VM size Azure does not offer", props: map[string]string{PropVMSize: "Standard_Bogus"},
			want: []want{{"UnknownVMSize", `VM size "Standard_Bogus" is not offered in location westus2`}}},
		{name: "VM size restricted for the subscription", props: map[string]string{PropVMSize: "Standard_NC6s_v3"},
			want: []want{{"UnknownVMSize", `VM size "Standard_NC6s_v3" is not offered in location westus2`}}},
		{name: "custom VNet, all six", props: fullVNet},
		{name: "custom VNet, some missing", props: map[string]string{PropVNetName: "vnet", PropServiceCIDR: "10.0.0.0/16"},
			want: []want{{"IncompleteVNet", "or none; missing: settings.vnetResourceGroupName, settings.subnetName, settings.dnsServiceIp, settings.dockerBridgeCidr"}}},
		{name: "service CIDR malformed", props: with(fullVNet, PropServiceCIDR, "10.0.0.0/33"),
			want: []want{{"InvalidCIDR", `settings.serviceCidr "10.0.0.0/33" is not a well-formed IPv4 CIDR block`}}},
		{name: "service CIDR with host bits", props: with(fullVNet, PropServiceCIDR, "10.0.0.1/16"),
			want: []want{{"InvalidCIDR", `settings.serviceCidr "10.0.0.1/16" is not a well-formed IPv4 CIDR block with no host bits set`}}},
		{name: "DNS service IP malformed", props: with(fullVNet, PropDNSServiceIP, "10.0.0"),
			want: []want{{"InvalidIP", `settings.dnsServiceIp "10.0.0" is not an IPv4 address`}}},
		{name: "docker bridge CIDR malformed", props: with(fullVNet, PropDockerBridgeCIDR, "172.17.0.1"),
			want: []want{{"InvalidCIDR", `settings.dockerBridgeCidr "172.17.0.1" is not a well-formed IPv4 CIDR`}}},
		{name: "DNS service IP outside the service CIDR", props: with(fullVNet, PropDNSServiceIP, "10.2.0.10"),
			want: []want{{"DNSServiceIPOutsideServiceCIDR", "settings.dnsServiceIp 10.2.0.10 is not inside settings.serviceCidr 10.0.0.0/16"}}},
		{name: "service CIDR overlaps the docker bridge", props: with(fullVNet, PropServiceCIDR, "172.17.0.0/16", PropDNSServiceIP, "172.17.0.10"),
			want: []want{{"CIDROverlap", "settings.serviceCidr 172.17.0.0/16 overlaps settings.dockerBridgeCidr 172.17.0.1/16"}}},
		{name: "service CIDR overlaps the subnet", props: with(fullVNet, PropServiceCIDR, "10.1.0.0/20", PropDNSServiceIP, "10.1.0.10"),
			want: []want{{"CIDROverlap", "settings.serviceCidr 10.1.0.0/20 overlaps subnet aks-subnet (10.1.0.0/16)"}}},
		{name: "subnet does not exist", props: with(fullVNet, PropSubnetName, "nope"),
			want: []want{{"AzureResourceNotFound", "cannot read subnet nope of virtual network vnet"}}},
		{name: "unknown location", props: map[string]string{PropLocation: "mars"},
			want: []want{{"UnknownLocation", `location "mars" is not an Azure location of subscription ` + FakeSubscription + "; known: eastus, westeurope, westus2"}}},
		{name: "no location and a workspace without a region", edit: func(_ *api.ComputeRequest, ws *api.Workspace) { ws.Region = "local" },
			want: []want{{"LocationRequired", `give settings.location: workspace "ml" has no Azure region to default to`}}},
		{name: "another location than the workspace's", props: map[string]string{PropLocation: "eastus"}},
		{name: "version Berth does not support", props: map[string]string{PropKubernetesVersion: "1.32.9"},
			want: []want{{"UnsupportedKubernetesVersion", "Kubernetes version 1.32.9 is not supported by Berth: supported versions are between 1.33 - 1.37"}}},
		{name: "version not available in the location", props: map[string]string{PropKubernetesVersion: "1.35"},
			want: []want{{"KubernetesVersionNotAvailable", "Kubernetes version 1.35 is not available in westus2; available: 1.32, 1.36, 1.37, 1.38"}}},
		{name: "available patch version", props: map[string]string{PropKubernetesVersion: "1.36.2"}},
		{name: "name taken in the resource group", edit: func(r *api.ComputeRequest, _ *api.Workspace) { r.Name = "taken" },
			want: []want{{"AzureNameConflict", `a managed cluster named "taken" already exists in resource group berth-rg`}}},
		{name: "workspace without subscription or resource group", edit: func(_ *api.ComputeRequest, ws *api.Workspace) { ws.Settings = api.WorkspaceSettings{} },
			want: []want{{"AzureSubscriptionRequired", `workspace "ml" has no Azure subscription`}, {"AzureResourceGroupRequired", "has no Azure resource group for the clusters it creates"}}},
		{name: "unknown credential choice", edit: func(_ *api.ComputeRequest, ws *api.Workspace) { ws.Settings.AzureCredential = "password" },
			want: []want{{"InvalidValue", `has Azure credential "password", which is not known: use one of default, environment, workload-identity, managed-identity, azure-cli`}}},
		{name: "unknown property", props: map[string]string{"nodeSize": "big"},
			want: []want{{"InvalidProperty", `settings.nodeSize is not a setting of this compute type`}}},
		{name: "bad credential mode", props: map[string]string{PropCredentialMode: "admin"},
			want: []want{{"InvalidValue", `settings.credentialMode "admin" is not valid`}}},
		{name: "a kubeconfig is not taken", edit: func(r *api.ComputeRequest, _ *api.Workspace) { r.Credentials = "apiVersion: v1" },
			want: []want{{"InvalidValue", "an aks compute takes no kubeconfig"}}},
		{name: "internal subnet other than the cluster's own needs a custom VNet", edit: func(r *api.ComputeRequest, _ *api.Workspace) {
			r.LoadBalancerType, r.LoadBalancerSubnet = api.LoadBalancerInternal, "other"
		}, want: []want{{"InvalidValue", `loadBalancerSubnet "other" needs a custom virtual network`}}},
		{name: "internal with a custom VNet", props: fullVNet, edit: func(r *api.ComputeRequest, _ *api.Workspace) {
			r.LoadBalancerType, r.LoadBalancerSubnet = api.LoadBalancerInternal, "ilb-subnet"
		}},
		{name: "every problem at once", props: map[string]string{PropAgentCount: "0", PropVNetName: "vnet", PropLocation: "mars", PropKubernetesVersion: "1.20"},
			want: []want{{"InvalidAgentCount", "settings.agentCount"}, {"UnsupportedKubernetesVersion", "1.20"},
				{"IncompleteVNet", "missing"}, {"UnknownLocation", "mars"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ws, req := testWorkspace(), createReq(tc.props)
			if tc.purpose != "" {
				req.ClusterPurpose = tc.purpose
			}
			if tc.edit != nil {
				tc.edit(req, ws)
			}
			checkDetails(t, p.Validate(context.Background(), ws, req), tc.want)
		})
	}
}

// TestValidateCreateMakesNoChange: validation only reads.
func TestValidateCreateMakesNoChange(t *testing.T) {
	f := NewFakeAzure()
	p := newTestProvider(f)
	p.Validate(context.Background(), testWorkspace(), createReq(fullVNet))
	for _, r := range f.Requests {
		if !strings.HasPrefix(r, "GET ") {
			t.Errorf("validation sent %s", r)
		}
	}
	if !f.Sent("GET", "/locations") || !f.Sent("GET", "Microsoft.Compute/skus") || !f.Sent("GET", "kubernetesVersions") || !f.Sent("GET", "subnets/aks-subnet") {
		t.Errorf("validation did not ask Azure for locations, VM sizes, versions and the subnet: %v", f.Requests)
	}
}

// TestVMSizesCachedWithBuiltinFallback: the SKU list is read once per
// location; when it cannot be read, the built-in table answers for common
// sizes and an unknown size says why it cannot be checked.
func TestVMSizesCachedWithBuiltinFallback(t *testing.T) {
	f := NewFakeAzure()
	p := newTestProvider(f)
	ws := testWorkspace()
	p.Validate(context.Background(), ws, createReq(nil))
	p.Validate(context.Background(), ws, createReq(nil))
	n := 0
	for _, r := range f.Requests {
		if strings.Contains(r, "Microsoft.Compute/skus") {
			n++
		}
	}
	if n != 1 {
		t.Errorf("SKU list read %d times, want 1 (cached)", n)
	}

	f2 := NewFakeAzure()
	f2.Inject = func(req *http.Request) *http.Response {
		if strings.Contains(req.URL.Path, "Microsoft.Compute/skus") {
			return AzureError(req, http.StatusForbidden, "AuthorizationFailed", "no read access to skus")
		}
		return nil
	}
	p2 := newTestProvider(f2)
	checkDetails(t, p2.Validate(context.Background(), ws, createReq(map[string]string{PropVMSize: "Standard_D2_v2"})),
		[]want{{"InsufficientCapacity", "3 × Standard_D2_v2 is 6 vCPUs"}})
	checkDetails(t, p2.Validate(context.Background(), ws, createReq(map[string]string{PropVMSize: "Standard_Exotic_v9"})),
		[]want{{"UnknownVMSize", `cannot tell how many vCPUs VM size "Standard_Exotic_v9" has: Azure's VM size list could not be read`}})
}

func attachReq(props map[string]string) *api.ComputeRequest {
	return &api.ComputeRequest{Name: "att1", Type: Type, Origin: api.OriginAttached, ClusterPurpose: api.PurposeFastProd,
		LoadBalancerType: api.LoadBalancerPublicIP, Settings: settingsJSON(props)}
}

// TestValidateAttach pins the attach rules: one form of naming the
// cluster, the exact resource id shape, the workspace's subscription, a
// cluster that exists and runs a supported version.
func TestValidateAttach(t *testing.T) {
	f := NewFakeAzure()
	id := f.AddCluster("team-rg", "prod", "eastus", "1.36.3")
	f.AddCluster("team-rg", "old", "eastus", "1.32.9")
	p := newTestProvider(f)
	base := "/subscriptions/" + FakeSubscription + "/resourceGroups/team-rg/providers/"
	cases := []struct {
		name  string
		props map[string]string
		want  []want
	}{
		{name: "by resource id", props: map[string]string{PropResourceID: id}},
		{name: "by resource group and name", props: map[string]string{PropResourceGroup: "team-rg", PropClusterName: "prod"}},
		{name: "both forms", props: map[string]string{PropResourceID: id, PropClusterName: "prod"},
			want: []want{{"AmbiguousCluster", "either by settings.resourceId or by settings.resourceGroup and settings.clusterName, not both"}}},
		{name: "neither", props: nil, want: []want{{"ClusterRequired", "name the cluster to attach"}}},
		{name: "group without name", props: map[string]string{PropResourceGroup: "team-rg"},
			want: []want{{"IncompleteCluster", "settings.resourceGroup and settings.clusterName go together"}}},
		{name: "other provider", props: map[string]string{PropResourceID: base + "Microsoft.Compute/managedClusters/prod"},
			want: []want{{"InvalidResourceId", "is not an AKS resource id: it must be exactly /subscriptions/{subscription}/resourceGroups/{group}/providers/Microsoft.ContainerService/managedClusters/{name}"}}},
		{name: "trailing segment", props: map[string]string{PropResourceID: id + "/agentPools/agentpool"},
			want: []want{{"InvalidResourceId", "is not an AKS resource id"}}},
		{name: "missing resource group", props: map[string]string{PropResourceID: "/subscriptions/" + FakeSubscription + "/providers/Microsoft.ContainerService/managedClusters/prod"},
			want: []want{{"InvalidResourceId", "is not an AKS resource id"}}},
		{name: "another subscription", props: map[string]string{PropResourceID: strings.Replace(id, FakeSubscription, "11111111-2222-3333-4444-555555555555", 1)},
			want: []want{{"SubscriptionMismatch", `the cluster is in subscription 11111111-2222-3333-4444-555555555555, but workspace "ml" uses subscription ` + FakeSubscription}}},
		{name: "no such cluster", props: map[string]string{PropResourceGroup: "team-rg", PropClusterName: "ghost"},
			want: []want{{"ClusterNotFound", "there is no managed cluster ghost in resource group team-rg"}}},
		{name: "unsupported version", props: map[string]string{PropResourceGroup: "team-rg", PropClusterName: "old"},
			want: []want{{"UnsupportedKubernetesVersion", "Specified kubernetes version 1.32.9 is not supported. Supported versions are between 1.33 - 1.37"}}},
		// The Azure CLI prints "resourcegroups"; ARM ids are case-insensitive
		// in their fixed segments and the subscription GUID.
		{name: "lowercase fixed segments, as az prints them", props: map[string]string{PropResourceID: "/subscriptions/" + FakeSubscription + "/resourcegroups/team-rg/providers/Microsoft.ContainerService/managedClusters/prod"}},
		{name: "every fixed segment in another casing", props: map[string]string{PropResourceID: "/SUBSCRIPTIONS/" + strings.ToUpper(FakeSubscription) + "/RESOURCEGROUPS/team-rg/PROVIDERS/microsoft.containerservice/MANAGEDCLUSTERS/prod"}},
		{name: "lowercase provider", props: map[string]string{PropResourceID: "/subscriptions/" + FakeSubscription + "/resourceGroups/team-rg/providers/microsoft.containerservice/managedclusters/prod"}},
		{name: "create-only options", props: map[string]string{PropResourceID: id, PropAgentCount: "5"},
			want: []want{{"InvalidProperty", `settings.agentCount only applies to creating a cluster`}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			checkDetails(t, p.Validate(context.Background(), testWorkspace(), attachReq(tc.props)), tc.want)
		})
	}
}

// TestAttachIDKeepsNames: whatever the casing of an id's fixed segments,
// Azure is asked for the resource group and cluster as the id names them.
func TestAttachIDKeepsNames(t *testing.T) {
	f := NewFakeAzure()
	f.AddCluster("Team-RG", "Prod-AKS", "eastus", "1.36.3")
	p := newTestProvider(f)
	id := "/subscriptions/" + strings.ToUpper(FakeSubscription) + "/resourcegroups/Team-RG/providers/microsoft.containerservice/managedclusters/Prod-AKS"
	checkDetails(t, p.Validate(context.Background(), testWorkspace(), attachReq(map[string]string{PropResourceID: id})), nil)
	ref, d := p.parseAttach(testWorkspace(), attachReq(map[string]string{PropResourceID: id}))
	if len(d) > 0 || ref.group != "Team-RG" || ref.name != "Prod-AKS" {
		t.Fatalf("parsed %+v %v", ref, d)
	}
	if want := "/subscriptions/" + strings.ToUpper(FakeSubscription) + "/resourceGroups/Team-RG/providers/Microsoft.ContainerService/managedClusters/Prod-AKS"; ref.id() != want {
		t.Errorf("recorded id %s, want %s", ref.id(), want)
	}
	f.Mu.Lock()
	defer f.Mu.Unlock()
	if !slices.Contains(f.Requests, "GET /subscriptions/"+strings.ToUpper(FakeSubscription)+"/resourceGroups/Team-RG/providers/Microsoft.ContainerService/managedClusters/Prod-AKS") {
		t.Errorf("requests %v", f.Requests)
	}
}

// TestEgressInsideAuthorizedRanges: an egress CIDR is allowed only if one
// authorized range holds all of it (a bare address is its own /32).
func TestEgressInsideAuthorizedRanges(t *testing.T) {
	a := access{ranges: []string{"203.0.113.0/24", "198.51.100.7", "2001:db8::/32"}}
	for egress, want := range map[string]string{
		"203.0.113.16/28":              "",
		"198.51.100.7/32, 203.0.113.1": "",
		"198.51.100.0/24":              "198.51.100.0/24",
		"203.0.112.0/23,192.0.2.9":     "203.0.112.0/23,192.0.2.9/32",
		"2001:db8:1::/48":              "",
		"203.0.113.0/24,2001:db9::/32": "2001:db9::/32",
	} {
		if got := strings.Join(a.outside(egress), ","); got != want {
			t.Errorf("egress %q: outside %q, want %q", egress, got, want)
		}
	}
}

// TestAzureErrorMappings: Azure's errors, as the SDK parses them from real
// responses, become messages that say what to do.
func TestAzureErrorMappings(t *testing.T) {
	id := "/subscriptions/" + FakeSubscription + "/resourceGroups/team-rg/providers/Microsoft.ContainerService/managedClusters/prod"
	cases := []struct {
		name   string
		inject func(req *http.Request) *http.Response
		want   want
	}{
		{"missing role names the role and the scope", func(req *http.Request) *http.Response {
			return AzureError(req, http.StatusForbidden, "AuthorizationFailed", "The client 'abc' does not have authorization to perform action 'Microsoft.ContainerService/managedClusters/read'")
		}, want{"AzureRoleMissing", `is not allowed to read managed cluster prod: assign it the "Reader" role on scope ` + id}},
		{"throttling that does not stop", func(req *http.Request) *http.Response {
			return AzureError(req, http.StatusTooManyRequests, "TooManyRequests", "slow down", "Retry-After", "1")
		}, want{"AzureThrottled", "Azure kept throttling requests (429 Too Many Requests) while Berth tried to read managed cluster prod"}},
		{"rejected credentials", func(req *http.Request) *http.Response {
			return AzureError(req, http.StatusUnauthorized, "InvalidAuthenticationToken", "The access token is invalid.")
		}, want{"AzureCredentialsRejected", "Azure rejected Berth's credentials while trying to read managed cluster prod: The access token is invalid"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := NewFakeAzure()
			f.AddCluster("team-rg", "prod", "eastus", "1.36.3")
			f.Inject = tc.inject
			p := newTestProvider(f)
			checkDetails(t, p.Validate(context.Background(), testWorkspace(), attachReq(map[string]string{PropResourceID: id})), []want{tc.want})
		})
	}
}

// TestThrottlingHonoursRetryAfter: a 429 with Retry-After is retried by the
// SDK's policy after the time Azure asked for, and then succeeds.
func TestThrottlingHonoursRetryAfter(t *testing.T) {
	f := NewFakeAzure()
	id := f.AddCluster("team-rg", "prod", "eastus", "1.36.3")
	throttled := 0
	f.Inject = func(req *http.Request) *http.Response {
		if throttled < 1 {
			throttled++
			return AzureError(req, http.StatusTooManyRequests, "TooManyRequests", "slow down", "Retry-After", "1")
		}
		return nil
	}
	p := newTestProvider(f)
	start := time.Now()
	checkDetails(t, p.Validate(context.Background(), testWorkspace(), attachReq(map[string]string{PropResourceID: id})), nil)
	if el := time.Since(start); el < time.Second {
		t.Errorf("retried after %s; Azure asked for 1s", el)
	}
}

// TestNoCredentials: the Azure CLI credential without the az command
// fails before any request, with what to set up.
func TestNoCredentials(t *testing.T) {
	f := NewFakeAzure()
	id := f.AddCluster("team-rg", "prod", "eastus", "1.36.3")
	opts := f.Options()
	opts.Credential = nil // the production NewCredential
	p := New(kubernetes.Provider{Versions: preflight.DefaultVersions}, opts)
	ws := testWorkspace()
	ws.Settings.AzureCredential = CredentialAzureCLI
	t.Setenv("PATH", t.TempDir())
	checkDetails(t, p.Validate(context.Background(), ws, attachReq(map[string]string{PropResourceID: id})),
		[]want{{"AzureCredentialsUnavailable", "Berth has no usable Azure credentials to read managed cluster prod"}})
	if len(f.Requests) != 0 {
		t.Errorf("requests sent without a token: %v", f.Requests)
	}
}

// TestVersionList: Azure's minors and patches as the reference's
// orchestrators, newest first, default and preview marked, with Berth's
// support.
func TestVersionList(t *testing.T) {
	p := newTestProvider(NewFakeAzure())
	vl, err := p.Versions(context.Background(), testWorkspace(), "WestUS2")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, o := range vl.Orchestrators {
		s := o.OrchestratorVersion
		if o.Default {
			s += " default"
		}
		if o.IsPreview {
			s += " preview"
		}
		if !o.Supported {
			s += " unsupported"
		}
		var ups []string
		for _, u := range o.Upgrades {
			ups = append(ups, u.OrchestratorVersion)
		}
		got = append(got, s+" ["+strings.Join(ups, ",")+"]")
	}
	wantList := []string{"1.38.0 preview unsupported []", "1.37.2 default [1.38.0]", "1.36.3 [1.37.2]", "1.36.2 [1.36.3,1.37.2]", "1.32.9 unsupported [1.36.3]"}
	if strings.Join(got, "\n") != strings.Join(wantList, "\n") {
		t.Errorf("versions:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(wantList, "\n"))
	}
	if _, err := p.Versions(context.Background(), testWorkspace(), "mars"); err == nil || !strings.Contains(err.Error(), `Azure has no Kubernetes versions for location "mars"`) {
		t.Errorf("unknown location: %v", err)
	}
	if _, err := p.Versions(context.Background(), &api.Workspace{Name: "x"}, "westus2"); err == nil || !strings.Contains(err.Error(), "needs a subscription") {
		t.Errorf("no subscription: %v", err)
	}
}

// TestDNSLabel: the automatic-TLS leaf label (as given with overwrite) or
// the compute's name, plus 6 random characters; none behind an internal
// load balancer.
func TestDNSLabel(t *testing.T) {
	c := &store.Compute{Compute: api.Compute{Name: "Aks1", LoadBalancerType: api.LoadBalancerPublicIP}}
	if l := dnsLabel(c); !regexp.MustCompile(`^aks1[a-z0-9]{6}$`).MatchString(l) {
		t.Errorf("label from the name: %q", l)
	}
	c.SSLConfiguration = api.SSLConfiguration{Status: api.SSLAuto, LeafDomainLabel: "scoring"}
	if l := dnsLabel(c); !regexp.MustCompile(`^scoring[a-z0-9]{6}$`).MatchString(l) {
		t.Errorf("label from the leaf domain label: %q", l)
	}
	// --ssl-overwrite-domain keeps an existing name; a new cluster has none,
	// so its label still gets the random part.
	c.SSLConfiguration.OverwriteDomain = true
	if l := dnsLabel(c); !regexp.MustCompile(`^scoring[a-z0-9]{6}$`).MatchString(l) {
		t.Errorf("label with overwrite: %q", l)
	}
	c.Status = json.RawMessage(`{"dnsLabel":"scoring"}`)
	if a := serviceAnnotations(c); a[DNSLabelAnnotation] != "scoring" {
		t.Errorf("public annotations: %v", a)
	}
	c.LoadBalancerType = api.LoadBalancerInternal
	if a := serviceAnnotations(c); a != nil {
		t.Errorf("internal annotations: %v", a)
	}
}

// TestResourceGroupMissing: a workspace resource group that does not
// exist is named, with what to do.
func TestResourceGroupMissing(t *testing.T) {
	f := NewFakeAzure()
	f.Inject = func(req *http.Request) *http.Response {
		if req.Method == http.MethodGet && strings.Contains(req.URL.Path, "/managedClusters/") {
			return AzureError(req, http.StatusNotFound, "ResourceGroupNotFound", "Resource group 'berth-rg' could not be found.")
		}
		return nil
	}
	checkDetails(t, newTestProvider(f).Validate(context.Background(), testWorkspace(), createReq(nil)),
		[]want{{"AzureResourceGroupNotFound", "Resource group 'berth-rg' could not be found; create the resource group or set the workspace's azureResourceGroup"}})
}

// TestDNSZoneForAutomaticCertificates: a public AKS front end is named in
// its region's cloudapp.azure.com zone (no workspace zone needed); behind
// an internal load balancer the workspace's zone (DNS-01) is used.
func TestDNSZoneForAutomaticCertificates(t *testing.T) {
	p := newTestProvider(NewFakeAzure())
	ws := &api.Workspace{Name: "team", Region: "westus2", Settings: api.WorkspaceSettings{DNSZone: "apps.example.com"}}
	for _, tc := range []struct {
		name string
		c    *store.Compute
		want string
	}{
		{"public, location given", &store.Compute{Compute: api.Compute{LoadBalancerType: api.LoadBalancerPublicIP, Settings: json.RawMessage(`{"location":"EastUS"}`)}}, "eastus.cloudapp.azure.com"},
		{"public, the workspace's region", &store.Compute{Compute: api.Compute{LoadBalancerType: api.LoadBalancerPublicIP}}, "westus2.cloudapp.azure.com"},
		{"public, recorded", &store.Compute{Compute: api.Compute{LoadBalancerType: api.LoadBalancerPublicIP, Status: json.RawMessage(`{"dnsZone":"northeurope.cloudapp.azure.com"}`)}}, "northeurope.cloudapp.azure.com"},
		{"internal", &store.Compute{Compute: api.Compute{LoadBalancerType: api.LoadBalancerInternal, Settings: json.RawMessage(`{"location":"eastus"}`)}}, "apps.example.com"},
	} {
		if got := p.DNSZone(ws, tc.c); got != tc.want {
			t.Errorf("%s: zone %q, want %q", tc.name, got, tc.want)
		}
	}
	// The install path issues certificates in the zone recorded on the compute.
	rec := &store.Compute{Compute: api.Compute{LoadBalancerType: api.LoadBalancerPublicIP, Status: json.RawMessage(`{"dnsZone":"eastus.cloudapp.azure.com"}`)}}
	if got := p.Kube.DNSZone(ws, rec); got != "eastus.cloudapp.azure.com" {
		t.Errorf("install path zone %q", got)
	}
	rec.LoadBalancerType = api.LoadBalancerInternal
	if got := p.Kube.DNSZone(ws, rec); got != "apps.example.com" {
		t.Errorf("install path zone behind an internal load balancer %q", got)
	}
}
