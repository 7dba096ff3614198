package cli

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/berth-ml/berth/api"
	"github.com/berth-ml/berth/client"
	"github.com/berth-ml/berth/internal/cli/output"
)

func (a *app) serviceMetrics() *cobra.Command {
	var since time.Duration
	cmd := a.namedCommand("service", "metrics -n NAME [--since 1h]", "Show a service's recent traffic: requests, errors, latency, queue time, replicas",
		func(cmd *cobra.Command, c *client.Client, ws, name string) error {
			m, err := c.ServiceMetrics(cmd.Context(), ws, name, since)
			if err != nil {
				return err
			}
			if a.format != "table" || a.query != "" {
				return a.print(m, nil)
			}
			if len(m.Points) == 0 {
				_, err = fmt.Fprintf(a.stdout, "No traffic recorded for %s in the last %s (the server reads the front end every 10 seconds).\n", m.Service, m.Since)
				return err
			}
			return a.print(metricsRows(m.Points), metricsColumns)
		})
	cmd.Long = "Show a service's recent traffic as the server read it from its compute's front end: requests\n" +
		"per second, errors per second by status code, latency and queue-time percentiles, and ready/desired\n" +
		"replicas, one row per 10 seconds for up to an hour back, else per minute (the server keeps 24 hours)."
	cmd.Example = "  berth service metrics -n iris\n  berth service metrics -n iris --since 6h -o json"
	cmd.Flags().DurationVar(&since, "since", time.Hour, "how far back (10s to 24h)")
	return cmd
}

var metricsColumns = []output.Column{{Header: "Time", Path: "time"}, {Header: "Req/s", Path: "rps"},
	{Header: "P50 ms", Path: "p50"}, {Header: "P99 ms", Path: "p99"}, {Header: "Queue P99 ms", Path: "queue"},
	{Header: "Errors/s", Path: "errors"}, {Header: "Ready/Desired", Path: "replicas"}}

func metricsRows(points []api.MetricsPoint) []map[string]string {
	num := func(v *float64) string {
		if v == nil {
			return "-"
		}
		return fmt.Sprintf("%.1f", *v)
	}
	rows := make([]map[string]string, 0, len(points))
	for _, p := range points {
		var errs []string
		for code, r := range p.ErrorsPerSec {
			errs = append(errs, fmt.Sprintf("%s:%.2f", code, r))
		}
		sort.Strings(errs)
		rows = append(rows, map[string]string{"time": p.Time.Local().Format("15:04:05"), "rps": fmt.Sprintf("%.2f", p.RequestsPerSec),
			"p50": num(p.LatencyP50Ms), "p99": num(p.LatencyP99Ms), "queue": num(p.QueueP99Ms),
			"errors": strings.Join(errs, " "), "replicas": fmt.Sprintf("%d/%d", p.ReadyReplicas, p.DesiredReplicas)})
	}
	return rows
}
