// Command attach measures how long `berth compute attach kubernetes` takes
// to reach Succeeded and `berth compute detach` to leave nothing behind, on
// a simulated 3×4 vCPU cluster, and prints the medians beside the reference
// system's published estimate (about 5 minutes to attach).
//
//	go run ./bench/attach [-n 10]
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"github.com/berth-ml/berth/bench/internal/benchenv"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/berth-ml/berth/internal/installer"
	"github.com/berth-ml/berth/internal/testenv/simcluster"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
)

const referenceAttach = 5 * time.Minute // REFERENCE.md: "attach about 5 minutes"

func main() {
	n := flag.Int("n", 10, "attach/detach rounds")
	flag.Parse()
	if err := run(*n); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(rounds int) error {
	ctx := context.Background()
	tmp, bin, cleanup, err := benchenv.BuildBerth("berth-bench")
	if err != nil {
		return err
	}
	defer cleanup()
	fmt.Fprintln(os.Stderr, "starting a simulated cluster (3 nodes × 4 vCPU)")
	cl, err := simcluster.Start(ctx, simcluster.Options{Nodes: simcluster.Nodes(3, "4")})
	if err != nil {
		return err
	}
	defer cl.Stop()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	addr := ln.Addr().String()
	ln.Close()
	data := filepath.Join(tmp, "data")
	srv := exec.Command(bin, "server", "--data-dir", data, "--listen", addr, "--reconcile-interval", "1h", "--log-level", "warn")
	srv.Stderr = os.Stderr
	if err := srv.Start(); err != nil {
		return err
	}
	defer srv.Process.Kill()
	env := append(os.Environ(), "BERTH_SERVER=http://"+addr, "BERTH_DATA_DIR="+data, "BERTH_WORKSPACE=bench")
	berth := func(args ...string) error {
		cmd := exec.Command(bin, args...)
		cmd.Env = env
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("berth %s: %v\n%s", strings.Join(args, " "), err, out.String())
		}
		return nil
	}
	for i := 0; ; i++ {
		if berth("workspace", "create", "-n", "bench") == nil {
			break
		}
		if i > 100 {
			return fmt.Errorf("the server did not start")
		}
		time.Sleep(100 * time.Millisecond)
	}
	dyn, err := dynamic.NewForConfig(cl.RESTConfig())
	if err != nil {
		return err
	}
	gone := func() (bool, error) {
		for _, k := range append(append([]installer.Kind{installer.KindPod}, installer.RemovalOrder...), installer.KindNamespace) {
			l, err := dyn.Resource(k.GVR).List(ctx, metav1.ListOptions{LabelSelector: installer.ManagedSelector})
			if err != nil {
				return false, err
			}
			if len(l.Items) > 0 {
				return false, nil
			}
		}
		return true, nil
	}
	var attach, detach []time.Duration
	for i := 0; i < rounds; i++ {
		name := fmt.Sprintf("bench-%d", i)
		t0 := time.Now()
		if err := berth("compute", "attach", "kubernetes", "-n", name, "--kubeconfig", cl.KubeconfigPath); err != nil {
			return err
		}
		attach = append(attach, time.Since(t0))
		t0 = time.Now()
		if err := berth("compute", "detach", "-n", name); err != nil {
			return err
		}
		for {
			ok, err := gone()
			if err != nil {
				return err
			}
			if ok {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		detach = append(detach, time.Since(t0))
		fmt.Fprintf(os.Stderr, "round %d: attach %s, detach %s\n", i+1, attach[i].Round(time.Millisecond), detach[i].Round(time.Millisecond))
	}
	ma, md := median(attach), median(detach)
	fmt.Printf("attach to Succeeded: median %s over %d rounds (reference system: about %s; %.0f× faster; target ≤ 5s: %s)\n",
		ma.Round(time.Millisecond), rounds, referenceAttach, float64(referenceAttach)/float64(ma), verdict(ma <= 5*time.Second))
	fmt.Printf("detach to gone:      median %s over %d rounds (target ≤ 5s: %s)\n", md.Round(time.Millisecond), rounds, verdict(md <= 5*time.Second))
	return nil
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "NOT met"
}

func median(d []time.Duration) time.Duration {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}
