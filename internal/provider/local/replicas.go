package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/berth-ml/berth/api"
	"github.com/berth-ml/berth/internal/artifact"
	"github.com/berth-ml/berth/internal/freeport"
	"github.com/berth-ml/berth/internal/frontend"
	"github.com/berth-ml/berth/internal/provider"
	"github.com/berth-ml/berth/internal/store"
)

// serviceRun is a local service's replicas at one generation of its spec.
type serviceRun struct {
	gen      int
	replicas []*replica
}

// replica is one model server process, restarted if it exits.
type replica struct {
	name  string
	port  int
	ready atomic.Bool
	stop  chan struct{}
	done  chan struct{}

	mu    sync.Mutex
	exits []ReplicaExit // the latest few, oldest first
	inRow int           // exits since it last answered ready
}

// ReplicaExit is one exit of a replica's process.
type ReplicaExit struct {
	Replica string
	// Seq counts the replica's exits: 1 for its first.
	Seq int
	// InRow counts its exits since it last answered ready.
	InRow int
	// Status says how it ended: "exit code 1", "signal: killed".
	Status string
	// Lines are the last lines it printed (at most provider.CrashLines).
	Lines string
}

// exited records an exit of the replica's process.
func (r *replica) exited(status, lines string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.inRow++
	seq := 1
	if n := len(r.exits); n > 0 {
		seq = r.exits[n-1].Seq + 1
	}
	r.exits = append(r.exits, ReplicaExit{Replica: r.name, Seq: seq, InRow: r.inRow, Status: status, Lines: lines})
	if len(r.exits) > provider.CrashLoopExits {
		r.exits = r.exits[1:]
	}
}

// setReady records what its readiness probe answered.
func (r *replica) setReady(ok bool) {
	r.ready.Store(ok)
	if ok {
		r.mu.Lock()
		r.inRow = 0
		r.mu.Unlock()
	}
}

// exitStatus says how a process ended.
func exitStatus(ps *os.ProcessState) string {
	if code := ps.ExitCode(); code >= 0 {
		return fmt.Sprintf("exit code %d", code)
	}
	return ps.String()
}

// tailFrom returns the last n lines of a file after offset.
func tailFrom(path string, offset int64, n int) string {
	return lastLines(string(readFrom(path, offset)), n)
}

// readFrom returns what a file holds after offset (at most 1 MiB).
func readFrom(path string, offset int64) []byte {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return nil
	}
	data, _ := io.ReadAll(io.LimitReader(f, 1<<20))
	return data
}

// modelDir materializes a model version under the data dir (once) and
// returns its folder. It unpacks into a sibling folder and renames it into
// place, so that a folder is there only once it is whole.
func (rt *Runtime) modelDir(ctx context.Context, wsID, ref string) (string, error) {
	r, err := api.ParseModelRef(ref)
	if err != nil {
		return "", err
	}
	m, err := rt.Store.GetModel(ctx, wsID, r.Name, r.Version)
	if err != nil {
		return "", fmt.Errorf("model %s: %w", ref, err)
	}
	dir := filepath.Join(rt.DataDir, "local-models", m.ID)
	if _, err := os.Stat(filepath.Join(dir, ".complete")); err == nil {
		return dir, nil
	}
	os.RemoveAll(dir)
	partial := dir + ".partial"
	os.RemoveAll(partial)
	if err := os.MkdirAll(partial, 0o700); err != nil {
		return "", err
	}
	defer os.RemoveAll(partial)
	f, err := rt.Artifacts.Get(ctx, m.ArtifactKey)
	if err != nil {
		return "", fmt.Errorf("model %s: %w", ref, err)
	}
	defer f.Close()
	if err := artifact.Unpack(f, m.Format, m.FileName, partial, rt.Limits); err != nil {
		return "", unpackError{fmt.Errorf("model %s cannot be unpacked: %w", ref, err)}
	}
	if err := os.WriteFile(filepath.Join(partial, ".complete"), nil, 0o600); err != nil {
		return "", err
	}
	return dir, os.Rename(partial, dir)
}

// unpackError marks a model that could not be unpacked.
type unpackError struct{ error }

func (e unpackError) Unwrap() error { return e.error }

// modelDirs materializes a service's models and returns their folders.
func (rt *Runtime) modelDirs(ctx context.Context, wsID string, sv *store.Service) ([]string, error) {
	var dirs []string
	for _, m := range sv.Models {
		d, err := rt.modelDir(ctx, wsID, m)
		if err != nil {
			return nil, err
		}
		dirs = append(dirs, d)
	}
	return dirs, nil
}

// startReplica runs one process of a service and keeps it running.
func (rt *Runtime) startReplica(sv *store.Service, wsID string, idx int) (*replica, error) {
	port, err := freeport.Port()
	if err != nil {
		return nil, err
	}
	dirs, err := rt.modelDirs(context.Background(), wsID, sv)
	if err != nil {
		return nil, err
	}
	// A replica's environment is the contract's and the service's --env,
	// nothing of the server's (its secret key, its database URL); command
	// words expand from that environment only.
	env := replicaBaseEnv()
	maps.Copy(env, map[string]string{
		"PORT": strconv.Itoa(port), "BERTH_SERVICE": sv.Name, "BERTH_MODELS": strings.Join(sv.Models, ","),
		"BERTH_MODEL_DIRS": strings.Join(dirs, ","),
		RuntimeEnv:         rt.marker(),
	})
	if len(dirs) > 0 {
		env["BERTH_MODEL_DIR"] = dirs[0]
	}
	maps.Copy(env, sv.Env)
	args := make([]string, len(sv.Command))
	for i, a := range sv.Command {
		args[i] = os.Expand(a, func(k string) string {
			if v, ok := env[k]; ok || isName(k) {
				return v
			}
			return "$" + k // a shell's own ($?, $$, $1): left for it
		})
	}
	logDir := rt.serviceDir(sv.ID)
	if err := os.MkdirAll(logDir, 0o700); err != nil {
		return nil, err
	}
	rep := &replica{name: fmt.Sprintf("%s-g%d-%d", sv.Name, sv.Generation, idx), port: port, stop: make(chan struct{}), done: make(chan struct{})}
	// The sandbox shows the replica its models and, when its program lives
	// in the data directory (quickstart's copy of berth), that program's
	// folder, read-only.
	expose := dirs
	if len(args) > 0 && filepath.IsAbs(args[0]) && strings.HasPrefix(args[0], rt.dataDirAbs()+string(filepath.Separator)) {
		expose = append(append([]string{}, dirs...), filepath.Dir(args[0]))
	}
	go rt.supervise(rep, args, env, expose, filepath.Join(logDir, rep.name+".log"))
	return rep, nil
}

// supervise runs the process, restarts it when it exits, and tracks
// readiness through its /readyz.
func (rt *Runtime) supervise(rep *replica, args []string, env map[string]string, models []string, logPath string) {
	defer close(rep.done)
	backoff := 500 * time.Millisecond
	for {
		logf, _ := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
		start, _ := logf.Seek(0, io.SeekEnd)
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Env = []string{}
		for k, v := range env {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
		cmd.Stdout, cmd.Stderr = logf, logf
		ownGroup(cmd)
		if rt.Launcher != nil {
			sandbox(cmd, rt.Launcher, rt.dataDirAbs(), models)
		}
		if err := cmd.Start(); err != nil {
			fmt.Fprintf(logf, "berth: cannot start %v: %v\n", args, err)
			rep.exited("not started", tailFrom(logPath, start, provider.CrashLines))
		} else {
			rt.recordGroup(cmd.Process.Pid)
			exited := make(chan struct{})
			go func() { cmd.Wait(); close(exited) }()
			go rt.probe(rep, exited)
			select {
			case <-rep.stop:
				stopGroup(cmd, false)
				select {
				case <-exited:
				case <-time.After(5 * time.Second):
					stopGroup(cmd, true)
					<-exited
				}
				stopGroup(cmd, true) // what it started and left behind
				rt.forgetGroup(cmd.Process.Pid)
				rep.ready.Store(false)
				logf.Close()
				return
			case <-exited:
				stopGroup(cmd, true)
				rt.forgetGroup(cmd.Process.Pid)
				rep.ready.Store(false)
				rep.exited(exitStatus(cmd.ProcessState), tailFrom(logPath, start, provider.CrashLines))
				fmt.Fprintf(logf, "berth: replica exited (%v); restarting in %s\n", cmd.ProcessState, backoff)
			}
		}
		logf.Close()
		select {
		case <-rep.stop:
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 10*time.Second)
	}
}

func (rt *Runtime) probe(rep *replica, exited <-chan struct{}) {
	hc := &http.Client{Timeout: 2 * time.Second}
	url := fmt.Sprintf("http://127.0.0.1:%d/readyz", rep.port)
	for {
		resp, err := hc.Get(url)
		ok := err == nil && resp.StatusCode == http.StatusOK
		if resp != nil {
			resp.Body.Close()
		}
		woke := ok && !rep.ready.Load()
		rep.setReady(ok)
		if woke {
			rt.poke() // the front end gets it now, not at the next tick
		}
		wait := 100 * time.Millisecond
		if ok {
			wait = time.Second
		}
		select {
		case <-exited:
			return
		case <-rep.stop:
			return
		case <-time.After(wait):
		}
	}
}

func (r *replica) halt() {
	select {
	case <-r.stop:
	default:
		close(r.stop)
	}
}

// syncServices makes a local compute's replicas and routes match its services.
func (rt *Runtime) syncServices(ctx context.Context, wsID string, c *store.Compute, in *instance) {
	svs, err := rt.Store.ListServices(ctx, wsID, c.ID)
	if err != nil {
		return
	}
	seen := map[string]bool{}
	for i := range svs {
		sv := &svs[i]
		seen[sv.ID] = true
		rt.syncService(ctx, wsID, sv, in)
	}
	// Services that are gone, serving or still starting a generation (or
	// failing to).
	for _, m := range []map[string]*serviceRun{in.services, in.next} {
		for id := range m {
			if seen[id] {
				continue
			}
			rt.forget(id, in.services[id], in.next[id])
			delete(in.services, id)
			delete(in.next, id)
			delete(rt.failures, id)
			in.fe.DeleteRoute(in.names[id])
			delete(in.names, id)
		}
	}
	rt.syncEndpoints(ctx, wsID, c, in)
}

// syncEndpoints serves the compute's endpoints as the store has them.
func (rt *Runtime) syncEndpoints(ctx context.Context, wsID string, c *store.Compute, in *instance) {
	if rt.EndpointRoutes == nil {
		return
	}
	routes, err := rt.EndpointRoutes(ctx, wsID, c.ID)
	if err != nil {
		return
	}
	seen := map[string]bool{}
	for _, e := range routes {
		seen[e.Endpoint] = true
		in.fe.SetEndpoint(e)
	}
	for _, e := range in.fe.Endpoints() {
		if !seen[e.Endpoint] {
			in.fe.DeleteEndpoint(e.Endpoint)
		}
	}
}

// forget stops a deleted service's replicas and, once they ended, removes
// their logs (DATA_DIR/services/<id>).
func (rt *Runtime) forget(id string, runs ...*serviceRun) {
	var reps []*replica
	for _, run := range runs {
		if run != nil {
			reps = append(reps, run.replicas...)
		}
	}
	for _, r := range reps {
		r.halt()
	}
	go func() {
		for _, r := range reps {
			<-r.done
		}
		os.RemoveAll(rt.serviceDir(id))
	}()
}

func (rt *Runtime) serviceDir(id string) string { return filepath.Join(rt.DataDir, "services", id) }

func (rt *Runtime) syncService(ctx context.Context, wsID string, sv *store.Service, in *instance) {
	route, err := rt.Routes(ctx, sv)
	if err != nil {
		return
	}
	in.fe.SetRoute(route)
	in.names[sv.ID] = sv.Name
	want, least := sv.Replicas, 1
	if a := sv.Autoscale; a != nil && a.Enabled {
		want = a.MinReplicas
		if d, ok := in.desired[sv.Name]; ok {
			want = min(max(d, a.MinReplicas), a.MaxReplicas)
		}
		if a.ScaleToZeroAfterSeconds > 0 {
			least = 0 // the autoscaler stops the last replica once idle
		}
	}
	cur := in.services[sv.ID]
	next := in.next[sv.ID]
	if (cur == nil || cur.gen != sv.Generation) && (next == nil || next.gen != sv.Generation) {
		if want == 0 {
			// A new generation of a service at zero starts one replica,
			// which the deploy or update waits for; it then idles to zero.
			want = 1
			in.desired[sv.Name] = 1
		}
		if next != nil {
			for _, r := range next.replicas {
				r.halt()
			}
		}
		next = &serviceRun{gen: sv.Generation}
		var failed error
		for i := 0; i < want; i++ {
			rep, err := rt.startReplica(sv, wsID, i)
			if err != nil {
				rt.Log.Error("local replica", "service", sv.Name, "err", err)
				failed = err
				if errors.As(err, new(unpackError)) {
					break // every replica needs the model
				}
				continue
			}
			next.replicas = append(next.replicas, rep)
		}
		in.next[sv.ID] = next
		delete(rt.failures, sv.ID)
		if len(next.replicas) == 0 && failed != nil {
			// Nothing will start this generation: say why, so that the
			// operation waiting for it fails now with the cause.
			rt.failures[sv.ID] = startFailure{gen: sv.Generation, err: failed}
		}
	}
	// Switch to the new generation once one of its replicas is ready: a
	// rolling change with no gap; the old replicas then stop.
	// Retired replicas stop only after the front end stopped choosing them
	// (below), and a moment later, so a request that already chose one
	// still reaches it; they then finish what they took (SIGTERM).
	var retire []*replica
	if next != nil && next.gen == sv.Generation && anyReady(next) {
		if cur != nil {
			retire = append(retire, cur.replicas...)
		}
		in.services[sv.ID] = next
		delete(in.next, sv.ID)
		cur = next
	}
	// Scale the serving generation to what is wanted.
	if cur != nil && cur.gen == sv.Generation {
		for len(cur.replicas) < want {
			rep, err := rt.startReplica(sv, wsID, len(cur.replicas))
			if err != nil {
				rt.Log.Error("local replica", "service", sv.Name, "err", err)
				break
			}
			cur.replicas = append(cur.replicas, rep)
		}
		for len(cur.replicas) > max(want, least) {
			retire = append(retire, cur.replicas[len(cur.replicas)-1])
			cur.replicas = cur.replicas[:len(cur.replicas)-1]
		}
	}
	var reps []frontend.Replica
	if cur != nil {
		for _, r := range cur.replicas {
			if r.ready.Load() {
				reps = append(reps, frontend.Replica{Name: r.name, Addr: "127.0.0.1:" + strconv.Itoa(r.port), Slots: sv.MaxConcurrentRequests})
			}
		}
	}
	in.fe.SetReplicas(sv.Name, reps, "")
	for _, r := range retire {
		go func() {
			time.Sleep(retireGrace)
			r.halt()
		}()
	}
}

// retireGrace is how long a replica the front end no longer chooses keeps
// running before it is asked to stop.
const retireGrace = time.Second

func anyReady(run *serviceRun) bool {
	return slices.ContainsFunc(run.replicas, func(r *replica) bool { return r.ready.Load() })
}

// Status reports the generation a local service serves and how many of its
// replicas are ready.
func (rt *Runtime) Status(serviceID string) (gen, ready int, ok bool) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	for _, in := range rt.running {
		if run, found := in.services[serviceID]; found {
			n := 0
			for _, r := range run.replicas {
				if r.ready.Load() {
					n++
				}
			}
			return run.gen, n, true
		}
	}
	return 0, 0, false
}

// Exits returns the latest exits of the replicas of generation gen of a
// local service, starting or serving.
func (rt *Runtime) Exits(serviceID string, gen int) []ReplicaExit {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	var out []ReplicaExit
	for _, in := range rt.running {
		for _, run := range []*serviceRun{in.next[serviceID], in.services[serviceID]} {
			if run == nil || run.gen != gen {
				continue
			}
			for _, r := range run.replicas {
				r.mu.Lock()
				out = append(out, r.exits...)
				r.mu.Unlock()
			}
		}
	}
	return out
}

// startFailure is why no replica of a generation of a service started.
type startFailure struct {
	gen int
	err error
}

// StartFailure returns why no replica of generation gen of a local
// service could start (a model that cannot be unpacked, say), or nil if
// none failed (or not yet).
func (rt *Runtime) StartFailure(serviceID string, gen int) error {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if f, ok := rt.failures[serviceID]; ok && f.gen == gen {
		return f.err
	}
	return nil
}

// localScaler lets the autoscaler scale a local compute's processes.
type localScaler struct {
	rt *Runtime
	in *instance
}

func (s localScaler) Replicas(_ context.Context, route *frontend.Route) (int, error) {
	s.rt.mu.Lock()
	defer s.rt.mu.Unlock()
	if d, ok := s.in.desired[route.Service]; ok {
		return d, nil
	}
	for id, name := range s.in.names {
		if name == route.Service {
			if run := s.in.services[id]; run != nil {
				return len(run.replicas), nil
			}
		}
	}
	return route.Autoscale.Min, nil
}

func (s localScaler) SetReplicas(_ context.Context, route *frontend.Route, n int) error {
	s.rt.mu.Lock()
	s.in.desired[route.Service] = n
	s.rt.mu.Unlock()
	s.rt.poke() // start or stop the processes now, not at the next tick
	return nil
}

// isName tells a variable name ([A-Za-z_][A-Za-z0-9_]*).
func isName(k string) bool {
	for i, c := range k {
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return k != ""
}
