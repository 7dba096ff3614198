package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/berth-ml/berth/api"
	"github.com/berth-ml/berth/client"
	"github.com/berth-ml/berth/internal/cli/output"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

var endpointColumns = []output.Column{
	{Header: "Name", Path: "name"},
	{Header: "Compute", Path: "compute"},
	{Header: "Auth", Path: "auth"},
	{Header: "Versions", Path: "versions[].join('', [name, ' ', to_string(traffic), '%'])"},
	{Header: "ScoringUri", Path: "scoringUri"},
}

var versionColumns = []output.Column{
	{Header: "Version", Path: "name"},
	{Header: "Traffic", Path: "traffic"},
	{Header: "Mirror", Path: "mirrorTraffic"},
	{Header: "Control", Path: "control"},
	{Header: "State", Path: "state"},
	{Header: "ReadyReplicas", Path: "readyReplicas"},
	{Header: "Service", Path: "service"},
}

func (a *app) endpointCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "endpoint", Short: "One scoring URI over several versions of a model: traffic split, canary, mirror"}
	cmd.Long = `An endpoint is one scoring URI, /api/v1/endpoint/NAME/score (and the OIP path
/v2/models/NAME/infer), with its own keys, over versions that each take a share
of the traffic. A version is a service (deployed with service deploy's flags);
promoting one is a single traffic change. Pin a version with the request header
x-berth-version: V; every answer names the version that served it in the same
header. See docs/endpoints.md.`
	version := &cobra.Command{Use: "version", Short: "Add, change and delete an endpoint's versions"}
	version.AddCommand(a.endpointVersionAdd(), a.endpointVersionUpdate(), a.endpointVersionDelete())
	cmd.AddCommand(a.endpointCreate(), a.endpointShow(), a.endpointList(), a.endpointUpdate(), a.endpointDelete(),
		a.endpointScore(), a.endpointLogsData(), version)
	cmd.AddCommand(a.keyCommands("endpoint", "an endpoint", "; versions are not touched", keyClient{(*client.Client).EndpointKeys, (*client.Client).RegenEndpointKey, (*client.Client).EndpointToken})...)
	return cmd
}

func (a *app) endpointCreate() *cobra.Command {
	var compute, auth string
	cmd := a.showCommand("endpoint", "create -n NAME --compute C [--auth key|token|none]", "Create an endpoint: its scoring URI and keys, with no versions yet",
		func(ctx context.Context, c *client.Client, ws, name string) (any, error) {
			return c.CreateEndpoint(ctx, ws, api.EndpointRequest{Name: name, Compute: compute, Auth: auth})
		}, endpointColumns)
	cmd.Flags().StringVar(&compute, "compute", "", "the compute whose front end serves it (its versions run there)")
	cmd.MarkFlagRequired("compute")
	cmd.Flags().StringVar(&auth, "auth", "", "key (default), token or none; the endpoint's, whatever its versions")
	return cmd
}

func (a *app) endpointShow() *cobra.Command {
	return a.namedCommand("endpoint", "show -n NAME", "Show an endpoint and its versions' traffic and state",
		func(cmd *cobra.Command, c *client.Client, ws, name string) error {
			e, err := c.GetEndpoint(cmd.Context(), ws, name)
			if err != nil {
				return err
			}
			return a.printEndpoint(e)
		})
}

// printEndpoint prints an endpoint; as a table, its versions under it.
func (a *app) printEndpoint(e *api.Endpoint) error {
	if a.format != "table" || a.query != "" {
		return a.print(e, endpointColumns)
	}
	fmt.Fprintf(a.stdout, "Endpoint %s on compute %s (auth %s)\nScoring URI: %s\n\n", e.Name, e.Compute, e.Auth, e.ScoringURI)
	if len(e.Versions) == 0 {
		_, err := fmt.Fprintf(a.stdout, "No versions yet: add one with `berth endpoint version add -e %s --version-name v1 --model …`\n", e.Name)
		return err
	}
	return a.print(e.Versions, versionColumns)
}

func (a *app) endpointList() *cobra.Command {
	return a.listCommand("List endpoints", func(ctx context.Context, c *client.Client, ws string) (any, error) {
		return c.ListEndpoints(ctx, ws)
	}, endpointColumns)
}

// parseTraffic reads v1=90,v2=10.
func parseTraffic(s string) (map[string]int, error) {
	out := map[string]int{}
	for _, part := range strings.Split(s, ",") {
		name, pct, ok := strings.Cut(strings.TrimSpace(part), "=")
		n, err := strconv.Atoi(strings.TrimSuffix(pct, "%"))
		if !ok || name == "" || err != nil {
			return nil, usageErrorf("--traffic %q: give VERSION=PERCENT pairs, as v1=90,v2=10", s)
		}
		out[name] = n
	}
	return out, nil
}

func (a *app) endpointUpdate() *cobra.Command {
	var traffic string
	cmd := a.namedCommand("endpoint", "update -n NAME --traffic V1=P,V2=P…", "Set several versions' traffic in one atomic change (the result must sum to 100)",
		func(cmd *cobra.Command, c *client.Client, ws, name string) error {
			t, err := parseTraffic(traffic)
			if err != nil {
				return err
			}
			ch, err := c.SetEndpointTraffic(cmd.Context(), ws, name, t)
			if err != nil {
				return err
			}
			return a.printEndpoint(&ch.Endpoint)
		})
	cmd.Flags().StringVar(&traffic, "traffic", "", "each version's percentage, as v1=90,v2=10 (versions not named keep theirs)")
	cmd.MarkFlagRequired("traffic")
	return cmd
}

func (a *app) endpointDelete() *cobra.Command {
	var noWait bool
	cmd := a.namedCommand("endpoint", "delete -n NAME", "Stop serving an endpoint and delete its versions' services",
		func(cmd *cobra.Command, c *client.Client, ws, name string) error {
			ch, err := c.DeleteEndpoint(cmd.Context(), ws, name)
			if err != nil {
				return err
			}
			return a.finishChange(cmd, c, ch, noWait, nil)
		})
	cmd.Flags().BoolVar(&noWait, "no-wait", false, "return at once; the versions' services are deleted in the background")
	return cmd
}

// finishChange waits for the operations a change of versions started
// (unless noWait), then prints the endpoint as it now is (show: fetched
// again; nil: as the change answered).
func (a *app) finishChange(cmd *cobra.Command, c *client.Client, ch *api.EndpointChange, noWait bool, show func() (*api.Endpoint, error)) error {
	if !noWait {
		for i := range ch.Operations {
			if _, err := a.follow(cmd.Context(), c, &ch.Operations[i], "berth operation events --follow "+ch.Operations[i].ID); err != nil {
				return err
			}
		}
	}
	e := &ch.Endpoint
	if show != nil && !noWait && len(ch.Operations) > 0 {
		var err error
		if e, err = show(); err != nil {
			return err
		}
	}
	if noWait && len(ch.Operations) > 0 {
		return a.print(ch.Operations, operationColumns)
	}
	return a.printEndpoint(e)
}

func (a *app) endpointScore() *cobra.Command {
	var data, file, pin string
	cmd := a.namedCommand("endpoint", "score -n NAME (--data JSON | --file F) [--version V]", "Send a scoring request to an endpoint and print its answer (stderr names the version that served it)",
		func(cmd *cobra.Command, c *client.Client, ws, name string) error {
			body, err := scoringBody(data, file)
			if err != nil {
				return err
			}
			e, err := c.GetEndpoint(cmd.Context(), ws, name)
			if err != nil {
				return err
			}
			sc, err := c.EndpointScorer(cmd.Context(), ws, e)
			if err != nil {
				return err
			}
			sc.HTTP, sc.Version = a.httpClient(sc.TLS), pin
			ans, err := sc.Score(cmd.Context(), body)
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stderr, "Answered by version %s.\n", ans.Version)
			if ans.StatusCode != http.StatusOK {
				return fmt.Errorf("scoring %s: HTTP %d: %s", e.ScoringURI, ans.StatusCode, ans.Body)
			}
			return a.printAnswer(ans.Body)
		})
	cmd.Flags().StringVar(&data, "data", "", "the request, as JSON")
	cmd.Flags().StringVarP(&file, "file", "f", "", "a file holding the request (- for standard input)")
	cmd.Flags().StringVar(&pin, "version", "", "send it to this version (x-berth-version) instead of by weight")
	cmd.MarkFlagsOneRequired("data", "file")
	cmd.MarkFlagsMutuallyExclusive("data", "file")
	return cmd
}

// versionFlags are the flags naming a version and its shares.
type versionFlags struct {
	endpoint, version string
	traffic, mirror   int
	control           bool
}

func (v *versionFlags) bind(cmd *cobra.Command, verb string) {
	f := cmd.Flags()
	f.StringVarP(&v.endpoint, "endpoint", "e", "", "the endpoint")
	f.StringVar(&v.version, "version-name", "", "the version's name (1-20 lowercase letters, digits, '-')")
	f.IntVar(&v.traffic, "traffic", 0, "the percentage of requests it serves ("+verb+")")
	f.IntVar(&v.mirror, "mirror-traffic", 0, "the percentage of requests also copied to it (its answers are thrown away)")
	f.BoolVar(&v.control, "control", false, "mark it the endpoint's control version (the one others are compared with)")
	cmd.MarkFlagRequired("endpoint")
	cmd.MarkFlagRequired("version-name")
	for _, n := range []string{"endpoint", "version-name", "traffic", "mirror-traffic", "control"} {
		f.SetAnnotation(n, ownFlag, []string{"version"})
	}
}

// ownFlag marks the flags an endpoint version command adds to service
// deploy's or update's (they are not service settings).
const ownFlag = "berth-own-flag"

// read notes which shares were given.
func (v *versionFlags) read(f *pflag.FlagSet) (traffic, mirror *int, control *bool) {
	if f.Changed("traffic") {
		traffic = &v.traffic
	}
	if f.Changed("mirror-traffic") {
		mirror = &v.mirror
	}
	if f.Changed("control") {
		control = &v.control
	}
	return
}

func (a *app) endpointVersionAdd() *cobra.Command {
	var v versionFlags
	cmd := a.deployCommand("add -e ENDPOINT --version-name V (--model NAME[:VERSION]... | --image I | --command C...) [--traffic P] [--mirror-traffic P] [--control]",
		"Deploy a version of an endpoint (service deploy's flags) with its share of the traffic",
		func(cmd *cobra.Command, name string, spec api.ServiceSpec, noWait bool) error {
			if name != "" || spec.Auth != "" || spec.Compute != "" {
				return usageErrorf("a version takes its name from --version-name, and its compute and auth from the endpoint: leave out -n, --compute and --auth")
			}
			c, ws, err := a.inWorkspace("endpoint", v.endpoint)
			if err != nil {
				return err
			}
			req := api.EndpointVersionRequest{Version: v.version, ServiceSpec: spec}
			req.Traffic, req.MirrorTraffic, req.Control = v.read(cmd.Flags())
			ch, err := c.AddEndpointVersion(cmd.Context(), ws, v.endpoint, req)
			if err != nil {
				return err
			}
			return a.finishChange(cmd, c, ch, noWait, func() (*api.Endpoint, error) { return c.GetEndpoint(cmd.Context(), ws, v.endpoint) })
		})
	v.bind(cmd, "default: 100 for the first version, else 0; others give or take the difference when only one other has traffic")
	for _, n := range []string{"name", "compute", "auth"} {
		cmd.Flags().MarkHidden(n)
	}
	delete(cmd.Flags().Lookup("compute").Annotations, cobra.BashCompOneRequiredFlag)
	return cmd
}

func (a *app) endpointVersionUpdate() *cobra.Command {
	var v versionFlags
	cmd := a.updateCommand("update -e ENDPOINT --version-name V [--traffic P] [--mirror-traffic P] [--control] [service update's flags]",
		"Change a version's traffic (one atomic change: --traffic 100 promotes it) and, with service settings, roll its service",
		func(cmd *cobra.Command) bool {
			return anyChanged(cmd.Flags(), "traffic", "mirror-traffic", "control")
		},
		func(cmd *cobra.Command, name string) (*client.Client, string, string, error) {
			if name != "" {
				return nil, "", "", usageErrorf("give the version with -e ENDPOINT --version-name V, not -n")
			}
			c, ws, err := a.inWorkspace("endpoint", v.endpoint)
			return c, ws, v.endpoint + "--" + v.version, err
		},
		func(cmd *cobra.Command, c *client.Client, ws, _ string, ch *api.ServiceSpec, noWait bool) error {
			req := api.EndpointVersionUpdate{}
			if ch != nil {
				req.ServiceSpec = *ch
			}
			req.Traffic, req.MirrorTraffic, req.Control = v.read(cmd.Flags())
			out, err := c.UpdateEndpointVersion(cmd.Context(), ws, v.endpoint, v.version, req)
			if err != nil {
				return err
			}
			return a.finishChange(cmd, c, out, noWait, func() (*api.Endpoint, error) { return c.GetEndpoint(cmd.Context(), ws, v.endpoint) })
		})
	v.bind(cmd, "the others give or take the difference when only one other has traffic")
	cmd.Flags().MarkHidden("name")
	return cmd
}

func (a *app) endpointVersionDelete() *cobra.Command {
	var v versionFlags
	var noWait bool
	cmd := &cobra.Command{Use: "delete -e ENDPOINT --version-name V", Short: "Delete a version with no traffic left, and its service", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, ws, err := a.inWorkspace("endpoint", v.endpoint)
			if err != nil {
				return err
			}
			ch, err := c.DeleteEndpointVersion(cmd.Context(), ws, v.endpoint, v.version)
			if err != nil {
				return err
			}
			return a.finishChange(cmd, c, ch, noWait, func() (*api.Endpoint, error) { return c.GetEndpoint(cmd.Context(), ws, v.endpoint) })
		}}
	f := cmd.Flags()
	f.StringVarP(&v.endpoint, "endpoint", "e", "", "the endpoint")
	f.StringVar(&v.version, "version-name", "", "the version to delete")
	cmd.MarkFlagRequired("endpoint")
	cmd.MarkFlagRequired("version-name")
	f.BoolVar(&noWait, "no-wait", false, "return at once; the service is deleted in the background")
	return cmd
}

// printAnswer prints a scoring answer: as it came in a table, else
// formatted (or queried) as JSON.
func (a *app) printAnswer(body []byte) error {
	var v any
	if a.format == "table" && a.query == "" || json.Unmarshal(body, &v) != nil {
		_, err := fmt.Fprintln(a.stdout, string(body))
		return err
	}
	return a.print(v, nil)
}

func (a *app) endpointLogsData() *cobra.Command {
	var name string
	var since time.Duration
	cmd := &cobra.Command{Use: "logs-data -e NAME [--since 1h]", Short: "Print the requests and answers an endpoint's versions logged (--log-requests), as JSON Lines",
		Args: positionalFlag("endpoint", nil),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, ws, err := a.inWorkspace("endpoint", name)
			if err != nil {
				return err
			}
			entries, err := c.EndpointRequestLogs(cmd.Context(), ws, name, since)
			if err != nil {
				return err
			}
			return a.printRequestLogs(cmd, entries)
		}}
	cmd.Long = "Print the scoring requests an endpoint's versions logged with their answers (add or update a\n" +
		"version with --log-requests P), oldest first, one JSON object a line: time, endpoint, version\n" +
		"(the one that served it), service, status, latencyMs and the bodies. -o table prints a short table."
	cmd.Flags().StringVarP(&name, "endpoint", "e", "", "the endpoint")
	cmd.Flags().DurationVar(&since, "since", time.Hour, "how far back (up to 720h)")
	return cmd
}
