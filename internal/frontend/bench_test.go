package frontend

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// BenchmarkProxy scores through the front end and straight to the same
// backend; the difference in allocs/op is what the front end allocates per
// request (the client and backend are in this process too). CPU figures
// are bench/frontend.sh's job.
func BenchmarkProxy(b *testing.B) {
	payload := strings.Repeat("x", 1024)
	be := newBackend(b, func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, payload)
	})
	rt := &Route{Service: "bench", Port: 1, Auth: AuthNone, MaxConcurrentRequestsPerContainer: 64, MaxQueueWaitMs: 5000, ScoringTimeoutMs: 60000}
	_, url := frontWith(b, rt, be)
	testServer = ServerGo
	_, goURL := frontWith(b, rt, be)
	testServer = ServerBerth
	for _, tc := range []struct{ name, url string }{
		{"direct", be.srv.URL + "/score"},
		{"frontend", url + "/api/v1/service/bench/score"},
		{"frontend-nethttp", goURL + "/api/v1/service/bench/score"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
			for b.Loop() {
				resp, err := c.Post(tc.url, "application/json", strings.NewReader(`{"data":[[1,2,3,4]]}`))
				if err != nil {
					b.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					b.Fatalf("status %d", resp.StatusCode)
				}
			}
		})
	}
}
