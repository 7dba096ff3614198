// Package httpsyntax has the HTTP/1.1 syntax checks that berth's server
// (h1) and its client to replicas (upstream) share.
package httpsyntax

import "strings"

// ValidToken: s is a token (RFC 9110 section 5.6.2), such as a method or a
// header name.
func ValidToken[T string | []byte](s T) bool {
	return len(s) > 0 && AlnumOr(s, "!#$%&'*+-.^_`|~")
}

// ValidHeaderValue: v holds no control character but tab.
func ValidHeaderValue[T string | []byte](v T) bool {
	for i := 0; i < len(v); i++ {
		if b := v[i]; b < ' ' && b != '\t' || b == 0x7f {
			return false
		}
	}
	return true
}

// HasToken: a comma-separated header value list holds token (a header
// named in Connection's values is hop-by-hop, RFC 9110 section 7.6.1: a
// proxy drops it), in any case by ASCII's rules, as net/http compares
// tokens. With Unicode's, "chun\u212aed" (a Kelvin sign) or "clo\u017fe"
// (a long s) would pass for chunked or close here and not for a proxy in
// front, which would frame the request otherwise. (A rune that folds to
// an ASCII letter but is not one is longer.)
func HasToken(vs []string, token string) bool {
	for _, v := range vs {
		for v != "" {
			var t string
			t, v, _ = strings.Cut(v, ",")
			if EqualFoldASCII(strings.Trim(t, " \t"), token) {
				return true
			}
		}
	}
	return false
}

// EqualFoldASCII: s is t, an ASCII token, in any case (see HasToken).
func EqualFoldASCII(s, t string) bool { return len(s) == len(t) && strings.EqualFold(s, t) }

// AlnumOr: every byte of s is an ASCII letter or digit or one of extra.
func AlnumOr[T string | []byte](s T, extra string) bool {
	for i := 0; i < len(s); i++ {
		if b := s[i]; !('a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9' || strings.IndexByte(extra, b) >= 0) {
			return false
		}
	}
	return true
}
