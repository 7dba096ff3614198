//go:build unix

package local

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-ml/berth/api"
	"github.com/berth-ml/berth/internal/store"
)

// A replica sees the contract's variables and its service's --env, and
// nothing of the server's environment, not even through $VAR in its
// command words.
func TestReplicasGetACleanEnvironment(t *testing.T) {
	t.Setenv("BERTH_SECRET_KEY", "server-secret")
	t.Setenv("SERVER_ONLY", "server-value")
	dir := t.TempDir()
	out := filepath.Join(dir, "env.txt")
	rt := &Runtime{DataDir: dir, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	sv := &store.Service{Service: api.Service{ID: "svc-1", Name: "envy", ServiceSpec: api.ServiceSpec{
		Env:     map[string]string{"OUT": out, "GREETING": "hello"},
		Command: []string{"/bin/sh", "-c", "env > $OUT; echo \"words: [$BERTH_SECRET_KEY] [$SERVER_ONLY] [$GREETING]\" >> $OUT; true; echo \"shell-own: $?\" >> $OUT; sleep 30"},
	}}}
	rep, err := rt.startReplica(sv, "ws-1", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { rep.halt(); <-rep.done }()
	var got string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if b, _ := os.ReadFile(out); strings.Contains(string(b), "shell-own:") {
			got = string(b)
			break
		}
	}
	for _, want := range []string{"PORT=", "BERTH_SERVICE=envy", "GREETING=hello", "PATH=" + ReplicaPath, "words: [] [] [hello]", "shell-own: 0"} {
		if !strings.Contains(got, want) {
			t.Errorf("the replica's environment lacks %q:\n%s", want, got)
		}
	}
	for _, leak := range []string{"server-secret", "server-value", "HOME="} {
		if strings.Contains(got, leak) {
			t.Errorf("the replica sees the server's %q:\n%s", leak, got)
		}
	}
}
