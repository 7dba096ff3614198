package server

import (
	"strings"
	"testing"

	"github.com/berth-ml/berth/api"
)

func TestWorkspaceSettingsRules(t *testing.T) {
	cases := []struct {
		name string
		s    api.WorkspaceSettings
		want string
	}{
		{"zone", api.WorkspaceSettings{DNSZone: "nodots"}, `settings.dnsZone "nodots" is not a DNS zone`},
		{"directory", api.WorkspaceSettings{ACMEDirectoryURL: "http://ca.example/dir"}, "must be an https:// URL"},
		{"email", api.WorkspaceSettings{ACMEEmail: "ops"}, `settings.acmeEmail "ops" is not an email address`},
		{"ca file", api.WorkspaceSettings{ACMECACertPEM: "nope"}, "holds no PEM certificate"},
		{"eab pair", api.WorkspaceSettings{ACMEEABKeyID: "kid"}, "needs both settings.acmeEabKid and settings.acmeEabHmacKey"},
		{"provider", api.WorkspaceSettings{DNS01: &api.DNS01Settings{Provider: "route53"}}, `settings.dns01.provider "route53" is not available: use rfc2136`},
		{"nameserver", api.WorkspaceSettings{DNS01: &api.DNS01Settings{Provider: "rfc2136", Nameserver: "ns1"}}, "must be HOST:PORT"},
		{"tsig pair", api.WorkspaceSettings{DNS01: &api.DNS01Settings{Provider: "rfc2136", Nameserver: "ns1:53", TSIGKey: "k"}}, "TSIG needs both"},
		{"tsig base64", api.WorkspaceSettings{DNS01: &api.DNS01Settings{Provider: "rfc2136", Nameserver: "ns1:53", TSIGKey: "k", TSIGSecret: "!!"}}, "must be base64"},
	}
	for _, tc := range cases {
		d := validateSettings(tc.s)
		if len(d) != 1 || !strings.Contains(d[0].Message, tc.want) {
			t.Errorf("%s: want %q, got %+v", tc.name, tc.want, d)
		}
	}
	ok := api.WorkspaceSettings{DNSZone: "apps.example.com", ACMEDirectoryURL: "https://ca.example/dir", ACMEEmail: "ops@example.com",
		DNS01: &api.DNS01Settings{Provider: "rfc2136", Nameserver: "10.0.0.53:53", TSIGKey: "k", TSIGSecret: "c2VjcmV0"}}
	if d := validateSettings(ok); len(d) > 0 {
		t.Fatalf("valid settings refused: %+v", d)
	}
}

func TestSettingsUpdateKeepsSecretsAndRedacts(t *testing.T) {
	cur := api.WorkspaceSettings{DNSZone: "a.example.com", ACMEEABKeyID: "kid", ACMEEABHMACKey: "hmac",
		DNS01: &api.DNS01Settings{Provider: "rfc2136", Nameserver: "ns:53", TSIGKey: "k", TSIGSecret: "c2VjcmV0"}}
	// Changing the nameserver alone keeps the TSIG secret of the same key.
	got := mergeSettings(cur, api.WorkspaceSettings{DNS01: &api.DNS01Settings{Provider: "rfc2136", Nameserver: "ns2:53", TSIGKey: "k"}})
	if got.DNS01.TSIGSecret != "c2VjcmV0" || got.DNS01.Nameserver != "ns2:53" || got.DNSZone != "a.example.com" || got.ACMEEABHMACKey != "hmac" {
		t.Fatalf("merge: %+v %+v", got, got.DNS01)
	}
	r := got.Redacted()
	if r.ACMEEABHMACKey != "" || !r.ACMEEABHMACKeySet || r.DNS01.TSIGSecret != "" || !r.DNS01.TSIGSecretSet || got.DNS01.TSIGSecret == "" {
		t.Fatalf("redacted: %+v %+v (original %+v)", r, r.DNS01, got.DNS01)
	}
	if got := mergeSettings(cur, api.WorkspaceSettings{DNS01: &api.DNS01Settings{}}); got.DNS01 != nil {
		t.Fatal("an empty dns01 does not remove the provider")
	}
}
