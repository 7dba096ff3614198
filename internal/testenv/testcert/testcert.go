// Package testcert makes certificates for tests: one self-signed helper for
// the packages whose tests serve TLS.
package testcert

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"testing"
	"time"
)

// SelfSigned is a P-256 certificate for cn (its only DNS name), valid for
// an hour either side of now, and its key, both PEM-encoded.
func SelfSigned(t testing.TB, cn string) (certPEM, keyPEM []byte) {
	t.Helper()
	der, key := issue(t, template(cn, time.Now().Add(-time.Hour), time.Now().Add(time.Hour)), nil, nil)
	return certBlock(der), keyBlock(t, key)
}

// Chain is a certificate for cn issued by a new root, as a chain (the leaf,
// then the root, which makes it complete for a checker), and its key, both
// PEM-encoded, valid for an hour either side of now.
func Chain(t testing.TB, cn string) (chainPEM, keyPEM []byte) {
	t.Helper()
	rootTmpl := template(cn+" root", time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	rootTmpl.IsCA, rootTmpl.BasicConstraintsValid, rootTmpl.KeyUsage = true, true, x509.KeyUsageCertSign
	rootDER, rootKey := issue(t, rootTmpl, nil, nil)
	root, err := x509.ParseCertificate(rootDER)
	if err != nil {
		t.Fatal(err)
	}
	leafTmpl := template(cn, root.NotBefore, root.NotAfter)
	leafTmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	leafDER, key := issue(t, leafTmpl, root, rootKey)
	return append(certBlock(leafDER), certBlock(rootDER)...), keyBlock(t, key)
}

// template is a certificate for cn (its only DNS name), valid from
// notBefore to notAfter.
func template(cn string, notBefore, notAfter time.Time) *x509.Certificate {
	return &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		DNSNames: []string{cn}, NotBefore: notBefore, NotAfter: notAfter}
}

// issue makes a new P-256 key and the certificate tmpl for it, signed by
// parent and its key, or self-signed when parent is nil; it returns the
// certificate (DER) and the key.
func issue(t testing.TB, tmpl, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) ([]byte, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	return der, key
}

func certBlock(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func keyBlock(t testing.TB, key *ecdsa.PrivateKey) []byte {
	t.Helper()
	b, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: b})
}
