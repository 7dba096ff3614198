package certificate

import (
	"cmp"
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/berth-ml/berth/api"
	"github.com/go-acme/lego/v5/acme"
	"github.com/go-acme/lego/v5/certcrypto"
	"github.com/go-acme/lego/v5/certificate"
	"github.com/go-acme/lego/v5/challenge"
	"github.com/go-acme/lego/v5/lego"
	"github.com/go-acme/lego/v5/registration"
)

// LetsEncrypt is the default ACME directory.
const LetsEncrypt = "https://acme-v02.api.letsencrypt.org/directory"

// Account is an ACME account: its key (PEM) and URI, kept (sealed) with
// the compute so renewals reuse it.
type Account struct {
	KeyPEM string
	URI    string
}

// Request is one certificate to obtain.
type Request struct {
	Settings api.WorkspaceSettings
	Domain   string
	Account  Account
	// HTTP01 answers HTTP-01 challenges (public endpoints); DNS01 answers
	// DNS-01 ones (internal load balancers). Exactly one is set.
	HTTP01 challenge.Provider
	DNS01  challenge.Provider
}

// Issued is what the CA gave.
type Issued struct {
	ChainPEM string // leaf first
	KeyPEM   string
	Account  Account
	NotAfter time.Time
}

type user struct {
	email string
	reg   *acme.ExtendedAccount
	key   crypto.Signer
}

func (u *user) GetEmail() string                       { return u.email }
func (u *user) GetRegistration() *acme.ExtendedAccount { return u.reg }
func (u *user) GetPrivateKey() crypto.Signer           { return u.key }

// httpClient trusts the workspace's extra roots (a private or test CA)
// when it has some, the system's otherwise: per workspace, never a global
// "insecure" switch.
func httpClient(s api.WorkspaceSettings) (*http.Client, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if s.ACMECACertPEM != "" {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM([]byte(s.ACMECACertPEM)) {
			return nil, errors.New("the workspace's acmeCaCertPem holds no PEM certificate")
		}
		tc.RootCAs = pool
	}
	return &http.Client{Timeout: 30 * time.Second, Transport: challengePolling{&http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: 30 * time.Second,
		TLSClientConfig:       tc,
	}}}, nil
}

// challengePolling makes lego poll a challenge the CA is still validating
// every second instead of every 5: CAs (Boulder, Pebble) send no
// Retry-After on the challenge response, and lego then waits 5 s before
// its first look, most of a forced renewal's time. A CA that does send
// Retry-After is obeyed as it is. (RFC 8555 §7.5.1: clients poll the
// authorization; one request a second for one name is well within rate
// limits.)
type challengePolling struct{ http.RoundTripper }

func (c challengePolling) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := c.RoundTripper.RoundTrip(req)
	if err != nil || req.Method != http.MethodPost || resp.Header.Get("Retry-After") != "" {
		return resp, err
	}
	for _, l := range resp.Header.Values("Link") {
		if strings.Contains(l, `rel="up"`) {
			// A challenge's response links up to its authorization.
			resp.Header.Set("Retry-After", "1")
			break
		}
	}
	return resp, err
}

// Obtain registers (or reuses) the account and gets a certificate for the
// domain. Errors carry the CA's own reason.
func Obtain(ctx context.Context, req Request) (*Issued, error) {
	s := req.Settings
	dir := cmp.Or(s.ACMEDirectoryURL, LetsEncrypt)
	hc, err := httpClient(s)
	if err != nil {
		return nil, err
	}
	u := &user{email: s.ACMEEmail}
	if req.Account.KeyPEM != "" {
		if u.key, err = certcrypto.ParsePEMPrivateKey([]byte(req.Account.KeyPEM)); err != nil {
			return nil, fmt.Errorf("the stored ACME account key: %w", err)
		}
		if req.Account.URI != "" {
			u.reg = &acme.ExtendedAccount{Location: req.Account.URI}
		}
	} else if u.key, err = certcrypto.GeneratePrivateKey(certcrypto.EC256); err != nil {
		return nil, err
	}
	cfg := lego.NewConfig(u)
	cfg.CADirURL, cfg.HTTPClient, cfg.UserAgent = dir, hc, "berth"
	// lego polls a finalized order every Timeout/60: every half second.
	cfg.Certificate.Timeout = 30 * time.Second
	cli, err := lego.NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("ACME directory %s: %w", dir, err)
	}
	if u.reg == nil {
		var reg *acme.ExtendedAccount
		if s.ACMEEABKeyID != "" {
			reg, err = cli.Registration.RegisterWithExternalAccountBinding(ctx, registration.RegisterEABOptions{
				TermsOfServiceAgreed: true, Kid: s.ACMEEABKeyID, HmacEncoded: s.ACMEEABHMACKey})
		} else {
			reg, err = cli.Registration.Register(ctx, registration.RegisterOptions{TermsOfServiceAgreed: true})
		}
		if err != nil {
			return nil, fmt.Errorf("register an ACME account at %s: %w", dir, err)
		}
		u.reg = reg
		// A client made with the account's URI signs requests with it.
		if cli, err = lego.NewClient(cfg); err != nil {
			return nil, err
		}
	}
	switch {
	case req.DNS01 != nil:
		defer useResolvers(s)()
		err = cli.Challenge.SetDNS01Provider(req.DNS01, dnsOptions(s)...)
	case req.HTTP01 != nil:
		err = cli.Challenge.SetHTTP01Provider(req.HTTP01)
	default:
		err = errors.New("no challenge provider")
	}
	if err != nil {
		return nil, err
	}
	res, err := cli.Certificate.Obtain(ctx, certificate.ObtainRequest{Domains: []string{req.Domain}, Bundle: true, Profile: s.ACMEProfile, KeyType: certcrypto.EC256})
	if err != nil {
		return nil, err
	}
	keyPEM, err := pemKey(u.key)
	if err != nil {
		return nil, err
	}
	info, err := Parse(string(res.Certificate))
	if err != nil {
		return nil, fmt.Errorf("the CA's certificate: %w", err)
	}
	return &Issued{ChainPEM: string(res.Certificate), KeyPEM: string(res.PrivateKey),
		Account: Account{KeyPEM: keyPEM, URI: u.reg.Location}, NotAfter: info.NotAfter}, nil
}

func pemKey(k crypto.Signer) (string, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return "", err
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})), nil
}

// Reason is the CA's own words for a failed issuance, without lego's
// wrapping, for the compute's health and errors.
func Reason(err error) string {
	if pd, ok := errors.AsType[*acme.ProblemDetails](err); ok {
		msg := pd.Detail
		if pd.Type != "" {
			msg = strings.TrimPrefix(pd.Type, "urn:ietf:params:acme:error:") + ": " + msg
		}
		for _, sp := range pd.SubProblems {
			msg += "; " + sp.Detail
		}
		return msg
	}
	return err.Error()
}
