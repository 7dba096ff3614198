package certificate

import (
	"cmp"
	"errors"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/berth-ml/berth/api"
	"github.com/go-acme/lego/v5/challenge"
	"github.com/go-acme/lego/v5/challenge/dns01"
	"github.com/go-acme/lego/v5/providers/dns/dnsupdate"
)

// DNS-01 providers are a curated list, not all of lego's (which would add
// dozens of cloud SDKs to the binary): rfc2136 covers the DNS servers
// teams run themselves (BIND, Knot, PowerDNS, Windows DNS).

// DNS01Provider makes the workspace's DNS-01 provider.
func DNS01Provider(s api.WorkspaceSettings) (challenge.Provider, error) {
	d := s.DNS01
	if d == nil {
		return nil, errors.New("the workspace has no DNS-01 provider")
	}
	switch d.Provider {
	case api.DNS01RFC2136:
		cfg := dnsupdate.NewDefaultConfig()
		cfg.Nameserver = d.Nameserver
		cfg.TSIGKey, cfg.TSIGSecret = d.TSIGKey, d.TSIGSecret
		cfg.TSIGAlgorithm = cmp.Or(d.TSIGAlgorithm, "hmac-sha256.")
		if !strings.HasSuffix(cfg.TSIGAlgorithm, ".") {
			cfg.TSIGAlgorithm += "."
		}
		if cfg.TSIGKey != "" && !strings.HasSuffix(cfg.TSIGKey, ".") {
			cfg.TSIGKey += "."
		}
		if s.DNSZone != "" {
			cfg.Zones = []string{s.DNSZone + "."}
		}
		cfg.TTL = 60
		cfg.DNSTimeout = 5 * time.Second
		cfg.PropagationTimeout = 2 * time.Minute
		cfg.PollingInterval = 200 * time.Millisecond
		return dnsupdate.NewDNSProviderConfig(cfg)
	}
	return nil, errors.New("DNS-01 provider " + d.Provider + " is not available: use rfc2136")
}

// resolvers are the nameservers Berth asks to see a TXT record has
// propagated: the configured ones, else the provider's nameserver.
func resolvers(s api.WorkspaceSettings) []string {
	if s.DNS01 == nil {
		return nil
	}
	if len(s.DNS01.Resolvers) > 0 {
		return s.DNS01.Resolvers
	}
	if _, _, err := net.SplitHostPort(s.DNS01.Nameserver); err == nil {
		return []string{s.DNS01.Nameserver}
	}
	return []string{net.JoinHostPort(s.DNS01.Nameserver, "53")}
}

// lego resolves challenge names (CNAME delegation, propagation checks)
// through one process-wide client: DNS-01 issuances take turns, each with
// its workspace's resolvers.
var dnsMu sync.Mutex

func useResolvers(s api.WorkspaceSettings) func() {
	dnsMu.Lock()
	opts := dns01.NewOptions()
	opts.RecursiveNameservers = resolvers(s)
	opts.Timeout = 5 * time.Second
	dns01.SetDefaultClient(dns01.NewClient(opts))
	return dnsMu.Unlock
}

// dnsOptions: the record must be visible at the workspace's resolvers;
// the zone's authoritative servers are not looked up on port 53 (a
// private zone's may not be reachable that way).
func dnsOptions(api.WorkspaceSettings) []dns01.ChallengeOption {
	return []dns01.ChallengeOption{dns01.DisableAuthoritativeNssPropagationRequirement()}
}
