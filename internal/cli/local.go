package cli

import (
	"context"
	"fmt"
	"github.com/berth-ml/berth/client"

	"github.com/berth-ml/berth/api"
	"github.com/spf13/cobra"
)

func (a *app) createCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "create", Short: "Create a compute target (local: this machine)"}
	var (
		name                string
		noWait, contributor bool
	)
	local := &cobra.Command{
		Use:   "local -n NAME",
		Short: "Create the local compute: this machine, the embedded default (front end on a loopback port, TLS from a local CA)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, ws, err := a.computeTarget(name)
			if err != nil {
				return err
			}
			req := api.ComputeRequest{Name: name, Type: api.ComputeLocal, Origin: api.OriginCreated}
			if contributor {
				req.Settings = settingsJSON(map[string]any{"allowContributorCommands": true})
			}
			op, err := c.CreateCompute(cmd.Context(), ws, req)
			if err != nil {
				return err
			}
			return a.runOperation(cmd.Context(), c, ws, op, noWait)
		},
	}
	local.Flags().StringVarP(&name, "name", "n", "", "compute name")
	local.Flags().BoolVar(&noWait, "no-wait", false, "return at once with the operation id")
	local.Flags().BoolVar(&contributor, "allow-contributor-commands", false, "let contributors deploy services here (their commands run on this machine; by default only owners may)")
	cmd.AddCommand(local, a.createAKS())
	return cmd
}

func (a *app) computeDelete() *cobra.Command {
	return a.computeOperation("delete -n NAME", "Delete a compute Berth created (attached ones are detached instead)",
		func(ctx context.Context, c *client.Client, ws, name string) (*api.Operation, error) {
			return c.DeleteCompute(ctx, ws, name)
		})
}

func (a *app) computeCertificate() *cobra.Command {
	var (
		name       string
		includeKey bool
	)
	cmd := &cobra.Command{
		Use:   "get-certificate -n NAME [--include-key]",
		Short: "Print the front end's TLS certificate (and a local compute's CA; the key for owners with --include-key)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, ws, err := a.computeTarget(name)
			if err != nil {
				return err
			}
			cert, err := c.GetCertificate(cmd.Context(), ws, name, includeKey)
			if err != nil {
				return err
			}
			if a.format != "table" || a.query != "" {
				return a.print(cert, nil)
			}
			fmt.Fprint(a.stdout, cert.CertPEM)
			if cert.CAPEM != "" {
				fmt.Fprintf(a.stderr, "(the chain ends with the local CA; trust it with e.g. curl --cacert)\n")
			}
			fmt.Fprint(a.stdout, cert.KeyPEM)
			return nil
		},
	}
	cmd.Flags().StringVarP(&name, "name", "n", "", "compute name")
	cmd.Flags().BoolVar(&includeKey, "include-key", false, "also print the private key (owners only)")
	return cmd
}
