package cli

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"github.com/berth-ml/berth/api"
	"github.com/berth-ml/berth/client"
	"github.com/berth-ml/berth/internal/kubeconn"
	"github.com/berth-ml/berth/internal/preflight"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// sslFlags are the SSL options shared by attach, create and update.
type sslFlags struct {
	certFile, keyFile, cname, leafLabel string
	overwrite, renew, disable           bool
}

func (f *sslFlags) register(fs *pflag.FlagSet, update bool) {
	fs.StringVar(&f.certFile, "ssl-cert-file", "", "TLS certificate chain (PEM), with --ssl-key-file and --ssl-cname")
	fs.StringVar(&f.keyFile, "ssl-key-file", "", "TLS private key (PEM)")
	fs.StringVar(&f.cname, "ssl-cname", "", "the name clients use for the scoring endpoint (covered by the certificate)")
	fs.StringVar(&f.leafLabel, "ssl-leaf-domain-label", "", "get a certificate automatically for <label>xxxxxx.<zone>")
	fs.BoolVar(&f.overwrite, "ssl-overwrite-domain", false, "keep the existing domain name of the leaf domain label")
	if update {
		fs.BoolVar(&f.renew, "ssl-renew", false, "renew the automatic certificate now")
		fs.BoolVar(&f.disable, "ssl-disable", false, "turn TLS off")
	}
}

// request reads the certificate files and returns the SSL request, or nil
// when no SSL flag was given.
func (f *sslFlags) request() (*api.SSLRequest, error) {
	r := &api.SSLRequest{Cname: f.cname, LeafDomainLabel: f.leafLabel, OverwriteDomain: f.overwrite, Renew: f.renew, Disable: f.disable}
	var problems []string
	for _, x := range []struct {
		path string
		dst  *string
		flag string
	}{{f.certFile, &r.CertPEM, "--ssl-cert-file"}, {f.keyFile, &r.KeyPEM, "--ssl-key-file"}} {
		if x.path == "" {
			continue
		}
		b, err := os.ReadFile(x.path)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", x.flag, err))
			continue
		}
		*x.dst = string(b)
	}
	if len(problems) > 0 {
		return nil, usageErrorf("%s", strings.Join(problems, "\n"))
	}
	if *r == (api.SSLRequest{}) {
		return nil, nil
	}
	return r, nil
}

// clusterTarget checks what the cluster commands (attach, create aks,
// update) share: --cluster-purpose, which it spells Berth's way in place
// (see clusterPurpose), the SSL flags, whose request it returns, and the
// compute's name, client and workspace (see inWorkspace).
func (a *app) clusterTarget(name string, purpose *string, ssl *sslFlags) (*client.Client, string, *api.SSLRequest, error) {
	p, err := clusterPurpose(*purpose)
	if err != nil {
		return nil, "", nil, err
	}
	*purpose = p
	sslReq, err := ssl.request()
	if err != nil {
		return nil, "", nil, err
	}
	c, ws, err := a.inWorkspace("compute", name)
	return c, ws, sslReq, err
}

func (a *app) attachCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "attach", Short: "Attach an existing cluster as a compute target"}
	cmd.AddCommand(a.attachKubernetes(), a.attachAKS())
	return cmd
}

func (a *app) attachKubernetes() *cobra.Command {
	var (
		name, kubeconfig, kubeContext, purpose, lbType, lbSubnet, credMode string
		force, dryRun, noWait                                              bool
		ssl                                                                sslFlags
	)
	cmd := &cobra.Command{
		Use:   "kubernetes -n NAME --kubeconfig FILE",
		Short: "Attach any Kubernetes cluster by kubeconfig",
		Long: `Attach a Kubernetes cluster: Berth checks it (reachable, permissions, version,
capacity for the purpose, not attached elsewhere), claims it, installs its front
end and waits until the front end serves. Nothing is installed if a check fails.

By default (--credential-mode scoped) Berth makes its own ServiceAccount with
only the permissions it needs and stores its token instead of your kubeconfig;
--credential-mode as-given stores your kubeconfig (encrypted).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := requireName(name, "compute"); err != nil {
				return err
			}
			kc, ctxName, err := kubeconn.Flatten(kubeconfig, kubeContext)
			if err != nil {
				return usageErrorf("%v", err)
			}
			c, ws, sslReq, err := a.clusterTarget(name, &purpose, &ssl)
			if err != nil {
				return err
			}
			settings := map[string]any{}
			if ctxName != "" {
				settings["context"] = ctxName
			}
			if credMode != "" {
				settings["credentialMode"] = credMode
			}
			req := api.ComputeRequest{Name: name, Type: api.ComputeKubernetes, Origin: api.OriginAttached,
				ClusterPurpose: purpose, LoadBalancerType: lbType, LoadBalancerSubnet: lbSubnet, SSL: sslReq,
				Settings: settingsJSON(settings), Credentials: string(kc), Force: force, DryRun: dryRun}
			return a.sendCompute(cmd.Context(), c, ws, req, noWait)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&name, "name", "n", "", "compute name")
	f.StringVar(&kubeconfig, "kubeconfig", "", "kubeconfig file of the cluster")
	cmd.MarkFlagRequired("kubeconfig")
	f.StringVar(&kubeContext, "kube-context", "", "kubeconfig context (default: its current context)")
	// --context was this flag's name, which hid the global --context.
	f.StringVar(&kubeContext, "context", "", "kubeconfig context")
	deprecatedAlias(f, "context", "use --kube-context (--context names a context of berth's config file)")
	f.StringVar(&purpose, "cluster-purpose", "", "FastProd (default: ≥ 12 vCPUs, ≥ 3 nodes) or DevTest (≥ 2 vCPUs)")
	f.StringVar(&lbType, "load-balancer-type", "", "PublicIp (default) or InternalLoadBalancer")
	f.StringVar(&lbSubnet, "load-balancer-subnet", "", "subnet of the internal load balancer")
	f.StringVar(&credMode, "credential-mode", "", "scoped (default: Berth's own ServiceAccount) or as-given (store this kubeconfig)")
	f.BoolVar(&force, "force", false, "take the cluster over if another compute has it (that compute becomes Displaced)")
	f.BoolVar(&dryRun, "dry-run", false, "run the preflight checks only and print each result")
	f.BoolVar(&noWait, "no-wait", false, "return at once with the operation id")
	ssl.register(f, false)
	cmd.RegisterFlagCompletionFunc("cluster-purpose", fixedCompletion("FastProd", "DevTest"))
	cmd.RegisterFlagCompletionFunc("load-balancer-type", fixedCompletion("PublicIp", "InternalLoadBalancer"))
	cmd.RegisterFlagCompletionFunc("credential-mode", fixedCompletion("scoped", "as-given"))
	return cmd
}

func fixedCompletion(values ...string) func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
	return func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return values, cobra.ShellCompDirectiveNoFileComp
	}
}

// sendCompute sends a create or attach request, or with req.DryRun only
// its preflight checks, and prints what they answer.
func (a *app) sendCompute(ctx context.Context, c *client.Client, ws string, req api.ComputeRequest, noWait bool) error {
	if !req.DryRun {
		op, err := c.CreateCompute(ctx, ws, req)
		if err != nil {
			return err
		}
		return a.runOperation(ctx, c, ws, op, noWait)
	}
	rep, err := c.DryRunCompute(ctx, ws, req)
	if err != nil {
		return err
	}
	if rep.Request != nil && a.format == "table" && a.query == "" {
		// A provider that calls a cloud (AKS) shows the request it would send.
		for _, ch := range rep.Checks {
			fmt.Fprintf(a.stdout, "✓ %-18s %s\n", ch.Name, ch.Message)
		}
		body, _ := json.MarshalIndent(rep.Request.Body, "", "  ")
		fmt.Fprintf(a.stdout, "Dry run: nothing was changed. The request Berth would send:\n%s %s\n%s\n", rep.Request.Method, rep.Request.URL, body)
		return nil
	}
	return a.printPreflight(rep)
}

// printPreflight prints a dry run's checks; it fails when a check failed.
func (a *app) printPreflight(rep *api.PreflightReport) error {
	if a.format != "table" || a.query != "" {
		if err := a.print(rep, nil); err != nil {
			return err
		}
	} else {
		for _, c := range rep.Checks {
			fmt.Fprintf(a.stdout, "%s %-18s %s\n", preflight.Marks[c.Status], c.Name, c.Message)
			if c.Status == api.CheckFailed && !(len(c.Details) == 1 && c.Details[0].Message == c.Message) {
				for _, d := range c.Details {
					fmt.Fprintf(a.stdout, "    - %s\n", d.Message)
				}
			}
		}
		if rep.Passed {
			fmt.Fprintln(a.stdout, "Preflight passed: the cluster can be attached.")
		}
	}
	if !rep.Passed {
		fmt.Fprintln(a.stderr, "Error: preflight failed; nothing was changed")
		return &exitError{code: ExitFailed, err: errSilent}
	}
	return nil
}

func (a *app) computeUpdate() *cobra.Command {
	var (
		name, purpose, lbType, lbSubnet string
		noWait                          bool
		ssl                             sslFlags
	)
	cmd := &cobra.Command{
		Use:   "update -n NAME",
		Short: "Change a compute's purpose, load balancer or TLS in place (no detach needed)",
		// The reference's `computetarget update aks -n NAME` names the type.
		Args:      cobra.MatchAll(cobra.MaximumNArgs(1), cobra.OnlyValidArgs),
		ValidArgs: []string{api.ComputeAKS, api.ComputeKubernetes},
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, ws, sslReq, err := a.clusterTarget(name, &purpose, &ssl)
			if err != nil {
				return err
			}
			op, err := c.UpdateCompute(cmd.Context(), ws, name, api.ComputeUpdateRequest{ClusterPurpose: purpose,
				LoadBalancerType: lbType, LoadBalancerSubnet: lbSubnet, SSL: sslReq})
			if err != nil {
				return err
			}
			return a.runOperation(cmd.Context(), c, ws, op, noWait)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&name, "name", "n", "", "compute name")
	f.StringVar(&purpose, "cluster-purpose", "", "FastProd or DevTest")
	f.StringVar(&lbType, "load-balancer-type", "", "PublicIp or InternalLoadBalancer")
	f.StringVar(&lbSubnet, "load-balancer-subnet", "", "subnet of the internal load balancer")
	f.BoolVar(&noWait, "no-wait", false, "return at once with the operation id")
	ssl.register(f, true)
	return cmd
}

func (a *app) versionsCommand() *cobra.Command {
	var location string
	cmd := &cobra.Command{
		Use:   "versions [-l LOCATION]",
		Short: "List the Kubernetes versions Berth supports (the default marked)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			vl, err := c.ListVersionsIn(cmd.Context(), a.workspace, location)
			if err != nil {
				return err
			}
			if a.format != "table" || a.query != "" {
				return a.print(vl, nil)
			}
			type row struct {
				KubernetesVersion string `json:"kubernetesVersion"`
				Upgrades          string `json:"upgrades"`
			}
			var rows []row
			for _, o := range vl.Orchestrators {
				v := o.OrchestratorVersion
				if o.IsPreview {
					v += "(preview)"
				}
				if o.Default {
					v += " (default)"
				}
				if !o.Supported {
					v += " (not supported by Berth)"
				}
				var ups []string
				for _, u := range o.Upgrades {
					s := u.OrchestratorVersion
					if u.IsPreview {
						s += "(preview)"
					}
					ups = append(ups, s)
				}
				up := cmp.Or(strings.Join(ups, ", "), "None available")
				rows = append(rows, row{v, up})
			}
			return a.print(rows, nil)
		},
	}
	cmd.Flags().StringVarP(&location, "location", "l", "", "Azure location (needs the AKS provider)")
	return cmd
}
