package simcluster

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"time"
)

// tailSize is how much of each component's output is kept in memory for
// Logs, which must work after Stop has removed the log files.
const tailSize = 16 << 10

// tail keeps the last tailSize bytes written to it.
type tail struct {
	mu  sync.Mutex
	buf []byte
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - tailSize; over > 0 {
		// Cut at a line boundary so the first line shown is whole.
		if i := bytes.IndexByte(t.buf[over:], '\n'); i >= 0 && i < 1024 {
			over += i + 1
		}
		t.buf = append(t.buf[:0:0], t.buf[over:]...)
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}

// process is one component of the cluster, run in its own process group
// and killed with its parent.
type process struct {
	name    string
	cmd     *exec.Cmd
	logFile *os.File
	tail    *tail
	done    chan struct{} // closed when the process has exited
	err     error         // Wait's result, set before done is closed
}

// startProcess starts bin with args, its output going to dir/logs/name.log
// and to an in-memory tail.
func startProcess(name, bin, logDir string, env []string, args ...string) (*process, error) {
	f, err := os.Create(filepath.Join(logDir, name+".log"))
	if err != nil {
		return nil, err
	}
	p := &process{name: name, logFile: f, tail: &tail{}, done: make(chan struct{})}
	out := io.MultiWriter(f, p.tail)
	cmd := exec.Command(bin, args...)
	cmd.Stdout = out
	cmd.Stderr = out
	cmd.Env = env
	// Stop kills the whole group; never hang on an inherited pipe.
	cmd.WaitDelay = 5 * time.Second
	cmd.SysProcAttr = &syscall.SysProcAttr{
		// Its own group, so Stop can kill it and anything it started.
		Setpgid: true,
		// Killed when the process that started it dies, even by SIGKILL.
		Pdeathsig: syscall.SIGKILL,
	}
	onSpawnerThread(func() { err = cmd.Start() })
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p.cmd = cmd
	go func() {
		p.err = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	return p, nil
}

// exited tells whether the process has ended, and how.
func (p *process) exited() (bool, error) {
	select {
	case <-p.done:
		if p.err == nil {
			return true, fmt.Errorf("%s exited", p.name)
		}
		return true, fmt.Errorf("%s exited: %v", p.name, p.err)
	default:
		return false, nil
	}
}

// kill ends the process group with SIGKILL and waits for the process.
func (p *process) kill() {
	if p.cmd == nil || p.cmd.Process == nil {
		return
	}
	pid := p.cmd.Process.Pid
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	_ = p.cmd.Process.Kill()
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
	}
}

// pid is the process' id (and its process group's).
func (p *process) pid() int {
	if p.cmd == nil || p.cmd.Process == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// Pdeathsig is sent when the thread that started the child exits, not the
// process: the Go runtime ends a thread when a goroutine locked to it
// returns. So every component is started from one goroutine locked to its
// thread for good.
var spawner struct {
	once sync.Once
	reqs chan func()
}

func onSpawnerThread(f func()) {
	spawner.once.Do(func() {
		spawner.reqs = make(chan func())
		go func() {
			runtime.LockOSThread() // never unlocked: the thread lives as long as the process
			for f := range spawner.reqs {
				f()
			}
		}()
	})
	done := make(chan struct{})
	spawner.reqs <- func() {
		defer close(done)
		f()
	}
	<-done
}
