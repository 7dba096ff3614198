// Package certificate checks custom TLS certificates before Berth installs
// them, and obtains and renews automatic ones over ACME (acme.go), so the
// front end only ever gets a certificate that will work.
package certificate

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"strings"
	"time"

	"github.com/berth-ml/berth/api"
)

// Codes of the custom-certificate rules, one per rule.
const (
	CodeCertNotPEM      = "CertificateNotPEM"
	CodeKeyNotPEM       = "KeyNotPEM"
	CodeKeyEncrypted    = "KeyEncrypted"
	CodeKeyMismatch     = "KeyMismatch"
	CodeExpired         = "CertificateExpired"
	CodeNotYetValid     = "CertificateNotYetValid"
	CodeCnameNotCovered = "CnameNotCovered"
	CodeChainOrder      = "CertificateChainOrder"
	CodeChainIncomplete = "CertificateChainIncomplete"
	CodeWeakKey         = "WeakKey"
	CodeWeakSignature   = "WeakSignature"
)

// MinRSABits is the smallest RSA key accepted (NIST SP 800-131A).
const MinRSABits = 2048

// Checked is a custom certificate that passed every rule.
type Checked struct {
	Leaf *x509.Certificate
	// ChainPEM is the chain as given (leaf first), re-encoded cleanly.
	ChainPEM string
	KeyPEM   string
}

func problem(code, target, format string, args ...any) api.ErrorDetail {
	return api.ErrorDetail{Code: code, Target: target, Message: fmt.Sprintf(format, args...)}
}

// Check applies every rule to a custom certificate and returns all the
// problems together; roots are the roots clients are expected to trust
// (nil: the system's), for telling whether the chain is complete.
func Check(certPEM, keyPEM, cname string, now time.Time, roots *x509.CertPool) (*Checked, []api.ErrorDetail) {
	var out []api.ErrorDetail
	certs, cerr := parseChain(certPEM)
	if cerr != "" {
		out = append(out, problem(CodeCertNotPEM, "ssl.certPem", "the certificate (ssl.certPem) %s", cerr))
	}
	key, keyDER, kerr := parseKey(keyPEM)
	if kerr != nil {
		out = append(out, *kerr)
	}
	if len(certs) == 0 {
		return nil, out
	}
	leaf := certs[0]
	desc := describe(leaf)

	if key != nil && !samePublicKey(leaf.PublicKey, key.Public()) {
		// Maybe the chain is in the wrong order: say so if the key matches a later certificate.
		msg := fmt.Sprintf("the key (ssl.keyPem) does not belong to the first certificate in the chain (%s)", desc)
		for i, c := range certs[1:] {
			if samePublicKey(c.PublicKey, key.Public()) {
				msg += fmt.Sprintf("; it matches certificate %d (%s): put the leaf certificate first", i+2, describe(c))
			}
		}
		out = append(out, problem(CodeKeyMismatch, "ssl.keyPem", "%s", msg))
	}
	if now.After(leaf.NotAfter) {
		out = append(out, problem(CodeExpired, "ssl.certPem", "the certificate (%s) expired on %s; get a new one", desc, leaf.NotAfter.UTC().Format(time.RFC3339)))
	}
	if now.Before(leaf.NotBefore) {
		out = append(out, problem(CodeNotYetValid, "ssl.certPem", "the certificate (%s) is not valid before %s", desc, leaf.NotBefore.UTC().Format(time.RFC3339)))
	}
	if cname != "" {
		if err := leaf.VerifyHostname(cname); err != nil {
			names := leaf.DNSNames
			if len(names) == 0 {
				names = []string{"(no DNS names)"}
			}
			out = append(out, problem(CodeCnameNotCovered, "ssl.cname", "the cname %q is not covered by the certificate's names (%s); use one of them or a certificate for %q",
				cname, strings.Join(names, ", "), cname))
		}
	}
	out = append(out, checkChain(certs, now, roots)...)
	for i, c := range certs {
		if d, weak := weakKey(c.PublicKey); weak {
			out = append(out, problem(CodeWeakKey, "ssl.certPem", "certificate %d (%s) has a weak key (%s); use RSA of at least %d bits, ECDSA P-256 or better, or Ed25519", i+1, describe(c), d, MinRSABits))
		}
		if i < len(certs)-1 || !selfSigned(c) {
			switch c.SignatureAlgorithm {
			case x509.MD2WithRSA, x509.MD5WithRSA, x509.SHA1WithRSA, x509.DSAWithSHA1, x509.ECDSAWithSHA1:
				out = append(out, problem(CodeWeakSignature, "ssl.certPem", "certificate %d (%s) is signed with %s, which clients reject; get one signed with SHA-256 or better", i+1, describe(c), c.SignatureAlgorithm))
			}
		}
	}
	if len(out) > 0 {
		return nil, out
	}
	var chain bytes.Buffer
	for _, c := range certs {
		pem.Encode(&chain, &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
	}
	return &Checked{Leaf: leaf, ChainPEM: chain.String(), KeyPEM: string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}))}, nil
}

func describe(c *x509.Certificate) string {
	if c.Subject.CommonName != "" {
		return "CN=" + c.Subject.CommonName
	}
	if len(c.DNSNames) > 0 {
		return c.DNSNames[0]
	}
	return c.Subject.String()
}

// parseChain reads every CERTIFICATE block; the message says what is wrong.
func parseChain(s string) ([]*x509.Certificate, string) {
	if strings.TrimSpace(s) == "" {
		return nil, "is empty"
	}
	rest := []byte(s)
	var certs []*x509.Certificate
	for n := 1; ; n++ {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			return nil, fmt.Sprintf("holds a %q PEM block (block %d); it must hold only CERTIFICATE blocks, leaf first", b.Type, n)
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Sprintf("block %d is not a valid X.509 certificate: %v", n, err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, "is not PEM: expected -----BEGIN CERTIFICATE----- blocks"
	}
	if len(bytes.TrimSpace(rest)) > 0 {
		return nil, "has text after its last PEM block that is not PEM"
	}
	return certs, ""
}

// parseKey reads one private key in PKCS#1, PKCS#8 or SEC 1 form.
func parseKey(s string) (crypto.Signer, []byte, *api.ErrorDetail) {
	fail := func(code, format string, args ...any) (crypto.Signer, []byte, *api.ErrorDetail) {
		d := problem(code, "ssl.keyPem", format, args...)
		return nil, nil, &d
	}
	if strings.TrimSpace(s) == "" {
		return fail(CodeKeyNotPEM, "the key (ssl.keyPem) is empty")
	}
	b, _ := pem.Decode([]byte(s))
	if b == nil {
		return fail(CodeKeyNotPEM, "the key (ssl.keyPem) is not PEM: expected a -----BEGIN PRIVATE KEY----- block")
	}
	//nolint:staticcheck // detecting legacy encryption is the point
	if b.Type == "ENCRYPTED PRIVATE KEY" || x509.IsEncryptedPEMBlock(b) {
		return fail(CodeKeyEncrypted, "the key (ssl.keyPem) is encrypted with a passphrase; the front end cannot prompt for one: decrypt it first (openssl pkey -in KEY -out KEY.plain)")
	}
	var (
		k   any
		err error
	)
	switch b.Type {
	case "RSA PRIVATE KEY":
		k, err = x509.ParsePKCS1PrivateKey(b.Bytes)
	case "EC PRIVATE KEY":
		k, err = x509.ParseECPrivateKey(b.Bytes)
	case "PRIVATE KEY":
		k, err = x509.ParsePKCS8PrivateKey(b.Bytes)
	default:
		return fail(CodeKeyNotPEM, "the key (ssl.keyPem) holds a %q PEM block, not a private key", b.Type)
	}
	if err != nil {
		return fail(CodeKeyNotPEM, "the key (ssl.keyPem) is not a valid private key: %v", err)
	}
	signer, ok := k.(crypto.Signer)
	if !ok {
		return fail(CodeKeyNotPEM, "the key (ssl.keyPem) is of an unsupported type %T", k)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return fail(CodeKeyNotPEM, "the key (ssl.keyPem): %v", err)
	}
	return signer, der, nil
}

func samePublicKey(a, b crypto.PublicKey) bool {
	x, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && x.Equal(b)
}

func weakKey(pub crypto.PublicKey) (string, bool) {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() < MinRSABits {
			return fmt.Sprintf("RSA %d bits", k.N.BitLen()), true
		}
	case *ecdsa.PublicKey:
		if k.Curve.Params().BitSize < 256 {
			return fmt.Sprintf("ECDSA %s", k.Curve.Params().Name), true
		}
	case ed25519.PublicKey:
	default:
		return fmt.Sprintf("unsupported key type %T", pub), true
	}
	return "", false
}

func selfSigned(c *x509.Certificate) bool {
	return bytes.Equal(c.RawIssuer, c.RawSubject) && c.CheckSignatureFrom(c) == nil
}

// checkChain: the leaf comes first, each certificate is signed by the
// next, and the last one is a root (self-signed) or issued by a root the
// clients trust.
func checkChain(certs []*x509.Certificate, now time.Time, roots *x509.CertPool) []api.ErrorDetail {
	if certs[0].IsCA && len(certs) > 1 {
		return []api.ErrorDetail{problem(CodeChainOrder, "ssl.certPem", "the first certificate (%s) is a CA certificate: the chain must start with the server's own (leaf) certificate, then its intermediates", describe(certs[0]))}
	}
	for i := 0; i+1 < len(certs); i++ {
		if err := certs[i].CheckSignatureFrom(certs[i+1]); err != nil {
			return []api.ErrorDetail{problem(CodeChainOrder, "ssl.certPem", "certificate %d (%s) is not signed by certificate %d (%s): give the leaf first, then each issuer in order",
				i+1, describe(certs[i]), i+2, describe(certs[i+1]))}
		}
	}
	last := certs[len(certs)-1]
	if selfSigned(last) {
		return nil
	}
	if roots == nil {
		roots, _ = x509.SystemCertPool()
		if roots == nil {
			roots = x509.NewCertPool()
		}
	}
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	// Verify at a time the leaf is valid, so an expired certificate is
	// reported once (as expired), not again as a broken chain.
	at := now
	if at.After(certs[0].NotAfter) || at.Before(certs[0].NotBefore) {
		at = certs[0].NotBefore.Add(certs[0].NotAfter.Sub(certs[0].NotBefore) / 2)
	}
	if _, err := certs[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: at, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err == nil {
		return nil
	}
	return []api.ErrorDetail{problem(CodeChainIncomplete, "ssl.certPem", "the chain is incomplete: it ends with %s, issued by %q, which is neither in the file nor a root clients trust; append the intermediate certificate(s) after the leaf",
		describe(last), last.Issuer.String())}
}

// Info describes an installed certificate chain (leaf first).
type Info struct {
	Leaf      *x509.Certificate
	NotBefore time.Time
	NotAfter  time.Time
}

// Parse reads the leaf of an installed chain.
func Parse(chainPEM string) (*Info, error) {
	certs, msg := parseChain(chainPEM)
	if msg != "" {
		return nil, fmt.Errorf("certificate %s", msg)
	}
	return &Info{Leaf: certs[0], NotBefore: certs[0].NotBefore, NotAfter: certs[0].NotAfter}, nil
}

// RenewAt is when a certificate is due for renewal: when a third of its
// lifetime is left.
func (i *Info) RenewAt() time.Time {
	life := i.NotAfter.Sub(i.NotBefore)
	return i.NotAfter.Add(-life / 3)
}
