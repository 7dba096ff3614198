// Package version says which Berth this binary is: its version, the commit
// it was built from and the Go that built it. Release and image builds set
// Version and Commit with -ldflags; a plain `go build` in a git checkout
// derives them from the VCS stamp Go embeds, so that a server and the image
// built from the same commit agree on the image tag.
package version

import (
	"cmp"
	"runtime"
	"runtime/debug"
	"strings"
)

// Set at link time: -X github.com/berth-ml/berth/internal/version.Version=0.3.0
// -X github.com/berth-ml/berth/internal/version.Commit=<full sha>.
var (
	Version string
	Commit  string
)

// Info describes a build.
type Info struct {
	Version   string `json:"version"`
	Commit    string `json:"commit,omitempty"`
	GoVersion string `json:"goVersion"`
	Platform  string `json:"platform"`
}

// Get is this binary's build.
func Get() Info {
	v, c := Version, Commit
	if v == "" || c == "" {
		rev, dirty := vcs()
		c, v = cmp.Or(c, rev), cmp.Or(v, FromCommit(rev, dirty))
	}
	return Info{Version: v, Commit: c, GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
}

// FromCommit is the version of an untagged build: "dev-" and the commit's
// first 12 hex digits, "-dirty" when the tree had changes ("dev" without a
// commit). It is a valid image tag, which hack/image uses for the same commit.
func FromCommit(rev string, dirty bool) string {
	if rev == "" {
		return "dev"
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	v := "dev-" + rev
	if dirty {
		v += "-dirty"
	}
	return v
}

func vcs() (rev string, dirty bool) {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "", false
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	return strings.TrimSpace(rev), dirty
}
