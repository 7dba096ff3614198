package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-ml/berth/api"
	"github.com/berth-ml/berth/internal/provider/local"
)

// newLocalEnv starts a server with workspace team, local compute laptop
// and the iris model, and returns it with the CLI's environment.
func newLocalEnv(t *testing.T) (*serverProc, []string) {
	t.Helper()
	p, env := teamEnv(t)
	for _, args := range [][]string{{"compute", "create", "local", "-n", "laptop"},
		{"model", "register", "-n", "iris", "--path", filepath.Join("..", "models", "iris")}} {
		if r := berth(t, env, args...); r.code != 0 {
			t.Fatalf("%v: %+v", args, r)
		}
	}
	return p, env
}

// commandFlags are --command flags, word by word.
func commandFlags(words ...string) []string {
	var out []string
	for _, w := range words {
		out = append(out, "--command", w)
	}
	return out
}

// modelServer is the command of a replica serving its model.
var modelServer = []string{"model-server", "--model-dir", "$BERTH_MODEL_DIR", "--listen", "127.0.0.1:$PORT"}

// replicaProc is a live process of a local service's replicas.
type replicaProc struct {
	pid     int
	cmdline string
}

// replicaProcs lists the live processes of a data directory's local
// runtime whose environment names the service (BERTH_SERVICE), what they
// started included.
func replicaProcs(dataDir, service string) []replicaProc {
	var out []replicaProc
	for _, pid := range local.MarkedProcesses(dataDir) {
		env, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
		if err != nil || !strings.Contains("\x00"+string(env), "\x00BERTH_SERVICE="+service+"\x00") {
			continue
		}
		cmd, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
		out = append(out, replicaProc{pid: pid, cmdline: strings.ReplaceAll(string(cmd), "\x00", " ")})
	}
	return out
}

// eventually polls cond every 100ms until it holds, or fails the test
// after timeout.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(timeout); !cond(); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, timeout)
		}
	}
}

// startBerth starts a CLI command that runs until it is stopped (logs -f)
// and watches what it prints; it is killed when the test ends.
func startBerth(t *testing.T, env []string, args ...string) (waitFor func(want string, timeout time.Duration) string, ended <-chan struct{}) {
	t.Helper()
	cmd := exec.Command(berthBin, args...)
	cmd.Env = append(cleanEnv(t), env...)
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return watch(t, stdout)
}

// modelServerGivesUp is the last line the model server prints as it
// exits for want of a model (--model-dir /no/such/model).
func modelServerGivesUp(t *testing.T) string {
	t.Helper()
	out, _ := exec.Command(berthBin, "model-server", "--model-dir", "/no/such/model", "--listen", "127.0.0.1:0").CombinedOutput()
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	last := lines[len(lines)-1]
	if !strings.Contains(last, "metadata") {
		t.Fatalf("the model server's output: %s", out)
	}
	return last
}

func showService(t *testing.T, env []string, name string) api.Service {
	t.Helper()
	r := berth(t, env, "service", "show", "-n", name, "-o", "json")
	var sv api.Service
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &sv) != nil {
		t.Fatalf("service show %s: %+v", name, r)
	}
	return sv
}

// TestLocalCrashLoopFailsTheDeploy: a model server that exits at once
// fails its deploy within 15 s with ReplicaCrashLoop and the server's last
// line; each exit is an event with its exit code, and `service show`
// carries the error.
func TestLocalCrashLoopFailsTheDeploy(t *testing.T) {
	_, env := newLocalEnv(t)
	last := modelServerGivesUp(t)
	start := time.Now()
	r := berth(t, env, append([]string{"service", "deploy", "-n", "crash", "--compute", "laptop", "--model", "iris"},
		commandFlags(berthBin, "model-server", "--model-dir", "/no/such/model", "--listen", "127.0.0.1:$PORT")...)...)
	took := time.Since(start)
	if r.code != 1 || !strings.Contains(r.stderr, "(ReplicaCrashLoop)") || !strings.Contains(r.stderr, "replica crash-g1-0 of crash exited 3 times in a row (last: exit code 1)") ||
		!strings.Contains(r.stderr, last) {
		t.Fatalf("deploy of a crashing model server: %+v", r)
	}
	t.Logf("the deploy failed after %s", took.Round(time.Millisecond))
	if took > 15*time.Second {
		t.Errorf("the deploy failed after %s, want within 15s", took)
	}
	if n := strings.Count(r.stderr, "Replica crash-g1-0 exited (exit code 1); its last lines:\n"+last); n != 3 {
		t.Errorf("%d exit events, want 3:\n%s", n, r.stderr)
	}
	sv := showService(t, env, "crash")
	if sv.State != api.ServiceFailed || len(sv.Errors) != 1 || sv.Errors[0].Code != api.CodeReplicaCrashLoop || !strings.Contains(sv.Errors[0].Message, last) {
		t.Fatalf("service show after the crash loop: %+v", sv)
	}
}

// TestLocalCancelThenDeleteLeavesNoProcess: `operation cancel` says the
// cancel was requested and waits for the operation to stop; a delete
// right after it then leaves no process of the service, and no folder.
func TestLocalCancelThenDeleteLeavesNoProcess(t *testing.T) {
	p, env := newLocalEnv(t)
	r := berth(t, env, append([]string{"service", "deploy", "-n", "slow", "--compute", "laptop", "--model", "iris", "--no-wait", "-o", "json"},
		commandFlags("/bin/sleep", "600")...)...)
	var op api.Operation
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &op) != nil {
		t.Fatalf("deploy: %+v", r)
	}
	eventually(t, 20*time.Second, "the replica's process", func() bool { return len(replicaProcs(p.dataDir, "slow")) > 0 })
	sv := showService(t, env, "slow")
	if _, err := os.Stat(filepath.Join(p.dataDir, "services", sv.ID)); err != nil {
		t.Fatalf("the service's folder: %v", err)
	}
	r = berth(t, env, "operation", "cancel", op.ID)
	if r.code != 0 || !strings.Contains(r.stderr, "Cancellation of operation "+op.ID+" (deploy of slow) requested") || !strings.Contains(r.stdout, "Canceled") {
		t.Fatalf("operation cancel: %+v", r)
	}
	if r := berth(t, env, "service", "delete", "-n", "slow"); r.code != 0 {
		t.Fatalf("delete after cancel: %+v", r)
	}
	eventually(t, 15*time.Second, "no process of the deleted service", func() bool { return len(replicaProcs(p.dataDir, "slow")) == 0 })
	eventually(t, 5*time.Second, "no folder of the deleted service", func() bool {
		_, err := os.Stat(filepath.Join(p.dataDir, "services", sv.ID))
		return os.IsNotExist(err)
	})
}

// TestLocalReplicasReportedRight: an update to 2 replicas reports 2
// ready; an update that changes nothing says so and starts nothing; logs
// show the current generation (--previous the earlier ones) and follow
// what a replica prints (-f).
func TestLocalReplicasReportedRight(t *testing.T) {
	p, env := newLocalEnv(t)
	deploy := append([]string{"service", "deploy", "-n", "iris", "--compute", "laptop", "--model", "iris", "--replicas", "1", "-o", "json"},
		commandFlags(append([]string{berthBin}, modelServer...)...)...)
	if r := berth(t, env, deploy...); r.code != 0 {
		t.Fatalf("deploy: %+v", r)
	}
	if r := berth(t, env, "service", "update", "-n", "iris"); r.code != 2 || !strings.HasPrefix(r.stderr, "Error: nothing to update") {
		t.Fatalf("update without a change: %+v", r)
	}
	if r := berth(t, env, "service", "update", "-n", "iris", "--replicas", "1"); r.code != 1 ||
		!strings.Contains(r.stderr, "nothing to update: service iris already runs with these settings") || strings.Contains(r.stderr, "Started") {
		t.Fatalf("update to what it is: %+v", r)
	}
	r := berth(t, env, "service", "update", "-n", "iris", "--replicas", "2", "-o", "json")
	var sv api.Service
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &sv) != nil || sv.ReadyReplicas != 2 || sv.Generation != 2 {
		t.Fatalf("update to 2 replicas: %+v\n%+v", sv, r)
	}
	// Generation 1's replica stops; generation 2's two serve.
	eventually(t, 15*time.Second, "two model servers", func() bool {
		n := 0
		for _, pr := range replicaProcs(p.dataDir, "iris") {
			if strings.Contains(pr.cmdline, "model-server") && !strings.Contains(pr.cmdline, "replica-exec") {
				n++
			}
		}
		return n == 2
	})
	r = berth(t, env, "service", "logs", "-n", "iris")
	if r.code != 0 || !strings.Contains(r.stdout, "==> iris-g2-0 <==") || !strings.Contains(r.stdout, "==> iris-g2-1 <==") || strings.Contains(r.stdout, "iris-g1-") {
		t.Fatalf("logs of the current generation: %+v", r)
	}
	r = berth(t, env, "service", "logs", "-n", "iris", "--previous")
	if r.code != 0 || !strings.Contains(r.stdout, "==> iris-g1-0 <==\n") || !strings.Contains(r.stdout, "serving model iris") || strings.Contains(r.stdout, "iris-g2-") {
		t.Fatalf("logs of the previous generation: %+v", r)
	}

	// Follow: a replica killed says so in its log, and again as it serves.
	waitFor, ended := startBerth(t, env, "service", "logs", "-n", "iris", "--replica", "iris-g2-1", "--tail", "1", "-f")
	waitFor("==> iris-g2-1 <==\nserving model iris", 10*time.Second)
	killed := false
	for _, pr := range replicaProcs(p.dataDir, "iris") {
		if strings.Contains(pr.cmdline, "model-server") && !strings.Contains(pr.cmdline, "replica-exec") && isReplica(p.dataDir, sv.ID, "iris-g2-1", pr.pid) {
			killed = syscall.Kill(pr.pid, syscall.SIGKILL) == nil
		}
	}
	if !killed {
		t.Fatalf("no process of replica iris-g2-1 in %+v", replicaProcs(p.dataDir, "iris"))
	}
	waitFor("berth: replica exited (", 10*time.Second)
	eventually(t, 15*time.Second, "the restarted replica's line followed", func() bool {
		out := waitFor("", 0)
		return strings.Count(out[strings.Index(out, "berth: replica exited ("):], "serving model iris") == 1
	})
	select {
	case <-ended:
		t.Fatal("logs -f ended while the service runs")
	default:
	}

	if r := berth(t, env, "service", "delete", "-n", "iris"); r.code != 0 {
		t.Fatalf("delete: %+v", r)
	}
	select {
	case <-ended: // the followed service is gone
	case <-time.After(10 * time.Second):
		t.Fatal("logs -f goes on after the service was deleted")
	}
	eventually(t, 15*time.Second, "no process or folder of the deleted service", func() bool {
		_, err := os.Stat(filepath.Join(p.dataDir, "services", sv.ID))
		return len(replicaProcs(p.dataDir, "iris")) == 0 && os.IsNotExist(err)
	})
}

// isReplica tells whether a process serves on the port replica's log
// names (its "serving … on http://127.0.0.1:PORT" line).
func isReplica(dataDir, serviceID, replica string, pid int) bool {
	log, _ := os.ReadFile(filepath.Join(dataDir, "services", serviceID, replica+".log"))
	env, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
	for _, kv := range strings.Split(string(env), "\x00") {
		if port, ok := strings.CutPrefix(kv, "PORT="); ok {
			return strings.Contains(string(log), "http://127.0.0.1:"+port+"\n")
		}
	}
	return false
}

// TestLocalServerRemovesFoldersOfDeletedServices: a server that was
// killed before it removed a deleted service's folder removes it as it
// starts again; a live service keeps its own.
func TestLocalServerRemovesFoldersOfDeletedServices(t *testing.T) {
	p, env := newLocalEnv(t)
	deploy := append([]string{"service", "deploy", "-n", "iris", "--compute", "laptop", "--model", "iris", "--replicas", "1"},
		commandFlags(append([]string{berthBin}, modelServer...)...)...)
	if r := berth(t, env, deploy...); r.code != 0 {
		t.Fatalf("deploy: %+v", r)
	}
	live := filepath.Join(p.dataDir, "services", showService(t, env, "iris").ID)
	left := filepath.Join(p.dataDir, "services", "0b6f1d5e-0000-4000-8000-000000000000")
	os.MkdirAll(left, 0o700)
	os.WriteFile(filepath.Join(left, "gone-g1-0.log"), []byte("serving\n"), 0o600)
	p.kill()
	startServer(t, p.dataDir, p.addr, nil)
	eventually(t, 10*time.Second, "the deleted service's folder removed", func() bool {
		_, err := os.Stat(left)
		return os.IsNotExist(err)
	})
	if _, err := os.Stat(filepath.Join(live, "iris-g1-0.log")); err != nil {
		t.Fatalf("the live service's log: %v", err)
	}
}
