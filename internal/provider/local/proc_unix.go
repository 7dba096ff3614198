//go:build unix && !linux

package local

import (
	"os/exec"
	"syscall"
)

// ownGroup starts cmd in a process group of its own (stopGroup signals the
// replica and whatever it started). Outside Linux there is no parent-death
// signal: replicas outlive a server that is killed outright.
func ownGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
}

// stopGroup asks the replica's process group to end (SIGTERM), or makes it
// (SIGKILL).
func stopGroup(cmd *exec.Cmd, kill bool) {
	sig := syscall.SIGTERM
	if kill {
		sig = syscall.SIGKILL
	}
	syscall.Kill(-cmd.Process.Pid, sig)
}
