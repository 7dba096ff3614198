package local

import (
	"io"
	"log/slog"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// What a replica started survives its server's death (the parent-death
// signal reaches the replica only); the next start of a runtime on the
// same data directory ends it, and leaves other processes alone.
func TestOrphansOfAKilledServerAreReaped(t *testing.T) {
	dir := t.TempDir()
	rt := &Runtime{DataDir: dir, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	// A "replica" as supervise starts one: its own group, the marker,
	// recorded; it starts a grandchild, which also leaves the group.
	cmd := exec.Command("/bin/sh", "-c", "sleep 300 & setsid sleep 301 & wait")
	cmd.Env = []string{"PATH=" + ReplicaPath, RuntimeEnv + "=" + rt.marker()}
	ownGroup(cmd)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	rt.recordGroup(cmd.Process.Pid)
	// Someone else's process, not the runtime's.
	bystander := exec.Command("sleep", "302")
	bystander.Env = []string{RuntimeEnv + "=another-data-dir"}
	if err := bystander.Start(); err != nil {
		t.Fatal(err)
	}
	defer bystander.Process.Kill()
	waitFor(t, func() bool { return len(processesMarked(rt.marker())) == 3 })
	// The server dies: the replica with it, what it started stays.
	cmd.Process.Kill()
	cmd.Wait()
	waitFor(t, func() bool { return len(processesMarked(rt.marker())) == 2 })

	next := &Runtime{DataDir: dir, Log: rt.Log}
	if n := next.reapOrphans(); n != 2 {
		t.Errorf("reaped %d processes, want 2", n)
	}
	waitFor(t, func() bool { return len(processesMarked(rt.marker())) == 0 })
	if err := bystander.Process.Signal(syscall.Signal(0)); err != nil {
		t.Errorf("the bystander was ended: %v", err)
	}
	if entries, _ := os.ReadDir(next.groupsDir()); len(entries) != 0 {
		t.Errorf("group records left: %d", len(entries))
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatal("not so after 10s")
}
