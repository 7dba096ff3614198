package cli

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/berth-ml/berth/api"
	"github.com/berth-ml/berth/client"
	"github.com/berth-ml/berth/internal/cli/output"
	"github.com/berth-ml/berth/internal/service"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

var serviceColumns = []output.Column{
	{Header: "Name", Path: "name"},
	{Header: "Compute", Path: "compute"},
	{Header: "State", Path: "state"},
	{Header: "Models", Path: "models"},
	{Header: "ReadyReplicas", Path: "readyReplicas"},
	{Header: "Auth", Path: "auth"},
	{Header: "ScoringUri", Path: "scoringUri"},
}

func (a *app) serviceCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "service", Short: "Deploy models as authenticated, autoscaled scoring services"}
	cmd.AddCommand(a.serviceLogs(), a.serviceDeploy(), a.serviceUpdate(), a.serviceShow(), a.serviceList(), a.serviceDelete(),
		a.serviceScore(), a.serviceWait(), a.serviceMetrics(), a.serviceLogsData())
	cmd.AddCommand(a.keyCommands("service", "a service", "", keyClient{(*client.Client).ServiceKeys, (*client.Client).RegenServiceKey, (*client.Client).ServiceToken})...)
	return cmd
}

// service fetches service -n NAME.
func (a *app) service(ctx context.Context, name string) (*client.Client, string, *api.Service, error) {
	c, ws, err := a.inWorkspace("service", name)
	if err != nil {
		return nil, "", nil, err
	}
	sv, err := c.GetService(ctx, ws, name)
	return c, ws, sv, err
}

// finishService follows a service operation and prints the service.
func (a *app) finishService(ctx context.Context, c *client.Client, ws string, op *api.Operation, noWait bool) error {
	if noWait {
		return a.print(op, operationColumns)
	}
	return a.finish(ctx, c, op, fmt.Sprintf("berth operation events --follow %s", op.ID), serviceColumns, func(name string) (any, error) {
		return c.GetService(ctx, ws, name)
	})
}

func (a *app) serviceDeploy() *cobra.Command {
	return a.deployCommand("deploy -n NAME --compute C --model NAME[:VERSION]... (--image IMAGE | --command CMD...)",
		"Deploy models as a scoring service (defaults are the reference's)",
		func(cmd *cobra.Command, name string, spec api.ServiceSpec, noWait bool) error {
			c, ws, err := a.inWorkspace("service", name)
			if err != nil {
				return err
			}
			op, err := c.DeployService(cmd.Context(), ws, api.ServiceRequest{Name: name, ServiceSpec: spec})
			if err != nil {
				return err
			}
			return a.finishService(cmd.Context(), c, ws, op, noWait)
		})
}

// deployCommand is a command with service deploy's flags, which gives
// submit the name and the spec they make (endpoint version add has them
// too).
func (a *app) deployCommand(use, short string, submit func(cmd *cobra.Command, name string, spec api.ServiceSpec, noWait bool) error) *cobra.Command {
	var s serviceFlags
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			spec := &s.spec
			if err := s.setEnv(); err != nil {
				return err
			}
			if err := s.zero.check(cmd.Flags(), spec.Replicas); err != nil {
				return err
			}
			if spec.Replicas > 0 && anyChanged(cmd.Flags(), autoscaleFlags...) {
				return usageErrorf("give --replicas (a fixed count) or --autoscale-* flags (autoscaling), not both")
			}
			if spec.Replicas == 0 {
				s.as.Enabled = true
				spec.Autoscale = &s.as
				s.zero.apply(cmd.Flags(), spec.Autoscale, spec)
			} else {
				s.zero.apply(cmd.Flags(), &api.AutoscaleSettings{}, spec) // the server refuses a cold-start timeout
			}
			spec.Liveness = s.liveness.probe(cmd.Flags(), service.DefaultLiveness)
			spec.Readiness = s.readiness.probe(cmd.Flags(), service.DefaultReadiness)
			s.logging.apply(cmd.Flags(), spec)
			return submit(cmd, s.name, *spec, s.noWait)
		},
	}
	f := cmd.Flags()
	s.add(f, false)
	f.StringVar(&s.spec.Compute, "compute", "", "compute to deploy to")
	cmd.MarkFlagRequired("compute")
	f.IntVar(&s.spec.Port, "port", 0, "the model server's port (default 5001)")
	f.StringVar(&s.spec.Auth, "auth", "", "key (default), token or none")
	f.StringVar(&s.spec.Namespace, "namespace", "", "Kubernetes namespace (default: default)")
	return cmd
}

// serviceFlags are the flags service deploy and update share, bound into
// the spec they send (update's: the changes).
type serviceFlags struct {
	name                string
	env                 []string
	spec                api.ServiceSpec
	as                  api.AutoscaleSettings // the --autoscale-* flags given
	noWait              bool
	liveness, readiness *probeFlags
	zero                *zeroFlags
	logging             logFlags
}

// add adds the flags; update's help says what a flag changes where
// deploy's gives its default.
func (s *serviceFlags) add(f *pflag.FlagSet, update bool) {
	help := func(deploy, upd string) string {
		if update {
			return upd
		}
		return deploy
	}
	spec, as := &s.spec, &s.as
	f.StringVarP(&s.name, "name", "n", "", help("service name (3-32 lowercase letters, digits, '-')", "service name"))
	f.StringArrayVar(&spec.Models, "model", nil, help("NAME[:VERSION] (repeatable; latest version by default)", "NAME[:VERSION] (repeatable; replaces the models)"))
	f.StringVar(&spec.Image, "image", "", help("the model server's image", "a new image"))
	f.StringArrayVar(&spec.Command, "command", nil, help("the model server's command, word by word (repeatable)", "a new command, word by word"))
	f.Float64Var(&spec.CPU, "cpu", 0, help("CPU request in cores (default 0.1)", "CPU request in cores"))
	f.Float64Var(&spec.MemoryGB, "memory", 0, help("memory request in GB (default 0.5)", "memory request in GB"))
	f.Float64Var(&spec.CPULimit, "cpu-limit", 0, "CPU limit in cores")
	f.Float64Var(&spec.MemoryLimitGB, "memory-limit", 0, "memory limit in GB")
	f.IntVar(&spec.GPU, "gpu", 0, "GPUs per replica")
	f.IntVar(&spec.Replicas, "replicas", 0, help("a fixed replica count (turns autoscaling off)", "a fixed replica count"))
	f.IntVar(&as.MinReplicas, "autoscale-min", 0, help("fewest replicas (default 1; 0: scale to zero when idle)", "fewest replicas (turns autoscaling on; unset settings keep their values)"))
	f.IntVar(&as.MaxReplicas, "autoscale-max", 0, help("most replicas (default 10)", "most replicas"))
	f.IntVar(&as.RefreshSeconds, "autoscale-refresh-seconds", 0, help("how often to rescale (default 1)", "how often to rescale"))
	f.IntVar(&as.TargetUtilization, "autoscale-target-utilization", 0, help("target utilisation in percent (default 70)", "target utilisation in percent"))
	s.zero = addZeroFlags(f, help("(default 300s)", ""), help("(default 60s)", ""))
	f.IntVar(&spec.MaxConcurrentRequests, "max-concurrent-requests", 0, help("requests a replica takes at once (default 1)", "requests a replica takes at once"))
	f.IntVar(&spec.MaxQueueWaitMs, "max-queue-wait-ms", 0, help("how long a request may wait for a replica (default 500)", "queue wait"))
	f.IntVar(&spec.ScoringTimeoutMs, "scoring-timeout-ms", 0, help("scoring timeout (default 60000)", "scoring timeout"))
	f.StringArrayVar(&s.env, "env", nil, help("K=V for the model server (repeatable)", "K=V (repeatable; replaces the environment)"))
	f.StringVar(&spec.ModelDelivery, "model-delivery", "", help("on clusters: fetch (default; an init container downloads the models from the control plane) or image (the models are in the image)", "fetch or image (see deploy)"))
	liveness, readiness := &service.DefaultLiveness, &service.DefaultReadiness
	if update {
		liveness, readiness = nil, nil
	}
	s.liveness = addProbeFlags(f, "liveness", liveness)
	s.readiness = addProbeFlags(f, "readiness", readiness)
	s.logging.add(f)
	f.BoolVar(&s.noWait, "no-wait", false, "return at once with the operation id")
}

// setEnv sets the spec's environment from the --env flags given.
func (s *serviceFlags) setEnv() (err error) {
	if len(s.env) > 0 {
		s.spec.Env, err = envFlags(s.env)
	}
	return err
}

// autoscaleFlags are the flags that set autoscaling.
var autoscaleFlags = []string{"autoscale-min", "autoscale-max", "autoscale-refresh-seconds", "autoscale-target-utilization"}

// anyChanged tells whether any of the named flags was given.
func anyChanged(f *pflag.FlagSet, names ...string) bool {
	return slices.ContainsFunc(names, f.Changed)
}

// logFlags are the request logging flags of deploy and update.
type logFlags struct {
	percent, bodyLimit int
	sink               string
}

func (l *logFlags) add(f *pflag.FlagSet) {
	f.IntVar(&l.percent, "log-requests", 0, "log this percentage (0-100) of scoring requests with their answers (0: off); read them with `berth service logs-data`")
	f.IntVar(&l.bodyLimit, "log-body-limit", 0, "cut logged bodies at this many bytes (default 65536)")
	f.StringVar(&l.sink, "log-sink", "", "send the request logs to this http(s) URL as CloudEvents instead of the artifact store (\"\" in an update: back to the artifact store)")
}

// apply sets the flags given in the spec.
func (l *logFlags) apply(f *pflag.FlagSet, spec *api.ServiceSpec) {
	if f.Changed("log-requests") {
		spec.LogRequests = &l.percent
	}
	if f.Changed("log-sink") {
		spec.LogSink = &l.sink
	}
	spec.LogBodyLimit = l.bodyLimit
}

func (a *app) serviceShow() *cobra.Command {
	return a.showCommand("service", "show -n NAME", "Show a service (state, scoring URI, replicas)", func(ctx context.Context, c *client.Client, ws, name string) (any, error) {
		return c.GetService(ctx, ws, name)
	}, serviceShowColumns)
}

// serviceShowColumns add the scaling settings and the request logging
// percentage (empty: off) to the list's columns.
var serviceShowColumns = append(serviceColumns[:len(serviceColumns):len(serviceColumns)],
	output.Column{Header: "Autoscale", Path: "autoscale.enabled && join('-', [to_string(autoscale.minReplicas), to_string(autoscale.maxReplicas)]) || 'off'"},
	output.Column{Header: "ScaleToZeroAfterSeconds", Path: "autoscale.scaleToZeroAfterSeconds"},
	output.Column{Header: "ColdStartTimeoutMs", Path: "coldStartTimeoutMs"},
	output.Column{Header: "LogRequests", Path: "logRequests"})

func (a *app) serviceList() *cobra.Command {
	return a.listCommand("List services", func(ctx context.Context, c *client.Client, ws string) (any, error) {
		return c.ListServices(ctx, ws)
	}, serviceColumns)
}

func (a *app) serviceDelete() *cobra.Command {
	var noWait bool
	cmd := a.namedCommand("service", "delete -n NAME", "Delete a service and everything it put in the cluster", func(cmd *cobra.Command, c *client.Client, ws, name string) error {
		op, err := c.DeleteService(cmd.Context(), ws, name)
		if err != nil {
			return err
		}
		return a.finishService(cmd.Context(), c, ws, op, noWait)
	})
	cmd.Flags().BoolVar(&noWait, "no-wait", false, "return at once with the operation id")
	return cmd
}

// keyClient is how the client reads and replaces the keys and tokens of
// a kind that scores (services and endpoints).
type keyClient struct {
	keys  func(c *client.Client, ctx context.Context, ws, name string) (*api.ServiceKeys, error)
	regen func(c *client.Client, ctx context.Context, ws, name string, req api.RegenKeyRequest) (*api.ServiceKeys, error)
	token func(c *client.Client, ctx context.Context, ws, name string) (*api.ServiceToken, error)
}

// keyCommands are kind's keys, regen-key and token commands; one names a
// single one of kind in their help ("a service"), regenNote adds to what
// regen-key's help says.
func (a *app) keyCommands(kind, one, regenNote string, kc keyClient) []*cobra.Command {
	keys := a.showCommand(kind, "keys -n NAME", "Print a key-auth "+kind+"'s keys (owners only)", func(ctx context.Context, c *client.Client, ws, name string) (any, error) {
		return kc.keys(c, ctx, ws, name)
	}, nil)
	var key, value string
	regen := a.showCommand(kind, "regen-key -n NAME --key primary|secondary [--value V]", "Replace "+one+" key (the old one stops working at once"+regenNote+")",
		func(ctx context.Context, c *client.Client, ws, name string) (any, error) {
			return kc.regen(c, ctx, ws, name, api.RegenKeyRequest{Key: key, Value: value})
		}, nil)
	regen.Flags().StringVar(&key, "key", "", "primary or secondary")
	regen.MarkFlagRequired("key")
	regen.Flags().StringVar(&value, "value", "", "the new key (default: random)")
	token := a.showCommand(kind, "token -n NAME", "Get a short-lived token for a token-auth "+kind, func(ctx context.Context, c *client.Client, ws, name string) (any, error) {
		return kc.token(c, ctx, ws, name)
	}, nil)
	return []*cobra.Command{keys, regen, token}
}

func (a *app) serviceUpdate() *cobra.Command {
	return a.updateCommand("update -n NAME [--model NAME[:VERSION]]... [--image I | --command C...] [...]",
		"Update a service in place: a rolling update, no request fails", nil,
		func(cmd *cobra.Command, name string) (*client.Client, string, string, error) {
			c, ws, err := a.inWorkspace("service", name)
			return c, ws, name, err
		},
		func(cmd *cobra.Command, c *client.Client, ws, name string, ch *api.ServiceSpec, noWait bool) error {
			op, err := c.UpdateService(cmd.Context(), ws, name, *ch)
			if err != nil {
				return err
			}
			return a.finishService(cmd.Context(), c, ws, op, noWait)
		})
}

// updateCommand is a command with service update's flags: target finds
// the service (from -n or the command's own flags), and submit gets the
// changes (nil when none of those flags is given and own says the
// command's own flags change something else).
func (a *app) updateCommand(use, short string, own func(cmd *cobra.Command) bool,
	target func(cmd *cobra.Command, name string) (*client.Client, string, string, error),
	submit func(cmd *cobra.Command, c *client.Client, ws, service string, ch *api.ServiceSpec, noWait bool) error) *cobra.Command {
	var s serviceFlags
	cmd := &cobra.Command{Use: use, Short: short, Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			changes := 0
			cmd.LocalFlags().VisitAll(func(f *pflag.Flag) {
				if f.Changed && f.Name != "name" && f.Name != "no-wait" && f.Annotations[ownFlag] == nil {
					changes++
				}
			})
			if changes == 0 && (own == nil || !own(cmd)) {
				return usageErrorf("nothing to update: give --model, --image, --command, --replicas, --env or another setting to change (see --help)")
			}
			c, ws, name, err := target(cmd, s.name)
			if err != nil {
				return err
			}
			if changes == 0 {
				return submit(cmd, c, ws, name, nil, s.noWait)
			}
			fl, ch, set := cmd.Flags(), &s.spec, s.as
			s.logging.apply(fl, ch)
			autoscale := anyChanged(fl, autoscaleFlags...) || fl.Changed("scale-to-zero-after")
			if err := s.zero.check(fl, ch.Replicas); err != nil {
				return err
			}
			if autoscale && ch.Replicas > 0 {
				return usageErrorf("give --replicas or --autoscale-* flags, not both")
			}
			if autoscale || s.liveness.probe(fl, api.Probe{}) != nil || s.readiness.probe(fl, api.Probe{}) != nil {
				// Flags change the service's current settings, not the defaults.
				cur, err := c.GetService(cmd.Context(), ws, name)
				if err != nil {
					return err
				}
				if autoscale {
					as := api.AutoscaleSettings{Enabled: true}
					if cur.Autoscale != nil && cur.Autoscale.Enabled {
						as = *cur.Autoscale
					}
					for _, o := range []struct {
						flag string
						dst  *int
						v    int
					}{{"autoscale-min", &as.MinReplicas, set.MinReplicas}, {"autoscale-max", &as.MaxReplicas, set.MaxReplicas},
						{"autoscale-refresh-seconds", &as.RefreshSeconds, set.RefreshSeconds}, {"autoscale-target-utilization", &as.TargetUtilization, set.TargetUtilization}} {
						if fl.Changed(o.flag) {
							*o.dst = o.v
						}
					}
					s.zero.apply(fl, &as, ch)
					ch.Autoscale = &as
				}
				if cur.Liveness != nil {
					ch.Liveness = s.liveness.probe(fl, *cur.Liveness)
				}
				if cur.Readiness != nil {
					ch.Readiness = s.readiness.probe(fl, *cur.Readiness)
				}
			}
			if err := s.setEnv(); err != nil {
				return err
			}
			return submit(cmd, c, ws, name, ch, s.noWait)
		}}
	s.add(cmd.Flags(), true)
	return cmd
}

func (a *app) serviceLogs() *cobra.Command {
	var o client.LogOptions
	cmd := a.namedCommand("service", "logs -n NAME [--replica R] [--tail N] [--previous] [-f]", "Print the last lines of a service's replica logs (-f: and follow them)",
		func(cmd *cobra.Command, c *client.Client, ws, name string) error {
			ctx := cmd.Context()
			if o.Follow {
				var stop context.CancelFunc
				ctx, stop = signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
				defer stop()
			}
			return c.StreamServiceLogs(ctx, ws, name, o, a.stdout)
		})
	cmd.Long = `Print the last lines of the logs of a service's replicas: on the local compute those of
its current generation (--previous: of the generations before it), on a cluster those
of its pods (--previous: of their containers that ran before, such as one that crashed).
With -f it goes on printing what the replicas print, until interrupted.`
	cmd.Flags().StringVar(&o.Replica, "replica", "", "only this replica")
	cmd.Flags().IntVar(&o.Tail, "tail", 100, "lines per replica")
	cmd.Flags().BoolVar(&o.Previous, "previous", false, "the replicas that ran before: earlier generations (local), previous containers (cluster)")
	cmd.Flags().BoolVarP(&o.Follow, "follow", "f", false, "go on printing what the replicas print")
	return cmd
}

// envFlags are the --env K=V flags as a map.
func envFlags(env []string) (map[string]string, error) {
	m := map[string]string{}
	for _, e := range env {
		k, v, ok := strings.Cut(e, "=")
		if !ok {
			return nil, usageErrorf("--env %q must look like K=V", e)
		}
		m[k] = v
	}
	return m, nil
}

// probeFlags are the --liveness-* or --readiness-* flags of deploy and update.
type probeFlags struct {
	kind   string
	fields [5]int
}

var probeFields = [5]struct{ flag, doc string }{
	{"initial-delay-seconds", "seconds before the first check"},
	{"period-seconds", "seconds between checks"},
	{"timeout-seconds", "seconds a check may take"},
	{"success-threshold", "successes that make the replica pass"},
	{"failure-threshold", "failures that make the replica fail"},
}

// addProbeFlags adds a probe's flags; def gives the defaults shown in help
// (nil: unset flags keep the service's values).
func addProbeFlags(f *pflag.FlagSet, kind string, def *api.Probe) *probeFlags {
	p := &probeFlags{kind: kind}
	for i, fl := range probeFields {
		note := "unset: keeps its value"
		if def != nil {
			note = fmt.Sprintf("default %d", [5]int{def.InitialDelaySeconds, def.PeriodSeconds, def.TimeoutSeconds, def.SuccessThreshold, def.FailureThreshold}[i])
		}
		f.IntVar(&p.fields[i], kind+"-"+fl.flag, 0, fmt.Sprintf("%s probe: %s (%s)", kind, fl.doc, note))
	}
	return p
}

// probe is base with the flags given on the command line over it, or nil
// when none was given.
func (p *probeFlags) probe(f *pflag.FlagSet, base api.Probe) *api.Probe {
	changed := false
	dst := [5]*int{&base.InitialDelaySeconds, &base.PeriodSeconds, &base.TimeoutSeconds, &base.SuccessThreshold, &base.FailureThreshold}
	for i, fl := range probeFields {
		if f.Changed(p.kind + "-" + fl.flag) {
			*dst[i], changed = p.fields[i], true
		}
	}
	if !changed {
		return nil
	}
	return &base
}

// zeroFlags are the scale-to-zero settings of deploy and update.
type zeroFlags struct{ after, coldStart time.Duration }

func addZeroFlags(f *pflag.FlagSet, afterDefault, coldDefault string) *zeroFlags {
	z := &zeroFlags{}
	f.DurationVar(&z.after, "scale-to-zero-after", 0, strings.TrimSpace("with --autoscale-min 0: stop the last replica once idle this long "+afterDefault))
	f.DurationVar(&z.coldStart, "cold-start-timeout", 0, strings.TrimSpace("with --autoscale-min 0: how long a request waits for a replica to start "+coldDefault))
	return z
}

// check refuses what the flags cannot mean: scaling to zero with a fixed
// count, durations that are not positive.
func (z *zeroFlags) check(fl *pflag.FlagSet, replicas int) error {
	least, _ := fl.GetInt("autoscale-min")
	if replicas > 0 && (fl.Changed("autoscale-min") && least == 0 || fl.Changed("scale-to-zero-after")) {
		return usageErrorf("--replicas %d is a fixed count, which never scales to zero: give --replicas or --autoscale-min 0, not both", replicas)
	}
	for _, d := range []struct {
		flag string
		v    time.Duration
	}{{"scale-to-zero-after", z.after}, {"cold-start-timeout", z.coldStart}} {
		if fl.Changed(d.flag) && d.v <= 0 {
			return usageErrorf("--%s %s must be positive", d.flag, d.v)
		}
	}
	return nil
}

// apply sets the scale-to-zero settings: --autoscale-min 0 scales to zero
// after --scale-to-zero-after (300s unless given), and a minimum above 0
// no longer does.
func (z *zeroFlags) apply(fl *pflag.FlagSet, a *api.AutoscaleSettings, spec *api.ServiceSpec) {
	switch {
	case fl.Changed("scale-to-zero-after"):
		a.ScaleToZeroAfterSeconds = int(math.Ceil(z.after.Seconds()))
	case fl.Changed("autoscale-min") && a.MinReplicas == 0:
		a.ScaleToZeroAfterSeconds = cmp.Or(a.ScaleToZeroAfterSeconds, service.DefaultScaleToZeroAfter)
	case fl.Changed("autoscale-min"):
		a.ScaleToZeroAfterSeconds = 0
	}
	if fl.Changed("cold-start-timeout") {
		spec.ColdStartTimeoutMs = int(z.coldStart.Milliseconds())
	}
}
