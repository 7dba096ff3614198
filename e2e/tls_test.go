package e2e

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-ml/berth/api"
	"github.com/berth-ml/berth/internal/installer"
	"github.com/berth-ml/berth/internal/testenv/simcluster"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// testCA issues certificates for the custom-certificate tests.
type testCA struct {
	cert *x509.Certificate
	key  crypto.Signer
	pool *x509.CertPool
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Berth e2e root"}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().AddDate(1, 0, 0)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.Public(), k)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(c)
	return &testCA{cert: c, key: k, pool: pool}
}

// leaf writes a chain (leaf, then the root) and its key to files.
func (ca *testCA) leaf(t *testing.T, dir string, names []string, notAfter time.Time) (certFile, keyFile string) {
	t.Helper()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: names[0]}, DNSNames: names,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: notAfter, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, k.Public(), ca.key)
	if err != nil {
		t.Fatal(err)
	}
	chain := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	chain = append(chain, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.cert.Raw})...)
	kd, _ := x509.MarshalPKCS8PrivateKey(k)
	certFile, keyFile = filepath.Join(dir, names[0]+".crt"), filepath.Join(dir, names[0]+".key")
	os.WriteFile(certFile, chain, 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kd}), 0o600)
	return certFile, keyFile
}

// served is the leaf certificate the front end presents for name at addr
// (nil if the handshake fails), trusting roots.
func served(addr, name string, roots *x509.CertPool) (*x509.Certificate, error) {
	d := &net.Dialer{Timeout: 2 * time.Second}
	conn, err := tls.DialWithDialer(d, "tcp", addr, &tls.Config{ServerName: name, RootCAs: roots})
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0], nil
}

// waitServed waits until the front end at addr serves a certificate
// accepted by check.
func waitServed(t *testing.T, addr, name string, roots *x509.CertPool, timeout time.Duration, check func(*x509.Certificate) bool) *x509.Certificate {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		c, err := served(addr, name, roots)
		if err == nil && check(c) {
			return c
		}
		if time.Now().After(deadline) {
			t.Fatalf("front end at %s never served the expected certificate for %s (last: %v, %v)", addr, name, certName(c), err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func certName(c *x509.Certificate) string {
	if c == nil {
		return "none"
	}
	return c.Subject.CommonName + " serial " + c.SerialNumber.String()
}

// TestCustomCertificate: attach with a custom certificate; it is checked,
// stored, written to berth-fe-tls and served; get-certificate returns it
// (the key to owners only); a bad certificate is refused with every
// problem at once and changes nothing; --ssl-disable turns TLS off.
func TestCustomCertificate(t *testing.T) {
	t.Parallel()
	cl := simcluster.StartT(t, simcluster.Options{Nodes: simcluster.Nodes(1, "4")})
	e := newAttachEnv(t)
	dir := t.TempDir()
	ca := newTestCA(t)
	cert, key := ca.leaf(t, dir, []string{"scoring.berth.test"}, time.Now().AddDate(0, 2, 0))

	// A cname the certificate does not cover and a key of another
	// certificate: both problems, and nothing happens.
	_, otherKey := ca.leaf(t, dir, []string{"other.berth.test"}, time.Now().AddDate(0, 2, 0))
	r := e.berth("compute", "attach", "kubernetes", "-n", "tls-1", "--kubeconfig", cl.KubeconfigPath, "--cluster-purpose", "DevTest",
		"--ssl-cert-file", cert, "--ssl-key-file", otherKey, "--ssl-cname", "api.berth.test")
	for _, want := range []string{"does not belong to the first certificate in the chain (CN=scoring.berth.test)",
		`the cname "api.berth.test" is not covered by the certificate's names (scoring.berth.test)`} {
		if r.code == 0 || !strings.Contains(r.stderr, want) {
			t.Errorf("bad attach (exit %d) lacks %q:\n%s", r.code, want, r.stderr)
		}
	}
	if objs := berthObjects(t, cl); len(objs) > 0 {
		t.Fatalf("a refused attach installed %v", objs)
	}

	e.mustBerth("compute", "attach", "kubernetes", "-n", "tls-1", "--kubeconfig", cl.KubeconfigPath, "--cluster-purpose", "DevTest",
		"--ssl-cert-file", cert, "--ssl-key-file", key, "--ssl-cname", "scoring.berth.test")
	c := e.show("tls-1")
	if c.SSLConfiguration.Status != api.SSLEnabled || c.SSLConfiguration.Cname != "scoring.berth.test" || c.SSLConfiguration.NotAfter == nil {
		t.Fatalf("ssl: %+v", c.SSLConfiguration)
	}
	// The key never shows in show/list output.
	out := e.mustBerth("compute", "show", "-n", "tls-1", "-o", "json").stdout
	if strings.Contains(out, "PRIVATE KEY") {
		t.Fatal("show prints the key")
	}
	sec, err := cl.Client().CoreV1().Secrets(installer.Namespace).Get(context.Background(), installer.TLSSecret, metav1.GetOptions{})
	if err != nil || !strings.Contains(string(sec.Data["cert.pem"]), "BEGIN CERTIFICATE") || !strings.Contains(string(sec.Data["key.pem"]), "PRIVATE KEY") {
		t.Fatalf("berth-fe-tls: %v %v", err, sec)
	}

	// get-certificate: the chain for everyone, the key for owners who ask.
	var got api.Certificate
	json.Unmarshal([]byte(e.mustBerth("compute", "get-certificate", "-n", "tls-1", "-o", "json").stdout), &got)
	want, _ := os.ReadFile(cert)
	if got.CertPEM != string(want) || got.KeyPEM != "" {
		t.Fatalf("get-certificate: %+v", got)
	}
	json.Unmarshal([]byte(e.mustBerth("compute", "get-certificate", "-n", "tls-1", "--include-key", "-o", "json").stdout), &got)
	if !strings.Contains(got.KeyPEM, "PRIVATE KEY") {
		t.Fatalf("get-certificate --include-key: %+v", got)
	}
	contrib, _ := e.client.CreateToken(context.Background(), api.TokenCreateRequest{Role: api.RoleContributor})
	r = berth(t, []string{"BERTH_SERVER=" + e.srv.url(), "BERTH_TOKEN=" + contrib.Secret, "BERTH_WORKSPACE=team"}, "compute", "get-certificate", "-n", "tls-1", "--include-key")
	if r.code == 0 || !strings.Contains(r.stderr, "for owners only") {
		t.Fatalf("a contributor got the key: %d %s", r.code, r.stderr)
	}

	// The front end serves it.
	https := freeAddr(t)
	process(t, "frontend", "--kubeconfig", cl.KubeconfigPath, "--http", freeAddr(t), "--https", https, "--admin", freeAddr(t), "--autoscale=false", "--log-format", "text")
	first := waitServed(t, https, "scoring.berth.test", ca.pool, 20*time.Second, func(*x509.Certificate) bool { return true })

	// An expired replacement is refused; the old certificate stays.
	expCert, expKey := ca.leaf(t, dir, []string{"old.berth.test"}, time.Now().Add(-time.Minute))
	r = e.berth("compute", "update", "-n", "tls-1", "--ssl-cert-file", expCert, "--ssl-key-file", expKey, "--ssl-cname", "old.berth.test")
	if r.code == 0 || !strings.Contains(r.stderr, "(CN=old.berth.test) expired on") {
		t.Fatalf("expired update: %d %s", r.code, r.stderr)
	}
	// A renewed custom certificate replaces it in place within seconds.
	cert2, key2 := ca.leaf(t, t.TempDir(), []string{"scoring.berth.test", "*.apps.berth.test"}, time.Now().AddDate(0, 3, 0))
	e.mustBerth("compute", "update", "-n", "tls-1", "--ssl-cert-file", cert2, "--ssl-key-file", key2, "--ssl-cname", "iris.apps.berth.test")
	waitServed(t, https, "iris.apps.berth.test", ca.pool, 10*time.Second, func(c *x509.Certificate) bool { return c.SerialNumber.Cmp(first.SerialNumber) != 0 })
	if c := e.show("tls-1"); c.SSLConfiguration.Cname != "iris.apps.berth.test" {
		t.Fatalf("cname after update: %+v", c.SSLConfiguration)
	}

	// Reconcile restores a tampered Secret and names the drift without
	// printing key material.
	kube := cl.Client().CoreV1().Secrets(installer.Namespace)
	sec, _ = kube.Get(context.Background(), installer.TLSSecret, metav1.GetOptions{})
	goodKey := string(sec.Data["key.pem"])
	sec.Data["key.pem"] = []byte("tampered-secret-value")
	if _, err := kube.Update(context.Background(), sec, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	r = e.mustBerth("compute", "reconcile", "-n", "tls-1")
	all := r.stdout + r.stderr
	if !strings.Contains(all, "data.key.pem changed (a secret value: not shown)") || strings.Contains(all, "tampered") ||
		strings.Contains(all, "dGFtcGVyZWQ") || strings.Contains(all, "PRIVATE KEY") {
		t.Fatalf("reconcile output:\n%s", all)
	}
	if sec, _ = kube.Get(context.Background(), installer.TLSSecret, metav1.GetOptions{}); string(sec.Data["key.pem"]) != goodKey {
		t.Fatal("reconcile did not restore the key")
	}

	// --ssl-renew is for automatic certificates only.
	r = e.berth("compute", "update", "-n", "tls-1", "--ssl-renew")
	if r.code == 0 || !strings.Contains(r.stderr, "--ssl-renew only applies to an automatic certificate (status Auto)") {
		t.Fatalf("renew of a custom certificate: %d %s", r.code, r.stderr)
	}

	// Disable: no certificate in the Secret, HTTPS handshakes fail.
	e.mustBerth("compute", "update", "-n", "tls-1", "--ssl-disable")
	if c := e.show("tls-1"); c.SSLConfiguration.Status != api.SSLDisabled {
		t.Fatalf("after disable: %+v", c.SSLConfiguration)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := served(https, "scoring.berth.test", ca.pool); err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the front end still serves TLS after --ssl-disable")
		}
		time.Sleep(50 * time.Millisecond)
	}
	r = e.berth("compute", "get-certificate", "-n", "tls-1")
	if r.code == 0 || !strings.Contains(r.stderr, "serves no TLS certificate (SSL is Disabled)") {
		t.Fatalf("get-certificate when disabled: %d %s", r.code, r.stderr)
	}
}
