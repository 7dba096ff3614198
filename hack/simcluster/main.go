// Command simcluster runs a simulated Kubernetes cluster (see
// internal/testenv/simcluster) until interrupted:
//
//	go run ./hack/simcluster up --nodes 3 --cpu 4 [--memory 16Gi] [--pods 110] [--containers]
//
// With --containers, pods run from their images under podman and runc (load
// Berth's image first: podman --storage-driver vfs load -i
// .cache/image/berth.tar), become Ready from their probes, and Services of
// type LoadBalancer forward from their loopback address to Ready pods.
//
// It prints the absolute path of the cluster's admin kubeconfig on stdout
// (export KUBECONFIG=…), logs to stderr, and on SIGINT or SIGTERM stops the
// cluster, removes its files and exits 0. Build the binaries first with
// hack/build-simcluster.sh.
//
// Under go run, note that go run ignores SIGINT itself (it expects the
// terminal's Ctrl-C to reach its child too): signal the process group, or
// this command's own process. SIGTERM to go run does stop the cluster: this
// command asks for SIGTERM when its parent dies.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/berth-ml/berth/internal/testenv/simcluster"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: simcluster up [--nodes N] [--cpu C] [--memory M] [--pods P] [--bin-dir DIR] [--containers]")
}

func run(args []string) int {
	// Stop too when the parent (go run, a script) is killed.
	_, _, _ = syscall.RawSyscall(syscall.SYS_PRCTL, syscall.PR_SET_PDEATHSIG, uintptr(syscall.SIGTERM), 0)
	if len(args) == 0 || args[0] != "up" {
		usage()
		return 2
	}
	fs := flag.NewFlagSet("simcluster up", flag.ContinueOnError)
	nodes := fs.Int("nodes", 1, "number of nodes")
	cpu := fs.String("cpu", "4", "CPUs of each node")
	memory := fs.String("memory", "16Gi", "memory of each node")
	pods := fs.String("pods", "110", "most pods on each node")
	binDir := fs.String("bin-dir", "", "folder of the binaries (default $"+simcluster.BinEnv+" or .cache/simcluster/bin)")
	containers := fs.Bool("containers", false, "run pods from their images through podman and runc (images must be loaded), with forwarding load balancers")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	if fs.NArg() != 0 || *nodes < 0 {
		usage()
		return 2
	}
	specs := simcluster.Nodes(*nodes, *cpu)
	for i := range specs {
		specs[i].Memory = *memory
		specs[i].Pods = *pods
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	startCtx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	c, err := simcluster.Start(startCtx, simcluster.Options{Nodes: specs, BinDir: *binDir, Log: os.Stderr, Containers: *containers})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		if c != nil {
			fmt.Fprint(os.Stderr, c.Logs())
		}
		if ctx.Err() != nil {
			return 0 // interrupted while starting
		}
		return 1
	}
	defer c.Stop()
	fmt.Println(c.KubeconfigPath)
	fmt.Fprintf(os.Stderr, "simcluster: up; export KUBECONFIG=%s; interrupt (Ctrl-C) to stop\n", c.KubeconfigPath)
	<-ctx.Done()
	fmt.Fprintln(os.Stderr, "simcluster: stopping")
	c.Stop()
	fmt.Fprintln(os.Stderr, "simcluster: stopped")
	return 0
}
