// Package e2e drives the real berth binary as users and operators do:
// servers as processes that get killed, the CLI as a subprocess.
package e2e

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"github.com/berth-ml/berth/internal/testenv"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-ml/berth/client"
	"github.com/berth-ml/berth/internal/testenv/tests3"
)

// berthBin is the binary under test, built with the test compute type.
var berthBin string

// releaseBin is built as users get it, without test-only parts.
var releaseBin string

// goEnv keeps the go command's caches when tests give it a private HOME.
var goEnv []string

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		fmt.Println("e2e: every test drives built binaries against real components; none runs with -short")
		os.Exit(0)
	}
	dir, err := os.MkdirTemp("", "berth-e2e-bin")
	if err != nil {
		panic(err)
	}
	berthBin = filepath.Join(dir, "berth")
	// -buildvcs=auto over a GOFLAGS=-buildvcs=false: the binary's version
	// comes from the commit, as the image's tag does (TestImageEndToEnd).
	build := exec.Command("go", "build", "-buildvcs=auto", "-tags", "berthtest", "-o", berthBin, "../cmd/berth")
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build berth:", err)
		os.Exit(1)
	}
	for _, v := range []string{"GOCACHE", "GOMODCACHE", "GOPATH"} {
		out, err := exec.Command("go", "env", v).Output()
		if err == nil {
			goEnv = append(goEnv, v+"="+strings.TrimSpace(string(out)))
		}
	}
	releaseBin = filepath.Join(dir, "berth-release")
	build = exec.Command("go", "build", "-buildvcs=auto", "-o", releaseBin, "../cmd/berth")
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build berth:", err)
		os.Exit(1)
	}
	code := m.Run()
	tests3.Stop()
	sharedPebble.Stop()
	stopDNSPebble()
	os.RemoveAll(dir)
	os.Exit(code)
}

var freeAddr = testenv.FreeAddr

// serverProc is a `berth server` process.
type serverProc struct {
	t       *testing.T
	cmd     *exec.Cmd
	addr    string
	dataDir string
	log     *testenv.Buffer
	done    chan struct{}
}

// startServer runs `berth server` and waits until it is ready.
func startServer(t *testing.T, dataDir, addr string, extraEnv []string, args ...string) *serverProc {
	t.Helper()
	all := append([]string{"server", "--data-dir", dataDir, "--listen", addr, "--operation-lease", "2s"}, args...)
	cmd := exec.Command(berthBin, all...)
	log := &testenv.Buffer{}
	cmd.Stdout, cmd.Stderr = log, log
	cmd.Env = append(os.Environ(), extraEnv...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &serverProc{t: t, cmd: cmd, addr: addr, dataDir: dataDir, log: log, done: make(chan struct{})}
	go func() { cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			t.Logf("server %s log:\n%s", addr, log.String())
		}
	})
	c, _ := client.New("http://"+addr, "")
	deadline := time.Now().Add(20 * time.Second)
	for {
		if err := c.Healthy(context.Background()); err == nil {
			return p
		}
		select {
		case <-p.done:
			t.Fatalf("server exited early:\n%s", log.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("server not ready:\n%s", log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// kill ends the server at once, as a crash would (SIGKILL).
func (p *serverProc) kill() {
	select {
	case <-p.done:
		return
	default:
	}
	syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
}

func (p *serverProc) url() string { return "http://" + p.addr }

func ownerToken(t *testing.T, dataDir string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dataDir, "admin.token"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// result is what a CLI run printed and its exit code.
type result struct {
	stdout, stderr string
	code           int
}

// berth runs the CLI with env (KEY=VALUE) added to a clean environment.
func berth(t *testing.T, env []string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, berthBin, args...)
	cmd.Env = append(cleanEnv(t), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return result{stdout: out.String(), stderr: errb.String(), code: code}
}

// cleanEnv is an environment with no BERTH_* settings and a private HOME,
// so no user config leaks into tests.
func cleanEnv(t *testing.T) []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "BERTH_") || strings.HasPrefix(kv, "HOME=") {
			continue
		}
		env = append(env, kv)
	}
	return append(append(env, goEnv...), "HOME="+t.TempDir())
}

// watch copies r into a buffer in the background; the returned function
// waits until the buffer contains want (or fails) and returns it all.
func watch(t *testing.T, r io.Reader) (waitFor func(want string, timeout time.Duration) string, done <-chan struct{}) {
	buf := &testenv.Buffer{}
	ch := make(chan struct{})
	go func() { io.Copy(buf, r); close(ch) }()
	return func(want string, timeout time.Duration) string {
		t.Helper()
		deadline := time.Now().Add(timeout)
		for !strings.Contains(buf.String(), want) {
			if time.Now().After(deadline) {
				t.Fatalf("no %q within %s in:\n%s", want, timeout, buf.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
		return buf.String()
	}, ch
}
