// Package simcluster runs a simulated Kubernetes cluster for tests: a real
// control plane (etcd, kube-apiserver, kube-controller-manager,
// kube-scheduler at v1.37.2) with kwok standing in for the kubelets, as
// plain processes on 127.0.0.1, plus a fake load-balancer controller.
//
// Pods scheduled onto the cluster's nodes become Running and Ready with
// loopback IPs from a /20 of 127.16.0.0/12 (PodCIDR) picked at random for
// each cluster, so a test can listen on a pod's IP itself, and clusters of
// test packages running at once rarely hand out the same address. Services of type LoadBalancer get a loopback ingress address
// from 127.100.0.0/16, or 127.101.0.0/16 when annotated as internal. Nothing
// is ever sent to a non-loopback address.
//
// The binaries are built by hack/build-simcluster.sh into
// .cache/simcluster/bin (or found in Options.BinDir or
// $BERTH_SIMCLUSTER_BIN). Several clusters may run at once. Set
// BERTH_SIMCLUSTER_KEEP=1 to keep a cluster's folder (component logs in
// logs/) after Stop.
package simcluster

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"github.com/berth-ml/berth/internal/freeport"
	"github.com/berth-ml/berth/internal/testenv"
	"github.com/berth-ml/berth/internal/testenv/simcluster/kubelet"
	"io"
	"math/rand/v2"
	mathrand "math/rand/v2"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

const (
	// ServiceCIDR is the cluster's service IP range. It is only data: no
	// address in it is ever dialled.
	ServiceCIDR = "10.96.0.0/16"
	serviceIP   = "10.96.0.1"
	// PodCIDR is the range clusters' pod IPs come from (loopback); each
	// cluster gives its pods addresses from a /20 of it (Cluster.PodPrefix).
	PodCIDR = "127.16.0.0/12"
	// KwokNodeAnnotation marks the nodes kwok manages (value "fake").
	KwokNodeAnnotation = "kwok.x-k8s.io/node"

	// Version is the Kubernetes version the API server reports.
	Version = "v1.37.2"

	// BinEnv names the environment variable that can point at the folder of
	// binaries.
	BinEnv = "BERTH_SIMCLUSTER_BIN"
	// KeepEnv, set to 1, keeps a cluster's folder after Stop.
	KeepEnv = "BERTH_SIMCLUSTER_KEEP"

	mainModule = "github.com/berth-ml/berth"
	stagesFile = "kwok-stages.yaml"
	ownerFile  = "owner.pid"
)

var components = []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok"}

// NodeSpec describes a node of the simulated cluster. Empty fields take
// defaults: a generated name, 4 CPUs, 16Gi of memory and 110 pods.
type NodeSpec struct {
	Name   string
	CPU    string // a quantity: "4", "500m"
	Memory string // a quantity: "16Gi"
	Pods   string // the most pods the node takes
}

// Options configure Start.
type Options struct {
	// Nodes are created, and Ready, when Start returns. None means a
	// cluster without nodes (AddNode adds some later).
	Nodes []NodeSpec
	// BinDir holds the binaries; by default $BERTH_SIMCLUSTER_BIN, else
	// .cache/simcluster/bin in the main module's root. kwok-stages.yaml is
	// looked for there, then in its parent folder.
	BinDir string
	// Log, when set, receives simcluster's progress messages (not the
	// components' logs: see Cluster.Logs).
	Log io.Writer
	// Containers runs every pod's containers from their images through
	// podman and runc (package kubelet's Containers), with host networking
	// on the pod's loopback IP, and makes pods Ready from their readiness
	// probes instead of at once. The images must be in podman's storage
	// (kubelet.LoadImage); pods are never pulled from a registry.
	Containers bool

	logf func(format string, args ...any) // instead of Log, from StartT
}

// Nodes returns n node specs named kwok-node-1 … kwok-node-n with cpu CPUs
// each and the other defaults.
func Nodes(n int, cpu string) []NodeSpec {
	specs := make([]NodeSpec, n)
	for i := range specs {
		specs[i] = NodeSpec{Name: fmt.Sprintf("kwok-node-%d", i+1), CPU: cpu}
	}
	return specs
}

// Cluster is a running simulated cluster.
type Cluster struct {
	// KubeconfigPath is the admin kubeconfig file, inside Dir.
	KubeconfigPath string
	// Kubeconfig is that file's content.
	Kubeconfig []byte
	// Server is the API server's URL, https://127.0.0.1:PORT.
	Server string
	// AdminToken is a bearer token of user admin, in group system:masters.
	AdminToken string
	// Dir is the cluster's temporary folder, removed by Stop.
	Dir string
	// PodPrefix is the range this cluster's pods get IPs from.
	PodPrefix netip.Prefix
	// Kubelet runs the pods' containers when Options.Containers is set.
	Kubelet *kubelet.Containers

	logFn      func(format string, args ...any)
	pki        *pki
	restConfig *rest.Config
	client     kubernetes.Interface
	ports      map[string]int

	mu          sync.Mutex
	procs       []*process
	stopLB      context.CancelFunc
	lbDone      chan struct{}
	kubeletDone chan struct{}
	stopOnce    sync.Once
	podLock     *os.File // holds PodPrefix against other processes' clusters
	nodeSeq     int
}

// StartT starts a cluster for a test, which fails with the components' logs
// if the cluster does not start. The cluster is stopped when the test ends.
// Without opts.Log, progress goes to t.Log.
func StartT(t testing.TB, opts Options) *Cluster {
	t.Helper()
	testenv.SkipShort(t, "simulated cluster")
	if opts.Log == nil {
		opts.logf = func(format string, args ...any) {
			t.Helper()
			t.Logf(format, args...)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c, err := Start(ctx, opts)
	if err != nil {
		if c != nil {
			t.Fatalf("%v\n%s", err, c.Logs())
		}
		t.Fatal(err)
	}
	t.Cleanup(c.Stop)
	return c
}

// Start starts a cluster and returns once the API server is ready and the
// nodes of opts are Ready. ctx bounds the start only; the cluster runs until
// Stop. On error the returned Cluster, when not nil, is already stopped and
// its Logs tell what the components said.
func Start(ctx context.Context, opts Options) (*Cluster, error) {
	bin, stages, err := findBinaries(opts.BinDir)
	if err != nil {
		return nil, err
	}
	nodes, err := normalizeNodes(opts.Nodes, 0)
	if err != nil {
		return nil, err
	}
	logf := opts.logf
	if logf == nil {
		logf = func(format string, args ...any) {
			if opts.Log != nil {
				fmt.Fprintf(opts.Log, format+"\n", args...)
			}
		}
	}
	removeStale(logf)
	if opts.Containers {
		if err := kubelet.Available(); err != nil {
			return nil, fmt.Errorf("simcluster: containers: %w", err)
		}
	}
	for attempt := 1; ; attempt++ {
		c, err := start(ctx, logf, bin, stages, nodes, opts.Containers)
		if err == nil {
			return c, nil
		}
		// Free ports are picked before the components bind them: another
		// process may take one in between.
		if attempt < 3 && c != nil && ctx.Err() == nil && strings.Contains(c.Logs(), "address already in use") {
			c.logf("simcluster: a port was taken, starting again: %v", err)
			continue
		}
		return c, err
	}
}

func start(ctx context.Context, logf func(string, ...any), bin, stages string, nodes []NodeSpec, containers bool) (c *Cluster, err error) {
	begin := time.Now()
	dir, err := os.MkdirTemp("", "simcluster-")
	if err != nil {
		return nil, fmt.Errorf("simcluster: %w", err)
	}
	c = &Cluster{Dir: dir, logFn: logf, nodeSeq: len(nodes)}
	if c.PodPrefix, c.podLock, err = claimPodPrefix(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("simcluster: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, ownerFile), []byte(strconv.Itoa(os.Getpid())), 0o600); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("simcluster: %w", err)
	}
	defer func() {
		if err != nil {
			err = fmt.Errorf("simcluster: %w", err)
			c.Stop()
		}
	}()
	logDir := filepath.Join(dir, "logs")
	for _, d := range []string{logDir, filepath.Join(dir, "kwok-home")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return c, err
		}
	}

	ports, err := freeport.Ports(6)
	if err != nil {
		return c, err
	}
	c.ports = map[string]int{
		"etcd": ports[0], "etcd-peer": ports[1], "kube-apiserver": ports[2],
		"kube-controller-manager": ports[3], "kube-scheduler": ports[4], "kwok-server": ports[5],
	}
	if c.pki, err = writePKI(dir); err != nil {
		return c, err
	}
	c.AdminToken = randomToken()
	tokens := filepath.Join(dir, "tokens.csv")
	if err := os.WriteFile(tokens, []byte(c.AdminToken+`,admin,admin,"system:masters"`+"\n"), 0o600); err != nil {
		return c, err
	}
	c.Server = fmt.Sprintf("https://127.0.0.1:%d", c.ports["kube-apiserver"])
	c.Kubeconfig = kubeconfig(c.Server, c.pki.caPEM, c.AdminToken)
	c.KubeconfigPath = filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(c.KubeconfigPath, c.Kubeconfig, 0o600); err != nil {
		return c, err
	}
	c.restConfig = &rest.Config{
		Host:            c.Server,
		BearerToken:     c.AdminToken,
		TLSClientConfig: rest.TLSClientConfig{CAData: c.pki.caPEM},
		QPS:             100,
		Burst:           200,
	}
	if c.client, err = kubernetes.NewForConfig(c.restConfig); err != nil {
		return c, err
	}
	env := componentEnv()

	// etcd
	etcdURL := fmt.Sprintf("http://127.0.0.1:%d", c.ports["etcd"])
	peerURL := fmt.Sprintf("http://127.0.0.1:%d", c.ports["etcd-peer"])
	if err := c.run("etcd", bin, logDir, env,
		"--name=simcluster",
		"--data-dir="+filepath.Join(dir, "etcd"),
		"--listen-client-urls="+etcdURL,
		"--advertise-client-urls="+etcdURL,
		"--listen-peer-urls="+peerURL,
		"--initial-advertise-peer-urls="+peerURL,
		"--initial-cluster=simcluster="+peerURL,
		"--log-level=warn",
		"--unsafe-no-fsync",
	); err != nil {
		return c, err
	}
	plain := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{}}
	defer plain.CloseIdleConnections()
	if err := c.waitFor(ctx, 30*time.Second, "etcd to be healthy", func() (bool, error) {
		return httpOK(plain, etcdURL+"/health", "")
	}); err != nil {
		return c, err
	}

	// kube-apiserver
	if err := c.run("kube-apiserver", bin, logDir, env,
		"--etcd-servers="+etcdURL,
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		"--secure-port="+strconv.Itoa(c.ports["kube-apiserver"]),
		"--cert-dir="+filepath.Join(dir, "kube-apiserver"),
		"--tls-cert-file="+c.pki.certFile,
		"--tls-private-key-file="+c.pki.keyFile,
		"--client-ca-file="+c.pki.caFile,
		// Only so that the other components find what they look for in
		// kube-system/extension-apiserver-authentication: no front proxy
		// holds a certificate of this CA, whose key is gone.
		"--requestheader-client-ca-file="+c.pki.caFile,
		"--requestheader-allowed-names=front-proxy-client",
		"--requestheader-username-headers=X-Remote-User",
		"--requestheader-group-headers=X-Remote-Group",
		"--requestheader-extra-headers-prefix=X-Remote-Extra-",
		"--token-auth-file="+tokens,
		"--authorization-mode=RBAC",
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file="+c.pki.saKey,
		"--service-account-signing-key-file="+c.pki.saKey,
		"--service-cluster-ip-range="+ServiceCIDR,
		"--endpoint-reconciler-type=none",
		"--allow-privileged=true",
		"--enable-priority-and-fairness=false",
		"--profiling=false",
		// Nodes' Hostname addresses (their names) resolve nowhere: pod
		// logs are read from kwok's server on the InternalIP.
		"--kubelet-preferred-address-types=InternalIP",
	); err != nil {
		return c, err
	}
	tlsClient, err := c.httpClient()
	if err != nil {
		return c, err
	}
	defer tlsClient.CloseIdleConnections()
	if err := c.waitFor(ctx, 90*time.Second, "kube-apiserver to be ready", func() (bool, error) {
		return httpOK(tlsClient, c.Server+"/readyz", c.AdminToken)
	}); err != nil {
		return c, err
	}
	c.logf("simcluster: kube-apiserver ready at %s after %s", c.Server, time.Since(begin).Round(time.Millisecond))

	// The rest need the API server only.
	common := []string{
		"--kubeconfig=" + c.KubeconfigPath,
		"--authentication-kubeconfig=" + c.KubeconfigPath,
		"--authorization-kubeconfig=" + c.KubeconfigPath,
		"--bind-address=127.0.0.1",
		"--leader-elect=false",
		"--profiling=false",
		// Client-side rate limits (20/s by default) slow the start most.
		"--kube-api-qps=500",
		"--kube-api-burst=1000",
	}
	if err := c.run("kube-controller-manager", bin, logDir, env, slices.Concat(common, []string{
		"--secure-port=" + strconv.Itoa(c.ports["kube-controller-manager"]),
		"--cert-dir=" + filepath.Join(dir, "kube-controller-manager"),
		"--controllers=*,-nodeipam",
		"--use-service-account-credentials=true",
		"--service-account-private-key-file=" + c.pki.saKey,
		"--root-ca-file=" + c.pki.caFile,
		"--cluster-name=simcluster",
	})...); err != nil {
		return c, err
	}
	if err := c.run("kube-scheduler", bin, logDir, env, slices.Concat(common, []string{
		"--secure-port=" + strconv.Itoa(c.ports["kube-scheduler"]),
		"--cert-dir=" + filepath.Join(dir, "kube-scheduler"),
	})...); err != nil {
		return c, err
	}
	if containers {
		// Pods become Ready when their containers' probes pass, which the
		// container kubelet reports: kwok only gives them IPs.
		if stages, err = writeContainerStages(stages, dir); err != nil {
			return c, err
		}
	}
	kwokArgs := []string{
		"--kubeconfig=" + c.KubeconfigPath,
		"--config=" + stages,
		"--manage-all-nodes=false",
		"--manage-nodes-with-annotation-selector=" + KwokNodeAnnotation + "=fake",
		"--cidr=" + c.PodPrefix.Addr().Next().String() + "/20",
		"--node-ip=127.0.0.1",
	}
	if containers {
		// Pod logs: kwok serves the kubelet's containerLogs from the
		// files its Logs objects name, which the container kubelet
		// writes (podman's k8s-file logs); the API server reads them
		// there as from a node's kubelet.
		if err := c.installLogsCRD(ctx); err != nil {
			return c, err
		}
		port := strconv.Itoa(c.ports["kwok-server"])
		kwokArgs = append(kwokArgs, "--enable-crds=Logs", "--server-address=127.0.0.1:"+port, "--node-port="+port,
			"--tls-cert-file="+c.pki.certFile, "--tls-private-key-file="+c.pki.keyFile)
	}
	kwokEnv := slices.Concat(env, []string{"HOME=" + filepath.Join(dir, "kwok-home")})
	if err := c.run("kwok", bin, logDir, kwokEnv, kwokArgs...); err != nil {
		return c, err
	}

	lbCtx, stopLB := context.WithCancel(context.Background())
	lb := newLBController(c.client, c.logf)
	if containers {
		// Load balancers really forward here: start anywhere in the
		// ranges, and skip addresses another cluster forwards on.
		lb.next = [2]uint32{1 + rand.Uint32N(0xf000), 1 + rand.Uint32N(0xf000)}
		lb.bindable = bindable
	}
	c.mu.Lock()
	c.stopLB, c.lbDone = stopLB, make(chan struct{})
	c.mu.Unlock()
	go func() {
		defer close(c.lbDone)
		lb.run(lbCtx)
	}()
	if containers {
		kl := &kubelet.Containers{Client: c.client, APIServer: strings.TrimPrefix(c.Server, "https://"),
			Dir: filepath.Join(dir, "pods"), Logf: c.logf}
		c.Kubelet = kl
		c.mu.Lock()
		c.kubeletDone = make(chan struct{})
		c.mu.Unlock()
		fwd := &lbForwarder{client: c.client, lb: lb, logf: c.logf}
		go func() {
			defer close(c.kubeletDone)
			var wg sync.WaitGroup
			wg.Go(func() { fwd.run(lbCtx) })
			kl.Run(lbCtx)
			wg.Wait()
		}()
	}

	for _, n := range nodes {
		if err := c.createNode(ctx, n); err != nil {
			return c, err
		}
	}
	insecure := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, // their self-signed certificates, on 127.0.0.1
	}}
	defer insecure.CloseIdleConnections()
	if err := c.waitFor(ctx, 90*time.Second, "the cluster to be ready", func() (bool, error) {
		if !lb.informer.HasSynced() {
			return false, nil
		}
		for _, comp := range []string{"kube-controller-manager", "kube-scheduler"} {
			if ok, err := httpOK(insecure, fmt.Sprintf("https://127.0.0.1:%d/healthz", c.ports[comp]), ""); !ok {
				return false, err
			}
		}
		// Pods need their namespace's default service account.
		if _, err := c.client.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{}); err != nil {
			return false, nil
		}
		return c.nodesReady(ctx, nodes)
	}); err != nil {
		return c, err
	}
	c.logf("simcluster: cluster with %d nodes ready after %s; KUBECONFIG=%s", len(nodes), time.Since(begin).Round(time.Millisecond), c.KubeconfigPath)
	return c, nil
}

// run starts a component and records it for Stop.
func (c *Cluster) run(name, bin, logDir string, env []string, args ...string) error {
	p, err := startProcess(name, filepath.Join(bin, name), logDir, env, args...)
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.procs = append(c.procs, p)
	c.mu.Unlock()
	return nil
}

// waitFor polls cond until it holds, failing when timeout passes, ctx is
// done or a component has exited.
func (c *Cluster) waitFor(ctx context.Context, timeout time.Duration, what string, cond func() (bool, error)) error {
	deadline := time.Now().Add(timeout)
	var last error
	for {
		if err := c.exited(); err != nil {
			return fmt.Errorf("waiting for %s: %w", what, err)
		}
		ok, err := cond()
		if ok {
			return nil
		}
		if err != nil {
			last = err
		}
		if time.Now().After(deadline) {
			if last != nil {
				return fmt.Errorf("timed out after %s waiting for %s: %v", timeout, what, last)
			}
			return fmt.Errorf("timed out after %s waiting for %s", timeout, what)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w", what, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// exited returns an error when a component has exited.
func (c *Cluster) exited() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, p := range c.procs {
		if gone, err := p.exited(); gone {
			return err
		}
	}
	return nil
}

func (c *Cluster) httpClient() (*http.Client, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(c.pki.caPEM) {
		return nil, errors.New("bad CA certificate")
	}
	return &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool},
	}}, nil
}

// httpOK tells whether GET url answers 200. Connection errors are not
// errors: the server is not up yet.
func httpOK(client *http.Client, url, token string) (bool, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return false, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		return false, nil
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return false, fmt.Errorf("GET %s: %s: %s", url, resp.Status, strings.TrimSpace(string(body)))
	}
	return true, nil
}

// RESTConfig returns a new admin client configuration for the cluster.
func (c *Cluster) RESTConfig() *rest.Config {
	return rest.CopyConfig(c.restConfig)
}

// Client returns an admin client of the cluster.
func (c *Cluster) Client() kubernetes.Interface {
	return c.client
}

// Stop kills every component, stops the load-balancer controller and
// removes the cluster's folder. It may be called more than once, and on a
// cluster whose start failed.
func (c *Cluster) Stop() {
	if c == nil {
		return
	}
	c.stopOnce.Do(func() {
		c.mu.Lock()
		procs := append([]*process(nil), c.procs...)
		stopLB, lbDone, kubeletDone := c.stopLB, c.lbDone, c.kubeletDone
		c.mu.Unlock()
		if stopLB != nil {
			stopLB()
		}
		if kubeletDone != nil {
			// The containers go before the API server their kubelet reads.
			select {
			case <-kubeletDone:
			case <-time.After(30 * time.Second):
			}
		}
		// All at once: SIGKILL, nothing to shut down gracefully.
		var wg sync.WaitGroup
		for i := len(procs) - 1; i >= 0; i-- {
			wg.Go(procs[i].kill)
		}
		wg.Wait()
		if lbDone != nil {
			select {
			case <-lbDone:
			case <-time.After(10 * time.Second):
			}
		}
		if c.podLock != nil {
			c.podLock.Close() // releases the flock
		}
		if c.Dir == "" {
			return
		}
		if os.Getenv(KeepEnv) == "1" {
			os.Remove(filepath.Join(c.Dir, ownerFile)) // not stale: kept on purpose
			c.logf("simcluster: kept %s", c.Dir)
			return
		}
		if err := os.RemoveAll(c.Dir); err != nil {
			c.logf("simcluster: %v", err)
		}
	})
}

// logsCRD is kwok's Logs resource (kwok.x-k8s.io/v1alpha1), its schema
// left open.
const logsCRD = `{"apiVersion":"apiextensions.k8s.io/v1","kind":"CustomResourceDefinition","metadata":{"name":"logs.kwok.x-k8s.io"},
"spec":{"group":"kwok.x-k8s.io","scope":"Namespaced","names":{"kind":"Logs","listKind":"LogsList","plural":"logs","singular":"logs"},
"versions":[{"name":"v1alpha1","served":true,"storage":true,"subresources":{"status":{}},
"schema":{"openAPIV3Schema":{"type":"object","x-kubernetes-preserve-unknown-fields":true}}}]}}`

// installLogsCRD installs kwok's Logs resource and waits until it is served.
func (c *Cluster) installLogsCRD(ctx context.Context) error {
	rc := c.client.Discovery().RESTClient()
	if err := rc.Post().AbsPath("/apis/apiextensions.k8s.io/v1/customresourcedefinitions").Body([]byte(logsCRD)).Do(ctx).Error(); err != nil {
		return fmt.Errorf("install kwok's Logs resource: %w", err)
	}
	return c.waitFor(ctx, 30*time.Second, "kwok's Logs resource to be served", func() (bool, error) {
		return rc.Get().AbsPath("/apis/kwok.x-k8s.io/v1alpha1/logs").Do(ctx).Error() == nil, nil
	})
}

// Logs returns the last lines each component wrote, for test failures.
func (c *Cluster) Logs() string {
	if c == nil {
		return ""
	}
	c.mu.Lock()
	procs := append([]*process(nil), c.procs...)
	c.mu.Unlock()
	var b strings.Builder
	for _, p := range procs {
		state := "running"
		if gone, err := p.exited(); gone {
			state = err.Error()
		}
		fmt.Fprintf(&b, "===== %s (pid %d, %s) =====\n", p.name, p.pid(), state)
		b.WriteString(lastLines(p.tail.String(), 40))
		if !strings.HasSuffix(b.String(), "\n") {
			b.WriteByte('\n')
		}
	}
	return b.String()
}

func lastLines(s string, n int) string {
	lines := strings.SplitAfter(s, "\n")
	if len(lines) > 0 && lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "")
}

func (c *Cluster) logf(format string, args ...any) {
	if c.logFn != nil {
		c.logFn(format, args...)
	}
}

// kubeconfig returns a kubeconfig for user admin with token.
func kubeconfig(server string, ca []byte, token string) []byte {
	return fmt.Appendf(nil, `apiVersion: v1
kind: Config
clusters:
- name: simcluster
  cluster:
    server: %s
    certificate-authority-data: %s
users:
- name: admin
  user:
    token: %s
contexts:
- name: simcluster
  context:
    cluster: simcluster
    user: admin
current-context: simcluster
`, server, base64.StdEncoding.EncodeToString(ca), token)
}

// componentEnv is the components' environment: this process' without what
// would point them elsewhere.
func componentEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if name == "KUBECONFIG" || name == "HOME" || strings.HasPrefix(name, "ETCD_") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

// removeStale removes the folders of clusters whose process is gone
// without a Stop (killed, say): Pdeathsig ended their components, but not
// their files.
func removeStale(logf func(string, ...any)) {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), "simcluster-*"))
	for _, d := range dirs {
		data, err := os.ReadFile(filepath.Join(d, ownerFile))
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
		if err != nil || pid <= 0 || pid == os.Getpid() {
			continue
		}
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			if os.RemoveAll(d) == nil {
				logf("simcluster: removed %s, left by process %d", d, pid)
			}
		}
	}
}

// findBinaries returns the folder of the binaries and the kwok stages file.
func findBinaries(binDir string) (bin, stages string, err error) {
	hint := "run hack/build-simcluster.sh from the repository's root"
	switch {
	case binDir != "":
	case os.Getenv(BinEnv) != "":
		binDir = os.Getenv(BinEnv)
	default:
		root, err := moduleRoot()
		if err != nil {
			return "", "", fmt.Errorf("simcluster: %v; set %s or %s", err, BinEnv, hint)
		}
		binDir = filepath.Join(root, ".cache", "simcluster", "bin")
	}
	if binDir, err = filepath.Abs(binDir); err != nil {
		return "", "", err
	}
	for _, name := range components {
		if fi, err := os.Stat(filepath.Join(binDir, name)); err != nil || fi.IsDir() {
			return "", "", fmt.Errorf("simcluster: no %s binary in %s: %s", name, binDir, hint)
		}
	}
	for _, d := range []string{binDir, filepath.Dir(binDir)} {
		if _, err := os.Stat(filepath.Join(d, stagesFile)); err == nil {
			return binDir, filepath.Join(d, stagesFile), nil
		}
	}
	return "", "", fmt.Errorf("simcluster: no %s in %s or its parent: %s", stagesFile, binDir, hint)
}

// moduleRoot walks up from the working directory to the main module's
// go.mod.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if f, err := os.Open(filepath.Join(dir, "go.mod")); err == nil {
			sc := bufio.NewScanner(f)
			for sc.Scan() {
				fields := strings.Fields(sc.Text())
				if len(fields) >= 2 && fields[0] == "module" {
					if strings.Trim(fields[1], `"`) == mainModule {
						f.Close()
						return dir, nil
					}
					break
				}
			}
			f.Close()
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod of %s above the working directory", mainModule)
		}
		dir = parent
	}
}

// claimPodPrefix picks one of the 256 /20s of PodCIDR that no other
// cluster on this machine holds, and holds it with an flock on a file
// under the temp folder until Stop (or the process's death) releases it.
// Chosen at random alone, two of the several clusters a parallel test run
// starts did get the same range, and their pods' servers the same address.
func claimPodPrefix() (netip.Prefix, *os.File, error) {
	dir := filepath.Join(os.TempDir(), "berth-simcluster-pod-ranges")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return netip.Prefix{}, nil, err
	}
	for _, n := range mathrand.Perm(256) {
		f, err := os.OpenFile(filepath.Join(dir, strconv.Itoa(n)), os.O_CREATE|os.O_RDWR, 0o600)
		if err != nil {
			return netip.Prefix{}, nil, err
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			f.Close()
			continue
		}
		return podPrefix(n), f, nil
	}
	return netip.Prefix{}, nil, fmt.Errorf("all 256 pod ranges of %s are held by other clusters (locks in %s)", PodCIDR, dir)
}

// podPrefix is the n-th /20 of PodCIDR.
func podPrefix(n int) netip.Prefix {
	b := netip.MustParsePrefix(PodCIDR).Addr().As4()
	b[1] += byte(n / 16)
	b[2] = byte(n%16) * 16
	return netip.PrefixFrom(netip.AddrFrom4(b), 20)
}
