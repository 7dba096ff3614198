package cli

import (
	"cmp"
	"fmt"

	"github.com/berth-ml/berth/internal/cli/config"
	"github.com/berth-ml/berth/internal/cli/output"
	"github.com/spf13/cobra"
)

func (a *app) configCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "config", Short: "Manage contexts (server, token, default workspace) in ~/.berth/config.yaml"}
	var server, token, workspace string
	set := &cobra.Command{
		Use: "set-context NAME [--server URL] [--token T] [--default-workspace W]", Short: "Add or change a context",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path, err := a.editConfig(func(f *config.File) error {
				ctx := config.Context{Name: args[0]}
				if old := f.Get(args[0]); old != nil {
					ctx = *old
				}
				if cmd.Flags().Changed("server") {
					ctx.Server = server
				}
				if cmd.Flags().Changed("token") {
					ctx.Token = token
				}
				if cmd.Flags().Changed("default-workspace") {
					ctx.Workspace = workspace
				}
				f.Set(ctx)
				f.CurrentContext = cmp.Or(f.CurrentContext, ctx.Name)
				return nil
			})
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "Context %q saved in %s\n", args[0], path)
			return nil
		},
	}
	set.Flags().StringVar(&server, "server", "", "server address")
	set.Flags().StringVar(&token, "token", "", "API token (stored in the file, mode 0600)")
	set.Flags().StringVar(&workspace, "default-workspace", "", "default workspace")
	use := &cobra.Command{
		Use: "use-context NAME", Short: "Make a context the current one", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, err := a.editConfig(func(f *config.File) error { return f.Use(args[0]) }); err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "Switched to context %q\n", args[0])
			return nil
		},
	}
	get := &cobra.Command{
		Use: "get-contexts", Short: "List contexts (tokens are not printed)", Args: cobra.NoArgs,
		SuggestFor: []string{"view"},
		RunE: func(cmd *cobra.Command, _ []string) error {
			f, err := config.Load(a.configFile())
			if err != nil {
				return err
			}
			type row struct {
				Current   bool   `json:"current"`
				Name      string `json:"name"`
				Server    string `json:"server"`
				Workspace string `json:"workspace"`
				HasToken  bool   `json:"hasToken"`
			}
			rows := []row{}
			for _, c := range f.Contexts {
				rows = append(rows, row{Current: c.Name == f.CurrentContext, Name: c.Name, Server: c.Server, Workspace: c.Workspace, HasToken: c.Token != ""})
			}
			return a.print(rows, []output.Column{{Header: "Current", Path: "current"}, {Header: "Name", Path: "name"},
				{Header: "Server", Path: "server"}, {Header: "Workspace", Path: "workspace"}, {Header: "HasToken", Path: "hasToken"}})
		},
	}
	del := &cobra.Command{
		Use: "delete-context NAME", Short: "Remove a context", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			_, err := a.editConfig(func(f *config.File) error { return f.Delete(args[0]) })
			return err
		},
	}
	cmd.AddCommand(set, use, get, del)
	return cmd
}

// editConfig loads the config file, lets edit change it and saves it; it
// returns the file's path.
func (a *app) editConfig(edit func(f *config.File) error) (string, error) {
	path := a.configFile()
	f, err := config.Load(path)
	if err != nil {
		return path, err
	}
	if err := edit(f); err != nil {
		return path, err
	}
	return path, f.Save(path)
}
