package e2e

import (
	"context"
	"crypto/x509"
	"github.com/berth-ml/berth/internal/testenv"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-ml/berth/api"
	"github.com/berth-ml/berth/internal/testenv/pebble"
	"github.com/berth-ml/berth/internal/testenv/simcluster"
)

// One Pebble (and its challtestsrv) for the package, started by the first
// test that needs it and stopped by TestMain. Its Options.HTTPPort is
// where front ends answer HTTP-01.
var sharedPebble = pebble.Shared{Options: pebble.Options{ShortValidity: shortValidity}}

// shortValidity is the "shortlived" profile's certificate lifetime: renewal
// comes due after two thirds of it.
const shortValidity = 24 * time.Second

// acmeEnv is a server whose workspace gets certificates from Pebble, and a
// DevTest cluster attached to it with berth-fe running on the load
// balancer's address.
type acmeEnv struct {
	*attachEnv
	pb       *pebble.Server
	cl       *simcluster.Cluster
	compute  string
	lbIP     string
	https    string // the front end's HTTPS address
	roots    *x509.CertPool
	caFile   string
	feLog    *testenv.Buffer
	settings []string
}

func newACMEEnv(t *testing.T, name string, serverArgs ...string) *acmeEnv {
	t.Helper()
	pb := sharedPebble.Get(t)
	cl := simcluster.StartT(t, simcluster.Options{Nodes: simcluster.Nodes(1, "4")})
	args := append([]string{"--acme-http-port", strconv.Itoa(sharedPebble.Options.HTTPPort), "--certificate-check-interval", "250ms",
		"--certificate-retry-backoff", "1s"}, serverArgs...)
	e := &acmeEnv{attachEnv: newAttachEnv(t, args...), pb: pb, cl: cl, compute: name}
	e.caFile = filepath.Join(e.dir, "pebble-minica.pem")
	os.WriteFile(e.caFile, []byte(pb.CACertPEM), 0o600)
	e.settings = []string{"--dns-zone", "berth.test", "--acme-directory-url", pb.DirectoryURL, "--acme-ca-file", e.caFile, "--acme-email", "ops@berth.test"}
	e.mustBerth(append([]string{"workspace", "update", "-n", "team"}, e.settings...)...)
	e.mustBerth("compute", "attach", "kubernetes", "-n", name, "--kubeconfig", cl.KubeconfigPath, "--cluster-purpose", "DevTest")
	e.lbIP = e.show(name).Endpoint
	if !strings.HasPrefix(e.lbIP, "127.100.") {
		t.Fatalf("endpoint %q", e.lbIP)
	}
	// berth-fe on the load balancer's address: HTTP where Pebble checks
	// HTTP-01 answers, HTTPS on a free port there.
	ln, err := net.Listen("tcp", net.JoinHostPort(e.lbIP, "0"))
	if err != nil {
		t.Fatal(err)
	}
	e.https = ln.Addr().String()
	ln.Close()
	e.feLog = process(t, "frontend", "--kubeconfig", cl.KubeconfigPath, "--http", net.JoinHostPort(e.lbIP, strconv.Itoa(sharedPebble.Options.HTTPPort)),
		"--https", e.https, "--admin", freeAddr(t), "--autoscale=false", "--log-format", "text")
	// The zone's records point at the load balancer, as the cloud's DNS would.
	if err := pb.SetDefaultIPv4(e.lbIP); err != nil {
		t.Fatal(err)
	}
	if e.roots, err = pb.Roots(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("pebble:\n%s", pb.Logs())
		}
	})
	return e
}

// serving waits until the front end serves a certificate for name that
// is not the one with serial `not` (nil: any) and returns it.
func (e *acmeEnv) serving(name string, not *x509.Certificate, timeout time.Duration) *x509.Certificate {
	e.t.Helper()
	return waitServed(e.t, e.https, name, e.roots, timeout, func(c *x509.Certificate) bool {
		return not == nil || c.SerialNumber.Cmp(not.SerialNumber) != 0
	})
}

// TestAutomaticCertificate: an automatic certificate from a real ACME CA
// (Pebble) over HTTP-01 answered by berth-fe, forced renewal, keeping or
// changing the domain, automatic renewal before expiry, a failing CA that
// leaves the old certificate serving, and custom ↔ automatic.
func TestAutomaticCertificate(t *testing.T) {
	e := newACMEEnv(t, "auto-1")
	ctx := context.Background()

	// Issue over HTTP-01 through the front end.
	r := e.mustBerth("compute", "update", "-n", "auto-1", "--ssl-leaf-domain-label", "web")
	if !strings.Contains(r.stdout+r.stderr, "HTTP-01 answered by berth-fe") {
		t.Errorf("update events lack the challenge:\n%s%s", r.stdout, r.stderr)
	}
	c := e.show("auto-1")
	ssl := c.SSLConfiguration
	if ssl.Status != api.SSLAuto || ssl.LeafDomainLabel != "web" || ssl.NotAfter == nil ||
		!strings.HasPrefix(ssl.FQDN, "web") || !strings.HasSuffix(ssl.FQDN, ".berth.test") || len(ssl.FQDN) != len("web")+6+len(".berth.test") {
		t.Fatalf("ssl: %+v", ssl)
	}
	fqdn := ssl.FQDN
	first := e.serving(fqdn, nil, 10*time.Second)
	if len(first.DNSNames) != 1 || first.DNSNames[0] != fqdn {
		t.Fatalf("served names %v, want %s", first.DNSNames, fqdn)
	}
	cert, err := e.client.GetCertificate(ctx, "team", "auto-1", false)
	if err != nil || !strings.Contains(cert.CertPEM, "BEGIN CERTIFICATE") {
		t.Fatalf("get-certificate: %v %+v", err, cert)
	}

	t.Run("forced renewal serves a new certificate within seconds", func(t *testing.T) {
		start := time.Now()
		e.mustBerth("compute", "update", "-n", "auto-1", "--ssl-renew")
		next := e.serving(fqdn, first, 10*time.Second)
		t.Logf("update --ssl-renew to the new certificate served: %s", time.Since(start).Round(time.Millisecond))
		if time.Since(start) > 30*time.Second {
			t.Errorf("renewal took %s", time.Since(start))
		}
		if e.show("auto-1").SSLConfiguration.FQDN != fqdn {
			t.Error("renewal changed the name")
		}
		first = next
	})

	t.Run("the label keeps its name with --ssl-overwrite-domain, else gets a new one", func(t *testing.T) {
		e.mustBerth("compute", "update", "-n", "auto-1", "--ssl-leaf-domain-label", "web", "--ssl-overwrite-domain")
		if got := e.show("auto-1").SSLConfiguration.FQDN; got != fqdn {
			t.Fatalf("overwrite-domain: %s, want %s", got, fqdn)
		}
		e.mustBerth("compute", "update", "-n", "auto-1", "--ssl-leaf-domain-label", "web")
		fresh := e.show("auto-1").SSLConfiguration.FQDN
		if fresh == fqdn || !strings.HasPrefix(fresh, "web") {
			t.Fatalf("new domain: %s (was %s)", fresh, fqdn)
		}
		fqdn = fresh
		first = e.serving(fqdn, nil, 10*time.Second)
	})

	t.Run("a failing CA keeps the old certificate serving and turns the compute Unhealthy", func(t *testing.T) {
		// Pebble's validation now reaches nobody: the challenge fails.
		if err := e.pb.SetDefaultIPv4("127.0.0.2"); err != nil {
			t.Fatal(err)
		}
		r := e.berth("compute", "update", "-n", "auto-1", "--ssl-renew")
		if r.code == 0 || !strings.Contains(r.stderr, "the certificate authority did not issue a certificate for "+fqdn) {
			t.Fatalf("renew against a failing challenge: %d\n%s", r.code, r.stderr)
		}
		c := e.show("auto-1")
		if c.Health != api.HealthUnhealthy || len(c.ProvisioningErrors) == 0 || !strings.Contains(c.ProvisioningErrors[0].Message, "certificate authority:") ||
			!strings.Contains(c.ProvisioningErrors[0].Message, "127.0.0.2") {
			t.Fatalf("after a failed renewal: health %s errors %+v", c.Health, c.ProvisioningErrors)
		}
		if cur, err := served(e.https, fqdn, e.roots); err != nil || cur.SerialNumber.Cmp(first.SerialNumber) != 0 {
			t.Fatalf("the old certificate stopped serving: %v %v", certName(cur), err)
		}
		// The control plane retries with backoff; once the CA can validate
		// again, a new certificate serves and the compute is Healthy.
		if err := e.pb.SetDefaultIPv4(e.lbIP); err != nil {
			t.Fatal(err)
		}
		first = e.serving(fqdn, first, 30*time.Second)
		deadline := time.Now().Add(10 * time.Second)
		for e.show("auto-1").Health != api.HealthHealthy {
			if time.Now().After(deadline) {
				t.Fatalf("still %s after the retry succeeded", e.show("auto-1").Health)
			}
			time.Sleep(100 * time.Millisecond)
		}
	})

	t.Run("a new name the CA cannot validate yet: settled, Unhealthy, retried until it works", func(t *testing.T) {
		// The new name does not lead to the front end yet (its record is
		// not there): the update settles with a warning saying what to do.
		if err := e.pb.SetDefaultIPv4("127.0.0.2"); err != nil {
			t.Fatal(err)
		}
		r := e.mustBerth("compute", "update", "-n", "auto-1", "--ssl-leaf-domain-label", "late")
		if !strings.Contains(r.stdout+r.stderr, "resolve to the endpoint "+e.lbIP) {
			t.Errorf("update lacks the advice:\n%s%s", r.stdout, r.stderr)
		}
		c := e.show("auto-1")
		if c.ProvisioningState != api.StateSucceeded || c.Health != api.HealthUnhealthy || c.SSLConfiguration.Status != api.SSLAuto ||
			!strings.HasPrefix(c.SSLConfiguration.FQDN, "late") || len(c.ProvisioningErrors) != 1 || !strings.Contains(c.ProvisioningErrors[0].Message, "certificate authority:") {
			t.Fatalf("after an update whose name does not resolve yet: %+v", c)
		}
		// The previous certificate still serves.
		if cur, err := served(e.https, fqdn, e.roots); err != nil || cur.SerialNumber.Cmp(first.SerialNumber) != 0 {
			t.Fatalf("the old certificate stopped serving: %v %v", certName(cur), err)
		}
		if err := e.pb.SetDefaultIPv4(e.lbIP); err != nil {
			t.Fatal(err)
		}
		fqdn = c.SSLConfiguration.FQDN
		first = e.serving(fqdn, nil, 30*time.Second)
		deadline := time.Now().Add(10 * time.Second)
		for c := e.show("auto-1"); c.Health != api.HealthHealthy || len(c.ProvisioningErrors) > 0 || c.SSLConfiguration.NotAfter == nil; c = e.show("auto-1") {
			if time.Now().After(deadline) {
				t.Fatalf("not settled after the retry: %+v", c)
			}
			time.Sleep(100 * time.Millisecond)
		}
	})

	t.Run("renews by itself when a third of the lifetime is left", func(t *testing.T) {
		e.mustBerth("workspace", "update", "-n", "team", "--acme-profile", "shortlived")
		e.mustBerth("compute", "update", "-n", "auto-1", "--ssl-renew")
		short := e.serving(fqdn, first, 10*time.Second)
		life := short.NotAfter.Sub(short.NotBefore)
		if life > shortValidity+time.Second {
			t.Fatalf("lifetime %s, want the short profile's %s", life, shortValidity)
		}
		due := short.NotAfter.Add(-life / 3)
		next := e.serving(fqdn, short, time.Until(due)+15*time.Second)
		if time.Now().Before(due) {
			t.Fatalf("renewed at %s, before it was due (%s)", time.Now(), due)
		}
		t.Logf("renewed %s after it came due", time.Since(due).Round(time.Millisecond))
		if !next.NotAfter.After(short.NotAfter) {
			t.Fatal("the renewed certificate does not last longer")
		}
		e.mustBerth("workspace", "update", "-n", "team", "--acme-profile", "default")
		e.mustBerth("compute", "update", "-n", "auto-1", "--ssl-renew")
		first = e.serving(fqdn, next, 10*time.Second)
	})

	t.Run("custom and back to automatic", func(t *testing.T) {
		ca := newTestCA(t)
		certFile, keyFile := ca.leaf(t, t.TempDir(), []string{"scoring.berth.test"}, time.Now().AddDate(0, 1, 0))
		e.mustBerth("compute", "update", "-n", "auto-1", "--ssl-cert-file", certFile, "--ssl-key-file", keyFile, "--ssl-cname", "scoring.berth.test")
		if s := e.show("auto-1").SSLConfiguration; s.Status != api.SSLEnabled || s.FQDN != "" || s.Cname != "scoring.berth.test" {
			t.Fatalf("custom: %+v", s)
		}
		waitServed(t, e.https, "scoring.berth.test", ca.pool, 10*time.Second, func(*x509.Certificate) bool { return true })
		// The automatic renewal leaves a custom certificate alone.
		switched := time.Now()
		time.Sleep(time.Second)
		ops, _ := e.client.ListComputeOperations(ctx, "team", "auto-1")
		for _, op := range ops {
			if op.Kind == api.OpRenew && op.CreatedAt.After(switched) {
				t.Fatalf("renewed a custom certificate: %+v", op)
			}
		}
		e.mustBerth("compute", "update", "-n", "auto-1", "--ssl-leaf-domain-label", "back")
		s := e.show("auto-1").SSLConfiguration
		if s.Status != api.SSLAuto || !strings.HasPrefix(s.FQDN, "back") {
			t.Fatalf("back to automatic: %+v", s)
		}
		e.serving(s.FQDN, nil, 10*time.Second)
	})

	t.Run("an automatic certificate cannot move behind an internal load balancer without DNS-01", func(t *testing.T) {
		r := e.berth("compute", "update", "-n", "auto-1", "--load-balancer-type", "InternalLoadBalancer", "--load-balancer-subnet", "snet")
		if r.code == 0 || !strings.Contains(r.stderr, "an internal load balancer is not reachable by the certificate authority") {
			t.Fatalf("switch to internal: %d %s", r.code, r.stderr)
		}
		if c := e.show("auto-1"); c.LoadBalancerType != api.LoadBalancerPublicIP {
			t.Fatalf("the refused update changed the load balancer: %s", c.LoadBalancerType)
		}
	})

	t.Run("disable", func(t *testing.T) {
		e.mustBerth("compute", "update", "-n", "auto-1", "--ssl-disable")
		if s := e.show("auto-1").SSLConfiguration; s.Status != api.SSLDisabled {
			t.Fatalf("disabled: %+v", s)
		}
		r := e.berth("compute", "update", "-n", "auto-1", "--ssl-renew")
		if r.code == 0 || !strings.Contains(r.stderr, "has SSL status Disabled") {
			t.Fatalf("renew when disabled: %d %s", r.code, r.stderr)
		}
	})
}

// A second Pebble for DNS-01: it resolves through a BIND server that
// takes RFC 2136 updates, the workspace's DNS-01 provider.
var (
	dnsOnce   sync.Once
	dnsPebble *pebble.Server
	dnsBind   *pebble.Bind
	dnsErr    error
)

func stopDNSPebble() {
	if dnsPebble != nil {
		dnsPebble.Stop()
	}
	if dnsBind != nil {
		dnsBind.Stop()
	}
}

// TestAutomaticCertificateInternalLoadBalancer: behind an internal load
// balancer the CA cannot reach the front end, so Berth refuses an
// automatic certificate until the workspace has a DNS-01 provider, then
// obtains one over DNS-01 (RFC 2136 updates to BIND) and serves it.
func TestAutomaticCertificateInternalLoadBalancer(t *testing.T) {
	dir := pebble.Available(t)
	named := pebble.NamedPath(t)
	const zone = "corp.berth.test"
	dnsOnce.Do(func() {
		if dnsBind, dnsErr = pebble.StartBind(context.Background(), named, zone); dnsErr != nil {
			return
		}
		dnsPebble, dnsErr = pebble.Start(context.Background(), dir, pebble.Options{DNSServer: dnsBind.Addr})
	})
	if dnsErr != nil {
		t.Fatal(dnsErr)
	}
	cl := simcluster.StartT(t, simcluster.Options{Nodes: simcluster.Nodes(1, "4")})
	e := newAttachEnv(t, "--certificate-check-interval", "250ms")
	caFile := filepath.Join(e.dir, "pebble-minica.pem")
	os.WriteFile(caFile, []byte(dnsPebble.CACertPEM), 0o600)
	e.mustBerth("workspace", "update", "-n", "team", "--dns-zone", zone, "--acme-directory-url", dnsPebble.DirectoryURL, "--acme-ca-file", caFile)

	// No DNS-01 provider: refused before anything is installed, saying what to configure.
	r := e.berth("compute", "attach", "kubernetes", "-n", "int-1", "--kubeconfig", cl.KubeconfigPath, "--cluster-purpose", "DevTest",
		"--load-balancer-type", "InternalLoadBalancer", "--load-balancer-subnet", "snet", "--ssl-leaf-domain-label", "corp")
	if r.code == 0 || !strings.Contains(r.stderr, "an internal load balancer is not reachable by the certificate authority") ||
		!strings.Contains(r.stderr, "--dns01-provider rfc2136 --dns01-nameserver") {
		t.Fatalf("internal + auto without DNS-01: %d\n%s", r.code, r.stderr)
	}
	if objs := berthObjects(t, cl); len(objs) > 0 {
		t.Fatalf("the refused attach installed %v", objs)
	}
	// The TSIG secret is stored sealed and never shown.
	out := e.mustBerth("workspace", "update", "-n", "team", "--dns01-provider", "rfc2136", "--dns01-nameserver", dnsBind.Addr,
		"--dns01-tsig-key", dnsBind.KeyName, "--dns01-tsig-secret", dnsBind.Secret, "-o", "json").stdout
	if strings.Contains(out, dnsBind.Secret) || !strings.Contains(out, `"tsigSecretSet": true`) {
		t.Fatalf("workspace update shows the secret or not that it is set:\n%s", out)
	}
	if show := e.mustBerth("workspace", "show", "-n", "team", "-o", "json").stdout; strings.Contains(show, dnsBind.Secret) {
		t.Fatal("workspace show prints the TSIG secret")
	}

	e.mustBerth("compute", "attach", "kubernetes", "-n", "int-1", "--kubeconfig", cl.KubeconfigPath, "--cluster-purpose", "DevTest",
		"--load-balancer-type", "InternalLoadBalancer", "--load-balancer-subnet", "snet", "--ssl-leaf-domain-label", "corp")
	c := e.show("int-1")
	ssl := c.SSLConfiguration
	if ssl.Status != api.SSLAuto || !strings.HasPrefix(ssl.FQDN, "corp") || !strings.HasSuffix(ssl.FQDN, "."+zone) || !strings.HasPrefix(c.Endpoint, "127.101.") {
		t.Fatalf("compute: endpoint %s ssl %+v", c.Endpoint, ssl)
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(c.Endpoint, "0"))
	if err != nil {
		t.Fatal(err)
	}
	https := ln.Addr().String()
	ln.Close()
	process(t, "frontend", "--kubeconfig", cl.KubeconfigPath, "--http", freeAddr(t), "--https", https, "--admin", freeAddr(t), "--autoscale=false", "--log-format", "text")
	roots, err := dnsPebble.Roots()
	if err != nil {
		t.Fatal(err)
	}
	first := waitServed(t, https, ssl.FQDN, roots, 10*time.Second, func(*x509.Certificate) bool { return true })

	// A forced renewal goes through DNS-01 too.
	e.mustBerth("compute", "update", "-n", "int-1", "--ssl-renew")
	waitServed(t, https, ssl.FQDN, roots, 10*time.Second, func(c *x509.Certificate) bool { return c.SerialNumber.Cmp(first.SerialNumber) != 0 })
	if t.Failed() {
		t.Logf("named:\n%s\npebble:\n%s", dnsBind.Log(), dnsPebble.Logs())
	}
}

// TestAutomaticCertificateAtAttach: attach with --ssl-leaf-domain-label
// before anything answers for the new name (its record cannot exist yet:
// the name was just made). The attach settles Unhealthy with the CA's
// reason instead of failing, and once the name leads to the front end,
// Berth's retry gets the certificate.
func TestAutomaticCertificateAtAttach(t *testing.T) {
	pb := sharedPebble.Get(t)
	cl := simcluster.StartT(t, simcluster.Options{Nodes: simcluster.Nodes(1, "4")})
	e := newAttachEnv(t, "--acme-http-port", strconv.Itoa(sharedPebble.Options.HTTPPort), "--certificate-check-interval", "250ms", "--certificate-retry-backoff", "1s")
	caFile := filepath.Join(e.dir, "pebble-minica.pem")
	os.WriteFile(caFile, []byte(pb.CACertPEM), 0o600)
	e.mustBerth("workspace", "update", "-n", "team", "--dns-zone", "berth.test", "--acme-directory-url", pb.DirectoryURL, "--acme-ca-file", caFile)
	if err := pb.SetDefaultIPv4("127.0.0.2"); err != nil { // nothing there yet
		t.Fatal(err)
	}
	r := e.mustBerth("compute", "attach", "kubernetes", "-n", "att-1", "--kubeconfig", cl.KubeconfigPath, "--cluster-purpose", "DevTest",
		"--ssl-leaf-domain-label", "att")
	c := e.show("att-1")
	if c.ProvisioningState != api.StateSucceeded || c.Health != api.HealthUnhealthy || c.SSLConfiguration.Status != api.SSLAuto ||
		!strings.HasPrefix(c.SSLConfiguration.FQDN, "att") || len(c.ProvisioningErrors) == 0 {
		t.Fatalf("attach before the name resolves: %+v\n%s%s", c, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stdout+r.stderr, "resolve to the endpoint "+c.Endpoint) {
		t.Errorf("attach lacks the advice:\n%s%s", r.stdout, r.stderr)
	}
	if objs := berthObjects(t, cl); len(objs) == 0 {
		t.Fatal("the attach was undone")
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(c.Endpoint, "0"))
	if err != nil {
		t.Fatal(err)
	}
	https := ln.Addr().String()
	ln.Close()
	process(t, "frontend", "--kubeconfig", cl.KubeconfigPath, "--http", net.JoinHostPort(c.Endpoint, strconv.Itoa(sharedPebble.Options.HTTPPort)),
		"--https", https, "--admin", freeAddr(t), "--autoscale=false", "--log-format", "text")
	if err := pb.SetDefaultIPv4(c.Endpoint); err != nil {
		t.Fatal(err)
	}
	roots, err := pb.Roots()
	if err != nil {
		t.Fatal(err)
	}
	waitServed(t, https, c.SSLConfiguration.FQDN, roots, 60*time.Second, func(*x509.Certificate) bool { return true })
	deadline := time.Now().Add(10 * time.Second)
	for c := e.show("att-1"); c.Health != api.HealthHealthy || len(c.ProvisioningErrors) > 0; c = e.show("att-1") {
		if time.Now().After(deadline) {
			t.Fatalf("not Healthy after the certificate came: %+v", c)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
