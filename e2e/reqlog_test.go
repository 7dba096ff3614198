package e2e

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/berth-ml/berth/api"
	"github.com/berth-ml/berth/internal/frontend/reqlog"
)

// logsData runs `berth service logs-data` and reads its JSON Lines.
func logsData(t *testing.T, run func(args ...string) result, args ...string) []api.RequestLogEntry {
	t.Helper()
	r := run(append([]string{"service", "logs-data"}, args...)...)
	if r.code != 0 {
		t.Fatalf("logs-data: %+v", r)
	}
	es, err := reqlog.ReadJSONLines(strings.NewReader(r.stdout))
	if err != nil {
		t.Fatalf("logs-data printed no JSON Lines: %v\n%s", err, r.stdout)
	}
	return es
}

// waitLogs waits up to 30 s for n entries of the last hour of a service.
func waitLogs(t *testing.T, run func(args ...string) result, service string, n int) []api.RequestLogEntry {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		es := logsData(t, run, service, "--since", "1h")
		if len(es) >= n || time.Now().After(deadline) {
			return es
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// TestRequestLogsOnLocalCompute: with the real berth binary and the local
// compute, bad logging settings are refused together and change nothing;
// `service update --log-requests 100` logs every scored request, which
// `berth service logs-data` reads back from the artifact store folder
// with its answer; at 0 nothing more is logged.
func TestRequestLogsOnLocalCompute(t *testing.T) {
	l := deployLocalIris(t)
	run := func(args ...string) result { return berth(t, l.env, args...) }
	r := berth(t, l.env, "service", "update", "-n", "iris", "--log-requests", "101", "--log-sink", "ftp://logs.example.com", "--log-body-limit", "-1")
	for _, want := range []string{"logRequests 101 must be a percentage from 0 to 100", "logSink must be an absolute http:// or https:// URL", "logBodyLimit -1"} {
		if r.code == 0 || !strings.Contains(r.stderr, want) {
			t.Errorf("bad settings: want %q in %+v", want, r)
		}
	}
	if sv := showService(t, l.env, "iris"); sv.LogRequests != nil || sv.LogSink != nil || sv.Generation != l.service.Generation {
		t.Fatalf("a refused update changed the service: %+v", sv)
	}
	var sv api.Service
	r = berth(t, l.env, "service", "update", "-n", "iris", "--log-requests", "100", "-o", "json")
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &sv) != nil || sv.LogRequests == nil || *sv.LogRequests != 100 || sv.LogBodyLimit != 64<<10 {
		t.Fatalf("update --log-requests 100: %+v", r)
	}
	const body = `{"data":[[5.1,3.5,1.4,0.2]]}`
	for range 5 {
		if code, out := scoreVia(l.hc, l.service.ScoringURI, l.key, body); code != 200 {
			t.Fatalf("score: %d %s", code, out)
		}
	}
	scoreVia(l.hc, l.service.ScoringURI, "wrong-key", body) // refused: not logged
	es := waitLogs(t, run, "iris", 5)
	if len(es) != 5 {
		t.Fatalf("logs-data shows %d entries, want 5: %+v", len(es), es)
	}
	for _, e := range es {
		if e.Endpoint != "iris" || e.Service != "iris" || e.Version != "" || e.Status != 200 || e.Request != body || e.RequestEncoding != "text" ||
			!strings.Contains(e.Response, "predict") || e.LatencyMs <= 0 || time.Since(e.Time) > time.Hour {
			t.Errorf("entry = %+v", e)
		}
	}
	if r := berth(t, l.env, "service", "logs-data", "-n", "iris", "-o", "table"); r.code != 0 || !strings.Contains(r.stdout, "Endpoint") || strings.Count(r.stdout, "iris") != 5 {
		t.Errorf("logs-data -o table: %+v", r)
	}
	// Off, then on again: only the requests while on are logged.
	if r := berth(t, l.env, "service", "update", "-n", "iris", "--log-requests", "0"); r.code != 0 {
		t.Fatalf("update --log-requests 0: %+v", r)
	}
	for range 3 {
		scoreVia(l.hc, l.service.ScoringURI, l.key, body)
	}
	if r := berth(t, l.env, "service", "update", "-n", "iris", "--log-requests", "100"); r.code != 0 {
		t.Fatalf("update --log-requests 100: %+v", r)
	}
	scoreVia(l.hc, l.service.ScoringURI, l.key, `{"data":[[6.0,2.2,5.0,1.5]]}`)
	es = waitLogs(t, run, "iris", 6)
	if len(es) != 6 || es[5].Request != `{"data":[[6.0,2.2,5.0,1.5]]}` {
		t.Errorf("after logging off and on: %d entries (want 6, the last the new request): %+v", len(es), es[min(5, len(es)):])
	}
}
