package certificate

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
	"time"
)

// pki is a test CA with an intermediate, issuing leaves.
type pki struct {
	root, inter       *x509.Certificate
	rootKey, interKey crypto.Signer
	roots             *x509.CertPool
}

var now = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

func ecKey(t *testing.T) crypto.Signer {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func issue(t *testing.T, tmpl *x509.Certificate, parent *x509.Certificate, pub crypto.PublicKey, signer crypto.Signer) *x509.Certificate {
	t.Helper()
	if tmpl.SerialNumber == nil {
		tmpl.SerialNumber = big.NewInt(time.Now().UnixNano())
	}
	if parent == nil {
		parent = tmpl
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return c
}

func newPKI(t *testing.T) *pki {
	p := &pki{rootKey: ecKey(t), interKey: ecKey(t)}
	p.root = issue(t, &x509.Certificate{Subject: pkix.Name{CommonName: "Test Root"}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign, NotBefore: now.AddDate(-1, 0, 0), NotAfter: now.AddDate(5, 0, 0)}, nil, p.rootKey.Public(), p.rootKey)
	p.inter = issue(t, &x509.Certificate{Subject: pkix.Name{CommonName: "Test Intermediate"}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign, NotBefore: now.AddDate(-1, 0, 0), NotAfter: now.AddDate(4, 0, 0)}, p.root, p.interKey.Public(), p.rootKey)
	p.roots = x509.NewCertPool()
	p.roots.AddCert(p.root)
	return p
}

func (p *pki) leaf(t *testing.T, key crypto.Signer, names []string, from, to time.Time) *x509.Certificate {
	return issue(t, &x509.Certificate{Subject: pkix.Name{CommonName: names[0]}, DNSNames: names, NotBefore: from, NotAfter: to,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature}, p.inter, key.Public(), p.interKey)
}

func chainPEM(certs ...*x509.Certificate) string {
	var b strings.Builder
	for _, c := range certs {
		pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
	}
	return b.String()
}

func keyPEM(t *testing.T, k crypto.Signer) string {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
}

func TestCheckAcceptsAGoodChain(t *testing.T) {
	p := newPKI(t)
	k := ecKey(t)
	leaf := p.leaf(t, k, []string{"scoring.example.com", "*.apps.example.com"}, now.Add(-time.Hour), now.AddDate(0, 3, 0))
	for _, cname := range []string{"scoring.example.com", "iris.apps.example.com", "SCORING.example.com"} {
		got, probs := Check(chainPEM(leaf, p.inter), keyPEM(t, k), cname, now, p.roots)
		if len(probs) > 0 || got == nil || got.Leaf.Subject.CommonName != "scoring.example.com" {
			t.Fatalf("%s: %+v", cname, probs)
		}
		if err := KeyPair(got.ChainPEM, got.KeyPEM); err != nil {
			t.Fatal(err)
		}
	}
}

// Each rule: the bad input, and what its message must say.
func TestCheckRules(t *testing.T) {
	p := newPKI(t)
	k := ecKey(t)
	good := p.leaf(t, k, []string{"scoring.example.com", "*.apps.example.com"}, now.Add(-time.Hour), now.AddDate(0, 3, 0))
	goodChain, goodKey := chainPEM(good, p.inter), keyPEM(t, k)
	other := ecKey(t)
	rsaWeak, _ := rsa.GenerateKey(rand.Reader, 1024)
	weakLeaf := p.leaf(t, rsaWeak, []string{"scoring.example.com"}, now.Add(-time.Hour), now.AddDate(0, 3, 0))
	sha1Leaf := issue(t, &x509.Certificate{Subject: pkix.Name{CommonName: "scoring.example.com"}, DNSNames: []string{"scoring.example.com"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(0, 3, 0), SignatureAlgorithm: x509.ECDSAWithSHA1}, p.inter, k.Public(), p.interKey)
	encrypted := "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIBAA==\n-----END ENCRYPTED PRIVATE KEY-----\n"
	legacyEncrypted := "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,0123456789ABCDEF0123456789ABCDEF\n\nMIIBAA==\n-----END RSA PRIVATE KEY-----\n"

	cases := []struct {
		name, cert, key, cname string
		code, want             string
	}{
		{"cert not PEM", "hello", goodKey, "scoring.example.com", CodeCertNotPEM, "the certificate (ssl.certPem) is not PEM"},
		{"cert has a key block", goodKey, goodKey, "scoring.example.com", CodeCertNotPEM, `holds a "PRIVATE KEY" PEM block`},
		{"key not PEM", goodChain, "not a key", "scoring.example.com", CodeKeyNotPEM, "the key (ssl.keyPem) is not PEM"},
		{"key is a certificate", goodChain, goodChain, "scoring.example.com", CodeKeyNotPEM, `holds a "CERTIFICATE" PEM block, not a private key`},
		{"encrypted key (PKCS#8)", goodChain, encrypted, "scoring.example.com", CodeKeyEncrypted, "is encrypted with a passphrase"},
		{"encrypted key (legacy)", goodChain, legacyEncrypted, "scoring.example.com", CodeKeyEncrypted, "decrypt it first"},
		{"key of another certificate", goodChain, keyPEM(t, other), "scoring.example.com", CodeKeyMismatch, "does not belong to the first certificate in the chain (CN=scoring.example.com)"},
		{"expired", chainPEM(p.leaf(t, k, []string{"scoring.example.com"}, now.AddDate(-1, 0, 0), now.AddDate(0, 0, -1)), p.inter), goodKey, "scoring.example.com", CodeExpired, "expired on 2026-05-31"},
		{"not yet valid", chainPEM(p.leaf(t, k, []string{"scoring.example.com"}, now.AddDate(0, 0, 2), now.AddDate(1, 0, 0)), p.inter), goodKey, "scoring.example.com", CodeNotYetValid, "is not valid before 2026-06-03"},
		{"cname not covered", goodChain, goodKey, "other.example.com", CodeCnameNotCovered, `the cname "other.example.com" is not covered by the certificate's names (scoring.example.com, *.apps.example.com)`},
		{"wildcard covers one label only", goodChain, goodKey, "a.b.apps.example.com", CodeCnameNotCovered, `"a.b.apps.example.com" is not covered`},
		{"wildcard does not cover its apex", goodChain, goodKey, "apps.example.com", CodeCnameNotCovered, `"apps.example.com" is not covered`},
		{"intermediate first", chainPEM(p.inter, good), goodKey, "scoring.example.com", CodeChainOrder, "must start with the server's own (leaf) certificate"},
		{"unrelated second certificate", chainPEM(good, p.root), goodKey, "scoring.example.com", CodeChainOrder, "certificate 1 (CN=scoring.example.com) is not signed by certificate 2 (CN=Test Root)"},
		{"intermediate missing", chainPEM(good), goodKey, "scoring.example.com", CodeChainIncomplete, `issued by "CN=Test Intermediate"`},
		{"weak RSA key", chainPEM(weakLeaf, p.inter), keyPEM(t, rsaWeak), "scoring.example.com", CodeWeakKey, "has a weak key (RSA 1024 bits)"},
		{"SHA-1 signature", chainPEM(sha1Leaf, p.inter), goodKey, "scoring.example.com", CodeWeakSignature, "is signed with ECDSA-SHA1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, probs := Check(tc.cert, tc.key, tc.cname, now, p.roots)
			if got != nil {
				t.Fatal("accepted")
			}
			for _, d := range probs {
				if d.Code == tc.code && strings.Contains(d.Message, tc.want) {
					return
				}
			}
			t.Fatalf("want %s %q, got %+v", tc.code, tc.want, probs)
		})
	}
}

// Every problem is reported together, not the first one alone.
func TestCheckReportsEverything(t *testing.T) {
	p := newPKI(t)
	k := ecKey(t)
	expired := p.leaf(t, k, []string{"scoring.example.com"}, now.AddDate(-1, 0, 0), now.AddDate(0, 0, -1))
	_, probs := Check(chainPEM(expired), keyPEM(t, ecKey(t)), "nope.example.com", now, p.roots)
	codes := map[string]bool{}
	for _, d := range probs {
		codes[d.Code] = true
	}
	for _, c := range []string{CodeKeyMismatch, CodeExpired, CodeCnameNotCovered, CodeChainIncomplete} {
		if !codes[c] {
			t.Errorf("missing %s in %+v", c, probs)
		}
	}
}

func TestRenewAtIsTwoThirdsIntoTheLifetime(t *testing.T) {
	i := &Info{NotBefore: now, NotAfter: now.Add(90 * time.Hour)}
	if got := i.RenewAt(); !got.Equal(now.Add(60 * time.Hour)) {
		t.Fatal(got)
	}
}

// KeyPair checks a chain and key load together as the front end will load them.
func KeyPair(chainPEM, keyPEM string) error {
	_, err := tls.X509KeyPair([]byte(chainPEM), []byte(keyPEM))
	return err
}
