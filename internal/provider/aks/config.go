package aks

import (
	"cmp"
	"encoding/json"

	"github.com/berth-ml/berth/api"
	"github.com/berth-ml/berth/internal/provider"
	"github.com/berth-ml/berth/internal/provider/kubernetes"
	"github.com/berth-ml/berth/internal/store"
)

// Settings are what a user asks of an AKS compute (api.Compute.Settings):
// the cluster to create, or the one to attach.
type Settings struct {
	// Create (every one has a default but the VNet, which is all six or none).
	AgentCount            *int   `json:"agentCount,omitempty"`
	VMSize                string `json:"vmSize,omitempty"`
	Location              string `json:"location,omitempty"`
	KubernetesVersion     string `json:"kubernetesVersion,omitempty"`
	VNetResourceGroupName string `json:"vnetResourceGroupName,omitempty"`
	VNetName              string `json:"vnetName,omitempty"`
	SubnetName            string `json:"subnetName,omitempty"`
	ServiceCIDR           string `json:"serviceCidr,omitempty"`
	DNSServiceIP          string `json:"dnsServiceIp,omitempty"`
	DockerBridgeCIDR      string `json:"dockerBridgeCidr,omitempty"`

	// Attach: the resource id, or the resource group and cluster name.
	ResourceID    string `json:"resourceId,omitempty"`
	ResourceGroup string `json:"resourceGroup,omitempty"`
	ClusterName   string `json:"clusterName,omitempty"`

	// CredentialMode, as the kubernetes type's.
	CredentialMode string `json:"credentialMode,omitempty"`
}

// Status is what Berth records about an AKS compute (api.Compute.Status):
// where the cluster is and how Berth reaches Azure for it, beside the
// install path's status (DNS label, FQDN, certificate).
type Status struct {
	kubernetes.Status
	SubscriptionID string `json:"subscriptionId,omitempty"`
	// AzureCredential is the workspace's credential choice when the
	// compute was made.
	AzureCredential string `json:"azureCredential,omitempty"`
	ResourceID      string `json:"resourceId,omitempty"`
	ResourceGroup   string `json:"resourceGroup,omitempty"`
	ClusterName     string `json:"clusterName,omitempty"`
	AgentPoolName   string `json:"agentPoolName,omitempty"`
	// Location is the cluster's region; VMSize its agents' (attached
	// clusters: as found).
	Location string `json:"location,omitempty"`
	VMSize   string `json:"vmSize,omitempty"`
	// How the API server is reached, as found: its authorized IP ranges,
	// and whether it is private (with its private name).
	AuthorizedIPRanges []string `json:"authorizedIpRanges,omitempty"`
	PrivateCluster     bool     `json:"privateCluster,omitempty"`
	PrivateFQDN        string   `json:"privateFqdn,omitempty"`
}

// vnetFields are the six settings of a custom VNet, with their paths.
func (s *Settings) vnetFields() [][2]string {
	return [][2]string{
		{"settings.vnetResourceGroupName", s.VNetResourceGroupName}, {"settings.vnetName", s.VNetName},
		{"settings.subnetName", s.SubnetName}, {"settings.serviceCidr", s.ServiceCIDR},
		{"settings.dnsServiceIp", s.DNSServiceIP}, {"settings.dockerBridgeCidr", s.DockerBridgeCIDR},
	}
}

func decodeSettings(raw json.RawMessage) (Settings, []api.ErrorDetail) {
	var s Settings
	return s, provider.DecodeStrict("settings", raw, &s)
}

func settingsOf(c *store.Compute) Settings { return provider.Read[Settings](c.Settings) }

func statusOf(c *store.Compute) Status { return provider.Read[Status](c.Status) }

func editSettings(c *store.Compute, fn func(*Settings)) { provider.Edit(&c.Settings, fn) }

func editStatus(c *store.Compute, fn func(*Status)) { provider.Edit(&c.Status, fn) }

// location is where the cluster is, or (before it is known) the one asked for.
func location(c *store.Compute) string {
	return cmp.Or(statusOf(c).Location, settingsOf(c).Location)
}
