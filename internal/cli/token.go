package cli

import (
	"context"
	"fmt"
	"github.com/berth-ml/berth/client"

	"github.com/berth-ml/berth/internal/cli/config"

	"github.com/berth-ml/berth/api"
	"github.com/spf13/cobra"
)

func (a *app) tokenCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "token", Short: "Manage API tokens (owners only)"}
	var role, description string
	var all bool
	create := &cobra.Command{
		Use:   "create --role owner|contributor|reader [-w WORKSPACE | --all-workspaces]",
		Short: "Create a token; it is printed once, as field token",
		Long: `Create an API token. Readers can show and list; contributors can also create,
attach, update, detach and deploy, and read replica logs; owners can also read credentials, certificate
keys, service keys and scoring tokens, and manage tokens. With -w the token only
works in that workspace (and, for an owner, manages only that workspace's tokens);
without -w, BERTH_WORKSPACE or the context's workspace scopes it the same way,
and --all-workspaces makes a token for every workspace. The scope is printed.
The token is printed once (field "token"): store it now.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			from := "-w"
			if a.workspace == "" {
				from = config.EnvWorkspace
				if a.getenv(config.EnvWorkspace) == "" {
					from = "your context's workspace"
				}
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			ws := a.workspace
			if all {
				ws = ""
			}
			t, err := c.CreateToken(cmd.Context(), api.TokenCreateRequest{Role: role, Workspace: ws, Description: description})
			if err != nil {
				return err
			}
			if t.Workspace == "" {
				fmt.Fprintln(a.stderr, "Scope: every workspace")
			} else {
				fmt.Fprintf(a.stderr, "Scope: workspace %s (from %s; --all-workspaces makes a token for every workspace)\n", t.Workspace, from)
			}
			if a.format == "table" && a.query == "" {
				fmt.Fprintf(a.stdout, "Token %s (%s", t.ID, t.Role)
				if t.Workspace != "" {
					fmt.Fprintf(a.stdout, ", workspace %s", t.Workspace)
				}
				fmt.Fprintf(a.stdout, "); it is shown only this once:\n%s\n", t.Secret)
				return nil
			}
			return a.print(t, nil)
		},
	}
	create.Flags().StringVar(&role, "role", "", "owner, contributor or reader")
	create.MarkFlagRequired("role")
	create.Flags().BoolVar(&all, "all-workspaces", false, "a token for every workspace, whatever -w, BERTH_WORKSPACE or the context say")
	create.Flags().StringVar(&description, "description", "", "what the token is for")
	create.RegisterFlagCompletionFunc("role", fixedCompletion("owner", "contributor", "reader"))
	list := a.printCommand(&cobra.Command{Use: "list", Short: "List tokens (never their secrets)", Args: cobra.NoArgs}, false,
		func(ctx context.Context, c *client.Client, _ string, _ []string) (any, error) {
			return c.ListTokens(ctx)
		}, tokenColumns)
	revoke := &cobra.Command{
		Use: "revoke ID", Short: "Revoke a token", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			if err := c.RevokeToken(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "Revoked token %s\n", args[0])
			return nil
		},
	}
	cmd.AddCommand(create, list, revoke)
	return cmd
}
