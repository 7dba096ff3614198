package certificate

import (
	"errors"
	"github.com/berth-ml/berth/api"
	"github.com/go-acme/lego/v5/challenge"
	"github.com/go-acme/lego/v5/challenge/dns01"
)

func dnsOptions(s api.WorkspaceSettings) []dns01.ChallengeOption {
	return nil
}

// DNS01Provider makes the workspace's DNS-01 provider.
func DNS01Provider(s api.WorkspaceSettings) (challenge.Provider, error) {
	return nil, errors.New("not yet")
}
