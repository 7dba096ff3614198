package kubernetes

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"github.com/berth-ml/berth/internal/naming"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/berth-ml/berth/api"
	"github.com/berth-ml/berth/internal/certificate"
	"github.com/berth-ml/berth/internal/installer"
	"github.com/berth-ml/berth/internal/kubeconn"
	"github.com/berth-ml/berth/internal/operation"
	"github.com/berth-ml/berth/internal/store"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	coreac "k8s.io/client-go/applyconfigurations/core/v1"
)

// Secrets a compute keeps for TLS (sealed with the rest of its secrets);
// its status keeps the ACME account's URI and the failures.
const (
	secretTLSCert = "tlsCert"
	secretTLSKey  = "tlsKey"
	secretACMEKey = "acmeAccountKey"
)

// sslRequest is what the operation asks of TLS: the request's SSL part,
// and whether the automatic certificate must be renewed. A create (AKS)
// runs the attach steps, certificate included, once its cluster exists.
func sslRequest(r *operation.Run) (*api.SSLRequest, bool) {
	switch r.Op.Kind {
	case api.OpAttach, api.OpCreate:
		req, _ := operation.Params[api.ComputeRequest](r)
		return req.SSL, false
	case api.OpUpdate:
		req, _ := operation.Params[api.ComputeUpdateRequest](r)
		return req.SSL, req.SSL != nil && req.SSL.Renew
	case api.OpRenew:
		return nil, true
	}
	return nil, false
}

// stepCertificate installs what the operation asks for: a custom
// certificate, an automatic one obtained over ACME, a renewal, or none.
// The Secret is written only once the new certificate is in hand, so a
// failure leaves the current one serving.
func (p *Provider) stepCertificate(ctx context.Context, r *operation.Run) error {
	ssl, renew := sslRequest(r)
	if ssl == nil && !renew {
		return nil
	}
	c, d, cl, err := targetDesired(ctx, r)
	if err != nil {
		return err
	}
	if c.Secrets == nil {
		c.Secrets = map[string]string{}
	}
	if c.Endpoint == "" || d.LoadBalancerType != c.LoadBalancerType {
		// An attach (or a load balancer switch) reaches here before observe
		// records the address; the HTTP-01 check and the advice need it.
		if svc, err := cl.Client.CoreV1().Services(installer.Namespace).Get(ctx, installer.FrontendName, metav1.GetOptions{}); err == nil {
			c.Endpoint = installer.ServiceAddress(svc)
		}
	}
	switch {
	case ssl != nil && ssl.Disable:
		delete(c.Secrets, secretTLSCert)
		delete(c.Secrets, secretTLSKey)
		clearCertFailure(c)
		c.SSLConfiguration = api.SSLConfiguration{Status: api.SSLDisabled}
		r.Event("TLS disabled: the front end no longer serves HTTPS")
	case ssl != nil && ssl.CertPEM != "":
		checked, probs := certificate.Check(ssl.CertPEM, ssl.KeyPEM, ssl.Cname, time.Now(), nil)
		if len(probs) > 0 {
			return operation.Fail(api.CodeInvalidCertificate, fmt.Sprintf("%d problem(s) with the custom certificate; nothing was changed", len(probs)), probs...)
		}
		c.Secrets[secretTLSCert], c.Secrets[secretTLSKey] = checked.ChainPEM, checked.KeyPEM
		clearCertFailure(c)
		na := checked.Leaf.NotAfter.UTC()
		c.SSLConfiguration = api.SSLConfiguration{Status: api.SSLEnabled, Cname: ssl.Cname, NotAfter: &na}
		r.Event("Custom certificate for %s (valid until %s); the scoring endpoint is https://%s", ssl.Cname, na.Format(time.RFC3339), ssl.Cname)
	default:
		if err := p.obtain(ctx, r, cl, c, d, ssl); errors.Is(err, errPending) {
			return nil // recorded; the current Secret stays as it is
		} else if err != nil {
			return err
		}
	}
	in := p.installer(cl, r)
	if _, err := in.Apply(ctx, []installer.Object{installer.TLSSecretObject(p.settings(c))}, false); err != nil {
		return fail(api.CodeInstallFailed, err)
	}
	if c.SSLConfiguration.Status != api.SSLDisabled {
		r.Event("Wrote Secret %s/%s: the front end serves the new certificate on its next handshake", installer.Namespace, installer.TLSSecret)
	}
	return r.Store.UpdateCompute(ctx, c)
}

func clearCertFailure(c *store.Compute) {
	EditStatus(c, func(st *Status) { st.CertificateStatus = api.CertificateStatus{} })
}

// retryBackoff is how long after n failed issuances the next one starts:
// the base (default 30 s) doubling, at most 1 hour (certificate
// authorities count failed validations against rate limits).
func (p *Provider) retryBackoff(n int) time.Duration {
	d := p.CertificateRetryBase
	if d <= 0 {
		d = 30 * time.Second
	}
	for i := 1; i < n && d < time.Hour; i++ {
		d *= 2
	}
	return min(d, time.Hour)
}

// recordFailure notes a failed issuance on the compute (Unhealthy, the
// reason, the backoff) and returns when the next attempt is due.
func (p *Provider) recordFailure(c *store.Compute, reason string) time.Time {
	var retry time.Time
	EditStatus(c, func(st *Status) {
		n := st.CertificateFailures + 1
		retry = time.Now().Add(p.retryBackoff(n)).UTC().Truncate(time.Second)
		st.CertificateStatus = api.CertificateStatus{CertificateError: reason, CertificateFailures: n, CertificateRetryAt: &retry}
	})
	c.Health = api.HealthUnhealthy
	return retry
}

// configFailure fails an issuance the workspace's settings make impossible,
// with the same backoff as a CA's refusal so renewals do not spin.
func (p *Provider) configFailure(ctx context.Context, r *operation.Run, c *store.Compute, code, msg string) error {
	p.recordFailure(c, msg)
	if err := r.Store.UpdateCompute(ctx, c); err != nil {
		return err
	}
	return operation.Fail(code, msg)
}

// errPending: no certificate yet for a new name; the compute records why
// and when Berth tries again, and the operation settles.
var errPending = errors.New("certificate pending")

// renewing: the operation renews the certificate of the same name (a
// failure fails it), rather than making a new name.
func renewing(r *operation.Run) bool {
	_, renew := sslRequest(r)
	return renew
}

// obtain gets an automatic certificate over ACME and stores it in c.
func (p *Provider) obtain(ctx context.Context, r *operation.Run, cl *kubeconn.Cluster, c, d *store.Compute, ssl *api.SSLRequest) error {
	ws, err := r.Store.GetWorkspace(ctx, c.Workspace)
	if err != nil {
		return err
	}
	label, overwrite := c.SSLConfiguration.LeafDomainLabel, true
	if ssl != nil && ssl.LeafDomainLabel != "" {
		label, overwrite = ssl.LeafDomainLabel, ssl.OverwriteDomain
	}
	if label == "" {
		return operation.Fail(api.CodeInvalidSSLConfiguration, "this compute has no automatic certificate to renew")
	}
	zone := p.DNSZone(ws, c)
	if zone == "" {
		return operation.Fail(api.CodeDNSZoneRequired, "an automatic certificate needs a DNS zone: set the workspace's (workspace.settings.dnsZone)")
	}
	fqdn := r.Recall("fqdn")
	if fqdn == "" {
		cur := c.SSLConfiguration.FQDN
		ipLabel := StatusOf(c).DNSLabel
		switch {
		case ipLabel != "" && azureZone(zone) && d.LoadBalancerType != api.LoadBalancerInternal &&
			strings.HasPrefix(ipLabel, label) && len(ipLabel) == len(label)+6:
			// The public IP already carries a name made for this label
			// (the AKS provider makes it when it creates the cluster).
			fqdn = ipLabel + "." + zone
		case overwrite && cur != "" && strings.HasPrefix(cur, label) && strings.HasSuffix(cur, "."+zone) &&
			len(cur) == len(label)+6+1+len(zone):
			fqdn = cur
		default:
			fqdn = label + naming.RandomSuffix() + "." + zone
		}
		if ipLabel != "" && azureZone(zone) {
			// The provider names the public IP from this label (AKS):
			// keep it the certificate's name.
			EditStatus(c, func(st *Status) { st.DNSLabel, _, _ = strings.Cut(fqdn, ".") })
			if err := r.Store.UpdateCompute(ctx, c); err != nil {
				return err
			}
		}
		if err := r.Remember(ctx, "fqdn", fqdn); err != nil {
			return err
		}
	}
	if azureZone(zone) && d.LoadBalancerType != api.LoadBalancerInternal {
		// Azure resolves the name once the public IP carries its label.
		named := *c
		named.SSLConfiguration = api.SSLConfiguration{Status: api.SSLAuto, FQDN: fqdn}
		s := p.settings(&named)
		for _, o := range installer.FrontendObjects(s) {
			if o.Kind.Kind == "Service" {
				if _, err := p.installer(cl, r).Apply(ctx, []installer.Object{o}, false); err != nil {
					return fail(api.CodeInstallFailed, err)
				}
			}
		}
		r.Event("Asked Azure for the DNS label %s on the load balancer's public IP", s.DNSLabel)
	}
	req := certificate.Request{Settings: ws.Settings, Domain: fqdn,
		Account: certificate.Account{KeyPEM: c.Secrets[secretACMEKey], URI: StatusOf(c).ACMEAccount}}
	if d.LoadBalancerType == api.LoadBalancerInternal {
		if ws.Settings.DNS01 == nil {
			return p.configFailure(ctx, r, c, "DNS01ProviderRequired", "an internal load balancer needs a DNS-01 provider on the workspace for an automatic certificate (workspace.settings.dns01)")
		}
		prov, err := certificate.DNS01Provider(ws.Settings)
		if err != nil {
			return p.configFailure(ctx, r, c, "InvalidDNS01Provider", err.Error())
		}
		req.DNS01 = prov
		r.Event("Requesting a certificate for %s from %s (DNS-01 through %s)", fqdn, directory(ws), ws.Settings.DNS01.Provider)
	} else {
		req.HTTP01 = &httpChallenges{in: p.installer(cl, nil), s: p.settings(c), probe: p.probeAddress(c), run: r}
		r.Event("Requesting a certificate for %s from %s (HTTP-01 answered by berth-fe)", fqdn, directory(ws))
	}
	octx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	began := time.Now()
	issued, err := certificate.Obtain(octx, req)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		reason := certificate.Reason(err)
		retry := p.recordFailure(c, reason)
		if c.Secrets[secretTLSCert] != "" {
			r.Warn("The current certificate keeps serving; the next attempt is at %s", retry.Format(time.RFC3339))
		}
		if !renewing(r) {
			// A new name: its DNS record may not exist yet (the name was
			// just made). The compute keeps its new configuration and
			// Berth retries with backoff, so pointing the name at the
			// endpoint is all that is left to do.
			c.SSLConfiguration = api.SSLConfiguration{Status: api.SSLAuto, LeafDomainLabel: label, OverwriteDomain: overwrite, FQDN: fqdn}
			r.Warn("No certificate for %s yet: %s", fqdn, reason)
			r.Warn("Make %s resolve to the endpoint %s (or use a wildcard record for *.%s); Berth tries again at %s and then with backoff",
				fqdn, c.Endpoint, zone, retry.Format(time.RFC3339))
			if err := r.Store.UpdateCompute(ctx, c); err != nil {
				return err
			}
			return errPending
		}
		if uerr := r.Store.UpdateCompute(ctx, c); uerr != nil {
			return uerr
		}
		return operation.Fail(api.CodeCertificateFailed, fmt.Sprintf("the certificate authority did not issue a certificate for %s: %s", fqdn, reason),
			api.ErrorDetail{Code: api.CodeCertificateFailed, Target: "sslConfiguration", Message: "certificate authority: " + reason})
	}
	c.Secrets[secretTLSCert], c.Secrets[secretTLSKey] = issued.ChainPEM, issued.KeyPEM
	c.Secrets[secretACMEKey] = issued.Account.KeyPEM
	wasFailing := StatusOf(c).CertificateError != ""
	EditStatus(c, func(st *Status) { st.ACMEAccount = issued.Account.URI })
	if wasFailing && c.Health == api.HealthUnhealthy {
		c.Health = api.HealthHealthy
	}
	clearCertFailure(c)
	na := issued.NotAfter.UTC()
	c.SSLConfiguration = api.SSLConfiguration{Status: api.SSLAuto, LeafDomainLabel: label, OverwriteDomain: overwrite, FQDN: fqdn, NotAfter: &na}
	r.Event("Certificate issued for %s in %s, valid until %s; the scoring endpoint is https://%s", fqdn, time.Since(began).Round(time.Millisecond), na.Format(time.RFC3339), fqdn)
	return nil
}

func directory(ws *api.Workspace) string {
	return cmp.Or(ws.Settings.ACMEDirectoryURL, certificate.LetsEncrypt)
}

// probeAddress is where the CA will look for HTTP-01 answers: the
// endpoint's address on the HTTP port.
func (p *Provider) probeAddress(c *store.Compute) string {
	port := cmp.Or(p.ACMEHTTPPort, 80)
	if c.Endpoint == "" {
		return ""
	}
	return net.JoinHostPort(c.Endpoint, strconv.Itoa(port))
}

// httpChallenges publishes HTTP-01 answers in the ConfigMap every front
// end replica watches, and waits until the front end answers them where
// the CA will ask, so validation does not race the watch.
type httpChallenges struct {
	in    *installer.Installer
	s     installer.Settings
	probe string
	run   *operation.Run
}

func (h *httpChallenges) apply(ctx context.Context, data map[string]string) error {
	cm := coreac.ConfigMap(installer.ACMEChallenges, installer.Namespace).WithLabels(map[string]string{
		installer.LabelManagedBy: "berth", installer.LabelAttachment: h.s.AttachmentID, installer.LabelComponent: "acme",
		"app.kubernetes.io/part-of": "berth"}).WithData(data)
	_, err := h.in.Apply(ctx, []installer.Object{{Kind: installer.KindConfigMap, Name: installer.ACMEChallenges, Namespace: installer.Namespace, Apply: cm}}, false)
	return err
}

func (h *httpChallenges) Present(ctx context.Context, _, token, keyAuth string) error {
	if err := h.apply(ctx, map[string]string{token: keyAuth}); err != nil {
		return fmt.Errorf("publish the HTTP-01 answer: %w", err)
	}
	if h.probe == "" {
		return nil
	}
	// Three answers in a row (the load balancer may spread them over
	// replicas), for at most 5 s; past that the CA is asked anyway.
	url := "http://" + h.probe + "/.well-known/acme-challenge/" + token
	hc := &http.Client{Timeout: time.Second}
	ok := 0
	deadline := time.Now().Add(5 * time.Second)
	for ok < 3 && time.Now().Before(deadline) {
		resp, err := hc.Get(url)
		if err == nil {
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			resp.Body.Close()
			if resp.StatusCode == 200 && strings.TrimSpace(string(b)) == keyAuth {
				ok++
				continue
			}
		}
		ok = 0
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	if ok < 3 && h.run != nil {
		h.run.Warn("The front end did not answer the HTTP-01 challenge at %s yet; asking the CA to validate anyway", h.probe)
	}
	return nil
}

func (h *httpChallenges) CleanUp(ctx context.Context, _, _, _ string) error {
	return h.apply(ctx, map[string]string{})
}
