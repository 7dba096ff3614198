package cli

import (
	"cmp"
	"context"
	"github.com/berth-ml/berth/api"
	"github.com/berth-ml/berth/client"
	"github.com/spf13/cobra"
)

func (a *app) workspaceCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "workspace", Aliases: []string{"ws"}, Short: "Manage workspaces"}
	var name, region string
	var settings settingsFlags
	// named is the client for a command on workspace -n NAME.
	named := func() (*client.Client, error) {
		if err := requireName(name, "workspace"); err != nil {
			return nil, err
		}
		return a.client()
	}
	create := &cobra.Command{
		Use: "create -n NAME [--region R]", Short: "Create a workspace", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := named()
			if err != nil {
				return err
			}
			st, err := settings.settings()
			if err != nil {
				return err
			}
			ws, err := c.CreateWorkspace(cmd.Context(), api.WorkspaceCreateRequest{Name: name, Region: region, Settings: st})
			if err != nil {
				return err
			}
			return a.print(ws, workspaceColumns)
		},
	}
	create.Flags().StringVarP(&name, "name", "n", "", "workspace name")
	create.Flags().StringVar(&region, "region", "", "region, used as the default location of created clusters (default local)")
	settings.register(create.Flags())

	show := &cobra.Command{
		Use: "show [-n NAME]", Short: "Show a workspace with its computes (default: the one of -w, BERTH_WORKSPACE or the context)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			n := cmp.Or(name, a.workspace)
			if n == "" {
				return usageErrorf("the workspace name is required: -n NAME")
			}
			ws, err := c.GetWorkspace(cmd.Context(), n)
			if err != nil {
				return err
			}
			if a.format == "table" && a.query == "" {
				if err := a.print(ws, workspaceColumns); err != nil {
					return err
				}
				if len(ws.Computes) == 0 {
					a.stdout.Write([]byte("\nNo computes yet.\n"))
					return nil
				}
				a.stdout.Write([]byte("\nComputes:\n"))
				return a.print(ws.Computes, computeColumns)
			}
			return a.print(ws, workspaceColumns)
		},
	}
	show.Flags().StringVarP(&name, "name", "n", "", "workspace name (default: -w, BERTH_WORKSPACE or the context's workspace)")
	list := a.printCommand(&cobra.Command{Use: "list", Short: "List workspaces", Args: cobra.NoArgs}, false,
		func(ctx context.Context, c *client.Client, _ string, _ []string) (any, error) {
			return c.ListWorkspaces(ctx)
		}, workspaceColumns)
	del := &cobra.Command{
		Use: "delete -n NAME", Short: "Delete an empty workspace", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := named()
			if err != nil {
				return err
			}
			if err := c.DeleteWorkspace(cmd.Context(), name); err != nil {
				return err
			}
			a.stdout.Write([]byte("Deleted workspace " + name + "\n"))
			return nil
		},
	}
	del.Flags().StringVarP(&name, "name", "n", "", "workspace name")
	cmd.AddCommand(create, show, list, del, a.workspaceUpdate())
	return cmd
}
