package kubernetes

import (
	"cmp"
	"encoding/json"

	"github.com/berth-ml/berth/api"
	"github.com/berth-ml/berth/internal/problem"
	"github.com/berth-ml/berth/internal/provider"
	"github.com/berth-ml/berth/internal/store"
)

// Settings are what a user asks of an attached cluster (api.Compute.Settings).
type Settings struct {
	// Context is the kubeconfig context of the stored credentials (empty:
	// the kubeconfig's current one). With scoped credentials it is the
	// given kubeconfig's, until Berth's own replace it.
	Context string `json:"context,omitempty"`
	// CredentialMode is scoped (default: Berth's own ServiceAccount) or
	// as-given (the given kubeconfig is stored).
	CredentialMode string `json:"credentialMode,omitempty"`
}

// Status is what Berth records about an attached cluster
// (api.Compute.Status); the AKS provider's status embeds it.
type Status struct {
	api.CertificateStatus
	// GivenContext is the given kubeconfig's context while a scoped
	// attach still holds that kubeconfig.
	GivenContext string `json:"givenContext,omitempty"`
	// ACMEAccount is the URI of the ACME account automatic certificates
	// were issued to.
	ACMEAccount string `json:"acmeAccount,omitempty"`
	// DNSLabel and DNSZone: a provider whose cloud names the front end's
	// public IP (AKS: the label, and <region>.cloudapp.azure.com); an
	// automatic certificate's name then is that label's.
	DNSLabel string `json:"dnsLabel,omitempty"`
	DNSZone  string `json:"dnsZone,omitempty"`
	// FQDN is the public front end's DNS name that label gives it; scoring
	// URIs use it rather than the IP.
	FQDN string `json:"fqdn,omitempty"`
	// Legacy keeps properties of an earlier release that no field took
	// over (see the store's migration 4), so nothing is lost.
	Legacy map[string]string `json:"legacy,omitempty"`
}

// ParseSettings reads an attach request's settings: strictly decoded, then
// defaults, then checked.
func ParseSettings(raw json.RawMessage) (Settings, []api.ErrorDetail) {
	var s Settings
	out := provider.DecodeStrict("settings", raw, &s)
	s.CredentialMode = cmp.Or(s.CredentialMode, CredentialScoped)
	out = append(out, s.Validate()...)
	return s, out
}

// Validate checks the credential mode.
func (s *Settings) Validate() []api.ErrorDetail {
	if s.CredentialMode != CredentialScoped && s.CredentialMode != CredentialAsGiven {
		return []api.ErrorDetail{problem.Detail(api.CodeInvalidValue, "settings.credentialMode", "settings.credentialMode %q is not valid: use scoped or as-given", s.CredentialMode)}
	}
	return nil
}

// SettingsOf reads the kubernetes settings of a compute (of this type, or
// of one that installs through it, like AKS).
func SettingsOf(c *store.Compute) Settings { return provider.Read[Settings](c.Settings) }

// StatusOf reads the kubernetes part of a compute's status.
func StatusOf(c *store.Compute) Status { return provider.Read[Status](c.Status) }

func editSettings(c *store.Compute, fn func(*Settings)) { provider.Edit(&c.Settings, fn) }

// EditStatus changes the kubernetes part of a compute's status, keeping
// the rest (another provider's fields).
func EditStatus(c *store.Compute, fn func(*Status)) { provider.Edit(&c.Status, fn) }
