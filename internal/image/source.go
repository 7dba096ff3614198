package image

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/berth-ml/berth/internal/version"
)

// Source is what an image is built from: the version and commit stamped
// into the binary and the labels, and the one timestamp every file, the
// config and the history carry (so the same commit gives the same digest).
type Source struct {
	Version string
	Commit  string // full sha; "" outside a git checkout
	Dirty   bool
	Time    time.Time
}

// ReadSource describes the checkout at dir with git: the version is the
// tag on HEAD (`git describe --tags --exact-match --match 'v*'`, without
// its "v") or else version.FromCommit(HEAD, dirty), exactly what a plain
// `go build` of berth reports; the time is the commit's (`git log -1
// --format=%ct`), overridden by SOURCE_DATE_EPOCH when that is set.
// Outside a git checkout it gives version "dev" and time 0.
func ReadSource(ctx context.Context, dir string) (Source, error) {
	var s Source
	commit, err := git(ctx, dir, "rev-parse", "HEAD")
	if err != nil {
		s.Version = version.FromCommit("", false)
		s.Time = time.Unix(0, 0).UTC()
	} else {
		s.Commit = commit
		status, err := git(ctx, dir, "status", "--porcelain")
		if err != nil {
			return Source{}, err
		}
		s.Dirty = status != ""
		if tag, err := git(ctx, dir, "describe", "--tags", "--exact-match", "--match", "v*"); err == nil && tag != "" {
			s.Version = strings.TrimPrefix(tag, "v")
		} else {
			s.Version = version.FromCommit(commit, s.Dirty)
		}
		ct, err := git(ctx, dir, "log", "-1", "--format=%ct")
		if err != nil {
			return Source{}, err
		}
		sec, err := strconv.ParseInt(ct, 10, 64)
		if err != nil {
			return Source{}, fmt.Errorf("git log -1 --format=%%ct: %q is not a time", ct)
		}
		s.Time = time.Unix(sec, 0).UTC()
	}
	if e := os.Getenv("SOURCE_DATE_EPOCH"); e != "" {
		sec, err := strconv.ParseInt(e, 10, 64)
		if err != nil {
			return Source{}, fmt.Errorf("SOURCE_DATE_EPOCH=%q is not a number of seconds", e)
		}
		s.Time = time.Unix(sec, 0).UTC()
	}
	return s, nil
}

func git(ctx context.Context, dir string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = dir
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("git %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
	}
	return strings.TrimSpace(out.String()), nil
}
