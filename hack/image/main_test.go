package main

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
)

// Command-line mistakes are usage errors (exit code 2), refused before
// anything is compiled or pushed.
func TestUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "no command given"},
		{[]string{"frobnicate"}, `unknown command "frobnicate"`},
		{[]string{"build", "--platform", "linux/sparc99", "--out", "x.tar"}, `unsupported platform "linux/sparc99": supported platforms are linux/amd64, linux/arm64`},
		{[]string{"build", "--platform", "windows/amd64", "--out", "x.tar"}, `unsupported platform "windows/amd64"`},
		{[]string{"build", "--platform", "foo", "--out", "x.tar"}, `unsupported platform "foo"`},
		{[]string{"build"}, "--out FILE.tar (or --oci-layout DIR) is required"},
		{[]string{"build", "--out", "x.tar", "--tag", "Berth:1"}, `invalid image tag "Berth:1"`},
		{[]string{"build", "--out", "x.tar", "extra"}, `unexpected argument "extra"`},
		{[]string{"push"}, "--tag REGISTRY/REPO:TAG is required"},
		{[]string{"push", "--tag", "berth:1"}, `invalid push tag "berth:1"`},
		{[]string{"push", "--tag", "ghcr.io/Berth/berth:1"}, `invalid push tag "ghcr.io/Berth/berth:1"`},
		{[]string{"push", "--tag", "ghcr.io/berth-ml/berth:1", "--platform", "linux/sparc99"}, `unsupported platform "linux/sparc99"`},
	} {
		var stdout, stderr bytes.Buffer
		err := run(context.Background(), tc.args, &stdout, &stderr)
		var ue usageError
		if !errors.As(err, &ue) {
			t.Errorf("%q: %v, want a usage error", tc.args, err)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want %q", tc.args, err, tc.want)
		}
	}
}
