package cli

import (
	"cmp"
	"fmt"
	"os"
	"strings"

	"github.com/berth-ml/berth/api"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// settingsFlags are the workspace settings of certificates: the DNS zone of
// automatic names, the ACME account and CA, and the DNS-01 provider.
type settingsFlags struct {
	s                                                 api.WorkspaceSettings
	caFile, dnsProvider, nameserver, tsigKey, tsigAlg string
	tsigSecret                                        string
	noDNS01                                           bool
	egress                                            []string
}

func (f *settingsFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.s.DNSZone, "dns-zone", "", "DNS zone of automatic certificates' names (<label><6 random>.<zone>)")
	fs.StringVar(&f.s.ACMEDirectoryURL, "acme-directory-url", "", "ACME directory (default Let's Encrypt)")
	fs.StringVar(&f.s.ACMEEmail, "acme-email", "", "ACME account email")
	fs.StringVar(&f.caFile, "acme-ca-file", "", "PEM roots to trust for the ACME directory's HTTPS (a private CA)")
	fs.StringVar(&f.s.ACMEProfile, "acme-profile", "", "certificate profile to ask the CA for")
	fs.StringVar(&f.s.ACMEEABKeyID, "acme-eab-kid", "", "external account binding key id")
	fs.StringVar(&f.s.ACMEEABHMACKey, "acme-eab-hmac-key", "", "external account binding HMAC key (base64url; stored encrypted)")
	fs.StringVar(&f.dnsProvider, "dns01-provider", "", "DNS-01 provider for internal load balancers: rfc2136")
	fs.StringVar(&f.nameserver, "dns01-nameserver", "", "rfc2136: HOST:PORT of the DNS server that takes dynamic updates")
	fs.StringVar(&f.tsigKey, "dns01-tsig-key", "", "rfc2136: TSIG key name")
	fs.StringVar(&f.tsigAlg, "dns01-tsig-algorithm", "", "rfc2136: TSIG algorithm (default hmac-sha256.)")
	fs.StringVar(&f.tsigSecret, "dns01-tsig-secret", "", "rfc2136: TSIG secret (base64; stored encrypted)")
	fs.StringVar(&f.s.AzureSubscriptionID, "azure-subscription-id", "", "Azure subscription of the AKS clusters it creates or attaches")
	fs.StringVar(&f.s.AzureResourceGroup, "azure-resource-group", "", "Azure resource group for the AKS clusters it creates")
	fs.StringSliceVar(&f.egress, "control-plane-egress-cidr", nil, "the control plane's egress addresses (CIDRs, repeat or separate with commas), checked against AKS API servers' authorized IP ranges")
	fs.StringVar(&f.s.AzureCredential, "azure-credential", "", "how the server signs in to Azure: default (environment, workload identity, managed identity, Azure CLI in turn), environment, workload-identity, managed-identity or azure-cli")
}

func (f *settingsFlags) settings() (api.WorkspaceSettings, error) {
	s := f.s
	s.ControlPlaneEgressCIDR = strings.Join(f.egress, ",")
	if f.caFile != "" {
		b, err := os.ReadFile(f.caFile)
		if err != nil {
			return s, usageErrorf("--acme-ca-file: %v", err)
		}
		s.ACMECACertPEM = string(b)
	}
	if f.noDNS01 {
		s.DNS01 = &api.DNS01Settings{}
	} else if f.dnsProvider != "" || f.nameserver != "" || f.tsigKey != "" || f.tsigSecret != "" {
		s.DNS01 = &api.DNS01Settings{Provider: f.dnsProvider, Nameserver: f.nameserver, TSIGKey: f.tsigKey, TSIGAlgorithm: f.tsigAlg, TSIGSecret: f.tsigSecret}
	}
	return s, nil
}

func (a *app) workspaceUpdate() *cobra.Command {
	var name string
	var f settingsFlags
	cmd := &cobra.Command{
		Use:   "update [-n NAME] [--dns-zone Z] [--acme-…] [--dns01-…]",
		Short: "Change a workspace's certificate settings (DNS zone, ACME, DNS-01 provider)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := f.settings()
			if err != nil {
				return err
			}
			if s == (api.WorkspaceSettings{}) {
				return usageErrorf("nothing to update: give --dns-zone, --acme-* or --dns01-* flags")
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			name = cmp.Or(name, a.workspace)
			if name == "" {
				return usageErrorf("the workspace name is required: -n NAME, -w, BERTH_WORKSPACE or a context's workspace")
			}
			ws, err := c.UpdateWorkspace(cmd.Context(), name, api.WorkspaceUpdateRequest{Settings: s})
			if err != nil {
				return err
			}
			if a.format == "table" && a.query == "" {
				fmt.Fprintf(a.stdout, "Updated the settings of workspace %s\n", ws.Name)
				return nil
			}
			return a.print(ws, workspaceColumns)
		},
	}
	cmd.Flags().StringVarP(&name, "name", "n", "", "workspace name (default: -w, BERTH_WORKSPACE or the context's workspace)")
	f.register(cmd.Flags())
	cmd.Flags().BoolVar(&f.noDNS01, "no-dns01", false, "remove the DNS-01 provider")
	return cmd
}
