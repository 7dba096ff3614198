package cli

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/berth-ml/berth/api"
	"github.com/berth-ml/berth/client"
	"github.com/berth-ml/berth/internal/cli/output"
	"github.com/spf13/cobra"
)

func (a *app) computeCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "compute", Aliases: []string{"computetarget"}, Short: "Manage inference clusters (compute targets)"}
	a.registerResourceGroup(cmd)
	cmd.AddCommand(a.computeShow(), a.computeList(), a.computeWait(), a.computeDetach(), a.computeReconcile(), a.computeCredentials(),
		a.attachCommand(), a.computeUpdate(), a.createCommand(), a.computeDelete(), a.computeCertificate(), a.computeScale())
	return cmd
}

func (a *app) computeShow() *cobra.Command {
	return a.showCommand("compute", "show -n NAME", "Show a compute target", func(ctx context.Context, c *client.Client, ws, name string) (any, error) {
		return c.GetCompute(ctx, ws, name)
	}, computeShowColumns)
}

// computeShowColumns are list's columns and the front end's image (which
// after a server upgrade tells the clusters not yet reconciled).
var computeShowColumns = append(computeColumns[:len(computeColumns):len(computeColumns)], output.Column{Header: "FrontendImage", Path: "frontendImage"})

func (a *app) computeList() *cobra.Command {
	return a.listCommand("List compute targets", func(ctx context.Context, c *client.Client, ws string) (any, error) {
		return c.ListComputes(ctx, ws)
	}, computeColumns)
}

func (a *app) computeWait() *cobra.Command {
	cmd := a.namedCommand("compute", "wait -n NAME", "Wait for a compute's current operation to end, showing its events",
		func(cmd *cobra.Command, c *client.Client, ws, name string) error {
			ops, err := c.ListComputeOperations(cmd.Context(), ws, name)
			if err != nil {
				return err
			}
			if len(ops) == 0 {
				return fmt.Errorf("compute %q has no operations", name)
			}
			return a.finishOperation(cmd.Context(), c, ws, &ops[0])
		})
	cmd.Long = `Wait for the compute's operation in progress (or, if none, report its latest
one) and print the compute at the end. Exits non-zero if the operation failed.`
	return cmd
}

func (a *app) computeDetach() *cobra.Command {
	var force bool
	cmd := a.computeOperation("detach -n NAME", "Remove everything Berth installed on the cluster and forget it (never deletes the cluster)",
		func(ctx context.Context, c *client.Client, ws, name string) (*api.Operation, error) {
			return c.DetachCompute(ctx, ws, name, api.DetachRequest{Force: force})
		})
	cmd.Flags().BoolVar(&force, "force", false, "forget the compute even if the cluster cannot be reached (what could not be removed is listed in the events)")
	return cmd
}

func (a *app) computeReconcile() *cobra.Command {
	return a.computeOperation("reconcile -n NAME", "Re-apply Berth's components to the cluster and refresh its facts",
		func(ctx context.Context, c *client.Client, ws, name string) (*api.Operation, error) {
			return c.ReconcileCompute(ctx, ws, name)
		})
}

// computeOperation is a command that starts an operation on compute -n
// NAME and follows it to its end (--no-wait: prints it at once).
func (a *app) computeOperation(use, short string, start func(ctx context.Context, c *client.Client, ws, name string) (*api.Operation, error)) *cobra.Command {
	var noWait bool
	cmd := a.namedCommand("compute", use, short, func(cmd *cobra.Command, c *client.Client, ws, name string) error {
		op, err := start(cmd.Context(), c, ws, name)
		if err != nil {
			return err
		}
		return a.runOperation(cmd.Context(), c, ws, op, noWait)
	})
	cmd.Flags().BoolVar(&noWait, "no-wait", false, "return at once with the operation id")
	return cmd
}

func (a *app) computeCredentials() *cobra.Command {
	var file string
	cmd := a.namedCommand("compute", "get-credentials -n NAME [-f FILE]", "Print (or write to a file, mode 0600) the compute's kubeconfig; owners only",
		func(cmd *cobra.Command, c *client.Client, ws, name string) error {
			cred, err := c.GetCredentials(cmd.Context(), ws, name)
			if err != nil {
				return err
			}
			if file == "" {
				_, err := fmt.Fprint(a.stdout, cred)
				return err
			}
			if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
				return err
			}
			if err := os.WriteFile(file, []byte(cred), 0o600); err != nil {
				return err
			}
			fmt.Fprintf(a.stderr, "Wrote the credentials of %s to %s\n", name, file)
			return nil
		})
	cmd.Flags().StringVarP(&file, "file", "f", "", "write to this file (mode 0600) instead of standard output")
	return cmd
}
