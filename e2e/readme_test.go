package e2e

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// quickStart returns the commands of the README's Quick start block.
func quickStart(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	s := string(data)
	i := strings.Index(s, "## Quick start")
	if i < 0 {
		t.Fatal("README has no Quick start section")
	}
	s = s[i:]
	start := strings.Index(s, "```sh\n")
	end := strings.Index(s[start+6:], "```")
	if start < 0 || end < 0 {
		t.Fatal("Quick start has no sh block")
	}
	var cmds []string
	for _, line := range strings.Split(s[start+6:start+6+end], "\n") {
		if line = strings.TrimSpace(line); line != "" {
			cmds = append(cmds, line)
		}
	}
	return cmds
}

// TestReadmeQuickStart: the README's first command runs Berth on its
// embedded defaults, and CI runs exactly its second command.
func TestReadmeQuickStart(t *testing.T) {
	cmds := quickStart(t)
	if len(cmds) != 2 {
		t.Fatalf("Quick start has %d commands, want exactly 2: %q", len(cmds), cmds)
	}
	ci, err := os.ReadFile("../.ci/run")
	if err != nil {
		t.Fatal(err)
	}
	var ciCmds []string
	for _, line := range strings.Split(string(ci), "\n") {
		line = strings.TrimSpace(line)
		if line != "" && !strings.HasPrefix(line, "#") && !strings.HasPrefix(line, "set ") && !strings.HasPrefix(line, "cd ") {
			ciCmds = append(ciCmds, line)
		}
	}
	if len(ciCmds) != 1 || ciCmds[0] != cmds[1] {
		t.Fatalf(".ci/run runs %q, the README's test command is %q", ciCmds, cmds[1])
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	env := cleanEnv(t) // a private HOME: the default data dir is fresh
	run := func() string {
		cmd := exec.CommandContext(ctx, "sh", "-c", cmds[0])
		cmd.Dir = ".."
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", cmds[0], err, out)
		}
		return string(out)
	}
	out := run()
	for _, want := range []string{"Starting a local Berth control plane", `Created workspace "quickstart"`, `Created the local compute "laptop"`,
		"Registered model iris version 1", `Deployed service "iris"`, `Prediction: {"predictions":["setosa","virginica"]`, "curl --cacert"} {
		if !strings.Contains(out, want) {
			t.Errorf("first run lacks %q:\n%s", want, out)
		}
	}
	// Running it again finds the same data and scores again.
	if out := run(); strings.Contains(out, "Created workspace") || strings.Contains(out, "Deployed service") || !strings.Contains(out, `"predictions":["setosa","virginica"]`) {
		t.Errorf("second run:\n%s", out)
	}
}
