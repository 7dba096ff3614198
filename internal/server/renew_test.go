package server

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"testing"
	"time"

	"github.com/berth-ml/berth/api"
	"github.com/berth-ml/berth/internal/store"
)

func TestRenewDue(t *testing.T) {
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	certFor := func(from time.Time, life time.Duration) string {
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "x.example.com"}, NotBefore: from, NotAfter: from.Add(life)}
		der, _ := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.Public(), k)
		return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	}
	auto := func(cert string, status *api.CertificateStatus) *store.Compute {
		c := &store.Compute{Secrets: map[string]string{"tlsCert": cert}, Compute: api.Compute{ProvisioningState: api.StateSucceeded,
			Health: api.HealthHealthy, SSLConfiguration: api.SSLConfiguration{Status: api.SSLAuto}}}
		if status != nil {
			c.Status, _ = json.Marshal(status)
		}
		return c
	}
	retryAt := func(t time.Time) *api.CertificateStatus {
		return &api.CertificateStatus{CertificateError: "rate limited", CertificateFailures: 2, CertificateRetryAt: &t}
	}
	day := 24 * time.Hour
	cases := []struct {
		name string
		c    *store.Compute
		want bool
	}{
		{"fresh 90-day certificate", auto(certFor(now.Add(-day), 90*day), nil), false},
		{"61 days into 90: a third left", auto(certFor(now.Add(-61*day), 90*day), nil), true},
		{"59 days into 90", auto(certFor(now.Add(-59*day), 90*day), nil), false},
		{"no certificate yet", auto("", nil), true},
		{"failed, backoff not over", auto(certFor(now.Add(-61*day), 90*day), retryAt(now.Add(time.Minute))), false},
		{"failed, backoff over", auto(certFor(now.Add(-day), 90*day), retryAt(now.Add(-time.Second))), true},
	}
	for _, tc := range cases {
		if got := renewDue(tc.c, now); got != tc.want {
			t.Errorf("%s: due %v, want %v", tc.name, got, tc.want)
		}
	}
	busy := auto(certFor(now.Add(-80*day), 90*day), nil)
	busy.CurrentOperation = "op"
	custom := auto(certFor(now.Add(-80*day), 90*day), nil)
	custom.SSLConfiguration.Status = api.SSLEnabled
	displaced := auto(certFor(now.Add(-80*day), 90*day), nil)
	displaced.Health = api.HealthDisplaced
	for name, c := range map[string]*store.Compute{"busy": busy, "custom": custom, "displaced": displaced} {
		if renewDue(c, now) {
			t.Errorf("%s: renewed", name)
		}
	}
}
