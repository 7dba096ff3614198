// Package aks is the compute type "aks": Azure Kubernetes Service clusters
// that Berth creates through Azure's API or attaches by resource id. Azure
// gives Berth a kubeconfig (the managed cluster's credentials API); from
// there the cluster goes through the same install path as any attached
// Kubernetes cluster (package kubernetes).
package aks

import (
	"cmp"
	"context"
	"fmt"
	"github.com/berth-ml/berth/internal/problem"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	"github.com/berth-ml/berth/api"
	"github.com/berth-ml/berth/internal/preflight"
	"github.com/berth-ml/berth/internal/provider"
	"github.com/berth-ml/berth/internal/provider/kubernetes"
	"github.com/berth-ml/berth/internal/store"
)

// Type is the compute type name.
const Type = api.ComputeAKS

// Defaults of a created cluster (the reference's).
const (
	DefaultAgentCount    = 3
	DefaultVMSize        = "Standard_D3_v2"
	DefaultLBSubnet      = "aks-subnet"
	DefaultAgentPoolName = "agentpool"
)

// DNSLabelAnnotation gives the public IP of a LoadBalancer Service a DNS
// label on AKS (the cloud provider sets it on the IP it creates).
const DNSLabelAnnotation = "service.beta.kubernetes.io/azure-dns-label-name"

// Provider implements provider.Provider for AKS. Make it with New.
type Provider struct {
	// Kube is the install path every AKS cluster goes through once Berth
	// has its kubeconfig.
	Kube *kubernetes.Provider
	// Services on AKS clusters are services on Kubernetes: Kube hosts them.
	kubeServices
	Options

	cache cache
}

// kubeServices is what Kube does for AKS computes as for any cluster: host
// services and endpoints, and review the tokens of their pods.
type kubeServices interface {
	provider.ServiceHost
	provider.EndpointHost
	provider.DeliveryReviewer
	provider.MetricsReporter
}

// Options configure how the provider reaches Azure.
type Options struct {
	// Credential makes the Azure credential of a workspace's choice
	// (default NewCredential).
	Credential func(choice string) (azcore.TokenCredential, error)
	// ClientOptions are passed to every Azure client (nil: Azure's public
	// cloud with the SDK's retry policy). Tests set a fake transport here.
	ClientOptions *arm.ClientOptions
	// DefaultSubscription is used when a workspace names none
	// (AZURE_SUBSCRIPTION_ID of the server).
	DefaultSubscription string
	// Poll is how often long-running Azure operations are polled (default 15s).
	Poll time.Duration
}

// New returns an AKS provider that installs through a copy of kube, which
// also gives public front ends their DNS label.
func New(kube kubernetes.Provider, opts Options) *Provider {
	kube.ServiceAnnotations = serviceAnnotations
	// Automatic certificates of public front ends are for the name the
	// public IP's DNS label gives them (recorded when the cluster is
	// created or attached).
	kube.Zone = func(_ *api.Workspace, c *store.Compute) string {
		if c.LoadBalancerType == api.LoadBalancerInternal {
			return ""
		}
		return statusOf(c).DNSZone
	}
	p := &Provider{Kube: &kube, kubeServices: &kube, Options: opts}
	// Capacity is the VM size's vCPUs on create, attach, scale and update
	// alike (the reference's rule), not what the kubelets leave allocatable.
	kube.Known = p.known
	return p
}

// known is what preflight needs to know of an AKS compute's cluster: the
// capacity rule (its agents' VM size and the vCPUs of the sizes offered
// where it runs), and why it may not answer (a private cluster).
func (p *Provider) known(ctx context.Context, c *store.Compute) preflight.Input {
	st := statusOf(c)
	vms := &preflight.VMSizes{Default: cmp.Or(st.VMSize, settingsOf(c).VMSize), CPUs: p.vmCPUs(ctx, workspaceOf(c), location(c))}
	return preflight.Input{VMSizes: vms, Unreachable: access{private: st.PrivateCluster, privateFQDN: st.PrivateFQDN}.unreachable()}
}

// vmCPUs maps lowercase VM sizes to their vCPUs in a location: Azure's
// resource SKUs, or Berth's built-in table when they cannot be read.
func (p *Provider) vmCPUs(ctx context.Context, ws *api.Workspace, location string) map[string]int {
	if az, err := p.connect(ws, p.subscription(ws)); err == nil && location != "" {
		ctx, cancel := contextWithTimeout(ctx)
		defer cancel()
		if cores, err := p.cores(ctx, az, location); err == nil {
			return cores
		}
	}
	return builtinCores
}

// DNSZone is the zone of a compute's automatic certificate: its region's
// cloudapp.azure.com for a public front end (no workspace zone needed),
// the workspace's behind an internal load balancer (named through DNS-01).
// Before the cluster is known, the region is the request's location or
// the workspace's.
func (p *Provider) DNSZone(ws *api.Workspace, c *store.Compute) string {
	if c == nil || c.LoadBalancerType == api.LoadBalancerInternal {
		return ws.Settings.DNSZone
	}
	if z := statusOf(c).DNSZone; z != "" {
		return z
	}
	loc := cmp.Or(location(c), ws.Region)
	if loc == "" || loc == "local" {
		return ws.Settings.DNSZone
	}
	return strings.ToLower(loc) + ".cloudapp.azure.com"
}

func (p *Provider) Type() string      { return Type }
func (p *Provider) Origins() []string { return []string{api.OriginCreated, api.OriginAttached} }

func (p *Provider) poll() time.Duration {
	return cmp.Or(p.Poll, 15*time.Second)
}

// serviceAnnotations gives a public front end's IP the compute's DNS
// label, so its name is <label>.<region>.cloudapp.azure.com.
func serviceAnnotations(c *store.Compute) map[string]string {
	if l := statusOf(c).DNSLabel; l != "" && c.LoadBalancerType != api.LoadBalancerInternal {
		return map[string]string{DNSLabelAnnotation: l}
	}
	return nil
}

// subscription is the workspace's subscription, or the server's default.
func (p *Provider) subscription(ws *api.Workspace) string {
	return cmp.Or(ws.Settings.AzureSubscriptionID, p.DefaultSubscription)
}

// connect opens Azure's clients for a subscription with the workspace's
// credential choice.
func (p *Provider) connect(ws *api.Workspace, subscription string) (*clients, error) {
	mk := p.Credential
	if mk == nil {
		mk = NewCredential
	}
	cred, err := mk(ws.Settings.AzureCredential)
	if err != nil {
		return nil, &credentialError{err}
	}
	return newClients(subscription, cred, p.ClientOptions)
}

// workspaceOf is the part of a workspace the provider needs at run time,
// kept in the compute's status when it was created.
func workspaceOf(c *store.Compute) *api.Workspace {
	st := statusOf(c)
	return &api.Workspace{Name: c.Workspace, Settings: api.WorkspaceSettings{AzureSubscriptionID: st.SubscriptionID, AzureCredential: st.AzureCredential}}
}

// createSpec is a create request, read and checked offline.
type createSpec struct {
	agents                  int
	vmSize, location        string
	version                 string
	subscription, group     string
	vnet                    bool
	vnetGroup, vnetName     string
	subnetName              string
	serviceCIDR, bridgeCIDR netip.Prefix
	dnsIP                   netip.Addr
}

func (s *createSpec) subnetID() string {
	return fmt.Sprintf("/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Network/virtualNetworks/%s/subnets/%s", s.subscription, s.vnetGroup, s.vnetName, s.subnetName)
}

func (s *createSpec) groupScope() string {
	return fmt.Sprintf("/subscriptions/%s/resourceGroups/%s", s.subscription, s.group)
}

// minCPUs and minNodes are the reference's capacity rules per purpose.
func minCPUs(purpose string) int {
	if purpose == api.PurposeDevTest {
		return 2
	}
	return 12
}

func minNodes(purpose string) int {
	if purpose == api.PurposeDevTest {
		return 1
	}
	return 3
}

// parseCreate reads a create request's settings (strictly), fills their
// defaults and checks everything that needs no Azure call.
func (p *Provider) parseCreate(ws *api.Workspace, req *api.ComputeRequest) (*createSpec, []api.ErrorDetail) {
	set, out := decodeSettings(req.Settings)
	for _, f := range [][2]string{{"settings.resourceId", set.ResourceID}, {"settings.resourceGroup", set.ResourceGroup}, {"settings.clusterName", set.ClusterName}} {
		if f[1] != "" {
			out = append(out, problem.Detail(api.CodeInvalidProperty, f[0], "%s names a cluster to attach: it does not apply to creating one", f[0]))
		}
	}
	s := &createSpec{agents: DefaultAgentCount, vmSize: cmp.Or(set.VMSize, DefaultVMSize), location: strings.ToLower(set.Location),
		version: set.KubernetesVersion, subscription: p.subscription(ws), group: ws.Settings.AzureResourceGroup}
	if set.AgentCount != nil {
		s.agents = *set.AgentCount
		if s.agents < 1 {
			out = append(out, problem.Detail(api.CodeInvalidAgentCount, "settings.agentCount", "settings.agentCount must be a positive integer (got %d)", s.agents))
			s.agents = 0
		}
	}
	if s.agents > 0 && s.agents < minNodes(req.ClusterPurpose) {
		out = append(out, problem.Detail(api.CodeInsufficientAgents, "settings.agentCount", "cluster purpose %s needs at least %d agents (got %d): use settings.agentCount %d or more, or clusterPurpose DevTest", req.ClusterPurpose, minNodes(req.ClusterPurpose), s.agents, minNodes(req.ClusterPurpose)))
	}
	if s.location == "" {
		s.location = ws.Region
		if s.location == "" || s.location == "local" {
			out = append(out, problem.Detail(api.CodeLocationRequired, "settings.location", "give settings.location: workspace %q has no Azure region to default to (its region is %q)", ws.Name, ws.Region))
		}
	}
	if s.version != "" && !p.Kube.Versions.Contains(s.version) {
		out = append(out, problem.Detail(api.CodeUnsupportedKubernetesVersion, "settings.kubernetesVersion", "Kubernetes version %s is not supported by Berth: supported versions are between %s", s.version, p.Kube.Versions))
	}
	out = append(out, p.settingsDetails(ws, true)...)
	out = append(out, (&kubernetes.Settings{CredentialMode: orScoped(set.CredentialMode)}).Validate()...)
	// The custom VNet: all six or none.
	var given, missing []string
	for _, f := range set.vnetFields() {
		if f[1] != "" {
			given = append(given, f[0])
		} else {
			missing = append(missing, f[0])
		}
	}
	if len(given) > 0 && len(missing) > 0 {
		out = append(out, problem.Detail(api.CodeIncompleteVNet, missing[0], "a custom virtual network needs all six of settings.vnetResourceGroupName, settings.vnetName, settings.subnetName, settings.serviceCidr, settings.dnsServiceIp and settings.dockerBridgeCidr, or none; missing: %s", strings.Join(missing, ", ")))
	}
	if len(given) > 0 {
		out = append(out, s.parseVNet(&set)...)
	}
	if req.LoadBalancerType == api.LoadBalancerInternal && len(given) == 0 && req.LoadBalancerSubnet != "" && req.LoadBalancerSubnet != DefaultLBSubnet {
		// Without a custom VNet, AKS makes its own network with one subnet.
		out = append(out, problem.Detail(api.CodeInvalidValue, "loadBalancerSubnet", "loadBalancerSubnet %q needs a custom virtual network (the six settings.vnet… settings); without one, the internal load balancer uses the cluster's own subnet %q", req.LoadBalancerSubnet, DefaultLBSubnet))
	}
	return s, out
}

// orScoped is a credential mode with its default.
func orScoped(mode string) string {
	return cmp.Or(mode, kubernetes.CredentialScoped)
}

func (s *createSpec) parseVNet(set *Settings) []api.ErrorDetail {
	var out []api.ErrorDetail
	s.vnet = true
	s.vnetGroup, s.vnetName, s.subnetName = set.VNetResourceGroupName, set.VNetName, set.SubnetName
	var okSvc, okIP, okBridge bool
	if v := set.ServiceCIDR; v != "" {
		pf, err := netip.ParsePrefix(v)
		if err != nil || pf != pf.Masked() || !pf.Addr().Is4() {
			out = append(out, problem.Detail(api.CodeInvalidCIDR, "settings.serviceCidr", "settings.serviceCidr %q is not a well-formed IPv4 CIDR block with no host bits set, like 10.0.0.0/16", v))
		} else {
			s.serviceCIDR, okSvc = pf, true
		}
	}
	if v := set.DNSServiceIP; v != "" {
		a, err := netip.ParseAddr(v)
		if err != nil || !a.Is4() {
			out = append(out, problem.Detail(api.CodeInvalidIP, "settings.dnsServiceIp", "settings.dnsServiceIp %q is not an IPv4 address, like 10.0.0.10", v))
		} else {
			s.dnsIP, okIP = a, true
		}
	}
	if v := set.DockerBridgeCIDR; v != "" {
		// The reference's example (172.17.0.1/16) names the bridge's own
		// address, so host bits are allowed here.
		pf, err := netip.ParsePrefix(v)
		if err != nil || !pf.Addr().Is4() {
			out = append(out, problem.Detail(api.CodeInvalidCIDR, "settings.dockerBridgeCidr", "settings.dockerBridgeCidr %q is not a well-formed IPv4 CIDR, like 172.17.0.1/16", v))
		} else {
			s.bridgeCIDR, okBridge = pf, true
		}
	}
	if okSvc && okIP {
		switch {
		case !s.serviceCIDR.Contains(s.dnsIP):
			out = append(out, problem.Detail(api.CodeDNSServiceIPOutsideServiceCIDR, "settings.dnsServiceIp", "settings.dnsServiceIp %s is not inside settings.serviceCidr %s", s.dnsIP, s.serviceCIDR))
		case s.dnsIP == s.serviceCIDR.Addr():
			out = append(out, problem.Detail(api.CodeInvalidIP, "settings.dnsServiceIp", "settings.dnsServiceIp %s is the network address of settings.serviceCidr %s; use another, like the .10 address", s.dnsIP, s.serviceCIDR))
		}
	}
	if okSvc && okBridge && s.serviceCIDR.Overlaps(s.bridgeCIDR.Masked()) {
		out = append(out, problem.Detail(api.CodeCIDROverlap, "settings.serviceCidr", "settings.serviceCidr %s overlaps settings.dockerBridgeCidr %s; they must be separate ranges", s.serviceCIDR, s.bridgeCIDR))
	}
	return out
}

// settingsDetails checks the workspace's Azure settings.
func (p *Provider) settingsDetails(ws *api.Workspace, create bool) []api.ErrorDetail {
	var out []api.ErrorDetail
	if p.subscription(ws) == "" {
		out = append(out, problem.Detail(api.CodeAzureSubscriptionRequired, "workspace.settings.azureSubscriptionId", "workspace %q has no Azure subscription: set one (workspace.settings.azureSubscriptionId), or start the server with AZURE_SUBSCRIPTION_ID", ws.Name))
	}
	if create && ws.Settings.AzureResourceGroup == "" {
		out = append(out, problem.Detail(api.CodeAzureResourceGroupRequired, "workspace.settings.azureResourceGroup", "workspace %q has no Azure resource group for the clusters it creates: set one (workspace.settings.azureResourceGroup)", ws.Name))
	}
	if ch := ws.Settings.AzureCredential; ch != "" && !slices.Contains(CredentialChoices, ch) {
		out = append(out, problem.Detail(api.CodeInvalidValue, "workspace.settings.azureCredential", "workspace %q has Azure credential %q, which is not known: use one of %s", ws.Name, ch, strings.Join(CredentialChoices, ", ")))
	}
	return out
}

// cache keeps Azure's slow-changing lists (locations, VM sizes, versions).
type cache struct {
	mu sync.Mutex
	m  map[string]cached
}

type cached struct {
	v  any
	at time.Time
}

func (c *cache) get(key string, ttl time.Duration) (any, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[key]
	if !ok || time.Since(e.at) > ttl {
		return nil, false
	}
	return e.v, true
}

func (c *cache) put(key string, v any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]cached{}
	}
	c.m[key] = cached{v: v, at: time.Now()}
}

// builtinCores is the fallback when Azure's resource SKU list cannot be
// read: the vCPUs of common VM sizes.
var builtinCores = map[string]int{
	"standard_d1_v2": 1, "standard_d2_v2": 2, "standard_d3_v2": 4, "standard_d4_v2": 8, "standard_d5_v2": 16,
	"standard_ds1_v2": 1, "standard_ds2_v2": 2, "standard_ds3_v2": 4, "standard_ds4_v2": 8, "standard_ds5_v2": 16,
	"standard_d2s_v3": 2, "standard_d4s_v3": 4, "standard_d8s_v3": 8, "standard_d16s_v3": 16, "standard_d32s_v3": 32,
	"standard_d2_v3": 2, "standard_d4_v3": 4, "standard_d8_v3": 8, "standard_d16_v3": 16,
	"standard_d2s_v5": 2, "standard_d4s_v5": 4, "standard_d8s_v5": 8, "standard_d16s_v5": 16,
	"standard_f2s_v2": 2, "standard_f4s_v2": 4, "standard_f8s_v2": 8, "standard_f16s_v2": 16,
	"standard_b2s": 2, "standard_b2ms": 2, "standard_b4ms": 4,
	"standard_nc6s_v3": 6, "standard_nc12s_v3": 12, "standard_nc24s_v3": 24, "standard_nc4as_t4_v3": 4, "standard_nc8as_t4_v3": 8,
}

// contextWithTimeout bounds validation's Azure lookups.
func contextWithTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, 2*time.Minute)
}

// deref is what p points to, or the zero value for nil (Azure's models
// are pointers throughout).
func deref[T any](p *T) T {
	if p == nil {
		var zero T
		return zero
	}
	return *p
}
