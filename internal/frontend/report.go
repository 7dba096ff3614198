package frontend

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/prometheus/common/expfmt"
)

// Reporter sends the front end's metrics to the control plane every
// Interval: the server keeps them for `berth service metrics` and the
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
	if r.Client == nil {
		r.Client = &http.Client{Timeout: 10 * time.Second}
	}
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
	token, err := os.ReadFile(r.TokenFile)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.URL, &body)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", string(expfmt.NewFormat(expfmt.TypeTextPlain)))
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(token)))
	resp, err := r.Client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(msg)))
	}
	return nil
}
