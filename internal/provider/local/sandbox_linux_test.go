package local

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestMain lets this test binary be the sandbox's launcher, as `berth
// replica-exec` is the server's.
func TestMain(m *testing.M) {
	if os.Getenv("BERTH_TEST_REPLICA_EXEC") == "1" {
		code, err := ReplicaExec(os.Args[1:])
		if err != nil {
			os.Stderr.WriteString(err.Error() + "\n")
			os.Exit(126)
		}
		os.Exit(code)
	}
	os.Exit(m.Run())
}

// A sandboxed replica sees its own model folder (read-only) and nothing
// else of the data directory, cannot take the hiding mount away, and
// cannot reach the server through /proc.
func TestSandboxHidesTheDataDirectory(t *testing.T) {
	for _, rootless := range []bool{false, true} {
		t.Run(map[bool]string{false: "root server", true: "rootless server"}[rootless], func(t *testing.T) { testSandbox(t, rootless) })
	}
}

func testSandbox(t *testing.T, rootless bool) {
	dataDir := t.TempDir()
	os.WriteFile(filepath.Join(dataDir, "secret.key"), []byte("THE-SECRET"), 0o600)
	models := filepath.Join(dataDir, "local-models", "m1")
	os.MkdirAll(models, 0o700)
	os.WriteFile(filepath.Join(models, "model.bin"), []byte("weights"), 0o600)
	script := `cat ` + dataDir + `/secret.key; echo "read-key=$?"
cat ` + models + `/model.bin; echo " read-model=$?"
echo x > ` + models + `/new 2>/dev/null; echo "write-model=$?"
umount ` + dataDir + ` 2>/dev/null; cat ` + dataDir + `/secret.key 2>/dev/null; echo "after-umount=$?"
cat /proc/` + strconv.Itoa(os.Getpid()) + `/root` + dataDir + `/secret.key 2>/dev/null; echo "via-proc=$?"
echo "processes=$(ls /proc | grep -c '^[0-9]')"`
	cmd := exec.Command("/bin/sh", "-c", script)
	cmd.Env = []string{"PATH=" + ReplicaPath, "BERTH_TEST_REPLICA_EXEC=1"}
	ownGroup(cmd)
	sandboxAs(cmd, []string{os.Args[0]}, dataDir, []string{models}, rootless)
	out, err := cmd.CombinedOutput()
	got := string(out)
	if err != nil {
		t.Fatalf("%v\n%s", err, got)
	}
	if strings.Contains(got, "THE-SECRET") {
		t.Errorf("the replica read the data directory:\n%s", got)
	}
	for _, want := range []string{"read-key=1", "weights read-model=0", "after-umount=1", "via-proc=1"} {
		if !strings.Contains(got, want) {
			t.Errorf("want %q in:\n%s", want, got)
		}
	}
	if strings.Contains(got, "write-model=0") {
		t.Errorf("the replica wrote into its model folder:\n%s", got)
	}
	// /proc is the namespace's: a handful of processes, not the machine's.
	_, n, _ := strings.Cut(got, "processes=")
	if k, err := strconv.Atoi(strings.TrimSpace(n)); err != nil || k > 20 {
		t.Errorf("the replica's /proc shows %q processes", strings.TrimSpace(n))
	}
	if b, _ := os.ReadFile(filepath.Join(dataDir, "secret.key")); string(b) != "THE-SECRET" {
		t.Error("the data directory changed outside the sandbox")
	}
}
