package frontend

import (
	"crypto/tls"
	"errors"
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
