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
	var contributor bool
	local := a.computeOperation("local -n NAME", "Create the local compute: this machine, the embedded default (front end on a loopback port, TLS from a local CA)",
		func(ctx context.Context, c *client.Client, ws, name string) (*api.Operation, error) {
			req := api.ComputeRequest{Name: name, Type: api.ComputeLocal, Origin: api.OriginCreated}
			if contributor {
				req.Settings = settingsJSON(map[string]any{"allowContributorCommands": true})
			}
			return c.CreateCompute(ctx, ws, req)
		})
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
	var includeKey bool
	cmd := a.namedCommand("compute", "get-certificate -n NAME [--include-key]", "Print the front end's TLS certificate (and a local compute's CA; the key for owners with --include-key)",
		func(cmd *cobra.Command, c *client.Client, ws, name string) error {
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
		})
	cmd.Flags().BoolVar(&includeKey, "include-key", false, "also print the private key (owners only)")
	return cmd
}
