// Command tls-renew measures how long a certificate renewal takes to reach
// the scoring front end: from `berth compute update --ssl-renew` until
// berth-fe serves the new certificate, and from the moment a renewal
// comes due (a third of the lifetime left) until the new one is served.
// It runs a real ACME CA (Pebble, from hack/pebble.sh), a simulated
// cluster, `berth server` and `berth frontend` on loopback, and prints
// each sample and the median beside the reference's ~5 hours.
//
//	go run ./bench/tls-renew [-n 5] [-check 1s]
package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"flag"
	"fmt"
	"github.com/berth-ml/berth/bench/internal/benchenv"
	"github.com/berth-ml/berth/internal/freeport"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/berth-ml/berth/api"
	"github.com/berth-ml/berth/internal/testenv/pebble"
	"github.com/berth-ml/berth/internal/testenv/simcluster"
)

const reference = 5 * time.Hour // REFERENCE.md: a forced renewal took about 5 hours

var events bool

func main() {
	n := flag.Int("n", 5, "renewals of each kind")
	check := flag.Duration("check", time.Second, "the server's --certificate-check-interval")
	short := flag.Duration("validity", 30*time.Second, "lifetime of the short-lived certificates used for renewals coming due")
	flag.BoolVar(&events, "events", false, "print the events of the last forced renewal")
	flag.Parse()
	if err := run(*n, *check, *short); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func start(bin string, args ...string) (*exec.Cmd, error) {
	cmd := exec.Command(bin, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	var log bytes.Buffer
	cmd.Stdout, cmd.Stderr = &log, &log
	return cmd, cmd.Start()
}

func run(rounds int, check, validity time.Duration) error {
	ctx := context.Background()
	dir, err := pebble.Dir()
	if err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(dir, "bin", "pebble")); err != nil {
		return fmt.Errorf("no Pebble in %s: run ./hack/pebble.sh", dir)
	}
	tmp, bin, cleanup, err := benchenv.BuildBerth("berth-bench-tls")
	if err != nil {
		return err
	}
	defer cleanup()
	httpAddr, err := freeport.Addr()
	if err != nil {
		return err
	}
	_, httpPort, _ := net.SplitHostPort(httpAddr)
	port, _ := strconv.Atoi(httpPort)
	pb, err := pebble.Start(ctx, dir, pebble.Options{HTTPPort: port, ShortValidity: validity})
	if err != nil {
		return err
	}
	defer pb.Stop()
	fmt.Fprintln(os.Stderr, "starting a simulated cluster (1 node × 4 vCPU)")
	cl, err := simcluster.Start(ctx, simcluster.Options{Nodes: simcluster.Nodes(1, "4")})
	if err != nil {
		return err
	}
	defer cl.Stop()

	addr, err := freeport.Addr()
	if err != nil {
		return err
	}
	data := filepath.Join(tmp, "data")
	srv, err := start(bin, "server", "--data-dir", data, "--listen", addr, "--reconcile-interval", "1h", "--log-level", "warn",
		"--acme-http-port", httpPort, "--certificate-check-interval", check.String())
	if err != nil {
		return err
	}
	defer syscall.Kill(-srv.Process.Pid, syscall.SIGKILL)
	env := append(os.Environ(), "BERTH_SERVER=http://"+addr, "BERTH_DATA_DIR="+data, "BERTH_WORKSPACE=bench")
	berth := func(args ...string) (string, error) {
		cmd := exec.Command(bin, args...)
		cmd.Env = env
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Run(); err != nil {
			return "", fmt.Errorf("berth %s: %v\n%s%s", strings.Join(args, " "), err, out.String(), errb.String())
		}
		return out.String(), nil
	}
	for i := 0; ; i++ {
		if _, err := berth("workspace", "list"); err == nil {
			break
		} else if i > 100 {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
	caFile := filepath.Join(tmp, "pebble-ca.pem")
	os.WriteFile(caFile, []byte(pb.CACertPEM), 0o600)
	steps := [][]string{
		{"workspace", "create", "-n", "bench"},
		{"workspace", "update", "-n", "bench", "--dns-zone", "bench.test", "--acme-directory-url", pb.DirectoryURL, "--acme-ca-file", caFile},
		{"compute", "attach", "kubernetes", "-n", "tls-bench", "--kubeconfig", cl.KubeconfigPath, "--cluster-purpose", "DevTest"},
	}
	for _, s := range steps {
		if _, err := berth(s...); err != nil {
			return err
		}
	}
	out, err := berth("compute", "show", "-n", "tls-bench", "-o", "json")
	if err != nil {
		return err
	}
	var c api.Compute
	json.Unmarshal([]byte(out), &c)
	https, err := freeport.AddrOn(c.Endpoint)
	if err != nil {
		return err
	}
	fe, err := start(bin, "frontend", "--kubeconfig", cl.KubeconfigPath, "--http", net.JoinHostPort(c.Endpoint, httpPort),
		"--https", https, "--admin", "127.0.0.1:0", "--autoscale=false", "--access-log=false")
	if err != nil {
		return err
	}
	defer syscall.Kill(-fe.Process.Pid, syscall.SIGKILL)
	if err := pb.SetDefaultIPv4(c.Endpoint); err != nil {
		return err
	}
	if _, err := berth("compute", "update", "-n", "tls-bench", "--ssl-leaf-domain-label", "bench"); err != nil {
		return err
	}
	out, _ = berth("compute", "show", "-n", "tls-bench", "-o", "json")
	json.Unmarshal([]byte(out), &c)
	fqdn := c.SSLConfiguration.FQDN
	roots, err := pb.Roots()
	if err != nil {
		return err
	}
	served := func() *x509.Certificate {
		conn, err := tls.DialWithDialer(&net.Dialer{Timeout: time.Second}, "tcp", https, &tls.Config{ServerName: fqdn, RootCAs: roots})
		if err != nil {
			return nil
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0]
	}
	waitNew := func(old *x509.Certificate, limit time.Duration) (*x509.Certificate, time.Time, error) {
		deadline := time.Now().Add(limit)
		for time.Now().Before(deadline) {
			if cur := served(); cur != nil && (old == nil || cur.SerialNumber.Cmp(old.SerialNumber) != 0) {
				return cur, time.Now(), nil
			}
			time.Sleep(5 * time.Millisecond)
		}
		return nil, time.Time{}, fmt.Errorf("no new certificate served within %s", limit)
	}
	cur, _, err := waitNew(nil, 30*time.Second)
	if err != nil {
		return err
	}

	// Forced renewals: from the command's start to the new certificate served.
	var forced []time.Duration
	lastOp := ""
	for i := 0; i < rounds; i++ {
		t0 := time.Now()
		opOut, err := berth("compute", "update", "-n", "tls-bench", "--ssl-renew", "--no-wait", "-o", "json")
		if err != nil {
			return err
		}
		var op api.Operation
		json.Unmarshal([]byte(opOut), &op)
		lastOp = op.ID
		next, at, err := waitNew(cur, time.Minute)
		if err != nil {
			return err
		}
		forced = append(forced, at.Sub(t0))
		cur = next
		// Let the operation finish before the next one (one per compute).
		for {
			out, _ := berth("compute", "show", "-n", "tls-bench", "-o", "json", "--query", "currentOperation")
			if strings.TrimSpace(out) == `""` || strings.TrimSpace(out) == "null" || strings.TrimSpace(out) == "" {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	report(fmt.Sprintf("update --ssl-renew → new certificate served by berth-fe (%d rounds)", rounds), forced)
	if events {
		out, _ := berth("operation", "events", lastOp, "-o", "json")
		var evs []api.Event
		json.Unmarshal([]byte(out), &evs)
		for _, ev := range evs {
			fmt.Printf("  %s %s\n", ev.Time.Format("15:04:05.000"), ev.Message)
		}
	}

	// Renewals coming due: short-lived certificates, renewed by the control
	// plane's own check; from the due time to the new certificate served.
	if _, err := berth("workspace", "update", "-n", "bench", "--acme-profile", "shortlived"); err != nil {
		return err
	}
	if _, err := berth("compute", "update", "-n", "tls-bench", "--ssl-renew"); err != nil {
		return err
	}
	if cur, _, err = waitNew(cur, 30*time.Second); err != nil {
		return err
	}
	var due []time.Duration
	for i := 0; i < rounds; i++ {
		at := cur.NotAfter.Add(-cur.NotAfter.Sub(cur.NotBefore) / 3)
		next, seen, err := waitNew(cur, time.Until(at)+time.Minute)
		if err != nil {
			return err
		}
		due = append(due, seen.Sub(at))
		cur = next
	}
	report(fmt.Sprintf("renewal due (⅓ of a %s lifetime left) → new certificate served (check interval %s, %d rounds)", validity, check, rounds), due)
	fmt.Printf("reference (REFERENCE.md): a forced renewal took about %s\n", reference)
	return nil
}

func report(what string, d []time.Duration) {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	var parts []string
	for _, x := range d {
		parts = append(parts, x.Round(time.Millisecond).String())
	}
	fmt.Printf("%s: median %s (samples %s)\n", what, s[len(s)/2].Round(time.Millisecond), strings.Join(parts, ", "))
}
