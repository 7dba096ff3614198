package frontend

import (
	"bytes"
	"cmp"
	"context"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/prometheus/common/expfmt"

	"github.com/berth-ml/berth/internal/frontend/reqlog"
)

// Reporter sends the front end's metrics to the control plane every
// Interval, and its request logs as they come: the server keeps them for `berth service metrics` and the
// Studio's plots. It authenticates with the pod's projected
// service-account token, read again for every report (the kubelet
// renews it). Scoring never waits for it, and a control plane that is
// down only costs the reports.
type Reporter struct {
	Frontend  *Frontend
	URL       string
	TokenFile string
	Interval  time.Duration
	Client    *http.Client
	Log       *slog.Logger

	failing string // the last failure logged, so each is logged once
}

// Run reports until ctx ends.
func (r *Reporter) Run(ctx context.Context) {
	r.Client = cmp.Or(r.Client, &http.Client{Timeout: 10 * time.Second})
	// The request logs go the same way, every second (reqlog.Logger).
	r.Frontend.SetRequestLogSink(r.sendRequestLogs)
	t := time.NewTicker(r.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		err := r.report(ctx)
		switch {
		case err == nil && r.failing != "":
			r.Log.Info("reporting metrics to the control plane again", "url", r.URL)
			r.failing = ""
		case err != nil && err.Error() != r.failing && ctx.Err() == nil:
			r.Log.Warn("cannot report metrics to the control plane", "url", r.URL, "err", err)
			r.failing = err.Error()
		}
	}
}

func (r *Reporter) report(ctx context.Context) error {
	fams, err := r.Frontend.Gather()
	if err != nil {
		return err
	}
	var body bytes.Buffer
	for _, f := range fams {
		if _, err := expfmt.MetricFamilyToText(&body, f); err != nil {
			return err
		}
	}
	return r.post(ctx, r.URL, string(expfmt.NewFormat(expfmt.TypeTextPlain)), body.Bytes())
}

// sendRequestLogs posts a batch of request logs to the control plane,
// beside the metrics (api.RequestLogsPath), as JSON Lines.
func (r *Reporter) sendRequestLogs(ctx context.Context, entries []reqlog.Entry) error {
	url := strings.TrimSuffix(r.URL, "/frontend-metrics") + "/request-logs"
	return r.post(ctx, url, "application/jsonl", reqlog.JSONLines(entries))
}

// post sends body with the pod's token, read afresh.
func (r *Reporter) post(ctx context.Context, url, contentType string, body []byte) error {
	token, err := os.ReadFile(r.TokenFile)
	if err != nil {
		return err
	}
	return reqlog.Post(ctx, r.Client, url, contentType, strings.TrimSpace(string(token)), body)
}
