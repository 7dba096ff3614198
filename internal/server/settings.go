package server

import (
	"cmp"
	"crypto/x509"
	"encoding/base64"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"

	"github.com/berth-ml/berth/api"
	"github.com/berth-ml/berth/internal/problem"
	"github.com/berth-ml/berth/internal/provider/aks"
)

// validateSettings checks a workspace's settings, every problem at once.
func validateSettings(s api.WorkspaceSettings) []api.ErrorDetail {
	var out []api.ErrorDetail
	add := func(code, target, msg string) {
		out = append(out, api.ErrorDetail{Code: code, Target: "settings." + target, Message: msg})
	}
	if c := s.AzureCredential; c != "" && !slices.Contains(aks.CredentialChoices, c) {
		add("InvalidValue", "azureCredential", "Azure credential "+quote(c)+" is not known: use one of "+strings.Join(aks.CredentialChoices, ", "))
	}
	for _, c := range strings.Split(s.ControlPlaneEgressCIDR, ",") {
		if _, err := netip.ParsePrefix(strings.TrimSpace(c)); err != nil && s.ControlPlaneEgressCIDR != "" {
			add("InvalidValue", "controlPlaneEgressCidr", "settings.controlPlaneEgressCidr "+quote(c)+" is not a CIDR like 203.0.113.0/28 (list several with commas)")
		}
	}
	if z := s.DNSZone; z != "" && (strings.HasPrefix(z, ".") || strings.HasSuffix(z, ".") || !strings.Contains(z, ".") || strings.ContainsAny(z, " /:*")) {
		add("InvalidValue", "dnsZone", "settings.dnsZone "+quote(z)+" is not a DNS zone like apps.example.com")
	}
	if u := s.ACMEDirectoryURL; u != "" {
		if p, err := url.Parse(u); err != nil || p.Scheme != "https" || p.Host == "" {
			add("InvalidValue", "acmeDirectoryUrl", "settings.acmeDirectoryUrl "+quote(u)+" must be an https:// URL (an ACME directory)")
		}
	}
	if e := s.ACMEEmail; e != "" && (!strings.Contains(e, "@") || strings.ContainsAny(e, " ,")) {
		add("InvalidValue", "acmeEmail", "settings.acmeEmail "+quote(e)+" is not an email address")
	}
	if p := s.ACMECACertPEM; p != "" && !x509.NewCertPool().AppendCertsFromPEM([]byte(p)) {
		add("InvalidValue", "acmeCaCertPem", "the ACME CA certificate (settings.acmeCaCertPem) holds no PEM certificate")
	}
	if (s.ACMEEABKeyID == "") != (s.ACMEEABHMACKey == "") {
		add("InvalidValue", "acmeEabKid", "external account binding needs both settings.acmeEabKid and settings.acmeEabHmacKey")
	}
	if k := s.ACMEEABHMACKey; k != "" {
		if _, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(k, "=")); err != nil {
			add("InvalidValue", "acmeEabHmacKey", "settings.acmeEabHmacKey must be base64url, as the CA gave it")
		}
	}
	if d := s.DNS01; d != nil {
		switch d.Provider {
		case api.DNS01RFC2136:
			if _, _, err := net.SplitHostPort(d.Nameserver); err != nil {
				add("InvalidValue", "dns01.nameserver", "settings.dns01.nameserver "+quote(d.Nameserver)+" must be HOST:PORT of the DNS server that takes RFC 2136 updates")
			}
			if (d.TSIGKey == "") != (d.TSIGSecret == "") {
				add("InvalidValue", "dns01.tsigKey", "TSIG needs both settings.dns01.tsigKey and settings.dns01.tsigSecret (or neither, for a server that takes unsigned updates)")
			}
			if d.TSIGSecret != "" {
				if _, err := base64.StdEncoding.DecodeString(d.TSIGSecret); err != nil {
					add("InvalidValue", "dns01.tsigSecret", "settings.dns01.tsigSecret must be base64, as tsig-keygen prints it")
				}
			}
		default:
			add("InvalidValue", "dns01.provider", "settings.dns01.provider "+quote(d.Provider)+" is not available: use rfc2136 (RFC 2136 dynamic updates: BIND, Knot, PowerDNS, Windows DNS)")
		}
	}
	return out
}

// mergeSettings applies an update: set fields replace, empty ones keep.
func mergeSettings(cur, upd api.WorkspaceSettings) api.WorkspaceSettings {
	cur.DNSZone = cmp.Or(upd.DNSZone, cur.DNSZone)
	cur.ACMEDirectoryURL = cmp.Or(upd.ACMEDirectoryURL, cur.ACMEDirectoryURL)
	cur.ACMEEmail = cmp.Or(upd.ACMEEmail, cur.ACMEEmail)
	cur.ACMECACertPEM = cmp.Or(upd.ACMECACertPEM, cur.ACMECACertPEM)
	cur.ACMEProfile = cmp.Or(upd.ACMEProfile, cur.ACMEProfile)
	cur.ACMEEABKeyID = cmp.Or(upd.ACMEEABKeyID, cur.ACMEEABKeyID)
	cur.ACMEEABHMACKey = cmp.Or(upd.ACMEEABHMACKey, cur.ACMEEABHMACKey)
	cur.AzureSubscriptionID = cmp.Or(upd.AzureSubscriptionID, cur.AzureSubscriptionID)
	cur.AzureResourceGroup = cmp.Or(upd.AzureResourceGroup, cur.AzureResourceGroup)
	cur.AzureCredential = cmp.Or(upd.AzureCredential, cur.AzureCredential)
	cur.ControlPlaneEgressCIDR = cmp.Or(upd.ControlPlaneEgressCIDR, cur.ControlPlaneEgressCIDR)
	if upd.DNS01 != nil {
		d := *upd.DNS01
		if d.Provider == "" {
			cur.DNS01 = nil // "dns01": {} removes the provider
		} else {
			if cur.DNS01 != nil && d.TSIGSecret == "" && d.TSIGKey == cur.DNS01.TSIGKey {
				d.TSIGSecret = cur.DNS01.TSIGSecret
			}
			cur.DNS01 = &d
		}
	}
	return cur
}

func (s *Server) updateWorkspace(w http.ResponseWriter, r *http.Request, p *principal) error {
	ws := p.ws
	var req api.WorkspaceUpdateRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	merged := mergeSettings(ws.Settings, req.Settings)
	if d := validateSettings(merged); len(d) > 0 {
		return problem.Validation("", d)
	}
	if err := s.store.UpdateWorkspaceSettings(r.Context(), ws.ID, merged); err != nil {
		return err
	}
	ws.Settings = merged.Redacted()
	s.log.Info("workspace settings changed", "workspace", ws.Name)
	return writeJSON(w, 200, ws)
}
