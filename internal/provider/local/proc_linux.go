package local

import (
	"os/exec"
	"syscall"
)

// ownGroup starts cmd in a process group of its own (stopGroup signals the
// replica and whatever it started), killed if this process dies.
func ownGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
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
