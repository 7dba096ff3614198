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
	var name string
	cmd := &cobra.Command{
		Use: "show -n NAME", Short: "Show a compute target", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, ws, err := a.computeTarget(name)
			if err != nil {
				return err
			}
			comp, err := c.GetCompute(cmd.Context(), ws, name)
			if err != nil {
				return err
			}
			return a.print(comp, computeShowColumns)
		},
	}
	cmd.Flags().StringVarP(&name, "name", "n", "", "compute name")
	return cmd
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
	var name string
	cmd := &cobra.Command{
		Use:   "wait -n NAME",
		Short: "Wait for a compute's current operation to end, showing its events",
		Long: `Wait for the compute's operation in progress (or, if none, report its latest
one) and print the compute at the end. Exits non-zero if the operation failed.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, ws, err := a.computeTarget(name)
			if err != nil {
				return err
			}
			ops, err := c.ListComputeOperations(cmd.Context(), ws, name)
			if err != nil {
				return err
			}
			if len(ops) == 0 {
				return fmt.Errorf("compute %q has no operations", name)
			}
			return a.finishOperation(cmd.Context(), c, ws, &ops[0])
		},
	}
	cmd.Flags().StringVarP(&name, "name", "n", "", "compute name")
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
	var (
		name   string
		noWait bool
	)
	cmd := &cobra.Command{Use: use, Short: short, Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, ws, err := a.computeTarget(name)
			if err != nil {
				return err
			}
			op, err := start(cmd.Context(), c, ws, name)
			if err != nil {
				return err
			}
			return a.runOperation(cmd.Context(), c, ws, op, noWait)
		},
	}
	cmd.Flags().StringVarP(&name, "name", "n", "", "compute name")
	cmd.Flags().BoolVar(&noWait, "no-wait", false, "return at once with the operation id")
	return cmd
}

func (a *app) computeCredentials() *cobra.Command {
	var name, file string
	cmd := &cobra.Command{
		Use:   "get-credentials -n NAME [-f FILE]",
		Short: "Print (or write to a file, mode 0600) the compute's kubeconfig; owners only",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, ws, err := a.computeTarget(name)
			if err != nil {
				return err
			}
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
		},
	}
	cmd.Flags().StringVarP(&name, "name", "n", "", "compute name")
	cmd.Flags().StringVarP(&file, "file", "f", "", "write to this file (mode 0600) instead of standard output")
	return cmd
}

// computeTarget checks a command naming a compute has what it needs: the
// name, a client and a workspace.
func (a *app) computeTarget(name string) (*client.Client, string, error) {
	return a.inWorkspace("compute", name)
}
