package e2e

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/berth-ml/berth/api"
)

// TestLocalCompute: the local compute serves HTTPS on loopback with a
// certificate from its local CA, which get-certificate prints; delete stops it.
func TestLocalCompute(t *testing.T) {
	_, env := teamEnv(t)
	r := berth(t, env, "compute", "create", "local", "-n", "laptop", "-o", "json")
	var c api.Compute
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &c) != nil || c.ProvisioningState != api.StateSucceeded || !strings.HasPrefix(c.Endpoint, "127.0.0.1:") ||
		c.Health != api.HealthHealthy || c.SSLConfiguration.Status != api.SSLEnabled {
		t.Fatalf("create local: %+v\n%s", r, r.stdout)
	}
	var cert api.Certificate
	json.Unmarshal([]byte(berth(t, env, "compute", "get-certificate", "-n", "laptop", "-o", "json").stdout), &cert)
	if cert.CAPEM == "" || cert.KeyPEM != "" {
		t.Fatalf("certificate: %+v", cert)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM([]byte(cert.CAPEM))
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}, Timeout: 5 * time.Second}
	resp, err := client.Get("https://" + c.Endpoint + "/v2/health/live")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("local front end over TLS with the local CA: %v %v", resp, err)
	}
	resp.Body.Close()
	if r := berth(t, env, "compute", "get-certificate", "-n", "laptop", "--include-key", "-o", "json"); !strings.Contains(r.stdout, "PRIVATE KEY") {
		t.Fatalf("owner with --include-key: %+v", r)
	}
	if r := berth(t, env, "compute", "create", "local", "-n", "laptop2", "--no-wait"); r.code != 0 {
		t.Fatalf("second local compute: %+v", r)
	}
	if r := berth(t, env, "compute", "delete", "-n", "laptop"); r.code != 0 {
		t.Fatalf("delete: %+v", r)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := client.Get("https://" + c.Endpoint + "/v2/health/live")
		if err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the deleted local compute still serves")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// localCAPool trusts the CA of a local compute, as get-certificate prints it.
func localCAPool(t *testing.T, env []string, compute string) *x509.CertPool {
	t.Helper()
	var cert api.Certificate
	r := berth(t, env, "compute", "get-certificate", "-n", compute, "-o", "json")
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &cert) != nil || cert.CAPEM == "" {
		t.Fatalf("get-certificate: %+v", r)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM([]byte(cert.CAPEM))
	return pool
}
