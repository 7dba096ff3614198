package image

import (
	"fmt"
	"runtime"
	"slices"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Supported lists the platforms an image can be built for: berth is
// built with CGO off, so any GOOS/GOARCH Go supports would compile, but
// these are the ones Kubernetes nodes run and the tests cover.
var Supported = []string{"linux/amd64", "linux/arm64"}

// AllPlatforms is the multi-arch set, in the index's order.
const AllPlatforms = "linux/amd64,linux/arm64"

// HostPlatform is the supported platform this machine runs (linux/amd64
// on an amd64 host), or linux/amd64 when the host is not one of them.
func HostPlatform() string {
	if p := "linux/" + runtime.GOARCH; slices.Contains(Supported, p) {
		return p
	}
	return Supported[0]
}

// ParsePlatforms reads a comma-separated list such as
// "linux/amd64,linux/arm64". Every entry must be one of Supported; the
// result is sorted and without duplicates, so the order given does not
// change the index's digest.
func ParsePlatforms(list string) ([]v1.Platform, error) {
	var names []string
	for _, p := range strings.Split(list, ",") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		if !slices.Contains(Supported, p) {
			return nil, fmt.Errorf("unsupported platform %q: supported platforms are %s", p, strings.Join(Supported, ", "))
		}
		names = append(names, p)
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("no platform given: supported platforms are %s", strings.Join(Supported, ", "))
	}
	slices.Sort(names)
	names = slices.Compact(names)
	out := make([]v1.Platform, 0, len(names))
	for _, n := range names {
		p, err := v1.ParsePlatform(n)
		if err != nil {
			return nil, fmt.Errorf("platform %q: %w", n, err)
		}
		out = append(out, *p)
	}
	return out, nil
}

func platformName(p v1.Platform) string {
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}
