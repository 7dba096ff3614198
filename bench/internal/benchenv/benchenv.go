// Package benchenv holds what the benchmark programs under bench/ share.
package benchenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// BuildBerth builds ./cmd/berth into a new temporary folder (named after
// prefix) and returns the folder, the binary and a function that removes
// the folder. Run it from the repository's root, as the bench scripts do.
func BuildBerth(prefix string) (tmp, bin string, cleanup func(), err error) {
	tmp, err = os.MkdirTemp("", prefix)
	if err != nil {
		return "", "", nil, err
	}
	cleanup = func() { os.RemoveAll(tmp) }
	bin = filepath.Join(tmp, "berth")
	if out, err := exec.Command("go", "build", "-o", bin, "./cmd/berth").CombinedOutput(); err != nil {
		cleanup()
		return "", "", nil, fmt.Errorf("build berth: %v\n%s", err, out)
	}
	return tmp, bin, cleanup, nil
}
