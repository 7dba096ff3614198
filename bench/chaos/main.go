// Command chaos kills a Berth server with SIGKILL while it deploys,
// updates and deletes services on the local compute and while a model is
// being uploaded, N times, restarting it each time, and then checks what a
// crash must not leave behind:
//
//   - every operation started ends (Succeeded, Failed or Canceled);
//
//   - no replica process, nor anything a replica started, outlives the
//     server once it stops (orphans);
//
//   - no half-written upload stays in the artifact store;
//
//   - the owner token in DATA_DIR/admin.token still works.
//
//     go run ./bench/chaos [-n 20]      (or ./bench/chaos.sh)
//
// It prints one line per cycle and a report, and exits 1 unless everything
// is clean.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"github.com/berth-ml/berth/bench/internal/benchenv"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/berth-ml/berth/api"
	"github.com/berth-ml/berth/client"
	"github.com/berth-ml/berth/internal/provider/local"
)

func main() {
	n := flag.Int("n", 20, "kill -9 cycles")
	flag.Parse()
	if err := run(*n); err != nil {
		fmt.Fprintln(os.Stderr, "chaos:", err)
		os.Exit(1)
	}
}

type server struct {
	bin, dataDir, addr string
	cmd                *exec.Cmd
	log                *os.File
}

func (s *server) start() error {
	s.cmd = exec.Command(s.bin, "server", "--data-dir", s.dataDir, "--listen", s.addr, "--operation-lease", "2s")
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	if err := s.cmd.Start(); err != nil {
		return err
	}
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if resp, err := http.Get("http://" + s.addr + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
	}
	return errors.New("the server did not become ready in 30s (see " + s.log.Name() + ")")
}

func (s *server) kill() {
	s.cmd.Process.Signal(syscall.SIGKILL)
	s.cmd.Wait()
}

func (s *server) stop() {
	s.cmd.Process.Signal(syscall.SIGTERM)
	s.cmd.Wait()
}

func (s *server) client() (*client.Client, error) {
	tok, err := os.ReadFile(filepath.Join(s.dataDir, "admin.token"))
	if err != nil {
		return nil, err
	}
	return client.New("http://"+s.addr, strings.TrimSpace(string(tok)))
}

func run(cycles int) error {
	ctx := context.Background()
	tmp, bin, cleanup, err := benchenv.BuildBerth("berth-chaos")
	if err != nil {
		return err
	}
	defer cleanup()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	addr := ln.Addr().String()
	ln.Close()
	logf, err := os.Create(filepath.Join(tmp, "server.log"))
	if err != nil {
		return err
	}
	srv := &server{bin: bin, dataDir: filepath.Join(tmp, "data"), addr: addr, log: logf}
	if err := srv.start(); err != nil {
		return err
	}
	c, err := srv.client()
	if err != nil {
		return err
	}
	const ws = "chaos"
	if _, err := c.CreateWorkspace(ctx, api.WorkspaceCreateRequest{Name: ws}); err != nil {
		return err
	}
	op, err := c.CreateCompute(ctx, ws, api.ComputeRequest{Name: "laptop", Type: api.ComputeLocal, Origin: api.OriginCreated})
	if err != nil {
		return err
	}
	if _, err := c.Wait(ctx, op.ID, client.WaitOptions{}); err != nil {
		return err
	}
	// The bundled iris classifier, registered as a user would.
	tok, _ := os.ReadFile(filepath.Join(srv.dataDir, "admin.token"))
	reg := exec.Command(bin, "model", "register", "-n", "iris", "--path", "models/iris", "-w", ws)
	reg.Env = append(os.Environ(), "BERTH_SERVER=http://"+addr, "BERTH_TOKEN="+strings.TrimSpace(string(tok)))
	if out, err := reg.CombinedOutput(); err != nil {
		return fmt.Errorf("register the model: %v\n%s", err, out)
	}
	// A replica that starts something of its own, which must not outlive
	// it: a shell whose child keeps running.
	command := []string{"/bin/sh", "-c", "sleep 100000 & exec " + bin + " model-server --model-dir \"$BERTH_MODEL_DIR\" --listen 127.0.0.1:$PORT"}

	var started []string
	services := 0
	waitEnded := func(id string, timeout time.Duration) bool {
		for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
			o, err := c.GetOperation(ctx, id)
			if err == nil && (o.State == api.OpSucceeded || o.State == api.OpFailed || o.State == api.OpCanceled) {
				return true
			}
		}
		return false
	}
	for i := 1; i <= cycles; i++ {
		action := []string{"deploy", "update", "delete", "upload"}[(i-1)%4]
		if len(started) > 0 { // the last one resumes and ends first, so each cycle starts its own
			waitEnded(started[len(started)-1], 2*time.Minute)
		}
		var opID string
		var aerr error
		switch action {
		case "deploy":
			services++
			var o *api.Operation
			o, aerr = c.DeployService(ctx, ws, api.ServiceRequest{Name: fmt.Sprintf("svc-%d", services), ServiceSpec: api.ServiceSpec{
				Compute: "laptop", Models: []string{"iris"}, Command: command, Replicas: 2}})
			if o != nil {
				opID = o.ID
			}
		case "update":
			var o *api.Operation
			o, aerr = c.UpdateService(ctx, ws, fmt.Sprintf("svc-%d", services), api.ServiceSpec{Env: map[string]string{"CYCLE": strconv.Itoa(i)}})
			if o != nil {
				opID = o.ID
			}
		case "delete":
			var o *api.Operation
			o, aerr = c.DeleteService(ctx, ws, fmt.Sprintf("svc-%d", services))
			if o != nil {
				opID = o.ID
			}
		case "upload":
			pr, pw := io.Pipe()
			go func() { // a slow upload, killed halfway
				chunk := make([]byte, 64<<10)
				for j := 0; j < 1000; j++ {
					if _, err := pw.Write(chunk); err != nil {
						return
					}
					time.Sleep(5 * time.Millisecond)
				}
				pw.Close()
			}()
			go c.RegisterModel(ctx, ws, client.ModelUpload{Name: "big", FileName: "big.bin", Format: "file", Body: pr, Size: -1})
		}
		if aerr != nil {
			fmt.Printf("cycle %2d: %-6s refused: %v\n", i, action, aerr)
		}
		if opID != "" {
			started = append(started, opID)
		}
		time.Sleep(time.Duration(100+rand.IntN(900)) * time.Millisecond)
		srv.kill()
		if err := srv.start(); err != nil {
			return err
		}
		fmt.Printf("cycle %2d: %-6s killed mid-way, restarted\n", i, action)
	}

	// Every operation ends.
	ended := 0
	for _, id := range started {
		if waitEnded(id, 3*time.Minute) {
			ended++
		}
	}
	// Then the services go, and the server stops as it should.
	svs, _ := c.ListServices(ctx, ws)
	for _, sv := range svs {
		if o, err := c.DeleteService(ctx, ws, sv.Name); err == nil {
			c.Wait(ctx, o.ID, client.WaitOptions{})
		}
	}
	_, tokenErr := c.ListWorkspaces(ctx)
	srv.stop()
	time.Sleep(500 * time.Millisecond)
	orphans := local.MarkedProcesses(srv.dataDir)
	temps, _ := filepath.Glob(filepath.Join(srv.dataDir, "artifacts", "*", ".upload-*"))

	fmt.Println()
	fmt.Printf("operations ended:   %d / %d started\n", ended, len(started))
	fmt.Printf("orphan processes:   %d\n", len(orphans))
	fmt.Printf("leftover uploads:   %d\n", len(temps))
	fmt.Printf("owner token usable: %v\n", tokenErr == nil)
	for _, pid := range orphans {
		syscall.Kill(pid, syscall.SIGKILL)
	}
	if ended != len(started) || len(orphans) > 0 || len(temps) > 0 || tokenErr != nil {
		return fmt.Errorf("not clean after %d kills (server log: kept at %s)", cycles, keep(logf.Name()))
	}
	fmt.Printf("clean after %d kills\n", cycles)
	return nil
}

// keep copies the server log out of the directory about to be removed.
func keep(path string) string {
	dst := filepath.Join(os.TempDir(), "berth-chaos-server.log")
	if b, err := os.ReadFile(path); err == nil {
		os.WriteFile(dst, b, 0o644)
	}
	return dst
}
