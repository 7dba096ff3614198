// Package split chooses which version of an endpoint serves a request:
// by weight (smooth weighted round robin, as nginx balances upstreams, so
// any run of requests splits as close to the weights as whole requests
// allow), pinned by the client, or mirrored to a version that also gets a
// copy. Versions without a ready replica take no share; the others absorb
// it. A Splitter is safe for concurrent use.
package split

import (
	"fmt"
	"sync"
)

// Version is one version of an endpoint as the router sees it.
type Version struct {
	Name string
	// Weight is its share of the traffic, in percent (the weights of an
	// endpoint sum to 100).
	Weight int
	// Mirror is the percentage of requests also copied to it.
	Mirror int
}

// Splitter routes the requests of one endpoint. Make it with New; a weight
// change makes a new Splitter (routes are replaced whole).
type Splitter struct {
	versions []Version
	mu       sync.Mutex
	current  []int // smooth weighted round robin state, by version
	mirrored []int // mirror counters, by version
}

// New returns a splitter over versions.
func New(versions []Version) *Splitter {
	return &Splitter{versions: versions, current: make([]int, len(versions)), mirrored: make([]int, len(versions))}
}

// ErrUnavailable is a pinned version with no ready replica.
type ErrUnavailable struct{ Version string }

func (e ErrUnavailable) Error() string {
	return fmt.Sprintf("version %s has no ready replica", e.Version)
}

// ErrUnknown is a pinned version the endpoint does not have.
type ErrUnknown struct {
	Version string
	Known   []string
}

func (e ErrUnknown) Error() string {
	return fmt.Sprintf("the endpoint has no version %q (it has %v)", e.Version, e.Known)
}

// Pick chooses the version of a request: pinned (when not empty), else by
// weight among the versions ready reports as able to serve. It also
// returns the versions that get a mirrored copy. It returns "" when no
// version with a weight is ready.
func (s *Splitter) Pick(pinned string, ready func(version string) bool) (version string, mirrors []string, err error) {
	if pinned != "" {
		for _, v := range s.versions {
			if v.Name == pinned {
				if !ready(v.Name) {
					return "", nil, ErrUnavailable{v.Name}
				}
				return v.Name, nil, nil
			}
		}
		known := make([]string, len(s.versions))
		for i, v := range s.versions {
			known[i] = v.Name
		}
		return "", nil, ErrUnknown{pinned, known}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	best, total := -1, 0
	for i, v := range s.versions {
		if v.Weight <= 0 || !ready(v.Name) {
			continue
		}
		s.current[i] += v.Weight
		total += v.Weight
		if best < 0 || s.current[i] > s.current[best] {
			best = i
		}
	}
	for i, v := range s.versions {
		// Each mirror sends one copy per 100 requests per point of its
		// percentage, evenly spaced (Bresenham), whatever was picked.
		if v.Mirror <= 0 || !ready(v.Name) {
			continue
		}
		s.mirrored[i] += v.Mirror
		if s.mirrored[i] >= 100 {
			s.mirrored[i] -= 100
			mirrors = append(mirrors, v.Name)
		}
	}
	if best < 0 {
		return "", mirrors, nil
	}
	s.current[best] -= total
	version = s.versions[best].Name
	for i, m := range mirrors {
		if m == version { // never a copy to the version that serves it
			mirrors = append(mirrors[:i], mirrors[i+1:]...)
			break
		}
	}
	return version, mirrors, nil
}
