package local

// The runtime runs what local computes need inside the control plane
// process: for each one, the berth-fe front end on its loopback port with
// its local CA's certificate, and its services' replicas as processes. It
// is level-based: every tick it makes the running front ends and replicas
// match the local computes and services in the store.

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/berth-ml/berth/api"
	"github.com/berth-ml/berth/internal/artifact"
	"github.com/berth-ml/berth/internal/frontend"
	"github.com/berth-ml/berth/internal/frontend/reqlog"
	"github.com/berth-ml/berth/internal/store"
)

// Runtime keeps local computes' front ends and replicas running.
type Runtime struct {
	Store     *store.Store
	Log       *slog.Logger
	DataDir   string
	Artifacts artifact.Store
	// Limits bound what a model unpacks to (zero: artifact.DefaultLimits).
	Limits artifact.Limits
	// Routes gives a service's route (keys, token key, limits).
	Routes func(ctx context.Context, sv *store.Service) (*frontend.Route, error)
	// EndpointRoutes gives the routes of a compute's endpoints.
	EndpointRoutes func(ctx context.Context, workspaceID, computeID string) ([]*frontend.EndpointRoute, error)
	// RequestLogs files a batch of a front end's request logs (the
	// control plane's artifact store).
	RequestLogs func(ctx context.Context, c *store.Compute, entries []reqlog.Entry) error
	// Launcher, when set, starts each replica in a sandbox that hides the
	// data directory (`berth replica-exec`, Linux; sandbox_linux.go).
	Launcher []string

	mu       sync.Mutex
	running  map[string]*instance    // by compute id
	failures map[string]startFailure // by service id
	poked    chan struct{}           // sync now (poke)
}

type instance struct {
	endpoint string
	cancel   context.CancelFunc
	done     chan struct{}
	fe       *frontend.Frontend
	services map[string]*serviceRun // serving, by service id
	next     map[string]*serviceRun // starting (a new generation)
	names    map[string]string      // service id → name
	desired  map[string]int         // replicas the autoscaler wants, by service name
}

// stop ends the instance's replicas, then its front end, and waits for it.
func (in *instance) stop() {
	for _, m := range []map[string]*serviceRun{in.services, in.next} {
		for _, run := range m {
			for _, r := range run.replicas {
				r.halt()
			}
			for _, r := range run.replicas {
				<-r.done
			}
		}
	}
	in.cancel()
	<-in.done
}

// Run syncs until ctx ends, then stops every front end.
func (rt *Runtime) Run(ctx context.Context) {
	if n := rt.reapOrphans(); n > 0 {
		rt.Log.Warn("ended replica processes a previous run of this data directory left", "processes", n)
	}
	if err := rt.checkSandbox(); err != nil {
		rt.Log.Warn("local replicas will run without a sandbox and could read the data directory", "reason", err)
		rt.Launcher = nil
	}
	rt.mu.Lock()
	rt.running, rt.failures, rt.poked = map[string]*instance{}, map[string]startFailure{}, make(chan struct{}, 1)
	rt.mu.Unlock()
	if n := rt.removePartialModels(); n > 0 {
		rt.Log.Info("removed models a previous run left half unpacked", "folders", n)
	}
	if n := rt.removeDeletedServices(ctx); n > 0 {
		rt.Log.Info("removed the logs of deleted services a previous run left", "folders", n)
	}
	t := time.NewTicker(300 * time.Millisecond)
	defer t.Stop()
	for {
		rt.sync(ctx)
		select {
		case <-ctx.Done():
			rt.mu.Lock()
			for id, in := range rt.running {
				in.stop()
				delete(rt.running, id)
			}
			rt.mu.Unlock()
			return
		case <-t.C:
		case <-rt.poked:
		}
	}
}

// poke has the runtime sync now: the autoscaler changed a replica count,
// or a replica became ready (a service waking from zero waits for both).
func (rt *Runtime) poke() {
	select {
	case rt.poked <- struct{}{}:
	default:
	}
}

func (rt *Runtime) sync(ctx context.Context) {
	wss, err := rt.Store.ListWorkspaces(ctx)
	if err != nil {
		return
	}
	want := map[string]*store.Compute{}
	wsOf := map[string]string{}
	for _, ws := range wss {
		cs, err := rt.Store.ListComputes(ctx, ws.ID)
		if err != nil {
			continue
		}
		for i := range cs {
			c := &cs[i]
			if c.Type != Type || c.Endpoint == "" || c.ProvisioningState == api.StateDeleting {
				continue
			}
			want[c.ID] = c
			wsOf[c.ID] = ws.ID
		}
	}
	rt.mu.Lock()
	defer rt.mu.Unlock()
	for id, in := range rt.running {
		if c, ok := want[id]; !ok || c.Endpoint != in.endpoint {
			in.stop()
			delete(rt.running, id)
			rt.Log.Info("local front end stopped", "endpoint", in.endpoint)
		}
	}
	for id, c := range want {
		if in, ok := rt.running[id]; ok {
			if rt.Routes != nil {
				rt.syncServices(ctx, wsOf[id], c, in)
			}
			continue
		}
		full, err := rt.Store.GetComputeByID(ctx, id)
		if err != nil {
			continue
		}
		fe := frontend.New(rt.Log.With("compute", c.Name))
		fe.AccessLog = true
		if err := fe.SetCertificate([]byte(full.Secrets[SecretCert]), []byte(full.Secrets[SecretKey])); err != nil {
			rt.Log.Error("local compute certificate", "compute", c.Name, "err", err)
			continue
		}
		fe.SetReady(true)
		if rt.RequestLogs != nil {
			fe.SetRequestLogSink(func(ctx context.Context, es []reqlog.Entry) error { return rt.RequestLogs(ctx, c, es) })
		}
		ictx, cancel := context.WithCancel(context.Background())
		in := &instance{endpoint: c.Endpoint, cancel: cancel, done: make(chan struct{}), fe: fe,
			services: map[string]*serviceRun{}, next: map[string]*serviceRun{}, names: map[string]string{}, desired: map[string]int{}}
		go func() {
			defer close(in.done)
			if err := fe.Serve(ictx, frontend.Listeners{HTTPS: c.Endpoint}); err != nil {
				rt.Log.Error("local front end", "compute", c.Name, "endpoint", c.Endpoint, "err", err)
			}
		}()
		rt.running[id] = in
		// The same autoscaler as in clusters, deciding alone here and
		// scaling the runtime's processes instead of a Deployment.
		go (&frontend.Autoscaler{Frontend: fe, NoElection: true, Scaler: localScaler{rt: rt, in: in}}).Run(ictx)
		rt.Log.Info("local front end serving", "compute", c.Name, "endpoint", "https://"+c.Endpoint)
	}
}

// removePartialModels deletes the folders that model unpacking left when
// the server was killed during it (modelDir unpacks into NAME.partial and
// renames it once whole), and returns how many.
func (rt *Runtime) removePartialModels() int {
	partial, _ := filepath.Glob(filepath.Join(rt.DataDir, "local-models", "*.partial"))
	n := 0
	for _, p := range partial {
		if os.RemoveAll(p) == nil {
			n++
		}
	}
	return n
}

// removeDeletedServices deletes the folders of services that no longer
// exist (DATA_DIR/services/<id>: a server stopped before it removed them),
// and returns how many. It removes nothing when it cannot list them all.
func (rt *Runtime) removeDeletedServices(ctx context.Context) int {
	svs, err := rt.Store.ListServices(ctx, "", "")
	if err != nil {
		return 0
	}
	known := map[string]bool{}
	for _, sv := range svs {
		known[sv.ID] = true
	}
	dirs, _ := os.ReadDir(filepath.Join(rt.DataDir, "services"))
	n := 0
	for _, d := range dirs {
		if d.IsDir() && !known[d.Name()] && os.RemoveAll(rt.serviceDir(d.Name())) == nil {
			n++
		}
	}
	return n
}
