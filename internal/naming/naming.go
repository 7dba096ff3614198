// Package naming holds the rules for the names users give things (compute
// targets, workspaces), kept in one place so the API, the CLI and the tests
// agree. Each rule that fails becomes one detail naming the rule and the name.
package naming

import (
	"crypto/rand"
	"fmt"
	"strings"

	"github.com/berth-ml/berth/api"
	"github.com/berth-ml/berth/internal/problem"
)

// Reserved compute names: the compute types themselves, as the reference
// reserved the names of its own compute types.
var reservedCompute = map[string]bool{"aks": true, "kubernetes": true, "local": true, "berth": true}

func isLetter(r rune) bool { return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' }
func isDigit(r rune) bool  { return r >= '0' && r <= '9' }

// Compute checks a compute name: 3–24 characters; letters, digits and '-';
// starts with a letter; ends with a letter or digit; not reserved.
func Compute(name string) []api.ErrorDetail {
	return check(name, "compute name", api.CodeInvalidComputeName, 3, 24, false)
}

// Workspace checks a workspace name: 3–33 characters; letters, digits, '-'
// and '_'; starts with a letter or digit and ends with a letter or digit.
func Workspace(name string) []api.ErrorDetail {
	return check(name, "workspace name", api.CodeInvalidName, 3, 33, true)
}

func check(name, what, code string, minLen, maxLen int, workspace bool) []api.ErrorDetail {
	var out []api.ErrorDetail
	add := func(format string, args ...any) {
		out = append(out, api.ErrorDetail{Code: code, Target: "name", Message: fmt.Sprintf(format, args...)})
	}
	shown := fmt.Sprintf("%q", problem.Shorten(name))
	if name == "" {
		add("%s is required", what)
		return out
	}
	n := len([]rune(name))
	if n < minLen || n > maxLen {
		add("%s %s must be %d to %d characters long (it has %d)", what, shown, minLen, maxLen, n)
	}
	var bad []string
	seen := map[rune]bool{}
	for _, r := range name {
		ok := isLetter(r) || isDigit(r) || r == '-' || (workspace && r == '_')
		if !ok && !seen[r] {
			seen[r] = true
			bad = append(bad, fmt.Sprintf("%q", r))
		}
	}
	allowed := "letters, digits and '-'"
	if workspace {
		allowed = "letters, digits, '-' and '_'"
	}
	if len(bad) > 0 {
		add("%s %s may only contain %s (found %s)", what, shown, allowed, problem.Shorten(strings.Join(bad, ", ")))
	}
	first := []rune(name)[0]
	last := []rune(name)[n-1]
	if workspace {
		if !isLetter(first) && !isDigit(first) {
			add("%s %s must start with a letter or digit", what, shown)
		}
	} else if !isLetter(first) {
		add("%s %s must start with a letter", what, shown)
	}
	if !isLetter(last) && !isDigit(last) {
		add("%s %s must end with a letter or digit", what, shown)
	}
	if !workspace && reservedCompute[strings.ToLower(name)] {
		add("%s %s is reserved (it names a compute type); choose another", what, shown)
	}
	return out
}

// Model checks a model name: 1–255 characters; letters, digits, '-', '_'
// and '.'; starts with a letter or digit.
func Model(name string) []api.ErrorDetail {
	var out []api.ErrorDetail
	add := func(format string, args ...any) {
		out = append(out, api.ErrorDetail{Code: "InvalidModelName", Target: "name", Message: fmt.Sprintf(format, args...)})
	}
	if name == "" {
		add("model name is required")
		return out
	}
	if n := len([]rune(name)); n > 255 {
		add("model name %q must be at most 255 characters long (it has %d)", name, n)
	}
	for _, r := range name {
		if !(isLetter(r) || isDigit(r) || r == '-' || r == '_' || r == '.') {
			add("model name %q may only contain letters, digits, '-', '_' and '.' (found %q)", name, r)
			break
		}
	}
	if first := []rune(name)[0]; !isLetter(first) && !isDigit(first) {
		add("model name %q must start with a letter or digit", name)
	}
	return out
}

// LeafDomainLabel checks the label of an automatic certificate's name
// (<label><6 random>.<zone>): a DNS label once the 6 characters are added,
// so 1–57 lowercase letters, digits and '-', starting with a letter.
func LeafDomainLabel(label string) []api.ErrorDetail {
	bad := len(label) > 57 || label == "" || !(label[0] >= 'a' && label[0] <= 'z')
	for _, r := range label {
		if !(r >= 'a' && r <= 'z' || isDigit(r) || r == '-') {
			bad = true
		}
	}
	if !bad {
		return nil
	}
	return []api.ErrorDetail{{Code: "InvalidLeafDomainLabel", Target: "ssl.leafDomainLabel", Message: fmt.Sprintf(
		"--ssl-leaf-domain-label %q must be 1 to 57 lowercase letters, digits and '-', starting with a letter (Berth appends 6 random characters and the zone)", label)}}
}

// RandomSuffix is 6 lowercase letters and digits, as the reference adds to
// a leaf domain label (and Berth to a front end's DNS label).
func RandomSuffix() string {
	const chars = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, 6)
	rand.Read(b)
	for i := range b {
		b[i] = chars[int(b[i])%len(chars)]
	}
	return string(b)
}
