// Package pebble runs Let's Encrypt's Pebble ACME test server and
// pebble-challtestsrv (its DNS server with a management API) on loopback,
// for tests that obtain real certificates over ACME. hack/pebble.sh builds
// both into .cache/pebble; hack/test.sh exports BERTH_PEBBLE_DIR and
// BERTH_REQUIRE_PEBBLE=1 so a missing Pebble fails rather than skips.
package pebble

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/berth-ml/berth/internal/freeport"
	"github.com/berth-ml/berth/internal/testenv"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Env names.
const (
	EnvDir     = "BERTH_PEBBLE_DIR"
	EnvRequire = "BERTH_REQUIRE_PEBBLE"
)

// Options shape a Pebble.
type Options struct {
	// HTTPPort is where Pebble checks HTTP-01 answers (on the name's address).
	HTTPPort int
	// ValidityPeriod of certificates in the default profile (default 90 days).
	ValidityPeriod time.Duration
	// ShortValidity, if set, adds a profile "shortlived" with this validity.
	ShortValidity time.Duration
	// DNSServer, if set, is the resolver Pebble uses (host:port); by
	// default the challtestsrv started alongside.
	DNSServer string
}

// Shared is one Pebble for a test package, started by the first test that
// needs it (Get) and stopped by the package's TestMain (Stop). A zero
// Options.HTTPPort is set to a free port when it starts.
type Shared struct {
	Options Options
	once    sync.Once
	srv     *Server
	err     error
}

// Get starts the server on first use; it skips t where Pebble is not
// available (see Available).
func (sh *Shared) Get(t *testing.T) *Server {
	t.Helper()
	dir := Available(t)
	sh.once.Do(func() {
		if sh.Options.HTTPPort == 0 {
			if sh.Options.HTTPPort, sh.err = freeport.Port(); sh.err != nil {
				return
			}
		}
		sh.srv, sh.err = Start(context.Background(), dir, sh.Options)
	})
	if sh.err != nil {
		t.Fatal(sh.err)
	}
	return sh.srv
}

// Stop stops the server if Get started it.
func (sh *Shared) Stop() {
	if sh.srv != nil {
		sh.srv.Stop()
	}
}

// Server is a running Pebble with its challtestsrv.
type Server struct {
	// DirectoryURL is the ACME directory.
	DirectoryURL string
	// CACertPEM is what the ACME client must trust for DirectoryURL (Pebble's minica).
	CACertPEM string
	// DNSAddr is challtestsrv's DNS server (UDP and TCP).
	DNSAddr string

	mgmt, chall string
	hc          *http.Client
	cmds        []*exec.Cmd
	logs        []*testenv.Buffer
	mu          sync.Mutex
	stopped     bool
}

// Dir is where the binaries and certificates are.
func Dir() (string, error) {
	if d := os.Getenv(EnvDir); d != "" {
		return d, nil
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := wd; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return filepath.Join(d, ".cache", "pebble"), nil
		}
		if filepath.Dir(d) == d {
			return "", errors.New("no go.mod above " + wd)
		}
	}
}

// Available tells whether the binaries are built; when not, a test is
// skipped, or fails under BERTH_REQUIRE_PEBBLE=1.
func Available(t testing.TB) string {
	testenv.SkipShort(t, "Pebble")
	t.Helper()
	d, err := Dir()
	if err == nil {
		if _, err = os.Stat(filepath.Join(d, "bin", "pebble")); err == nil {
			return d
		}
	}
	if os.Getenv(EnvRequire) == "1" {
		t.Fatalf("Pebble is required (%s=1) but not built: run hack/pebble.sh (%v)", EnvRequire, err)
	}
	t.Skipf("no Pebble: run hack/pebble.sh (%v)", err)
	return ""
}

// Start runs challtestsrv and Pebble; Stop ends them.
func Start(ctx context.Context, dir string, o Options) (*Server, error) {
	if o.HTTPPort == 0 {
		o.HTTPPort = 5002
	}
	if o.ValidityPeriod == 0 {
		o.ValidityPeriod = 90 * 24 * time.Hour
	}
	ca, err := os.ReadFile(filepath.Join(dir, "certs", "pebble.minica.pem"))
	if err != nil {
		return nil, err
	}
	s := &Server{CACertPEM: string(ca)}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	s.hc = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	ports := make([]int, 4)
	for i := range ports {
		if ports[i], err = freeport.Port(); err != nil {
			return nil, err
		}
	}
	s.DNSAddr = "127.0.0.1:" + strconv.Itoa(ports[0])
	s.chall = "http://127.0.0.1:" + strconv.Itoa(ports[1])
	if err := s.run(filepath.Join(dir, "bin", "pebble-challtestsrv"), nil,
		"-dnsserver", s.DNSAddr, "-management", "127.0.0.1:"+strconv.Itoa(ports[1]),
		"-http01", "", "-https01", "", "-doh", "", "-tlsalpn01", "", "-defaultIPv4", "127.0.0.1", "-defaultIPv6", ""); err != nil {
		return nil, err
	}
	profiles := map[string]any{"default": map[string]any{"description": "default", "validityPeriod": int(o.ValidityPeriod.Seconds())}}
	if o.ShortValidity > 0 {
		profiles["shortlived"] = map[string]any{"description": "short-lived", "validityPeriod": int(o.ShortValidity.Seconds())}
	}
	cfg := map[string]any{"pebble": map[string]any{
		"listenAddress":           "127.0.0.1:" + strconv.Itoa(ports[2]),
		"managementListenAddress": "127.0.0.1:" + strconv.Itoa(ports[3]),
		"certificate":             filepath.Join(dir, "certs", "localhost-cert.pem"),
		"privateKey":              filepath.Join(dir, "certs", "localhost-key.pem"),
		"httpPort":                o.HTTPPort, "tlsPort": 5001,
		"externalAccountBindingRequired": false,
		"retryAfter":                     map[string]int{"authz": 1, "order": 1},
		"keyAlgorithm":                   "ecdsa",
		"profiles":                       profiles,
	}}
	tmp, err := os.MkdirTemp("", "pebble")
	if err != nil {
		s.Stop()
		return nil, err
	}
	b, _ := json.Marshal(cfg)
	cfgFile := filepath.Join(tmp, "pebble.json")
	os.WriteFile(cfgFile, b, 0o600)
	dns := o.DNSServer
	if dns == "" {
		dns = s.DNSAddr
	}
	// No artificial sleeps before validation, and no random nonce
	// rejections: tests and benchmarks measure Berth, not Pebble's chaos.
	env := []string{"PEBBLE_VA_NOSLEEP=1", "PEBBLE_WFE_NONCEREJECT=0", "PEBBLE_AUTHZREUSE=0"}
	if err := s.run(filepath.Join(dir, "bin", "pebble"), env, "-config", cfgFile, "-dnsserver", dns); err != nil {
		s.Stop()
		return nil, err
	}
	s.DirectoryURL = "https://127.0.0.1:" + strconv.Itoa(ports[2]) + "/dir"
	s.mgmt = "https://127.0.0.1:" + strconv.Itoa(ports[3])
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := s.hc.Get(s.DirectoryURL)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			s.Stop()
			return nil, fmt.Errorf("pebble did not start: %v\n%s", err, s.Logs())
		}
		time.Sleep(50 * time.Millisecond)
	}
	return s, nil
}

func (s *Server) run(bin string, env []string, args ...string) error {
	cmd := exec.Command(bin, args...)
	log := &testenv.Buffer{}
	cmd.Stdout, cmd.Stderr = log, log
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return err
	}
	s.cmds = append(s.cmds, cmd)
	s.logs = append(s.logs, log)
	return nil
}

// Logs is what both servers printed.
func (s *Server) Logs() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var b bytes.Buffer
	for _, l := range s.logs {
		b.WriteString(l.String())
	}
	return b.String()
}

// Stop ends both servers.
func (s *Server) Stop() {
	for _, c := range s.cmds {
		syscall.Kill(-c.Process.Pid, syscall.SIGKILL)
		c.Wait()
	}
	s.cmds = nil
}

// RootPEM is the root that signs issued certificates (it changes with
// every Pebble start).
func (s *Server) RootPEM() (string, error) {
	resp, err := s.hc.Get(s.mgmt + "/roots/0")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// Roots is a pool with the issuing root.
func (s *Server) Roots() (*x509.CertPool, error) {
	p, err := s.RootPEM()
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM([]byte(p)) {
		return nil, errors.New("pebble's root is not PEM")
	}
	return pool, nil
}

func (s *Server) post(path string, body any) error {
	b, _ := json.Marshal(body)
	resp, err := http.Post(s.chall+path, "application/json", bytes.NewReader(b))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		msg, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("challtestsrv %s: %s %s", path, resp.Status, msg)
	}
	return nil
}

// SetDefaultIPv4 makes every name resolve to ip (the load balancer's
// address, as the zone's records would).
func (s *Server) SetDefaultIPv4(ip string) error {
	return s.post("/set-default-ipv4", map[string]string{"ip": ip})
}
