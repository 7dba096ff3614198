package pebble

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"github.com/berth-ml/berth/internal/freeport"
	"github.com/berth-ml/berth/internal/testenv"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// Bind is a BIND (named) server on loopback, authoritative for one zone
// that takes RFC 2136 dynamic updates signed with a TSIG key: a real DNS
// provider for DNS-01 tests (Debian's bind9, installed by hack/pebble.sh).
type Bind struct {
	Addr    string // host:port, UDP and TCP
	Zone    string
	KeyName string
	// Secret is the TSIG key (base64, hmac-sha256).
	Secret string

	cmd *exec.Cmd
	log *bytes.Buffer
	dir string
}

// NamedPath finds named, or skips/fails the test as Available does.
func NamedPath(t testing.TB) string {
	testenv.SkipShort(t, "BIND")
	t.Helper()
	for _, p := range []string{"/usr/sbin/named", "named"} {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	if os.Getenv(EnvRequire) == "1" {
		t.Fatalf("BIND (named) is required (%s=1) but not installed: run hack/pebble.sh", EnvRequire)
	}
	t.Skip("no BIND (named): run hack/pebble.sh")
	return ""
}

// StartBind runs named for zone on a free loopback port; records holds
// extra zone lines (e.g. "*.zone. 60 IN A 127.101.0.1").
func StartBind(ctx context.Context, named, zone string, records ...string) (*Bind, error) {
	dir, err := os.MkdirTemp("", "named")
	if err != nil {
		return nil, err
	}
	port, err := freeport.Port()
	if err != nil {
		return nil, err
	}
	secret := make([]byte, 32)
	rand.Read(secret)
	b := &Bind{Addr: "127.0.0.1:" + strconv.Itoa(port), Zone: zone, KeyName: "berth-test", Secret: base64.StdEncoding.EncodeToString(secret), dir: dir}
	conf := fmt.Sprintf(`options {
	directory "%[1]s";
	pid-file "%[1]s/named.pid";
	session-keyfile "%[1]s/session.key";
	managed-keys-directory "%[1]s";
	listen-on port %[2]d { 127.0.0.1; };
	listen-on-v6 { none; };
	recursion no;
	dnssec-validation no;
	allow-query { any; };
	notify no;
};
controls { };
key "%[3]s" { algorithm hmac-sha256; secret "%[4]s"; };
zone "%[5]s" { type primary; file "%[1]s/zone.db"; allow-update { key "%[3]s"; }; };
`, dir, port, b.KeyName, b.Secret, zone)
	zoneFile := fmt.Sprintf("$TTL 60\n@ IN SOA ns.%[1]s. hostmaster.%[1]s. 1 60 60 600 60\n@ IN NS ns.%[1]s.\nns IN A 127.0.0.1\n", zone)
	for _, r := range records {
		zoneFile += r + "\n"
	}
	if err := os.WriteFile(filepath.Join(dir, "named.conf"), []byte(conf), 0o644); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "zone.db"), []byte(zoneFile), 0o644); err != nil {
		return nil, err
	}
	b.log = &bytes.Buffer{}
	b.cmd = exec.Command(named, "-g", "-n", "1", "-c", filepath.Join(dir, "named.conf"))
	b.cmd.Stdout, b.cmd.Stderr = b.log, b.log
	b.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := b.cmd.Start(); err != nil {
		return nil, err
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", b.Addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return b, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			b.Stop()
			return nil, fmt.Errorf("named did not start: %v\n%s", err, b.log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop ends named and removes its files.
func (b *Bind) Stop() {
	if b.cmd != nil && b.cmd.Process != nil {
		syscall.Kill(-b.cmd.Process.Pid, syscall.SIGKILL)
		b.cmd.Wait()
	}
	os.RemoveAll(b.dir)
}

// Log is what named printed (not safe while it runs and writes).
func (b *Bind) Log() string { return b.log.String() }
