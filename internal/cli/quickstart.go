package cli

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/berth-ml/berth/api"
	"github.com/berth-ml/berth/client"
	"github.com/berth-ml/berth/internal/cli/config"
	"github.com/spf13/cobra"
)

// DefaultWorkspace is the workspace quickstart makes.
const DefaultWorkspace = "default"

func (a *app) quickstartCommand() *cobra.Command {
	var dataDir string
	cmd := &cobra.Command{
		Use:   "quickstart",
		Short: "Run Berth on its embedded defaults: a local control plane and the default workspace",
		Long: `Run Berth's main job on its embedded defaults, with nothing else installed.

If a Berth server already answers at the configured address it is used;
otherwise a control plane is started in this process on the data directory
(SQLite store, owner token in DATA_DIR/admin.token) and stopped at the end.
The workspace "default" is created if missing and shown with its computes.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			dir := a.dataDir(dataDir)
			c, err := a.client()
			if err == nil {
				err = c.Healthy(ctx)
			}
			if err != nil {
				fmt.Fprintf(a.stderr, "Starting a local Berth control plane (data in %s)\n", dir)
				log := slog.New(slog.NewTextHandler(io.Discard, nil))
				addr, stop, serr := serveLocal(ctx, dir, log)
				if serr != nil {
					return serr
				}
				defer stop()
				tok, rerr := os.ReadFile(filepath.Join(dir, config.AdminTokenFile))
				if rerr != nil {
					return fmt.Errorf("read the owner token: %w (was this data directory made by another database?)", rerr)
				}
				if c, err = client.New(addr, string(trimNL(tok))); err != nil {
					return err
				}
			} else {
				fmt.Fprintf(a.stderr, "Using the Berth server at %s\n", c.Server())
			}
			ws := a.workspace
			if ws == "" {
				ws = DefaultWorkspace
			}
			if _, err := c.GetWorkspace(ctx, ws); errors.Is(err, client.ErrNotFound) {
				if _, err := c.CreateWorkspace(ctx, api.WorkspaceCreateRequest{Name: ws}); err != nil {
					return err
				}
				fmt.Fprintf(a.stderr, "Created workspace %q\n", ws)
			} else if err != nil {
				return err
			}
			w, err := c.GetWorkspace(ctx, ws)
			if err != nil {
				return err
			}
			if a.format != "table" || a.query != "" {
				return a.print(w, nil)
			}
			fmt.Fprintf(a.stdout, "Workspace %s (region %s)\n", w.Name, w.Region)
			if len(w.Computes) == 0 {
				fmt.Fprintln(a.stdout, "Computes: none yet")
			} else {
				fmt.Fprintln(a.stdout, "Computes:")
				if err := a.print(w.Computes, computeColumns); err != nil {
					return err
				}
			}
			fmt.Fprintf(a.stdout, "\nNext: run the control plane with `berth server` and use `berth compute list -w %s`.\n", w.Name)
			return nil
		},
	}
	cmd.Flags().StringVar(&dataDir, "data-dir", "", "data directory (env BERTH_DATA_DIR; default ~/.berth/data)")
	return cmd
}

func trimNL(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r' || b[len(b)-1] == ' ') {
		b = b[:len(b)-1]
	}
	return b
}
