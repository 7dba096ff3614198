package local

import "os/exec"

// ownGroup: Windows has no process groups to signal; the replica is
// stopped on its own.
func ownGroup(cmd *exec.Cmd) {}

// stopGroup ends the replica. Windows has no SIGTERM, so both asking and
// making end it at once.
func stopGroup(cmd *exec.Cmd, kill bool) { cmd.Process.Kill() }
