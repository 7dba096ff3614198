// Command deploy measures, for issue 5's figures:
//
//   - the time from `berth service deploy` to the first successful score,
//     on the local compute (over HTTPS with a key) and on a simulated
//     cluster (through `berth-fe`, with the model fetched by the replica's
//     init container), median of N each;
//
//   - scoring throughput through the local compute's front end against
//     the same model server called directly, as a ratio, in one run.
//
//     go run ./bench/deploy [-n 5] [-only local|cluster|throughput] [-duration 4s] [-rounds 5] [-connections 8]
package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"flag"
	"fmt"
	"github.com/berth-ml/berth/bench/internal/benchenv"
	"github.com/berth-ml/berth/internal/freeport"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/berth-ml/berth/internal/testenv/simcluster"
	"github.com/berth-ml/berth/internal/testenv/simcluster/kubelet"
)

const body = `{"data":[[5.1,3.5,1.4,0.2]]}`

func main() {
	n := flag.Int("n", 5, "deployments per compute")
	only := flag.String("only", "", "run one part: local, cluster or throughput (default all)")
	duration := flag.Duration("duration", 4*time.Second, "length of each throughput run")
	conns := flag.Int("connections", 8, "concurrent connections in the throughput runs")
	rounds := flag.Int("rounds", 5, "throughput rounds (direct, then front end)")
	flag.Parse()
	if err := run(*n, *only, *duration, *conns, *rounds); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func freeAddr() string {
	a, err := freeport.Addr()
	if err != nil {
		panic(err)
	}
	return a
}

// env is a running server and a CLI pointed at it.
type env struct {
	bin, addr, data string
	procs           []*exec.Cmd
}

// start runs a berth process until stop; its output goes to w.
func (e *env) start(w io.Writer, args ...string) error {
	cmd := exec.Command(e.bin, args...)
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Start(); err != nil {
		return err
	}
	e.procs = append(e.procs, cmd)
	return nil
}

func (e *env) stop() {
	for _, p := range e.procs {
		p.Process.Kill()
		p.Wait()
	}
}

func (e *env) berth(args ...string) (string, error) {
	cmd := exec.Command(e.bin, args...)
	cmd.Env = append(os.Environ(), "BERTH_SERVER=http://"+e.addr, "BERTH_DATA_DIR="+e.data, "BERTH_WORKSPACE=bench")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("berth %s: %v\n%s", strings.Join(args, " "), err, errb.String())
	}
	return out.String(), nil
}

func (e *env) jsonOf(v any, args ...string) error {
	out, err := e.berth(append(args, "-o", "json")...)
	if err != nil {
		return err
	}
	return json.Unmarshal([]byte(out), v)
}

// newEnv starts a server in a fresh data dir with a workspace.
func newEnv(tmp, bin, addr string, serverArgs ...string) (*env, error) {
	e := &env{bin: bin, addr: addr, data: filepath.Join(tmp, fmt.Sprintf("data-%d", time.Now().UnixNano()))}
	args := append([]string{"server", "--data-dir", e.data, "--listen", e.addr, "--log-level", "warn", "--reconcile-interval", "1h"}, serverArgs...)
	if err := e.start(os.Stderr, args...); err != nil {
		return nil, err
	}
	for i := 0; ; i++ {
		if _, err := e.berth("workspace", "create", "-n", "bench"); err == nil {
			return e, nil
		} else if i > 100 {
			e.stop()
			return nil, err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func run(n int, only string, duration time.Duration, conns, rounds int) error {
	tmp, bin, cleanup, err := benchenv.BuildBerth("berth-deploy-bench")
	if err != nil {
		return err
	}
	defer cleanup()
	var lines []string
	if only == "" || only == "local" || only == "throughput" {
		l, err := local(tmp, bin, n, only, duration, conns, rounds)
		if err != nil {
			return err
		}
		lines = append(lines, l...)
	}
	if only == "" || only == "cluster" {
		l, err := cluster(tmp, bin, n)
		if err != nil {
			return err
		}
		lines = append(lines, l)
	}
	fmt.Println(strings.Join(lines, "\n"))
	return nil
}

func median(d []time.Duration) time.Duration {
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	return d[len(d)/2]
}

// firstScore scores until a 200 comes back, for at most a minute.
func firstScore(hc *http.Client, url, key string, t0 time.Time) error {
	for {
		req, _ := http.NewRequest("POST", url, strings.NewReader(body))
		if key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		if resp, err := hc.Do(req); err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		if time.Since(t0) > time.Minute {
			return fmt.Errorf("%s never scored", url)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func local(tmp, bin string, n int, only string, duration time.Duration, conns, rounds int) ([]string, error) {
	e, err := newEnv(tmp, bin, freeAddr())
	if err != nil {
		return nil, err
	}
	defer e.stop()
	if _, err := e.berth("compute", "create", "local", "-n", "laptop"); err != nil {
		return nil, err
	}
	if _, err := e.berth("model", "register", "-n", "iris", "--path", "models/iris"); err != nil {
		return nil, err
	}
	var cert struct{ CaPem string }
	if err := e.jsonOf(&cert, "compute", "get-certificate", "-n", "laptop"); err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM([]byte(cert.CaPem))
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, MaxIdleConnsPerHost: 256}
	hc := &http.Client{Timeout: 10 * time.Second, Transport: tr}
	command := []string{"--command", bin, "--command", "model-server", "--command", "--model-dir", "--command", "$BERTH_MODEL_DIR",
		"--command", "--listen", "--command", "127.0.0.1:$PORT"}
	var out []string
	if only != "throughput" {
		var times []time.Duration
		for i := 0; i < n; i++ {
			name := fmt.Sprintf("svc-%d", i)
			t0 := time.Now()
			var sv struct{ ScoringUri string }
			if err := e.jsonOf(&sv, append([]string{"service", "deploy", "-n", name, "--compute", "laptop", "--model", "iris", "--replicas", "1"}, command...)...); err != nil {
				return nil, err
			}
			var keys struct{ PrimaryKey string }
			if err := e.jsonOf(&keys, "service", "keys", "-n", name); err != nil {
				return nil, err
			}
			if err := firstScore(hc, sv.ScoringUri, keys.PrimaryKey, t0); err != nil {
				return nil, err
			}
			times = append(times, time.Since(t0))
			fmt.Fprintf(os.Stderr, "local deployment %d: first score after %s\n", i+1, times[i].Round(time.Millisecond))
			if _, err := e.berth("service", "delete", "-n", name); err != nil {
				return nil, err
			}
		}
		out = append(out, fmt.Sprintf("local compute: service deploy to first successful score over HTTPS: median %s of %d", median(times).Round(time.Millisecond), n))
	}
	if only == "" || only == "throughput" {
		// One replica that takes every connection at once, so the front
		// end's admission never queues: the ratio is the front end's cost.
		var sv struct{ ScoringUri string }
		if err := e.jsonOf(&sv, append([]string{"service", "deploy", "-n", "tput", "--compute", "laptop", "--model", "iris", "--replicas", "1",
			"--max-concurrent-requests", fmt.Sprint(conns * 2)}, command...)...); err != nil {
			return nil, err
		}
		var keys struct{ PrimaryKey string }
		if err := e.jsonOf(&keys, "service", "keys", "-n", "tput"); err != nil {
			return nil, err
		}
		if err := firstScore(hc, sv.ScoringUri, keys.PrimaryKey, time.Now()); err != nil {
			return nil, err
		}
		direct := freeAddr()
		if err := e.start(io.Discard, "model-server", "--listen", direct); err != nil {
			return nil, err
		}
		if err := firstScore(hc, "http://"+direct+"/score", "", time.Now()); err != nil {
			return nil, err
		}
		// Rounds alternate direct and front end so that other work on the
		// machine weighs on both alike; the median ratio is reported.
		var ratios []float64
		for i := 0; i < rounds; i++ {
			d := load(hc, "http://"+direct+"/score", "", duration, conns)
			f := load(hc, sv.ScoringUri, keys.PrimaryKey, duration, conns)
			fmt.Fprintf(os.Stderr, "round %d: direct %s; front end %s; ratio %.2f\n", i+1, d, f, f.rps/d.rps)
			out = append(out, fmt.Sprintf("local throughput round %d, %d connections, %s each: direct to the model server (HTTP) %.0f req/s, p50 %s; through the local front end (HTTPS + key) %.0f req/s, p50 %s",
				i+1, conns, duration, d.rps, d.p50, f.rps, f.p50))
			ratios = append(ratios, f.rps/d.rps)
		}
		sort.Float64s(ratios)
		out = append(out, fmt.Sprintf("local throughput ratio front end / direct: median %.2f of %d rounds (all: %.2f)", ratios[len(ratios)/2], rounds, ratios))
	}
	return out, nil
}

type result struct {
	rps      float64
	p50, p99 time.Duration
	errors   int64
}

func (r result) String() string {
	return fmt.Sprintf("%.0f req/s, p50 %s, p99 %s, %d errors", r.rps, r.p50, r.p99, r.errors)
}

// load sends scoring requests on conns keep-alive connections for d.
func load(hc *http.Client, url, key string, d time.Duration, conns int) result {
	var (
		mu   sync.Mutex
		lats []time.Duration
		errs atomic.Int64
		wg   sync.WaitGroup
	)
	end := time.Now().Add(d)
	for i := 0; i < conns; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			for time.Now().Before(end) {
				req, _ := http.NewRequest("POST", url, strings.NewReader(body))
				if key != "" {
					req.Header.Set("Authorization", "Bearer "+key)
				}
				t0 := time.Now()
				resp, err := hc.Do(req)
				if err != nil {
					errs.Add(1)
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					errs.Add(1)
					continue
				}
				mine = append(mine, time.Since(t0))
			}
			mu.Lock()
			lats = append(lats, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	sort.Slice(lats, func(i, j int) bool { return lats[i] < lats[j] })
	r := result{rps: float64(len(lats)) / d.Seconds(), errors: errs.Load()}
	if len(lats) > 0 {
		r.p50, r.p99 = lats[len(lats)/2].Round(time.Microsecond), lats[len(lats)*99/100].Round(time.Microsecond)
	}
	return r
}

func cluster(tmp, bin string, n int) (string, error) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	fmt.Fprintln(os.Stderr, "starting a simulated cluster (1 node × 8 vCPU)")
	cl, err := simcluster.Start(ctx, simcluster.Options{Nodes: simcluster.Nodes(1, "8")})
	if err != nil {
		return "", err
	}
	defer cl.Stop()
	addr := freeAddr()
	e, err := newEnv(tmp, bin, addr, "--public-url", "http://"+addr, "--ready-timeout", "90s")
	if err != nil {
		return "", err
	}
	defer e.stop()
	if _, err := e.berth("compute", "attach", "kubernetes", "-n", "sim", "--kubeconfig", cl.KubeconfigPath, "--cluster-purpose", "DevTest"); err != nil {
		return "", err
	}
	if _, err := e.berth("model", "register", "-n", "iris", "--path", "models/iris"); err != nil {
		return "", err
	}
	fe := freeAddr()
	if err := e.start(io.Discard, "frontend", "--kubeconfig", cl.KubeconfigPath, "--http", fe, "--https", "", "--admin", freeAddr(), "--autoscale=false"); err != nil {
		return "", err
	}
	kl := &kubelet.Kubelet{Bin: bin, Client: cl.Client(), Dir: filepath.Join(tmp, "pods"), Errorf: func(f string, a ...any) { fmt.Fprintf(os.Stderr, f+"\n", a...) }}
	defer kl.Stop()
	hc := &http.Client{Timeout: 10 * time.Second}
	var times []time.Duration
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("svc-%d", i)
		kl.Follow(ctx, name)
		t0 := time.Now()
		if _, err := e.berth("service", "deploy", "-n", name, "--compute", "sim", "--model", "iris", "--image", "ghcr.io/berth-ml/berth:latest",
			"--replicas", "1", "--auth", "none"); err != nil {
			return "", err
		}
		if err := firstScore(hc, "http://"+fe+"/api/v1/service/"+name+"/score", "", t0); err != nil {
			return "", fmt.Errorf("%v\n%s", err, kl.Logs())
		}
		times = append(times, time.Since(t0))
		fmt.Fprintf(os.Stderr, "cluster deployment %d: first score after %s\n", i+1, times[i].Round(time.Millisecond))
		if _, err := e.berth("service", "delete", "-n", name); err != nil {
			return "", err
		}
	}
	return fmt.Sprintf("simulated cluster: service deploy to first successful score through berth-fe (model fetched by the init container): median %s of %d",
		median(times).Round(time.Millisecond), n), nil
}
