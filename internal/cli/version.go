package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/berth-ml/berth/api"
	"github.com/berth-ml/berth/client"
	"github.com/berth-ml/berth/internal/cli/config"
	"github.com/berth-ml/berth/internal/version"
	"github.com/spf13/cobra"
)

// versionTimeout bounds asking the server for its version.
const versionTimeout = 10 * time.Second

// versionOutput is what `berth version` prints: the CLI's build and, unless
// --client, the server's (absent when the server could not tell it).
type versionOutput struct {
	Client api.BuildInfo  `json:"client"`
	Server *api.BuildInfo `json:"server,omitempty"`
}

// clientBuild is this binary's build, in the API's shape.
func clientBuild() api.BuildInfo {
	v := version.Get()
	return api.BuildInfo{Version: v.Version, Commit: v.Commit, GoVersion: v.GoVersion, Platform: v.Platform, APIVersion: api.Version}
}

// buildLine is one build on one line: "0.3.0 (commit abc…, go1.26.0, linux/amd64)".
func buildLine(b api.BuildInfo) string {
	var parts []string
	if b.Commit != "" {
		parts = append(parts, "commit "+b.Commit)
	}
	parts = append(parts, b.GoVersion, b.Platform)
	return b.Version + " (" + strings.Join(parts, ", ") + ")"
}

// setVersionFlag gives the root command --version (and -v): the client's
// version line, without reaching any server. Cobra prints "berth version "
// and Version; no custom template, which would bring in text/template and
// stop the linker from dropping unused methods (the binary grew by 60 %).
func setVersionFlag(root *cobra.Command) {
	root.Version = buildLine(clientBuild())
}

func (a *app) versionCommand() *cobra.Command {
	var clientOnly bool
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the versions of berth and of the server it talks to",
		Long: `Print this client's version, commit and Go version, and the server's, with
the front-end image the server installs into clusters (after a server
upgrade, 'berth compute reconcile' rolls each cluster's front end to it).

The server's part needs no token. When the server cannot be reached (or
does not tell its version) the client's part is still printed, the error
follows on stderr and the exit code is 1, as with kubectl version; when no
server is named at all (no --server, BERTH_SERVER or context) and none runs
at the default address, that is said on stderr and the exit code is 0.
--client prints the client's part only and never reaches a server.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			out := versionOutput{Client: clientBuild()}
			var serverErr error
			addr := ""
			if !clientOnly {
				out.Server, addr, serverErr = a.serverVersion(cmd.Context())
				if errors.Is(serverErr, errUnreachable) && !a.serverNamed() {
					// Nobody asked about a server (say, in a container of
					// Berth's image): the client's version is the answer.
					fmt.Fprintf(a.stderr, "No server: none is named and none runs at %s (start one with 'berth server', or name one with --server, BERTH_SERVER or a context)\n", addr)
					serverErr = nil
				}
			}
			if a.format == "table" && a.query == "" {
				fmt.Fprintf(a.stdout, "Client Version: %s\n", buildLine(out.Client))
				if out.Server != nil {
					fmt.Fprintf(a.stdout, "Server Version: %s at %s\n", buildLine(*out.Server), addr)
					if out.Server.FrontendImage != "" {
						fmt.Fprintf(a.stdout, "Front-end image: %s\n", out.Server.FrontendImage)
					}
				}
			} else if err := a.print(out, nil); err != nil {
				return err
			}
			return serverErr
		},
	}
	cmd.Flags().BoolVar(&clientOnly, "client", false, "print the client's version only (no server is asked)")
	return cmd
}

// errUnreachable marks a server that did not answer.
var errUnreachable = errors.New("the server is unreachable")

// serverNamed tells whether the user named a server (flag, environment or
// a context) rather than leaving the default.
func (a *app) serverNamed() bool {
	if a.server != "" || a.getenv(config.EnvServer) != "" {
		return true
	}
	f, err := config.Load(a.configFile())
	if err != nil {
		return true
	}
	r := config.Resolve(config.Overrides{Context: a.contextName}, a.getenv, f)
	return r.Server != config.DefaultServer
}

// serverVersion asks the configured server for its version; the error
// says whether the server was unreachable or answered without it.
func (a *app) serverVersion(ctx context.Context) (*api.BuildInfo, string, error) {
	c, err := a.client()
	if err != nil {
		return nil, "", fmt.Errorf("the server's version is unknown: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, versionTimeout)
	defer cancel()
	b, err := c.ServerVersion(ctx)
	var ce *client.Error
	switch {
	case errors.As(err, &ce):
		return nil, c.Server(), fmt.Errorf("the server at %s did not tell its version: %s (%s; servers before GET /api/v1/version answer 404)", c.Server(), ce.Body.Message, ce.Body.Code)
	case err != nil:
		return nil, c.Server(), fmt.Errorf("%w: %w", errUnreachable, err)
	}
	return b, c.Server(), nil
}
