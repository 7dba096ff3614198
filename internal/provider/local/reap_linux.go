package local

import (
	"bytes"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// reap kills every process whose environment carries the runtime's marker
// (replicas and all they started, even those that left the group), and
// the groups recorded, when a process in them still carries it: a
// recorded number alone may have been reused by something else.
func reap(marker string, groups []int) int {
	want := []byte(RuntimeEnv + "=" + marker + "\x00")
	self := os.Getpid()
	recorded := map[int]bool{}
	for _, g := range groups {
		recorded[g] = true
	}
	entries, _ := os.ReadDir("/proc")
	n := 0
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		env, err := os.ReadFile("/proc/" + e.Name() + "/environ")
		if err != nil || !bytes.Contains(append(env, 0), want) {
			continue
		}
		if pgid, err := syscall.Getpgid(pid); err == nil && recorded[pgid] && pgid != self {
			syscall.Kill(-pgid, syscall.SIGKILL)
		}
		if syscall.Kill(pid, syscall.SIGKILL) == nil {
			n++
		}
	}
	return n
}

// MarkedProcesses lists the live processes of the local runtime of a data
// directory, replicas and whatever they started (bench/chaos counts the
// orphans a killed server left with it).
func MarkedProcesses(dataDir string) []int {
	return processesMarked((&Runtime{DataDir: dataDir}).marker())
}

// processesMarked lists the live processes carrying a runtime's marker.
func processesMarked(marker string) []int {
	want := RuntimeEnv + "=" + marker
	var out []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		env, err := os.ReadFile("/proc/" + e.Name() + "/environ")
		if err != nil {
			continue
		}
		for _, kv := range strings.Split(string(env), "\x00") {
			if kv == want {
				if stat, err := os.ReadFile("/proc/" + e.Name() + "/stat"); err == nil && !isZombie(stat) {
					out = append(out, pid)
				}
				break
			}
		}
	}
	return out
}

// isZombie reads a /proc/PID/stat line's state.
func isZombie(stat []byte) bool {
	i := bytes.LastIndexByte(stat, ')')
	return i >= 0 && i+2 < len(stat) && stat[i+2] == 'Z'
}
