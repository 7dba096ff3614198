package local

// Replicas that outlive their server. A replica runs in a process group of
// its own, and on Linux dies with the server (parent-death signal), but
// what it started (a shell's children, a worker pool) does not. So the
// runtime records every group it starts (DATA_DIR/local/groups/<pgid>)
// and marks every replica's environment with BERTH_LOCAL_RUNTIME, which
// children inherit; as it starts, it ends whatever a previous run of the
// same data directory left (reap_*.go).

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// RuntimeEnv marks the processes of one data directory's local runtime.
const RuntimeEnv = "BERTH_LOCAL_RUNTIME"

// marker is this runtime's RuntimeEnv value: its data directory's digest.
func (rt *Runtime) marker() string {
	sum := sha256.Sum256([]byte(rt.dataDirAbs()))
	return hex.EncodeToString(sum[:8])
}

func (rt *Runtime) dataDirAbs() string {
	dir, err := filepath.Abs(rt.DataDir)
	if err != nil {
		return rt.DataDir
	}
	return dir
}

func (rt *Runtime) groupsDir() string { return filepath.Join(rt.DataDir, "local", "groups") }

// recordGroup notes a replica's process group until forgetGroup.
func (rt *Runtime) recordGroup(pgid int) {
	if os.MkdirAll(rt.groupsDir(), 0o700) == nil {
		os.WriteFile(filepath.Join(rt.groupsDir(), strconv.Itoa(pgid)), nil, 0o600)
	}
}

func (rt *Runtime) forgetGroup(pgid int) {
	os.Remove(filepath.Join(rt.groupsDir(), strconv.Itoa(pgid)))
}

// recordedGroups are the groups a previous run left recorded.
func (rt *Runtime) recordedGroups() []int {
	entries, _ := os.ReadDir(rt.groupsDir())
	var out []int
	for _, e := range entries {
		if n, err := strconv.Atoi(e.Name()); err == nil && n > 1 {
			out = append(out, n)
		}
	}
	return out
}

// reapOrphans ends what a previous run of this data directory left
// running, and forgets its records. It returns how many processes it
// ended.
func (rt *Runtime) reapOrphans() int {
	n := reap(rt.marker(), rt.recordedGroups())
	os.RemoveAll(rt.groupsDir())
	return n
}

// checkSandbox runs the launcher once on an empty folder, so a machine
// where it cannot work (no namespaces for this user) is known before a
// replica depends on it.
func (rt *Runtime) checkSandbox() error {
	if rt.Launcher == nil {
		if SandboxAvailable {
			return errors.New("no launcher")
		}
		return errors.New("this OS has no mount namespaces (Linux only)")
	}
	dir, err := os.MkdirTemp("", "berth-sandbox-check")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	cmd := exec.Command(rt.Launcher[0], "--version")
	cmd.Env = []string{}
	sandbox(cmd, rt.Launcher, dir, nil)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%v: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}
