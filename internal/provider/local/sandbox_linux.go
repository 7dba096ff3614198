package local

// The sandbox keeps a replica out of the data directory: the server's
// secret key, its database, its owner token, other services' models and
// logs. A replica starts as `berth replica-exec` (Runtime.Launcher) in new
// mount and PID namespaces (and a user namespace when the server is not
// root). There the launcher
//
//   - hides the data directory behind an empty tmpfs and brings the
//     replica's own model folders back on top, read-only;
//   - mounts a /proc of the new PID namespace, so the server's
//     /proc/PID/root is out of sight;
//   - gives up what would undo that: every capability when it is root, or
//     else starts the command in one more user namespace, where those
//     mounts are locked;
//   - runs the service's command as its child and stays as the
//     namespace's init: it passes SIGTERM on, reaps what the command
//     leaves, and when it ends everything the command started ends too.

import (
	"cmp"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"unsafe"
)

// SandboxAvailable tells whether replicas can be kept out of the data
// directory on this OS.
const SandboxAvailable = true

// sandbox makes cmd start the launcher in new namespaces, which hides
// hide but for expose, then runs cmd's program.
func sandbox(cmd *exec.Cmd, launcher []string, hide string, expose []string) {
	sandboxAs(cmd, launcher, hide, expose, os.Getuid() != 0)
}

// sandboxAs is sandbox for a server that is root (the launcher drops every
// capability) or not (rootless: the launcher is root of a user namespace
// of its own, and the command runs in a further one).
func sandboxAs(cmd *exec.Cmd, launcher []string, hide string, expose []string, rootless bool) {
	args := append(append([]string{}, launcher[1:]...), "--hide", hide)
	for _, e := range expose {
		args = append(args, "--expose", e)
	}
	args = append(args, "--")
	args = append(args, cmd.Args...)
	cmd.Path, cmd.Args = launcher[0], append([]string{launcher[0]}, args...)
	attr := cmp.Or(cmd.SysProcAttr, &syscall.SysProcAttr{})
	attr.Cloneflags |= syscall.CLONE_NEWNS | syscall.CLONE_NEWPID
	if uid := os.Getuid(); rootless {
		// The launcher is root of a user namespace of its own (it keeps
		// the capabilities to mount across exec only as uid 0 there).
		attr.Cloneflags |= syscall.CLONE_NEWUSER
		attr.UidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: uid, Size: 1}}
		attr.GidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getgid(), Size: 1}}
		attr.GidMappingsEnableSetgroups = false
	}
	cmd.SysProcAttr = attr
}

// ReplicaExec is `berth replica-exec --hide DIR [--expose DIR]… -- PROGRAM
// ARGS…` (see the top of this file). It returns the program's exit code,
// or an error if the sandbox could not be made (nothing ran).
func ReplicaExec(args []string) (int, error) {
	var hide string
	var expose []string
	for len(args) > 0 && args[0] != "--" {
		if len(args) < 2 {
			return 0, fmt.Errorf("replica-exec: %s needs a value", args[0])
		}
		switch args[0] {
		case "--hide":
			hide = args[1]
		case "--expose":
			expose = append(expose, args[1])
		default:
			return 0, fmt.Errorf("replica-exec: unknown flag %s", args[0])
		}
		args = args[2:]
	}
	if len(args) < 2 || hide == "" {
		return 0, errors.New("usage: berth replica-exec --hide DIR [--expose DIR]… -- PROGRAM [ARGS…]")
	}
	argv := args[1:]
	runtime.LockOSThread() // namespaces and capabilities are per thread until exec
	if err := enclose(hide, expose); err != nil {
		return 0, fmt.Errorf("replica-exec: %w", err)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	if inUserNamespace() {
		// One more user namespace, with a mount namespace of its own: the
		// mounts made above come into it locked together and cannot be
		// taken apart from inside.
		cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWUSER | syscall.CLONE_NEWNS,
			UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: 0, Size: 1}},
			GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: 0, Size: 1}}, GidMappingsEnableSetgroups: false}
	}
	term := make(chan os.Signal, 2)
	signal.Notify(term, syscall.SIGTERM, syscall.SIGINT)
	if err := cmd.Start(); err != nil {
		return 127, err
	}
	go func() {
		for s := range term {
			cmd.Process.Signal(s)
		}
	}()
	// As init of the namespace, reap every child; the command's status is
	// the answer.
	code := 0
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, 0, nil)
		if err != nil {
			break
		}
		if pid == cmd.Process.Pid {
			code = ws.ExitStatus()
			if ws.Signaled() {
				code = 128 + int(ws.Signal())
			}
			break
		}
	}
	return code, nil
}

// enclose hides hide but for expose, mounts a fresh /proc and gives up the
// power to undo it.
func enclose(hide string, expose []string) error {
	if err := syscall.Mount("", "/", "", syscall.MS_REC|syscall.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make mounts private: %w", err)
	}
	fds := make([]int, len(expose))
	for i, e := range expose {
		fd, err := syscall.Open(e, syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("%s: %w", e, err)
		}
		fds[i] = fd
	}
	if err := syscall.Mount("tmpfs", hide, "tmpfs", syscall.MS_NOSUID|syscall.MS_NODEV|syscall.MS_NOEXEC, "mode=0755,size=64k"); err != nil {
		return fmt.Errorf("hide %s: %w", hide, err)
	}
	for i, e := range expose {
		if !strings.HasPrefix(e, hide+string(filepath.Separator)) {
			continue // outside the hidden folder: still there
		}
		if err := os.MkdirAll(e, 0o755); err != nil {
			return err
		}
		if err := syscall.Mount("/proc/self/fd/"+strconv.Itoa(fds[i]), e, "", syscall.MS_BIND|syscall.MS_REC, ""); err != nil {
			return fmt.Errorf("expose %s: %w", e, err)
		}
		if err := syscall.Mount("", e, "", syscall.MS_BIND|syscall.MS_REMOUNT|syscall.MS_RDONLY|syscall.MS_NOSUID|syscall.MS_NODEV, ""); err != nil {
			return fmt.Errorf("expose %s read-only: %w", e, err)
		}
		syscall.Close(fds[i])
	}
	if err := syscall.Mount("proc", "/proc", "proc", syscall.MS_NOSUID|syscall.MS_NODEV|syscall.MS_NOEXEC, ""); err != nil {
		return fmt.Errorf("mount /proc: %w", err)
	}
	if !inUserNamespace() {
		return dropCapabilities() // this thread's, which forks the command
	}
	return nil
}

// inUserNamespace tells whether this process is in a user namespace other
// than the initial one (its uid map is not the identity of all ids).
func inUserNamespace() bool {
	b, err := os.ReadFile("/proc/self/uid_map")
	return err == nil && !strings.Contains(string(b), "4294967295")
}

// dropCapabilities gives up every capability, now and after exec, and
// forbids regaining any (no_new_privs).
func dropCapabilities() error {
	const prCapbsetDrop, prSetNoNewPrivs = 24, 38
	for c := uintptr(0); c < 64; c++ {
		if _, _, e := syscall.RawSyscall(syscall.SYS_PRCTL, prCapbsetDrop, c, 0); e == syscall.EINVAL {
			break // past the last capability
		} else if e != 0 {
			return fmt.Errorf("drop capability %d: %w", c, e)
		}
	}
	hdr := struct {
		version uint32
		pid     int32
	}{0x20080522, 0} // _LINUX_CAPABILITY_VERSION_3
	var data [2]struct{ effective, permitted, inheritable uint32 }
	if _, _, e := syscall.RawSyscall(syscall.SYS_CAPSET, uintptr(unsafe.Pointer(&hdr)), uintptr(unsafe.Pointer(&data[0])), 0); e != 0 {
		return fmt.Errorf("capset: %w", e)
	}
	if _, _, e := syscall.RawSyscall(syscall.SYS_PRCTL, prSetNoNewPrivs, 1, 0); e != 0 {
		return fmt.Errorf("no_new_privs: %w", e)
	}
	return nil
}
