package certificate

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-ml/berth/api"
	"github.com/berth-ml/berth/internal/testenv/pebble"
	legolog "github.com/go-acme/lego/v5/log"
)

// One Pebble for the package (TestMain stops it). HTTP-01 answers are
// served on 127.0.0.1 at its Options.HTTPPort.
var sharedPebble pebble.Shared

func TestMain(m *testing.M) {
	code := m.Run()
	sharedPebble.Stop()
	os.Exit(code)
}

// answers is an HTTP-01 provider serving from memory on a real listener.
type answers struct {
	mu sync.Mutex
	m  map[string]string
}

func (a *answers) Present(_ context.Context, _, token, keyAuth string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.m[token] = keyAuth
	return nil
}

func (a *answers) CleanUp(_ context.Context, _, token, _ string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.m, token)
	return nil
}

func serveAnswers(t *testing.T) *answers {
	a := &answers{m: map[string]string{}}
	ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(sharedPebble.Options.HTTPPort))
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.mu.Lock()
		v := a.m[strings.TrimPrefix(r.URL.Path, "/.well-known/acme-challenge/")]
		a.mu.Unlock()
		if v == "" {
			http.NotFound(w, r)
			return
		}
		fmt.Fprint(w, v)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return a
}

func settings(p *pebble.Server) api.WorkspaceSettings {
	return api.WorkspaceSettings{DNSZone: "unit.test", ACMEDirectoryURL: p.DirectoryURL, ACMECACertPEM: p.CACertPEM, ACMEEmail: "unit@berth.test"}
}

// lego's own log, timestamped, in the test log: where issuance spends its time.
func legoLog(t *testing.T) {
	start := time.Now()
	legolog.SetDefault(slog.New(slog.NewTextHandler(testWriter{t, start}, &slog.HandlerOptions{Level: slog.LevelDebug})))
	t.Cleanup(func() { legolog.SetDefault(slog.Default()) })
}

type testWriter struct {
	t     *testing.T
	start time.Time
}

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Logf("+%s %s", time.Since(w.start).Round(time.Millisecond), strings.TrimSpace(string(p)))
	return len(p), nil
}

func TestObtainOverHTTP01AndReuseTheAccount(t *testing.T) {
	p := sharedPebble.Get(t)
	a := serveAnswers(t)
	legoLog(t)
	start := time.Now()
	got, err := Obtain(context.Background(), Request{Settings: settings(p), Domain: "one.unit.test", HTTP01: a})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("first issuance (with account registration): %s", time.Since(start))
	info, err := Parse(got.ChainPEM)
	if err != nil || info.Leaf.DNSNames[0] != "one.unit.test" || got.Account.URI == "" || !strings.Contains(got.KeyPEM, "PRIVATE KEY") {
		t.Fatalf("issued: %v %+v", err, info)
	}
	if err := KeyPair(got.ChainPEM, got.KeyPEM); err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	again, err := Obtain(context.Background(), Request{Settings: settings(p), Domain: "one.unit.test", HTTP01: a, Account: got.Account})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("renewal with the stored account: %s", time.Since(start))
	if again.Account.URI != got.Account.URI {
		t.Fatalf("a new account was registered: %s vs %s", again.Account.URI, got.Account.URI)
	}
}

func TestObtainFailuresCarryTheCAReason(t *testing.T) {
	p := sharedPebble.Get(t)
	// Nobody answers the challenge: the CA says why it failed.
	_, err := Obtain(context.Background(), Request{Settings: settings(p), Domain: "nobody.unit.test", HTTP01: &answers{m: map[string]string{}}})
	if err == nil {
		t.Fatal("issued without an answer")
	}
	if r := Reason(err); !strings.Contains(r, "127.0.0.1:"+strconv.Itoa(sharedPebble.Options.HTTPPort)) {
		t.Fatalf("reason %q lacks where the CA looked", r)
	}
	// The CA cannot be reached.
	s := settings(p)
	s.ACMEDirectoryURL = "https://127.0.0.1:1/dir"
	_, err = Obtain(context.Background(), Request{Settings: s, Domain: "x.unit.test", HTTP01: &answers{m: map[string]string{}}})
	if err == nil || !strings.Contains(Reason(err), "127.0.0.1:1") {
		t.Fatalf("unreachable CA: %v", err)
	}
	// The CA is there but its certificate is not trusted: no silent insecure fallback.
	s = settings(p)
	s.ACMECACertPEM = ""
	_, err = Obtain(context.Background(), Request{Settings: s, Domain: "x.unit.test", HTTP01: &answers{m: map[string]string{}}})
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("untrusted CA: %v", err)
	}
}
