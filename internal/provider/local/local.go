// Package local is the compute type "local": this machine, the embedded
// default. The control plane itself runs the front end (the same berth-fe
// code) on a loopback port with TLS from a local CA (runtime.go), and
// services' replicas as child processes (replicas.go, services.go).
package local

import (
	"cmp"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"strconv"
	"time"

	"github.com/berth-ml/berth/api"
	"github.com/berth-ml/berth/internal/operation"
	"github.com/berth-ml/berth/internal/provider"
	"github.com/berth-ml/berth/internal/store"
)

// Type is the compute type name.
const Type = "local"

// Settings are what a user asks of the local compute.
type Settings struct {
	// Port is the front end's port on 127.0.0.1 (default: a free one).
	Port int `json:"port,omitempty"`
	// AllowContributorCommands lets contributors deploy services, which
	// run their command on this machine; by default only owners may.
	AllowContributorCommands bool `json:"allowContributorCommands,omitempty"`
}

// Status is what Berth records about it.
type Status struct {
	// Port is the port the front end serves on.
	Port int `json:"port,omitempty"`
	// Legacy keeps properties of an earlier release that no field took over.
	Legacy map[string]string `json:"legacy,omitempty"`
}

// Secrets of a local compute.
const (
	SecretCA   = "caCert"
	SecretCert = "tlsCert"
	SecretKey  = "tlsKey"
)

// Provider implements provider.Provider and provider.ServiceHost for the
// local compute; Run runs its computes' front ends and replicas.
type Provider struct {
	// ReadyTimeout bounds waiting for a service's replicas (default 2m).
	ReadyTimeout time.Duration
	runtime      *Runtime
}

// New returns the local compute type, whose runtime keeps front ends and
// replicas as the store describes them.
func New(rt *Runtime) *Provider { return &Provider{runtime: rt} }

// Run runs the computes' front ends and replicas until ctx ends.
func (p *Provider) Run(ctx context.Context) { p.runtime.Run(ctx) }

func (*Provider) Type() string      { return Type }
func (*Provider) Origins() []string { return []string{api.OriginCreated} }

func (*Provider) Validate(_ context.Context, _ *api.Workspace, req *api.ComputeRequest) []api.ErrorDetail {
	var s Settings
	out := provider.DecodeStrict("settings", req.Settings, &s)
	if s.Port != 0 && (s.Port < 1024 || s.Port > 65535) {
		out = append(out, api.ErrorDetail{Code: api.CodeInvalidValue, Target: "settings.port", Message: fmt.Sprintf("settings.port %d must be a number from 1024 to 65535", s.Port)})
	}
	if req.Credentials != "" {
		out = append(out, api.ErrorDetail{Code: api.CodeInvalidValue, Target: "credentials", Message: "the local compute takes no credentials"})
	}
	if req.SSL != nil {
		out = append(out, api.ErrorDetail{Code: api.CodeInvalidValue, Target: "ssl", Message: "the local compute always serves TLS with its own local CA (see `berth compute get-certificate`); SSL flags do not apply"})
	}
	if req.LoadBalancerType == api.LoadBalancerInternal {
		out = append(out, api.ErrorDetail{Code: api.CodeInvalidValue, Target: "loadBalancerType", Message: "the local compute has no load balancer; it listens on 127.0.0.1"})
	}
	return out
}

func (*Provider) ValidateUpdate(context.Context, *store.Compute, *api.ComputeUpdateRequest) []api.ErrorDetail {
	return []api.ErrorDetail{{Code: api.CodeOperationNotSupported, Message: "the local compute has nothing to update"}}
}

func (*Provider) ValidateScale(context.Context, *store.Compute, int) []api.ErrorDetail { return nil }

// Steps: create prepares the port and certificates and waits until the
// server's local runtime serves them; delete lets the runtime stop it.
func (p *Provider) Steps(kind api.OperationKind, _ *store.Compute) []operation.Step {
	switch kind {
	case api.OpCreate:
		return []operation.Step{{Name: "prepare", Run: prepare}, {Name: "wait for front end", Run: waitServing}}
	case api.OpDelete, api.OpDetach:
		return []operation.Step{{Name: "stop", Run: func(context.Context, *operation.Run) error { return nil }}}
	}
	return nil
}

func prepare(ctx context.Context, r *operation.Run) error {
	c, err := r.Store.GetComputeByID(ctx, r.Op.TargetID)
	if err != nil {
		return err
	}
	st := provider.Read[Status](c.Status)
	st.Port = cmp.Or(st.Port, provider.Read[Settings](c.Settings).Port)
	if st.Port == 0 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		st.Port = ln.Addr().(*net.TCPAddr).Port
		ln.Close()
	}
	port := st.Port
	provider.Edit(&c.Status, func(s *Status) { s.Port = port })
	if c.Secrets[SecretCert] == "" {
		ca, cert, key, err := Certificates(c.Name)
		if err != nil {
			return err
		}
		c.Secrets = map[string]string{SecretCA: ca, SecretCert: cert, SecretKey: key}
	}
	c.Endpoint = "127.0.0.1:" + strconv.Itoa(port)
	c.ClusterPurpose = api.PurposeDevTest
	c.SSLConfiguration = api.SSLConfiguration{Status: api.SSLEnabled, Cname: "127.0.0.1"}
	r.Event("Front end will serve https://%s with a certificate from a local CA", c.Endpoint)
	return r.Store.UpdateCompute(ctx, c)
}

func waitServing(ctx context.Context, r *operation.Run) error {
	c, err := r.Store.GetComputeByID(ctx, r.Op.TargetID)
	if err != nil {
		return err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM([]byte(c.Secrets[SecretCA]))
	deadline := time.Now().Add(30 * time.Second)
	for {
		conn, err := tls.Dial("tcp", c.Endpoint, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
		if err == nil {
			conn.Close()
			break
		}
		if time.Now().After(deadline) {
			return operation.Fail(api.CodeFrontendNotServing, fmt.Sprintf("the local front end does not answer on %s: %v", c.Endpoint, err))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	now := time.Now().UTC()
	c.Health, c.NodeCount, c.LastReconcile = api.HealthHealthy, 1, &now
	r.Event("Front end serving https://%s", c.Endpoint)
	return r.Store.UpdateCompute(ctx, c)
}

// Certificates makes a local CA and a serving certificate for 127.0.0.1,
// ::1 and localhost (PEM: CA certificate, serving chain, serving key).
func Certificates(name string) (caPEM, certPEM, keyPEM string, err error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", "", err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{SerialNumber: serial(), Subject: pkix.Name{CommonName: "Berth local CA (" + name + ")"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(10, 0, 0), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return "", "", "", err
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", "", err
	}
	tmpl := &x509.Certificate{SerialNumber: serial(), Subject: pkix.Name{CommonName: "127.0.0.1"},
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1")},
		NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(1, 0, 0), KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return "", "", "", err
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return "", "", "", err
	}
	enc := func(t string, b []byte) string { return string(pem.EncodeToMemory(&pem.Block{Type: t, Bytes: b})) }
	return enc("CERTIFICATE", caDER), enc("CERTIFICATE", der) + enc("CERTIFICATE", caDER), enc("EC PRIVATE KEY", kder), nil
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	return n
}
