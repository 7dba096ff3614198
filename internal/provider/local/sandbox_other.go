//go:build !linux

package local

import (
	"errors"
	"os/exec"
)

// SandboxAvailable tells whether replicas can be kept out of the data
// directory on this OS: only Linux has the namespaces it takes. Elsewhere
// replicas run as the server's user and could read the data directory;
// run the server as a user of its own and let only trusted owners run
// commands on the local compute (docs/local.md).
const SandboxAvailable = false

func sandbox(*exec.Cmd, []string, string, []string) {}

// ReplicaExec is Linux's only.
func ReplicaExec([]string) (int, error) {
	return 0, errors.New("replica-exec: replicas are sandboxed on Linux only")
}
