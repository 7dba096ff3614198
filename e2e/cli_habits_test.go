package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-ml/berth/api"
)

// TestCLIHabits runs each habit of issue 16 through the real binary, with
// a server, a local compute "demo" and the iris service deployed on it,
// and checks its exit code and the first line of what it printed.
func TestCLIHabits(t *testing.T) {
	p, env, _, _ := cliEnv(t)
	env = append(env, "BERTH_WORKSPACE=team")
	mustRun := func(args ...string) result {
		t.Helper()
		r := berth(t, env, args...)
		if r.code != 0 {
			t.Fatalf("berth %q: exit %d\n%s%s", args, r.code, r.stdout, r.stderr)
		}
		return r
	}
	mustRun("workspace", "create", "team")
	mustRun("compute", "create", "local", "demo")
	mustRun("model", "register", "-n", "iris", "--path", filepath.Join("..", "models", "iris"))
	mustRun("service", "deploy", "iris", "--compute", "demo", "--model", "iris", "--replicas", "1",
		"--command", berthBin, "--command", "model-server", "--command", "--model-dir", "--command", "$BERTH_MODEL_DIR",
		"--command", "--listen", "--command", "127.0.0.1:$PORT")
	var keys api.ServiceKeys
	json.Unmarshal([]byte(mustRun("service", "keys", "iris", "-o", "json").stdout), &keys)
	owner := ownerToken(t, p.dataDir)
	noContexts := filepath.Join(t.TempDir(), "kubeconfig")
	os.WriteFile(noContexts, []byte("apiVersion: v1\nkind: Config\nclusters: []\n"), 0o600)
	sample := `{"data":[[5.1,3.5,1.4,0.2]]}`

	for _, tc := range []struct {
		args []string
		env  []string // beside the server's, BERTH_WORKSPACE=team
		code int
		// first is the start of the first line of stdout (of stderr when
		// the command fails or stderr is set); has are in the whole output.
		first  string
		stderr bool
		has    []string
		hasNot []string
	}{
		// Exit codes: 2 for usage errors, with suggestions.
		{args: []string{"service", "lst"}, code: 2, first: `Error: unknown command "lst" for "berth service"`, has: []string{"Did you mean this?\n\tlist"}},
		{args: []string{"model", "regster"}, code: 2, first: `Error: unknown command "regster" for "berth model"`, has: []string{"Did you mean this?\n\tregister"}},
		{args: []string{"config", "view"}, code: 2, first: `Error: unknown command "view" for "berth config"`, has: []string{"Did you mean this?\n\tget-contexts"}},
		{args: []string{"servce", "list"}, code: 2, first: `Error: unknown command "servce" for "berth"`, has: []string{"\tservice"}},
		{args: []string{"service", "show", "--nmae", "iris"}, code: 2, first: "Error: unknown flag: --nmae", has: []string{"Did you mean this?\n\t--name"}},
		{args: []string{"operation", "show"}, code: 2, first: "Error: accepts 1 arg(s), received 0"},
		{args: []string{"token", "revoke"}, code: 2, first: "Error: accepts 1 arg(s), received 0"},
		{args: []string{"service", "show"}, code: 2, first: "Error: the service name is required"},
		{args: []string{"model", "delete", "iris"}, code: 2, first: `Error: required flag(s) "version" not set`},
		{args: []string{"service"}, code: 0, first: "Deploy models as authenticated, autoscaled scoring services"},
		// Help: examples, required flags, renamed flags.
		{args: []string{"service", "score", "--help"}, code: 0, first: "Send JSON to the service's scoring URI", has: []string{"Examples:\n  berth service score iris"}},
		{args: []string{"model", "delete", "--help"}, code: 0, first: "Delete a model version", has: []string{"the version to delete (required)", "(required; or give it as the argument)"}, hasNot: []string{"default: the latest"}},
		{args: []string{"workspace", "create", "--help"}, code: 0, first: "Create a workspace", hasNot: []string{"show defaults"}},
		{args: []string{"quickstart", "--help"}, code: 0, first: "Run Berth's main job", has: []string{`"laptop"`, `"quickstart"`}},
		{args: []string{"compute", "attach", "kubernetes", "-n", "x", "--kubeconfig", noContexts, "--context", "dev"}, code: 2,
			first: "Flag --context has been deprecated, use --kube-context", has: []string{"has no contexts"}, hasNot: []string{"current-context must exist"}},
		{args: []string{"frontend", "--config", "berth-fe-config", "--static", filepath.Join(t.TempDir(), "none.json")}, code: 1,
			first: "Flag --config has been deprecated, use --routes"},
		// Defaults.
		{args: []string{"workspace", "update", "--dns-zone", "ml.example.com"}, code: 0, first: "Updated the settings of workspace team"},
		{args: []string{"token", "create", "--role", "reader"}, code: 0, stderr: true, first: "Scope: workspace team (from BERTH_WORKSPACE"},
		{args: []string{"token", "create", "--role", "reader", "--all-workspaces"}, code: 0, stderr: true, first: "Scope: every workspace"},
		// New verbs.
		{args: []string{"service", "score", "iris", "--data", sample}, code: 0, first: `{"predictions":["setosa"]`},
		{args: []string{"service", "score", "iris", "--data", "not json"}, code: 2, first: "Error: the request is not JSON"},
		{args: []string{"service", "wait", "iris"}, code: 0, first: "Name  Compute  State", has: []string{"Healthy"}},
		{args: []string{"operation", "list"}, code: 0, first: "Id ", has: []string{"deploy", "create"}},
		{args: []string{"operation", "list", "--state", "Running"}, code: 0, first: ""},
		{args: []string{"operation", "list", "--state", "Succeeded", "-o", "tsv", "--query", "[].kind"}, code: 0, first: "deploy"},
		{args: []string{"operation", "list", "--state", "Sleeping"}, code: 1, first: `Error: state "Sleeping" is not one of`},
		{args: []string{"service", "show", "iris", "-o", "none"}, code: 0, first: ""},
		{args: []string{"--verbose", "service", "update", "iris", "--env", "NOTE=v2"}, code: 0, stderr: true, first: "Operation ", has: []string{": update of service iris", "+", "Succeeded; waited"}},
		{args: []string{"--debug", "service", "keys", "iris"}, code: 0, stderr: true, first: "> GET " + p.url() + "/api/v1/workspaces/team/services/iris/keys",
			has: []string{"Authorization: Bearer [redacted]", `{"primaryKey":"[redacted]","secondaryKey":"[redacted]"}`}},
		{args: []string{"--debug", "service", "score", "iris", "--data", sample}, code: 0, stderr: true, first: "> GET ", has: []string{"> POST https://"}},
		// Positional names beside -n.
		{args: []string{"service", "show", "iris"}, code: 0, first: "Name  Compute  State", has: []string{"iris"}},
		{args: []string{"compute", "show", "demo"}, code: 0, first: "Name  Type   Purpose", has: []string{"Loopback"}, hasNot: []string{"PublicIp"}},
		{args: []string{"service", "show", "iris", "-n", "iris"}, code: 0, first: "Name  Compute  State"},
		{args: []string{"service", "show", "iris", "-n", "other"}, code: 2, first: `Error: two names given: "iris" as the argument and "other" with -n`},
		// Completion of names from the server.
		{args: []string{"__complete", "service", "show", ""}, code: 0, first: "iris"},
		{args: []string{"__complete", "compute", "show", ""}, code: 0, first: "demo"},
		{args: []string{"__complete", "model", "download", "-n", ""}, code: 0, first: "iris"},
		{args: []string{"__complete", "workspace", "show", ""}, code: 0, first: "team"},
		{args: []string{"__complete", "service", "deploy", "-n", "x", "--compute", ""}, code: 0, first: "demo"},
		// Errors that say the next step.
		{args: []string{"workspace", "list"}, env: []string{"BERTH_SERVER=http://" + freeAddr(t)}, code: 1, first: "Error: cannot reach the Berth server at http://",
			has: []string{"start one with `berth server`, or set BERTH_SERVER / --server"}},
		{args: []string{"workspace", "list"}, env: []string{"BERTH_DATA_DIR=" + t.TempDir()}, code: 1, first: "Error: this call needs a bearer token",
			has: []string{"--data-dir", "BERTH_DATA_DIR", "BERTH_TOKEN"}},
	} {
		r := berth(t, append(append([]string{}, env...), tc.env...), tc.args...)
		out := r.stdout
		if tc.code != 0 || tc.stderr {
			out = r.stderr
		}
		first, _, _ := strings.Cut(out, "\n")
		all := r.stdout + r.stderr
		if r.code != tc.code || !strings.HasPrefix(first, tc.first) || tc.first == "" && first != "" {
			t.Errorf("berth %q: exit %d, first line %q; want exit %d, first line %q\nstdout:\n%s\nstderr:\n%s", tc.args, r.code, first, tc.code, tc.first, r.stdout, r.stderr)
			continue
		}
		for _, s := range tc.has {
			if !strings.Contains(all, s) {
				t.Errorf("berth %q: output lacks %q:\n%s", tc.args, s, all)
			}
		}
		for _, s := range tc.hasNot {
			if strings.Contains(all, s) {
				t.Errorf("berth %q: output has %q:\n%s", tc.args, s, all)
			}
		}
		// --debug shows requests, never the token or the keys.
		for _, secret := range []string{keys.PrimaryKey, keys.SecondaryKey, owner} {
			if tc.args[0] == "--debug" && (secret == "" || strings.Contains(r.stderr, secret)) {
				t.Errorf("berth %q: stderr has a secret (or the test has none):\n%s", tc.args, r.stderr)
			}
		}
	}
}

// TestQuickstartAgainstARunningServer: quickstart uses its own workspace on
// a server that already has work, says where it deploys and what it waits
// for, and leaves the other workspace as it was.
func TestQuickstartAgainstARunningServer(t *testing.T) {
	_, env, c, _ := cliEnv(t)
	env = append(env, "BERTH_WORKSPACE=team")
	if r := berth(t, env, "workspace", "create", "team"); r.code != 0 {
		t.Fatal(r)
	}
	if r := berth(t, env, "compute", "create", "local", "laptop"); r.code != 0 {
		t.Fatal(r)
	}
	r := berth(t, env, "quickstart")
	first, _, _ := strings.Cut(r.stderr, "\n")
	if r.code != 0 || !strings.HasPrefix(first, "Looking for a Berth server at http://") {
		t.Fatalf("quickstart: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	for _, want := range []string{"Using the Berth server at", `Deploying to workspace "quickstart", local compute "laptop" (this machine), service "iris"`,
		`Waiting for the local compute "laptop" to start (operation `, `Waiting for service "iris" to deploy iris:1 (operation `} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("quickstart's stderr lacks %q:\n%s", want, r.stderr)
		}
	}
	if !strings.Contains(r.stdout, `Prediction: {"predictions":["setosa","virginica"]`) {
		t.Errorf("quickstart's stdout:\n%s", r.stdout)
	}
	svs, err := c.ListServices(t.Context(), "team")
	if err != nil || len(svs) != 0 {
		t.Errorf("quickstart deployed into the context's workspace: %v %v", svs, err)
	}
	// Again: everything is there; it scores the same version.
	if r := berth(t, env, "quickstart"); r.code != 0 || strings.Contains(r.stderr, "Registered") || strings.Contains(r.stderr, "Waiting for service") {
		t.Errorf("second quickstart: exit %d\n%s", r.code, r.stderr)
	}
}
