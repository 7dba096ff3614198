package frontend

import (
	"crypto/tls"
	"errors"
	"io"
	"maps"
	"net/http"
	"strings"
	"sync/atomic"
)

// certStore holds the serving certificate; a new one takes effect on the
// next handshake, open connections keep theirs.
type certStore struct {
	cur atomic.Pointer[tls.Certificate]
}

// SetCertificate installs a new certificate and key (PEM); empty PEM
// removes it (TLS handshakes then fail until one is set).
func (f *Frontend) SetCertificate(certPEM, keyPEM []byte) error {
	if len(certPEM) == 0 && len(keyPEM) == 0 {
		f.certs.cur.Store(nil)
		return nil
	}
	c, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return err
	}
	f.certs.cur.Store(&c)
	return nil
}

// TLSConfig is the HTTPS listener's configuration: TLS 1.2 or newer, the
// certificate read per handshake.
func (f *Frontend) TLSConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		NextProtos: []string{"http/1.1"},
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			if c := f.certs.cur.Load(); c != nil {
				return c, nil
			}
			return nil, errors.New("no TLS certificate is configured (Secret berth-fe-tls is empty)")
		},
	}
}

// ACMEPrefix is where ACME HTTP-01 challenges are answered.
const ACMEPrefix = "/.well-known/acme-challenge/"

// SetACMEChallenges replaces the HTTP-01 answers (token → key
// authorization) the front end gives.
func (f *Frontend) SetACMEChallenges(m map[string]string) {
	cp := maps.Clone(m)
	f.acme.Store(&cp)
}

// serveACME answers an HTTP-01 challenge, as RFC 8555 section 8.3 asks:
// the key authorization as the body, 404 for unknown tokens.
func (f *Frontend) serveACME(w http.ResponseWriter, r *http.Request) {
	token := strings.TrimPrefix(r.URL.Path, ACMEPrefix)
	var answer string
	if m := f.acme.Load(); m != nil {
		answer = (*m)[token]
	}
	if answer == "" || r.Method != http.MethodGet {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	io.WriteString(w, answer)
}
