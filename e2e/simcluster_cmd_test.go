package e2e

import (
	"bufio"
	"context"
	"github.com/berth-ml/berth/internal/testenv"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// TestSimclusterCommand runs the README's `go run ./hack/simcluster up` as
// a person would: it prints a kubeconfig path that works, stays up, and
// cleans up when interrupted.
func TestSimclusterCommand(t *testing.T) {
	t.Parallel()
	cmd := exec.Command("go", "run", "./hack/simcluster", "up", "--nodes", "2", "--cpu", "4")
	cmd.Dir = ".."
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, _ := cmd.StdoutPipe()
	var stderr testenv.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		if sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	var path string
	select {
	case path = <-lines:
	case <-time.After(3 * time.Minute):
		t.Fatal("no kubeconfig path printed")
	}
	if !filepath.IsAbs(path) || !strings.Contains(path, "kubeconfig") {
		t.Fatalf("printed %q, want an absolute path containing kubeconfig", path)
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		t.Fatal(err)
	}
	nodes, err := kubernetes.NewForConfigOrDie(cfg).CoreV1().Nodes().List(context.Background(), metav1.ListOptions{})
	if err != nil || len(nodes.Items) != 2 {
		t.Fatalf("nodes: %v %v", len(nodes.Items), err)
	}
	// Ctrl-C reaches the whole process group. (go run itself then exits
	// 1, as it does on any interrupt; the command under it stops cleanly.)
	syscall.Kill(-cmd.Process.Pid, syscall.SIGINT)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("still running 30 s after Ctrl-C")
	}
	if !strings.Contains(stderr.String(), "simcluster: stopped") {
		t.Fatalf("no clean stop:\n%s", stderr.String())
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("kubeconfig left behind: %v", err)
	}
}
