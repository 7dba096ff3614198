package cli

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/berth-ml/berth/api"
	"github.com/berth-ml/berth/client"
	"github.com/berth-ml/berth/internal/cli/output"
)

func (a *app) serviceLogsData() *cobra.Command {
	var since time.Duration
	cmd := a.namedCommand("service", "logs-data -n NAME [--since 1h]", "Print the requests and answers a service logged (--log-requests), as JSON Lines",
		func(cmd *cobra.Command, c *client.Client, ws, name string) error {
			entries, err := c.ServiceRequestLogs(cmd.Context(), ws, name, since)
			if err != nil {
				return err
			}
			return a.printRequestLogs(cmd, entries)
		})
	cmd.Long = "Print the scoring requests a service logged with their answers (deploy or update it with\n" +
		"--log-requests P), oldest first, one JSON object a line: time, endpoint, version, service,\n" +
		"status, latencyMs, and the request and response bodies (text, or base64 when not UTF-8; cut at\n" +
		"--log-body-limit). -o table prints a short table, -o json an array."
	cmd.Example = "  berth service logs-data iris\n  berth service logs-data -n iris --since 24h -o table"
	cmd.Flags().DurationVar(&since, "since", time.Hour, "how far back (up to 720h)")
	return cmd
}

var requestLogColumns = []output.Column{{Header: "Time", Path: "time"}, {Header: "Endpoint", Path: "endpoint"}, {Header: "Version", Path: "version"},
	{Header: "Status", Path: "status"}, {Header: "Latency ms", Path: "latency"}, {Header: "Request", Path: "request"}, {Header: "Response", Path: "response"}}

// printRequestLogs prints request log entries as JSON Lines, or in the
// format -o asks for (a table shows the start of the bodies).
func (a *app) printRequestLogs(cmd *cobra.Command, entries []api.RequestLogEntry) error {
	if !cmd.Flags().Changed("output") {
		enc := json.NewEncoder(a.stdout)
		enc.SetEscapeHTML(false)
		for i := range entries {
			if err := enc.Encode(&entries[i]); err != nil {
				return err
			}
		}
		return nil
	}
	if a.format != "table" || a.query != "" {
		return a.print(entries, nil)
	}
	short := func(s string, cut bool) string {
		if r := []rune(s); len(r) > 40 {
			s, cut = string(r[:40]), true
		}
		if cut {
			s += "…"
		}
		return s
	}
	rows := make([]map[string]string, 0, len(entries))
	for _, e := range entries {
		rows = append(rows, map[string]string{"time": e.Time.Local().Format("2006-01-02 15:04:05"), "endpoint": e.Endpoint, "version": e.Version,
			"status": fmt.Sprint(e.Status), "latency": fmt.Sprintf("%.1f", e.LatencyMs),
			"request": short(e.Request, e.RequestTruncated), "response": short(e.Response, e.ResponseTruncated)})
	}
	return a.print(rows, requestLogColumns)
}
