package frontend

import (
	"bufio"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestStreamedAnswersRelayAsTheyCome: a model server that answers with
// server-sent events (an LLM's token stream), 10 events 100 ms apart, has
// each event reach the client within 20 ms of being sent: the front end
// relays a streamed answer as it arrives, without buffering it.
func TestStreamedAnswersRelayAsTheyCome(t *testing.T) {
	for _, kind := range []string{"text/event-stream", "chunked"} {
		t.Run(kind, func(t *testing.T) {
			b := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
				if kind == "text/event-stream" {
					w.Header().Set("Content-Type", "text/event-stream")
				} else {
					w.Header().Set("Content-Type", "application/json")
				}
				for i := range 10 {
					if i > 0 {
						time.Sleep(100 * time.Millisecond)
					}
					fmt.Fprintf(w, "data: %d %d\n\n", i, time.Now().UnixNano())
					w.(http.Flusher).Flush()
				}
			})
			rt := keyRoute("stream", "k1")
			_, url := frontWith(t, rt, b)
			req, _ := http.NewRequest("POST", url+"/api/v1/service/stream/score", strings.NewReader(`{"prompt":"hi"}`))
			req.Header.Set("Authorization", "Bearer k1")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			sc := bufio.NewScanner(resp.Body)
			var worst time.Duration
			n := 0
			for sc.Scan() {
				line, ok := strings.CutPrefix(sc.Text(), "data: ")
				if !ok {
					continue
				}
				got := time.Now()
				f := strings.Fields(line)
				sent, _ := strconv.ParseInt(f[1], 10, 64)
				lag := got.Sub(time.Unix(0, sent))
				worst = max(worst, lag)
				if lag > 20*time.Millisecond {
					t.Errorf("event %s reached the client %v after it was sent, want within 20ms", f[0], lag)
				}
				n++
			}
			if n != 10 {
				t.Fatalf("got %d events, want 10 (status %d)", n, resp.StatusCode)
			}
			t.Logf("%s: 10 events, the slowest reached the client %v after it was sent", kind, worst)
		})
	}
}

// TestDeletedServiceLeavesNoMetrics: a deleted service's counters go with
// it, so the front end does not report them to the control plane forever.
func TestDeletedServiceLeavesNoMetrics(t *testing.T) {
	b := newBackend(t, nil)
	f, url := frontWith(t, keyRoute("gone", "k1"), b)
	if a := post(t, url+"/api/v1/service/gone/score", "k1", `{}`); a.code != 200 {
		t.Fatalf("score: %+v", a)
	}
	has := func() bool {
		fams, _ := f.Gather()
		for _, fam := range fams {
			for _, m := range fam.GetMetric() {
				for _, l := range m.GetLabel() {
					if l.GetName() == "service" && l.GetValue() == "gone" {
						return true
					}
				}
			}
		}
		return false
	}
	if !has() {
		t.Fatal("no metrics for the service while it exists")
	}
	f.DeleteRoute("gone")
	if has() {
		t.Error("metrics of the deleted service remain")
	}
}
