package e2e

import (
	"context"
	"encoding/json"
	"github.com/berth-ml/berth/internal/provider"
	"github.com/berth-ml/berth/internal/testenv/testprovider"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-ml/berth/api"
	"github.com/berth-ml/berth/client"
)

// cliEnv starts a server and returns an environment pointing the CLI at it
// the way a local user has it: BERTH_SERVER and the data dir's admin.token.
func cliEnv(t *testing.T) (*serverProc, []string, *client.Client, string) {
	t.Helper()
	dir := t.TempDir()
	p := startServer(t, dir, freeAddr(t), nil)
	env := []string{"BERTH_SERVER=" + p.url(), "BERTH_DATA_DIR=" + dir}
	c, _ := client.New(p.url(), ownerToken(t, dir))
	effects := filepath.Join(t.TempDir(), "cloud")
	os.Mkdir(effects, 0o755)
	return p, env, c, effects
}

// teamEnv is cliEnv with workspace team created and made the CLI's default.
func teamEnv(t *testing.T) (*serverProc, []string) {
	t.Helper()
	p, env, _, _ := cliEnv(t)
	env = append(env, "BERTH_WORKSPACE=team")
	if r := berth(t, env, "workspace", "create", "-n", "team"); r.code != 0 {
		t.Fatalf("workspace create: %+v", r)
	}
	return p, env
}

func TestCLIWithoutTokenGets401(t *testing.T) {
	p, _, _, _ := cliEnv(t)
	// No token anywhere: the data dir the CLI looks in has no admin.token.
	r := berth(t, []string{"BERTH_SERVER=" + p.url(), "BERTH_DATA_DIR=" + t.TempDir()}, "workspace", "list")
	if r.code != 1 || !strings.Contains(r.stderr, "needs a bearer token") || !strings.Contains(r.stderr, "(Unauthorized)") {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	r = berth(t, []string{"BERTH_SERVER=" + p.url(), "BERTH_TOKEN=bth_wrong"}, "workspace", "list")
	if r.code != 1 || !strings.Contains(r.stderr, "not valid") {
		t.Fatalf("wrong token: exit %d, stderr %q", r.code, r.stderr)
	}
}

func TestCLIWorkspacesAndNames(t *testing.T) {
	_, env, _, _ := cliEnv(t)
	r := berth(t, env, "workspace", "create", "-n", "ml-team", "--region", "westus2", "-o", "json")
	var ws api.Workspace
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &ws) != nil || ws.Name != "ml-team" || ws.Region != "westus2" {
		t.Fatalf("create: %+v", r)
	}
	r = berth(t, env, "workspace", "create", "-n", "ML-TEAM")
	if r.code != 1 || !strings.Contains(r.stderr, `a workspace named "ML-TEAM" already exists`) {
		t.Fatalf("duplicate in another case: %+v", r)
	}
	r = berth(t, env, "workspace", "create", "-n", "_x!")
	for _, want := range []string{`may only contain letters, digits, '-' and '_' (found '!')`, "must start with a letter or digit", "must end with a letter or digit", "nothing was changed"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("bad name: stderr lacks %q:\n%s", want, r.stderr)
		}
	}
	if r.code != 1 {
		t.Errorf("bad name exit %d", r.code)
	}
	r = berth(t, env, "workspace", "list", "--query", "[].name", "-o", "tsv")
	if strings.TrimSpace(r.stdout) != "ml-team" {
		t.Fatalf("list --query: %+v", r)
	}
	// Usage errors exit 2.
	if r := berth(t, env, "workspace", "create"); r.code != 2 || !strings.Contains(r.stderr, "-n NAME") {
		t.Fatalf("missing name: %+v", r)
	}
	if r := berth(t, env, "workspace", "list", "--bogus"); r.code != 2 {
		t.Fatalf("unknown flag: %+v", r)
	}
	if r := berth(t, env, "workspace", "list", "-o", "xml"); r.code != 2 || !strings.Contains(r.stderr, "table, json, yaml, tsv") {
		t.Fatalf("bad output: %+v", r)
	}
	if r := berth(t, env, "compute", "list"); r.code != 2 || !strings.Contains(r.stderr, "no workspace") {
		t.Fatalf("no workspace: %+v", r)
	}
	if r := berth(t, env, "workspace", "delete", "-n", "ml-team"); r.code != 0 {
		t.Fatalf("delete: %+v", r)
	}
}

func TestCLIComputeWaitDetachAndOutput(t *testing.T) {
	_, env, c, effects := cliEnv(t)
	ctx := context.Background()
	c.CreateWorkspace(ctx, api.WorkspaceCreateRequest{Name: "team"})
	env = append(env, "BERTH_WORKSPACE=team")
	op, err := c.CreateCompute(ctx, "team", testCompute("demo-1", effects, 3, 300*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	// wait follows the events (plain lines when piped) and ends with the compute.
	r := berth(t, env, "compute", "wait", "-n", "demo-1")
	if r.code != 0 {
		t.Fatalf("wait: %+v", r)
	}
	for _, want := range []string{"Started attach of demo-1", "Created resource 3 of 3", "Succeeded: attach of demo-1"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("wait events lack %q:\n%s", want, r.stderr)
		}
	}
	if !strings.Contains(r.stdout, "demo-1") || !strings.Contains(r.stdout, "Succeeded") || !strings.Contains(r.stdout, "ProvisioningState") {
		t.Errorf("wait final table:\n%s", r.stdout)
	}
	_ = op

	// Output formats and --query behave as the az CLI's.
	r = berth(t, env, "compute", "show", "-n", "DEMO-1", "-o", "json")
	var comp map[string]any
	if json.Unmarshal([]byte(r.stdout), &comp) != nil || comp["provisioningState"] != "Succeeded" || comp["health"] != "Healthy" {
		t.Fatalf("show -o json: %+v", r)
	}
	// The type's settings are an object with typed fields, under settings.
	if set, ok := comp["settings"].(map[string]any); !ok || set["steps"] != 3.0 || set["stepDelay"] != "300ms" || set["effectsDir"] != effects {
		t.Errorf("show -o json settings: %v", comp["settings"])
	}
	if _, ok := comp["properties"]; ok {
		t.Errorf("show -o json still has properties: %v", comp["properties"])
	}
	r = berth(t, env, "compute", "show", "-n", "demo-1", "--query", "settings.steps", "-o", "tsv")
	if strings.TrimSpace(r.stdout) != "3" {
		t.Errorf("--query settings.steps: %+v", r)
	}
	r = berth(t, env, "compute", "list", "--query", "[?provisioningState=='Succeeded'].name", "-o", "tsv")
	if strings.TrimSpace(r.stdout) != "demo-1" {
		t.Fatalf("list --query: %+v", r)
	}
	r = berth(t, env, "compute", "list", "-o", "yaml")
	if !strings.Contains(r.stdout, "provisioningState: Succeeded") {
		t.Fatalf("yaml: %+v", r)
	}

	// A failed operation: events, the errors, exit 1.
	req := testCompute("broken-1", effects, 3, 0)
	provider.Edit(&req.Settings, func(s *testprovider.Settings) { s.FailAt = 2 })
	c.CreateCompute(ctx, "team", req)
	r = berth(t, env, "compute", "wait", "-n", "broken-1")
	if r.code != 1 || !strings.Contains(r.stderr, "check A failed") || !strings.Contains(r.stderr, "check B failed") || !strings.Contains(r.stdout, "Failed") {
		t.Fatalf("failed wait: %+v", r)
	}

	// --no-wait returns at once with the operation.
	r = berth(t, env, "compute", "detach", "-n", "demo-1", "--no-wait", "-o", "json")
	var detach api.Operation
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &detach) != nil || detach.Kind != "detach" || detach.ID == "" {
		t.Fatalf("detach --no-wait: %+v", r)
	}
	// A second operation while one runs: 409 naming it.
	r = berth(t, env, "compute", "detach", "-n", "demo-1")
	if r.code == 0 {
		// The detach may already be over; then the compute is gone.
		t.Logf("detach finished before the second call")
	} else if !strings.Contains(r.stderr, detach.ID) && !strings.Contains(r.stderr, "not found") {
		t.Fatalf("second detach: %+v", r)
	}
	r = berth(t, env, "compute", "wait", "-n", "demo-1")
	if r.code != 1 || !strings.Contains(r.stderr, "not found") {
		// Once detached the compute is gone; wait says so.
		t.Logf("wait after detach: %+v", r)
	}
	if r := berth(t, env, "compute", "show", "-n", "demo-1"); r.code != 1 || !strings.Contains(r.stderr, `compute "demo-1" not found`) {
		t.Fatalf("show detached: %+v", r)
	}
}

func TestCLICtrlCStopsWaitingNotTheOperation(t *testing.T) {
	_, env, c, effects := cliEnv(t)
	ctx := context.Background()
	c.CreateWorkspace(ctx, api.WorkspaceCreateRequest{Name: "team"})
	op, _ := c.CreateCompute(ctx, "team", testCompute("slow-1", effects, 4, time.Second))
	cmd := exec.Command(berthBin, "compute", "wait", "-n", "slow-1", "-w", "team")
	cmd.Env = append(cleanEnv(t), env...)
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor, done := watch(t, stderr)
	waitFor("Created resource 1", 20*time.Second)
	cmd.Process.Signal(syscall.SIGINT)
	msg := waitFor("Resume waiting with", 10*time.Second)
	<-done
	err := cmd.Wait()
	ee, _ := err.(*exec.ExitError)
	if ee == nil || ee.ExitCode() != 130 {
		t.Fatalf("exit: %v", err)
	}
	if !strings.Contains(msg, "Stopped waiting") || !strings.Contains(msg, "berth compute wait -n slow-1 -w team") {
		t.Fatalf("interrupt message: %q", msg)
	}
	// The operation went on.
	if final := waitFinal(t, c, op.ID); final.State != api.OpSucceeded {
		t.Fatalf("operation after Ctrl-C: %+v", final)
	}
}

func TestCLIContextsAndTokens(t *testing.T) {
	p, env, _, _ := cliEnv(t)
	cfg := filepath.Join(t.TempDir(), "config.yaml")
	// A reader token, saved in a context.
	r := berth(t, env, "token", "create", "--role", "reader", "-o", "json")
	var tc api.TokenCreated
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &tc) != nil || !strings.HasPrefix(tc.Secret, "bth_") {
		t.Fatalf("token create: %+v", r)
	}
	r = berth(t, []string{"BERTH_CONFIG=" + cfg}, "config", "set-context", "ro", "--server", p.url(), "--token", tc.Secret, "--default-workspace", "team")
	if r.code != 0 {
		t.Fatalf("set-context: %+v", r)
	}
	if st, _ := os.Stat(cfg); st == nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("config file mode: %v", st)
	}
	r = berth(t, []string{"BERTH_CONFIG=" + cfg}, "workspace", "list")
	if r.code != 0 {
		t.Fatalf("list with context: %+v", r)
	}
	r = berth(t, []string{"BERTH_CONFIG=" + cfg}, "workspace", "create", "-n", "nope")
	if r.code != 1 || !strings.Contains(r.stderr, "needs the contributor role") || !strings.Contains(r.stderr, "(Forbidden)") {
		t.Fatalf("reader create: %+v", r)
	}
	r = berth(t, env, "token", "list", "-o", "json")
	if strings.Contains(r.stdout, tc.Secret) || !strings.Contains(r.stdout, tc.ID) {
		t.Fatalf("token list shows secrets or misses the token: %s", r.stdout)
	}
	if r := berth(t, env, "token", "revoke", tc.ID); r.code != 0 {
		t.Fatalf("revoke: %+v", r)
	}
	time.Sleep(5100 * time.Millisecond) // the server caches token lookups for 5 s
	r = berth(t, []string{"BERTH_CONFIG=" + cfg}, "workspace", "list")
	if r.code != 1 || !strings.Contains(r.stderr, "not valid") {
		t.Fatalf("revoked token: %+v", r)
	}
	r = berth(t, env, "completion", "bash")
	if r.code != 0 || !strings.Contains(r.stdout, "__start_berth") {
		t.Fatalf("completion: exit %d", r.code)
	}
}

func TestCLIVersions(t *testing.T) {
	_, env, _, _ := cliEnv(t)
	r := berth(t, env, "versions")
	if r.code != 0 || !strings.Contains(r.stdout, "KubernetesVersion") || !strings.Contains(r.stdout, "1.37 (default)") || !strings.Contains(r.stdout, "Upgrades") {
		t.Fatalf("versions table: %+v", r)
	}
	r = berth(t, env, "versions", "-o", "tsv", "--query", "orchestrators[?default == `true`].orchestratorVersion")
	if strings.TrimSpace(r.stdout) != "1.37" {
		t.Fatalf("default query: %+v", r)
	}
	r = berth(t, env, "versions", "-l", "westus")
	if r.code != 1 || !strings.Contains(r.stderr, "needs a subscription") {
		t.Fatalf("versions -l: %+v", r)
	}
}

func TestCLIOperations(t *testing.T) {
	_, env, c, effects := cliEnv(t)
	ctx := context.Background()
	c.CreateWorkspace(ctx, api.WorkspaceCreateRequest{Name: "team"})
	op, _ := c.CreateCompute(ctx, "team", testCompute("long-1", effects, 20, 300*time.Millisecond))
	r := berth(t, env, "operation", "show", op.ID, "-o", "json")
	if r.code != 0 || !strings.Contains(r.stdout, op.ID) {
		t.Fatalf("show: %+v", r)
	}
	waitEvent(t, c, op.ID, "Created resource 1")
	if r := berth(t, env, "operation", "cancel", op.ID); r.code != 0 {
		t.Fatalf("cancel: %+v", r)
	}
	r = berth(t, env, "operation", "events", op.ID, "--follow")
	if r.code != 1 || !strings.Contains(r.stdout, "canceled at step") {
		t.Fatalf("events --follow of a canceled operation: %+v", r)
	}
	r = berth(t, env, "operation", "events", op.ID)
	if r.code != 0 || !strings.Contains(r.stdout, "Started attach of long-1") {
		t.Fatalf("events: %+v", r)
	}
}
