// Package imageref checks container image references by the grammar of the
// OCI distribution spec (the one github.com/distribution/reference
// implements), so a mistyped image repository is refused when the server
// starts instead of surfacing as an image pull that never succeeds in every
// cluster:
//
//	reference      := name [ ":" tag ] [ "@" digest ]
//	name           := [ domain "/" ] path-component ( "/" path-component )*
//	domain         := host [ ":" port ]
//	host           := domain-component ( "." domain-component )* | "[" IPv6 "]"
//	domain-component := [a-zA-Z0-9] | [a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]
//	path-component := [a-z0-9]+ ( ( [._] | "__" | "-"* ) [a-z0-9]+ )*
//	tag            := [\w][\w.-]{0,127}
//	digest         := algorithm ":" hex (32 or more hex digits)
//
// As Docker does, the first "/"-separated part is the registry host when it
// contains "." or ":", is "localhost", or has capital letters; otherwise the
// whole name is the repository path (on the default registry).
//
// Errors are predicates of the name (`has an invalid path component "Repo":
// repository paths must be lowercase`), for callers to put the flag or the
// name before them.
package imageref

import (
	"errors"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
)

// NameMax is the longest repository name (registry host included).
const NameMax = 255

var (
	pathComponent   = regexp.MustCompile(`^[a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)*$`)
	domainComponent = regexp.MustCompile(`^(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])$`)
	tagPattern      = regexp.MustCompile(`^[\w][\w.-]{0,127}$`)
	digestPattern   = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}$`)
)

// Repository checks that s is an image repository: a registry host (with
// an optional port) and a path, without a tag or digest, such as
// ghcr.io/berth-ml/berth or mirror.corp:5000/ml/berth. The error says what
// is wrong and where.
func Repository(s string) error {
	if err := basic(s); err != nil {
		return err
	}
	if i := strings.IndexByte(s, '@'); i >= 0 {
		return fmt.Errorf("has a digest (%q): give the repository alone, the server adds its version as the tag", s[i:])
	}
	domain, path := split(s)
	if strings.Contains(path, ":") {
		return fmt.Errorf("has a tag (%q): give the repository alone, the server adds its version as the tag", path[strings.LastIndexByte(path, ':'):])
	}
	return name(s, domain, path)
}

// Reference checks that s is a full image reference: a repository with an
// optional tag and an optional digest, such as ghcr.io/berth-ml/berth:0.3.0.
func Reference(s string) error {
	if err := basic(s); err != nil {
		return err
	}
	rest := s
	if i := strings.IndexByte(rest, '@'); i >= 0 {
		if d := rest[i+1:]; !digestPattern.MatchString(d) {
			return fmt.Errorf("has an invalid digest %q: want ALGORITHM:HEX, like sha256: and 64 hex digits", d)
		}
		rest = rest[:i]
	}
	domain, path := split(rest)
	if i := strings.LastIndexByte(path, ':'); i >= 0 {
		if err := Tag(path[i+1:]); err != nil {
			return err
		}
		path = path[:i]
		rest = path
		if domain != "" {
			rest = domain + "/" + path
		}
	}
	return name(rest, domain, path)
}

// Tag checks that s is a valid image tag.
func Tag(s string) error {
	if !tagPattern.MatchString(s) {
		return fmt.Errorf("has an invalid tag %q: a tag is 1 to 128 letters, digits, '_', '.' and '-', not starting with '.' or '-'", s)
	}
	return nil
}

// basic catches what is plainly not an image name.
func basic(s string) error {
	if s == "" {
		return errors.New("is empty")
	}
	if i := strings.Index(s, "://"); i >= 0 {
		return fmt.Errorf("has a URL scheme (%q): give REGISTRY/PATH without it", s[:i+3])
	}
	return nil
}

// split separates the registry host from the path as Docker does.
func split(s string) (domain, path string) {
	i := strings.IndexByte(s, '/')
	if i < 0 {
		return "", s
	}
	first := s[:i]
	if strings.ContainsAny(first, ".:") || first == "localhost" || strings.ToLower(first) != first {
		return first, s[i+1:]
	}
	return "", s
}

func name(full, domain, path string) error {
	if domain != "" {
		if err := host(domain); err != nil {
			return fmt.Errorf("has an invalid registry host %q: %v", domain, err)
		}
	}
	if path == "" {
		return errors.New("has no repository path after the registry host")
	}
	for _, c := range strings.Split(path, "/") {
		if c == "" {
			return errors.New(`has an empty path component ("//", or "/" at an end)`)
		}
		if !pathComponent.MatchString(c) {
			return fmt.Errorf("has an invalid path component %q: %s", c, whyComponent(c))
		}
	}
	if len(full) > NameMax {
		return fmt.Errorf("is %d characters long, more than the %d a repository name may have", len(full), NameMax)
	}
	return nil
}

// whyComponent says why c is not a path component.
func whyComponent(c string) string {
	for _, r := range c {
		switch {
		case r >= 'A' && r <= 'Z':
			return "repository paths must be lowercase"
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '.', r == '_', r == '-':
		default:
			return fmt.Sprintf("%q is not allowed (only lowercase letters, digits and the separators '.', '_', '__' and '-')", r)
		}
	}
	return "it must start and end with a lowercase letter or digit, with single '.' or '_', double '_' or any '-' between them"
}

// host checks a registry host[:port].
func host(d string) error {
	h, port := d, ""
	if strings.HasPrefix(d, "[") {
		end := strings.IndexByte(d, ']')
		if end < 0 {
			return errors.New("no closing ']'")
		}
		ip := net.ParseIP(d[1:end])
		if ip == nil || ip.To4() != nil {
			return fmt.Errorf("%q is not an IPv6 address", d[1:end])
		}
		h, port = d[:end+1], d[end+1:]
		if port != "" && !strings.HasPrefix(port, ":") {
			return fmt.Errorf("unexpected %q after the address", port)
		}
		port = strings.TrimPrefix(port, ":")
		if port == "" && strings.HasSuffix(d, ":") {
			return errors.New("the port is empty")
		}
	} else {
		if i := strings.IndexByte(d, ':'); i >= 0 {
			h, port = d[:i], d[i+1:]
			if port == "" {
				return errors.New("the port is empty")
			}
		}
		if h == "" {
			return errors.New("no host name before the port")
		}
		for _, c := range strings.Split(h, ".") {
			if !domainComponent.MatchString(c) {
				return fmt.Errorf("%q is not a host name label: letters, digits and inner '-', between dots", c)
			}
		}
	}
	if port != "" {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 || strings.TrimLeft(port, "0123456789") != "" {
			return fmt.Errorf("port %q is not a number from 1 to 65535", port)
		}
	}
	return nil
}
