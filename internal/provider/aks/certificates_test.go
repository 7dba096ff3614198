package aks_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/berth-ml/berth/api"
	"github.com/berth-ml/berth/internal/cli"
	"github.com/berth-ml/berth/internal/freeport"
	"github.com/berth-ml/berth/internal/installer"
	"github.com/berth-ml/berth/internal/server"
	"github.com/berth-ml/berth/internal/testenv/pebble"
	"github.com/berth-ml/berth/internal/testenv/simcluster"
	"github.com/berth-ml/berth/internal/testenv/testcert"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// frontend runs berth-fe (the CLI's `frontend` command, in this process)
// against the cluster, HTTP on httpAddr and HTTPS on a free port of
// 127.0.0.1, until the test ends; it returns the HTTPS address.
func frontend(t *testing.T, cl *simcluster.Cluster, httpAddr string) string {
	t.Helper()
	https, err := freeport.Addr()
	if err != nil {
		t.Fatal(err)
	}
	admin, err := freeport.Addr()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	var log bytes.Buffer
	go func() {
		defer close(done)
		cli.Execute(ctx, []string{"frontend", "--kubeconfig", cl.KubeconfigPath, "--http", httpAddr, "--https", https, "--admin", admin,
			"--autoscale=false", "--access-log=false", "--log-format", "text"}, io.Discard, &log, os.Getenv)
	}()
	t.Cleanup(func() { cancel(); <-done })
	return https
}

// served waits until addr presents, for name, a certificate that check
// accepts, and returns it.
func served(t *testing.T, addr, name string, roots *x509.CertPool, check func(*x509.Certificate) bool) *x509.Certificate {
	t.Helper()
	var last error
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 2 * time.Second}, "tcp", addr,
			&tls.Config{ServerName: name, RootCAs: roots, InsecureSkipVerify: roots == nil})
		if err != nil {
			last = err
			continue
		}
		c := conn.ConnectionState().PeerCertificates[0]
		conn.Close()
		if check(c) {
			return c
		}
		last = nil
	}
	t.Fatalf("the front end at %s never served the expected certificate for %s (last error: %v)", addr, name, last)
	return nil
}

// certificateFiles writes a certificate chain for cn and its key to files.
func certificateFiles(t *testing.T, cn string) (chainPEM []byte, certFile, keyFile string) {
	t.Helper()
	dir := t.TempDir()
	chainPEM, keyPEM := testcert.Chain(t, cn)
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := errors.Join(os.WriteFile(certFile, chainPEM, 0o600), os.WriteFile(keyFile, keyPEM, 0o600)); err != nil {
		t.Fatal(err)
	}
	return chainPEM, certFile, keyFile
}

// deleteAKS deletes a created compute and waits until Berth's namespace
// is gone from the package's cluster.
func (e *env) deleteAKS(name string, cl *simcluster.Cluster) {
	e.t.Helper()
	e.ok("compute", "delete", "-n", name)
	waitNamespaceGone(e.t, cl)
}

// TestCreateWithCustomCertificate: `compute create aks` with
// --ssl-cert-file/--ssl-key-file/--ssl-cname installs the certificate, so
// the front end serves it as soon as the create ends (issue 15: the create
// skipped the certificate step while showing SSL Enabled).
func TestCreateWithCustomCertificate(t *testing.T) {
	cl, fake := simulatedAzure(t)
	e := start(t, fake)
	certPEM, certFile, keyFile := certificateFiles(t, "scoring.contoso.test")
	r := e.ok("compute", "create", "aks", "-n", "tls1", "--ssl-cert-file", certFile, "--ssl-key-file", keyFile, "--ssl-cname", "scoring.contoso.test")
	mustContain(t, "create output", r.stdout+r.stderr, "Custom certificate for scoring.contoso.test", "Wrote Secret berth-system/berth-fe-tls")
	c := e.compute("tls1")
	if c.SSLConfiguration.Status != api.SSLEnabled || c.SSLConfiguration.Cname != "scoring.contoso.test" || c.SSLConfiguration.NotAfter == nil {
		t.Errorf("ssl after create: %+v", c.SSLConfiguration)
	}
	block, _ := pem.Decode(certPEM)
	sec, err := cl.Client().CoreV1().Secrets(installer.Namespace).Get(context.Background(), installer.TLSSecret, metav1.GetOptions{})
	if err != nil || !bytes.Contains(sec.Data["cert.pem"], pem.EncodeToMemory(block)) {
		t.Fatalf("Secret %s after create: %v\n%s", installer.TLSSecret, err, sec.Data["cert.pem"])
	}
	https := frontend(t, cl, "127.0.0.1:0")
	served(t, https, "scoring.contoso.test", nil, func(got *x509.Certificate) bool { return bytes.Equal(got.Raw, block.Bytes) })
	e.deleteAKS("tls1", cl)
}

// TestCreateWithAutomaticCertificate: `compute create aks
// --ssl-leaf-domain-label L` obtains the certificate inside the create, as
// attach does: from a real ACME CA (Pebble) over HTTP-01 answered by the
// front end, for <L>xxxxxx.<region>.cloudapp.azure.com. Before the name
// leads anywhere the create ends Unhealthy, with the CA's reason and advice.
func TestCreateWithAutomaticCertificate(t *testing.T) {
	dir := pebble.Available(t)
	cl, fake := simulatedAzure(t)
	port, err := freeport.Port()
	if err != nil {
		t.Fatal(err)
	}
	pb, err := pebble.Start(context.Background(), dir, pebble.Options{HTTPPort: port})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("pebble:\n%s", pb.Logs())
		}
		pb.Stop()
	})
	// The renewal loop never runs: what the create does is all there is.
	e := start(t, fake, func(cfg *server.Config) {
		cfg.ACMEHTTPPort, cfg.CertificateCheckInterval, cfg.CertificateRetryBase = port, -1, time.Hour
	})
	caFile := filepath.Join(t.TempDir(), "pebble-minica.pem")
	os.WriteFile(caFile, []byte(pb.CACertPEM), 0o600)
	e.ok("workspace", "update", "-n", "ml-team", "--acme-directory-url", pb.DirectoryURL, "--acme-ca-file", caFile)
	fqdnRe := regexp.MustCompile(`^auto[a-z0-9]{6}\.westus2\.cloudapp\.azure\.com$`)

	// Nothing answers for the name yet: Unhealthy, with the reason and advice.
	if err := pb.SetDefaultIPv4("127.0.0.2"); err != nil {
		t.Fatal(err)
	}
	r := e.ok("compute", "create", "aks", "-n", "auto0", "--ssl-leaf-domain-label", "auto")
	c := e.compute("auto0")
	if c.ProvisioningState != api.StateSucceeded || c.Health != api.HealthUnhealthy || c.SSLConfiguration.Status != api.SSLAuto ||
		!fqdnRe.MatchString(c.SSLConfiguration.FQDN) || c.SSLConfiguration.NotAfter != nil {
		t.Errorf("create before the name resolves: %+v\n%s%s", c, r.stdout, r.stderr)
	}
	mustContain(t, "create output", r.stdout+r.stderr, "Requesting a certificate for "+c.SSLConfiguration.FQDN, "No certificate for "+c.SSLConfiguration.FQDN+" yet",
		"resolve to the endpoint "+c.Endpoint)
	e.deleteAKS("auto0", cl)

	// The name leads to the front end: the create ends with it served.
	if err := pb.SetDefaultIPv4("127.0.0.1"); err != nil {
		t.Fatal(err)
	}
	https := frontend(t, cl, "127.0.0.1:"+strconv.Itoa(port))
	r = e.ok("compute", "create", "aks", "-n", "auto1", "--ssl-leaf-domain-label", "auto")
	c = e.compute("auto1")
	fqdn := c.SSLConfiguration.FQDN
	if c.ProvisioningState != api.StateSucceeded || c.Health != api.HealthHealthy || c.SSLConfiguration.Status != api.SSLAuto ||
		!fqdnRe.MatchString(fqdn) || c.SSLConfiguration.NotAfter == nil || status(c).FQDN != fqdn {
		t.Fatalf("create with an automatic certificate: %+v\n%s%s", c, r.stdout, r.stderr)
	}
	mustContain(t, "create output", r.stdout+r.stderr, "Certificate issued for "+fqdn)
	roots, err := pb.Roots()
	if err != nil {
		t.Fatal(err)
	}
	served(t, https, fqdn, roots, func(got *x509.Certificate) bool { return slices.Contains(got.DNSNames, fqdn) })
	e.deleteAKS("auto1", cl)
}
