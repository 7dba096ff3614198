package cli

import (
	"fmt"

	"github.com/berth-ml/berth/internal/cli/config"

	"github.com/berth-ml/berth/api"
	"github.com/spf13/cobra"
)

func (a *app) tokenCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "token", Short: "Manage API tokens (owners only)"}
	var role, description string
	create := &cobra.Command{
		Use:   "create --role owner|contributor|reader [-w WORKSPACE]",
		Short: "Create a token; it is printed once, as field token",
		Long: `Create an API token. Readers can show and list; contributors can also create,
attach, update, detach and deploy, and read replica logs; owners can also read credentials, certificate
keys, service keys and scoring tokens, and manage tokens. With -w the token only
works in that workspace (and, for an owner, manages only that workspace's tokens).
The token is printed once (field "token"): store it now.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			scope := "from -w"
			if a.workspace == "" {
				scope = "from " + config.EnvWorkspace
				if a.getenv(config.EnvWorkspace) == "" {
					scope = "the workspace of your context; -w names another"
				}
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			if a.workspace == "" {
				fmt.Fprintln(a.stderr, "Scope: every workspace (no -w, BERTH_WORKSPACE or context workspace)")
			} else {
				fmt.Fprintf(a.stderr, "Scope: workspace %s (%s)\n", a.workspace, scope)
			}
			t, err := c.CreateToken(cmd.Context(), api.TokenCreateRequest{Role: role, Workspace: a.workspace, Description: description})
			if err != nil {
				return err
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
	create.Flags().StringVar(&description, "description", "", "what the token is for")
	create.RegisterFlagCompletionFunc("role", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return []string{"owner", "contributor", "reader"}, cobra.ShellCompDirectiveNoFileComp
	})
	list := &cobra.Command{
		Use: "list", Short: "List tokens (never their secrets)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			ts, err := c.ListTokens(cmd.Context())
			if err != nil {
				return err
			}
			return a.print(ts, tokenColumns)
		},
	}
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
