package frontend

import (
	"context"
	"crypto/tls"
	"fmt"
	"github.com/berth-ml/berth/internal/testenv/testcert"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/berth-ml/berth/internal/testenv"
)

// TestOnNetHTTP runs scoring tests on net/http's server too, to compare.
func TestOnNetHTTP(t *testing.T) {
	testServer = ServerGo
	defer func() { testServer = ServerBerth }()
	t.Run("ScoreWithKeysAndRotation", TestScoreWithKeysAndRotation)
	t.Run("StatusCodes", TestStatusCodes)
	t.Run("OverloadTenTimes", TestOverloadTenTimes)
	t.Run("QueuedClientLeaves", TestQueuedClientLeaves)
	t.Run("SlowClientsHoldNoSlot", TestSlowClientsHoldNoSlot)
	t.Run("ClientFramingErrorsAre400", TestClientFramingErrorsAre400)
	t.Run("LargeBodiesSpooled", TestLargeBodiesSpooled)
	t.Run("StreamedAnswersRelayAsTheyCome", TestStreamedAnswersRelayAsTheyCome)
}

// TestServeWithEitherServer: Frontend.Serve answers on HTTP, HTTPS and
// admin with both servers, and its shutdown lets a request in progress end.
func TestServeWithEitherServer(t *testing.T) {
	for _, kind := range []string{ServerBerth, ServerGo} {
		t.Run(kind, func(t *testing.T) {
			b := newBackend(t, nil)
			b.delay.Store(int64(300 * time.Millisecond))
			f := New(nil)
			f.HTTPServer = kind
			f.SetReady(true)
			rt := keyRoute("svc", "k")
			f.SetRoute(rt)
			f.SetReplicas("svc", []Replica{{Name: "p", Addr: b.addr(), Slots: 4}}, "")
			certPEM, keyPEM := testcert.SelfSigned(t, "h1.test")
			f.SetCertificate(certPEM, keyPEM)
			l := Listeners{HTTP: testenv.FreeAddr(t), HTTPS: testenv.FreeAddr(t), Admin: testenv.FreeAddr(t)}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan error, 1)
			go func() { done <- f.Serve(ctx, l) }()
			c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
			get := func(url string) int {
				for i := 0; ; i++ {
					resp, err := c.Get(url)
					if err == nil {
						resp.Body.Close()
						return resp.StatusCode
					}
					if i == 50 {
						t.Fatal(err)
					}
					time.Sleep(20 * time.Millisecond)
				}
			}
			for _, u := range []string{"http://" + l.HTTP + "/healthz", "https://" + l.HTTPS + "/healthz", "http://" + l.Admin + "/metrics"} {
				if code := get(u); code != 200 {
					t.Fatalf("%s: %d", u, code)
				}
			}
			// A slow request in progress when the front end stops still gets its answer.
			answered := make(chan int, 1)
			go func() {
				req, _ := http.NewRequest("POST", "https://"+l.HTTPS+"/api/v1/service/svc/score", strings.NewReader("{}"))
				req.Header.Set("Authorization", "Bearer k")
				resp, err := c.Do(req)
				if err != nil {
					answered <- 0
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				answered <- resp.StatusCode
			}()
			for b.inflight.Load() == 0 {
				time.Sleep(5 * time.Millisecond)
			}
			cancel()
			if code := <-answered; code != 200 {
				t.Fatalf("request in progress at shutdown: %d", code)
			}
			if err := <-done; err != nil {
				t.Fatal(err)
			}
		})
	}
}

// Large bodies both ways through the front end, intact.
func TestH1ProxyLargeBodies(t *testing.T) {
	be := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		for i := 0; i < 3; i++ { // no Content-Length: chunked from the backend
			w.Write(b)
		}
	})
	rt := &Route{Service: "big", Port: 1, Auth: AuthNone, MaxConcurrentRequestsPerContainer: 4, MaxQueueWaitMs: 5000, ScoringTimeoutMs: 60000}
	_, url := frontWith(t, rt, be)
	payload := make([]byte, 1<<20)
	for i := range payload {
		payload[i] = byte(i * 7)
	}
	for _, chunked := range []bool{false, true} {
		var body io.Reader = strings.NewReader(string(payload))
		if chunked {
			body = io.MultiReader(body) // hides the length: sent chunked
		}
		resp, err := http.Post(url+"/api/v1/service/big/score", "application/octet-stream", body)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 || len(got) != 3<<20 || string(got[2<<20:]) != string(payload) {
			t.Fatalf("chunked request %v: %d, %d bytes, %v", chunked, resp.StatusCode, len(got), err)
		}
	}
}

// A client's Expect: 100-continue is answered by the front end
// (upstream's TestUpstreamSkipsContinue: a replica's own 100 Continue).
func TestExpectContinueThroughFrontend(t *testing.T) {
	be := newBackend(t, nil)
	rt := &Route{Service: "ex", Port: 1, Auth: AuthNone, MaxConcurrentRequestsPerContainer: 1, MaxQueueWaitMs: 5000, ScoringTimeoutMs: 60000}
	_, url := frontWith(t, rt, be)
	c := &http.Client{Transport: &http.Transport{ExpectContinueTimeout: 5 * time.Second}}
	for i := 0; i < 3; i++ {
		req, _ := http.NewRequest("POST", url+"/api/v1/service/ex/score", strings.NewReader(fmt.Sprintf("body-%d", i)))
		req.Header.Set("Expect", "100-continue")
		if code, b := testenv.Send(c, req); code != 200 || !strings.Contains(b, `"bytes":6`) {
			t.Fatalf("request %d: %d %s", i, code, b)
		}
	}
}
