package cli

import (
	"context"
	"encoding/json"

	"github.com/berth-ml/berth/api"
	"github.com/berth-ml/berth/client"
	"github.com/spf13/cobra"
)

// aksCommonFlags are the options create aks and attach aks share with
// attach kubernetes.
type aksCommonFlags struct {
	name, purpose, lbType, lbSubnet, credMode string
	force, dryRun, noWait                     bool
	ssl                                       sslFlags
}

func (f *aksCommonFlags) register(cmd *cobra.Command) {
	fs := cmd.Flags()
	fs.StringVarP(&f.name, "name", "n", "", "compute name")
	fs.StringVar(&f.purpose, "cluster-purpose", "", "FastProd (default: ≥ 12 vCPUs, ≥ 3 nodes) or DevTest (≥ 2 vCPUs); the reference's dev-test, DEV_TEST… work too")
	fs.StringVar(&f.lbType, "load-balancer-type", "", "PublicIp (default) or InternalLoadBalancer")
	fs.StringVar(&f.lbSubnet, "load-balancer-subnet", "", "subnet of the internal load balancer (default aks-subnet)")
	fs.StringVar(&f.credMode, "credential-mode", "", "scoped (default: Berth's own ServiceAccount) or as-given (store Azure's admin kubeconfig)")
	fs.BoolVar(&f.dryRun, "dry-run", false, "check everything and print what would be sent, changing nothing")
	fs.BoolVar(&f.noWait, "no-wait", false, "return at once with the operation id")
	f.ssl.register(fs, false)
	cmd.RegisterFlagCompletionFunc("cluster-purpose", fixedCompletion("FastProd", "DevTest"))
	cmd.RegisterFlagCompletionFunc("load-balancer-type", fixedCompletion("PublicIp", "InternalLoadBalancer"))
	cmd.RegisterFlagCompletionFunc("credential-mode", fixedCompletion("scoped", "as-given"))
}

// run sends an aks create or attach request.
func (a *app) runAKS(cmd *cobra.Command, f *aksCommonFlags, origin string, settings map[string]any) error {
	if err := requireName(f.name, "compute"); err != nil {
		return err
	}
	c, ws, sslReq, err := a.clusterTarget(f.name, &f.purpose, &f.ssl)
	if err != nil {
		return err
	}
	if f.credMode != "" {
		settings["credentialMode"] = f.credMode
	}
	req := api.ComputeRequest{Name: f.name, Type: api.ComputeAKS, Origin: origin, ClusterPurpose: f.purpose,
		LoadBalancerType: f.lbType, LoadBalancerSubnet: f.lbSubnet, SSL: sslReq, Settings: settingsJSON(settings), Force: f.force, DryRun: f.dryRun}
	return a.sendCompute(cmd.Context(), c, ws, req, f.noWait)
}

func (a *app) createAKS() *cobra.Command {
	var (
		f                                                       aksCommonFlags
		agents                                                  int
		vmSize, location, version                               string
		vnetGroup, vnetName, subnet, svcCIDR, dnsIP, bridgeCIDR string
	)
	cmd := &cobra.Command{
		Use:   "aks -n NAME",
		Short: "Create an AKS cluster through Azure's API and install Berth's front end on it",
		Long: `Create an Azure Kubernetes Service cluster in the workspace's subscription and
resource group, then install the scoring front end as on an attached cluster.

Every rule is checked before anything is created, and all problems are reported
together: agent count, vCPUs for the cluster purpose (from Azure's VM size list),
the custom virtual network (all six flags or none, well-formed CIDRs, DNS service
IP inside the service CIDR, no overlaps), the location and the Kubernetes version.
--dry-run stops there and prints the ARM request Berth would send.

A public front end's IP gets a DNS label: <name or leaf label>xxxxxx.<region>.cloudapp.azure.com.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			settings := map[string]any{}
			fl := cmd.Flags()
			if fl.Changed("agent-count") {
				settings["agentCount"] = agents
			}
			for flag, kv := range map[string][2]string{
				"vm-size": {"vmSize", vmSize}, "location": {"location", location}, "kubernetes-version": {"kubernetesVersion", version},
				"vnet-resourcegroup-name": {"vnetResourceGroupName", vnetGroup}, "vnet-name": {"vnetName", vnetName},
				"subnet-name": {"subnetName", subnet}, "service-cidr": {"serviceCidr", svcCIDR},
				"dns-service-ip": {"dnsServiceIp", dnsIP}, "docker-bridge-cidr": {"dockerBridgeCidr", bridgeCIDR},
			} {
				if fl.Changed(flag) {
					settings[kv[0]] = kv[1]
				}
			}
			return a.runAKS(cmd, &f, api.OriginCreated, settings)
		},
	}
	f.register(cmd)
	fs := cmd.Flags()
	fs.IntVar(&agents, "agent-count", 3, "number of agent nodes")
	fs.StringVar(&vmSize, "vm-size", "Standard_D3_v2", "VM size of the agents (cannot change later)")
	fs.StringVar(&location, "location", "", "Azure location (default: the workspace's region)")
	fs.StringVar(&version, "kubernetes-version", "", "Kubernetes version (default: the location's default; see berth versions -l)")
	fs.StringVar(&vnetGroup, "vnet-resourcegroup-name", "", "custom VNet: its resource group")
	fs.StringVar(&vnetName, "vnet-name", "", "custom VNet: its name")
	fs.StringVar(&subnet, "subnet-name", "", "custom VNet: the agents' subnet")
	fs.StringVar(&svcCIDR, "service-cidr", "", "custom VNet: Kubernetes service range, like 10.0.0.0/16")
	fs.StringVar(&dnsIP, "dns-service-ip", "", "custom VNet: cluster DNS address inside the service range, like 10.0.0.10")
	fs.StringVar(&bridgeCIDR, "docker-bridge-cidr", "", "custom VNet: container bridge range, like 172.17.0.1/16")
	return cmd
}

func (a *app) attachAKS() *cobra.Command {
	var (
		f                      aksCommonFlags
		id, group, clusterName string
	)
	cmd := &cobra.Command{
		Use:   "aks -n NAME (-i RESOURCE_ID | --resource-group RG --cluster-name C)",
		Short: "Attach an AKS cluster of the workspace's subscription by resource id",
		Long: `Attach an existing AKS cluster: Berth reads it through Azure's API, gets its
kubeconfig from the managed cluster's credentials API, and then attaches it as
any Kubernetes cluster (checks, claim, front end). The cluster must be in the
workspace's Azure subscription; it may be in another region.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			settings := map[string]any{}
			for k, v := range map[string]string{"resourceId": id, "resourceGroup": group, "clusterName": clusterName} {
				if v != "" {
					settings[k] = v
				}
			}
			return a.runAKS(cmd, &f, api.OriginAttached, settings)
		},
	}
	f.register(cmd)
	fs := cmd.Flags()
	fs.StringVarP(&id, "resource-id", "i", "", "/subscriptions/S/resourceGroups/RG/providers/Microsoft.ContainerService/managedClusters/NAME")
	fs.StringVar(&group, "resource-group", "", "the cluster's resource group (with --cluster-name)")
	fs.StringVar(&clusterName, "cluster-name", "", "the cluster's name (with --resource-group)")
	fs.BoolVar(&f.force, "force", false, "take the cluster over if another compute has it (that compute becomes Displaced)")
	return cmd
}

func (a *app) computeScale() *cobra.Command {
	var nodes int
	cmd := a.computeOperation("scale -n NAME --node-count N", "Change the node count of a cluster Berth created (the VM size cannot change)",
		func(ctx context.Context, c *client.Client, ws, name string) (*api.Operation, error) {
			return c.ScaleCompute(ctx, ws, name, nodes)
		})
	cmd.Flags().IntVar(&nodes, "node-count", 0, "the new number of nodes")
	cmd.MarkFlagRequired("node-count")
	return cmd
}

// settingsJSON is a request's type-specific settings (nothing when none
// were given, so the server applies its defaults).
func settingsJSON(m map[string]any) json.RawMessage {
	if len(m) == 0 {
		return nil
	}
	b, _ := json.Marshal(m) // strings and ints always encode
	return b
}
