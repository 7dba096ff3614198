package image

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// ParsePushTag reads a push destination, REGISTRY/REPO:TAG: the registry
// and the tag must be written out (no implied docker.io or :latest), so a
// typo cannot push somewhere unintended.
func ParsePushTag(s string) (name.Tag, error) {
	t, err := name.NewTag(s, name.StrictValidation)
	if err != nil {
		return name.Tag{}, fmt.Errorf("invalid push tag %q (want REGISTRY/REPOSITORY:TAG, e.g. ghcr.io/berth-ml/berth:0.3.0): %v", s, err)
	}
	return t, nil
}

// PushError is a push the registry refused or could not be reached for.
type PushError struct {
	Registry string
	Reason   string
	Err      error
}

func (e *PushError) Error() string {
	return fmt.Sprintf("push to registry %s failed: %s", e.Registry, e.Reason)
}

func (e *PushError) Unwrap() error { return e.Err }

// Push uploads the index and its images to tag's repository, with the
// credentials of the Docker config file (DOCKER_CONFIG or
// ~/.docker/config.json, credential helpers included) unless opts
// say otherwise. Loopback and .local registries are spoken to over plain
// HTTP, as go-containerregistry does for them.
func Push(ctx context.Context, tag name.Tag, idx v1.ImageIndex, opts ...remote.Option) error {
	all := append([]remote.Option{
		remote.WithContext(ctx),
		remote.WithAuthFromKeychain(authn.DefaultKeychain),
	}, opts...)
	return pushError(tag.Context().RegistryStr(), remote.WriteIndex(tag, idx, all...))
}

// CheckPush asks the registry whether the Docker config's credentials may
// push to tag's repository (it starts an upload and cancels it), so that a
// refusing or unreachable registry is reported before minutes of building.
func CheckPush(ctx context.Context, tag name.Tag) error {
	rt := http.DefaultTransport.(*http.Transport).Clone()
	base := rt.DialContext
	rt.DialContext = func(dctx context.Context, network, addr string) (net.Conn, error) {
		// CheckPushPermission takes no context: bound its dials with ours.
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return base(dctx, network, addr)
	}
	defer rt.CloseIdleConnections()
	return pushError(tag.Context().RegistryStr(), remote.CheckPushPermission(tag, authn.DefaultKeychain, rt))
}

// pushError describes err, a push's (nil if it succeeded).
func pushError(registry string, err error) error {
	if err == nil {
		return nil
	}
	if te, ok := errors.AsType[*transport.Error](err); ok {
		var codes []string
		for _, d := range te.Errors {
			c := string(d.Code)
			if d.Message != "" {
				c += ": " + d.Message
			}
			codes = append(codes, c)
		}
		reason := fmt.Sprintf("HTTP %d %s", te.StatusCode, http.StatusText(te.StatusCode))
		switch te.StatusCode {
		case http.StatusUnauthorized:
			reason += " (not logged in, or the credentials were refused: check `podman login` / ~/.docker/config.json)"
		case http.StatusForbidden:
			reason += " (denied: these credentials may not push to this repository)"
		}
		if len(codes) > 0 {
			reason += ": " + strings.Join(codes, "; ")
		}
		return &PushError{Registry: registry, Reason: reason, Err: err}
	}
	if _, ok := errors.AsType[net.Error](err); ok { // *net.DNSError and *net.OpError are net.Errors too
		return &PushError{Registry: registry, Reason: "registry unreachable: " + err.Error(), Err: err}
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return &PushError{Registry: registry, Reason: "gave up: " + err.Error(), Err: err}
	}
	return &PushError{Registry: registry, Reason: err.Error(), Err: err}
}
