// Package cli is the berth command line: cobra commands that drive a Berth
// server through the Go SDK (package client), print what the API returns in
// the format asked for, and follow long operations until they end.
package cli

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"github.com/berth-ml/berth/internal/provider"
	"io"
	"net/http"
	"strings"

	"github.com/berth-ml/berth/client"
	"github.com/berth-ml/berth/internal/cli/config"
	"github.com/berth-ml/berth/internal/cli/output"
	"github.com/berth-ml/berth/internal/version"
	"github.com/spf13/cobra"
)

// Exit codes scripts can rely on.
const (
	ExitOK          = 0
	ExitFailed      = 1
	ExitUsage       = 2
	ExitInterrupted = 130
)

// exitError carries an exit code up to Execute.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func usageErrorf(format string, args ...any) error {
	return &exitError{code: ExitUsage, err: fmt.Errorf(format, args...)}
}

// app is the state shared by all commands of one invocation.
type app struct {
	stdout, stderr io.Writer
	getenv         func(string) string

	server, token, workspace, contextName string
	output, query                         string
	configPath                            string
	// resourceGroup is the reference's -g RG of compute commands.
	resourceGroup  string
	verbose, debug bool
	// tokenSource is where client found the token ("none" when nowhere).
	tokenSource string

	format output.Format
	// flags writes the API's problems in terms of the running command's flags.
	flags *flagNames
	// providers are compute types `berth server` offers beside the built-in ones.
	providers []provider.Provider
}

// Execute runs the berth command line with args and returns the exit code.
// Providers are compute types its server offers beside the built-in ones.
func Execute(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string, providers ...provider.Provider) int {
	a := &app{stdout: stdout, stderr: stderr, getenv: getenv, providers: providers}
	root := a.rootCommand()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return ExitOK
	}
	code := ExitFailed
	if ee, ok := errors.AsType[*exitError](err); ok {
		code = ee.code
		err = ee.err
	}
	if err != nil {
		a.printError(err)
	}
	return code
}

// errSilent ends a command with a code and nothing more to print.
var errSilent = errors.New("")

func (a *app) printError(err error) {
	if errors.Is(err, errSilent) {
		return
	}
	if ce, ok := errors.AsType[*client.Error](err); ok {
		f := a.flagNames()
		msg := f.message(ce.Body.Message)
		if len(ce.Body.Details) == 1 && ce.Body.Details[0].Message == ce.Body.Message {
			msg = f.detail(ce.Body.Details[0])
		}
		fmt.Fprintf(a.stderr, "Error: %s (%s)\n", msg, ce.Body.Code)
		for _, d := range ce.Body.Details {
			if len(ce.Body.Details) == 1 && d.Message == ce.Body.Message {
				break
			}
			fmt.Fprintf(a.stderr, "  - %s\n", f.detail(d))
		}
		if errors.Is(err, client.ErrUnauthorized) && a.tokenSource == "none" {
			fmt.Fprintf(a.stderr, "  no token was found: a local server writes its owner token to admin.token in its data directory;\n"+
				"  if it runs with another --data-dir, set BERTH_DATA_DIR to it, or pass the token with BERTH_TOKEN / --token\n")
		}
		return
	}
	fmt.Fprintf(a.stderr, "Error: %s\n", err)
	if errors.Is(err, client.ErrUnreachable) {
		fmt.Fprintf(a.stderr, "  start one with `berth server`, or set BERTH_SERVER / --server\n")
	}
}

func (a *app) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "berth",
		Short: "Run machine-learning inference on Kubernetes clusters you own",
		Long: `Berth creates or attaches inference clusters, installs a scoring front end on
each, and deploys models to them as authenticated, autoscaled scoring services.

Start a local control plane with 'berth server'; the other commands talk to it.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			f, err := output.ParseFormat(a.output)
			if err != nil {
				return usageErrorf("%v", err)
			}
			a.format = f
			a.flags = flagNamesFor(cmd.CommandPath())
			a.warnDeprecated(cmd)
			if err := cmd.ValidateRequiredFlags(); err != nil {
				return usageErrorf("%v\nRun '%s --help' for usage.", err, cmd.CommandPath())
			}
			if err := cmd.ValidateFlagGroups(); err != nil {
				return usageErrorf("%v\nRun '%s --help' for usage.", err, cmd.CommandPath())
			}
			return nil
		},
	}
	setVersionFlag(root)
	root.SetFlagErrorFunc(flagError)
	pf := root.PersistentFlags()
	pf.StringVar(&a.server, "server", "", "Berth server address (env BERTH_SERVER; default "+config.DefaultServer+")")
	pf.StringVar(&a.token, "token", "", "API token (env BERTH_TOKEN; a local server's admin.token is used when unset)")
	pf.StringVar(&a.contextName, "context", "", "context of the config file to use (env BERTH_CONTEXT)")
	pf.StringVarP(&a.workspace, "workspace", "w", "", "workspace (env BERTH_WORKSPACE)")
	pf.StringVarP(&a.output, "output", "o", "table", "output format: table, json, yaml, tsv or none")
	pf.StringVar(&a.query, "query", "", "JMESPath query applied to the output (as in the az CLI)")
	pf.StringVar(&a.configPath, "config", "", "config file (env BERTH_CONFIG; default ~/.berth/config.yaml)")
	pf.BoolVar(&a.verbose, "verbose", false, "show an operation's id, the time of each of its events and how long it took")
	pf.BoolVar(&a.debug, "debug", false, "write every HTTP request and answer to standard error (tokens and keys redacted)")
	root.RegisterFlagCompletionFunc("output", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return []string{"table", "json", "yaml", "tsv", "none"}, cobra.ShellCompDirectiveNoFileComp
	})
	root.AddCommand(a.serverCommand(), a.workspaceCommand(), a.computeCommand(), a.tokenCommand(), a.configCommand(), a.versionCommand(), a.quickstartCommand(), a.versionsCommand(), a.frontendCommand(), a.operationCommand(), a.modelCommand(), a.modelServerCommand(), a.modelInitCommand(), a.serviceCommand(), a.endpointCommand(), a.replicaExecCommand(), a.azAKSCommand())
	for _, c := range extraCommands {
		root.AddCommand(c(a))
	}
	root.RegisterFlagCompletionFunc("workspace", a.completeNames("workspaces", false))
	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd()
	a.finishTree(root)
	return root
}

// extraCommands lets build-tagged files add commands (tests only).
var extraCommands []func(a *app) *cobra.Command

func (a *app) configFile() string {
	return cmp.Or(a.configPath, a.getenv(config.EnvConfig), config.DefaultPath())
}

// client resolves server and token (flags > environment > context >
// defaults) and returns an SDK client.
func (a *app) client() (*client.Client, error) {
	f, err := config.Load(a.configFile())
	if err != nil {
		return nil, err
	}
	r := config.Resolve(config.Overrides{Server: a.server, Token: a.token, Workspace: a.workspace, Context: a.contextName}, a.getenv, f)
	if r.Err != nil {
		return nil, r.Err
	}
	a.workspace = cmp.Or(a.workspace, r.Workspace)
	a.tokenSource = r.TokenSource
	c, err := client.New(r.Server, r.Token)
	if err != nil {
		return nil, err
	}
	c.WithHTTPClient(a.httpClient(nil))
	c.UserAgent = "berth-cli/" + version.Get().Version
	return c, nil
}

// inWorkspace returns a client and the workspace (from -w,
// BERTH_WORKSPACE or the context) for a command on a workspace's
// resources; with a kind, the command's -n NAME is required too.
func (a *app) inWorkspace(kind, name string) (*client.Client, string, error) {
	if kind != "" {
		if err := requireName(name, kind); err != nil {
			return nil, "", err
		}
	}
	c, err := a.client()
	if err != nil {
		return nil, "", err
	}
	if a.workspace == "" {
		return nil, "", usageErrorf("no workspace: pass -w WORKSPACE, set BERTH_WORKSPACE, or set one on your context (berth config set-context)")
	}
	if err := a.checkResourceGroup(c, a.workspace); err != nil {
		return nil, "", err
	}
	return c, a.workspace, nil
}

// listCommand is a `list` that prints what list fetches from the workspace.
func (a *app) listCommand(short string, list func(ctx context.Context, c *client.Client, ws string) (any, error), cols []output.Column) *cobra.Command {
	return a.printCommand(&cobra.Command{Use: "list", Short: short, Args: cobra.NoArgs}, true,
		func(ctx context.Context, c *client.Client, ws string, _ []string) (any, error) {
			return list(ctx, c, ws)
		}, cols)
}

// printCommand makes cmd print what get fetches with its arguments: in the
// workspace (-w) when inWorkspace is set, else with the client alone.
func (a *app) printCommand(cmd *cobra.Command, inWorkspace bool, get func(ctx context.Context, c *client.Client, ws string, args []string) (any, error), cols []output.Column) *cobra.Command {
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		var c *client.Client
		var ws string
		var err error
		if inWorkspace {
			c, ws, err = a.inWorkspace("", "")
		} else {
			c, err = a.client()
		}
		if err != nil {
			return err
		}
		v, err := get(cmd.Context(), c, ws, args)
		if err != nil {
			return err
		}
		return a.print(v, cols)
	}
	return cmd
}

// namedCommand is a command on the workspace's kind -n NAME: run gets
// the client, the workspace and the name.
func (a *app) namedCommand(kind, use, short string, run func(cmd *cobra.Command, c *client.Client, ws, name string) error) *cobra.Command {
	var name string
	cmd := &cobra.Command{Use: use, Short: short, Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, ws, err := a.inWorkspace(kind, name)
			if err != nil {
				return err
			}
			return run(cmd, c, ws, name)
		}}
	cmd.Flags().StringVarP(&name, "name", "n", "", kind+" name")
	return cmd
}

// showCommand prints what show fetches of the workspace's kind -n NAME.
func (a *app) showCommand(kind, use, short string, show func(ctx context.Context, c *client.Client, ws, name string) (any, error), cols []output.Column) *cobra.Command {
	return a.namedCommand(kind, use, short, func(cmd *cobra.Command, c *client.Client, ws, name string) error {
		v, err := show(cmd.Context(), c, ws, name)
		if err != nil {
			return err
		}
		return a.print(v, cols)
	})
}

// httpClient is an HTTP client with these TLS settings (nil: the
// defaults) that writes its requests to stderr under --debug.
func (a *app) httpClient(tlsConfig *tls.Config) *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.TLSClientConfig = tlsConfig
	if !a.debug {
		return &http.Client{Transport: t}
	}
	return &http.Client{Transport: &debugTransport{w: a.stderr, next: t}}
}

// print writes v in the chosen format.
func (a *app) print(v any, cols []output.Column) error {
	return output.Print(a.stdout, v, a.format, a.query, cols)
}

var computeColumns = []output.Column{
	{Header: "Name", Path: "name"},
	{Header: "Type", Path: "type"},
	{Header: "Purpose", Path: "clusterPurpose"},
	{Header: "ProvisioningState", Path: "provisioningState"},
	{Header: "Health", Path: "health"},
	// The local compute's front end listens on a loopback address.
	{Header: "LoadBalancer", Path: "type == 'local' && 'Loopback' || loadBalancerType"},
	{Header: "SSL", Path: "sslConfiguration.status"},
	{Header: "Endpoint", Path: "endpoint"},
	{Header: "KubernetesVersion", Path: "kubernetesVersion"},
	{Header: "Nodes", Path: "nodeCount"},
}

var workspaceColumns = []output.Column{
	{Header: "Name", Path: "name"},
	{Header: "Region", Path: "region"},
	{Header: "CreatedAt", Path: "createdAt"},
}

var operationColumns = []output.Column{
	{Header: "Id", Path: "id"},
	{Header: "Kind", Path: "kind"},
	{Header: "Target", Path: "targetName"},
	{Header: "State", Path: "state"},
	{Header: "Step", Path: "step"},
	{Header: "Error", Path: "error.message"},
}

var tokenColumns = []output.Column{
	{Header: "Id", Path: "id"},
	{Header: "Role", Path: "role"},
	{Header: "Workspace", Path: "workspace"},
	{Header: "Description", Path: "description"},
	{Header: "CreatedAt", Path: "createdAt"},
	{Header: "LastUsedAt", Path: "lastUsedAt"},
}

// requireName checks -n was given.
func requireName(name, what string) error {
	if strings.TrimSpace(name) == "" {
		return usageErrorf("the %s name is required: give it as the argument or with -n NAME", what)
	}
	return nil
}

// flagNames is the running command's table (none before one runs).
func (a *app) flagNames() *flagNames {
	if a.flags == nil {
		return flagNamesFor("")
	}
	return a.flags
}
