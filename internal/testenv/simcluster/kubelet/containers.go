package kubelet

// Containers plays the kubelet of every node of a simulated cluster with
// real containers: podman and runc run each pod's containers from their
// images, with host networking on the pod's loopback IP. It provides what
// a kubelet provides (docs/images.md, "The simulated cluster runs pods
// from images"): the env of the pod spec (values, field and key
// references, $(VAR) expansion), the pod's volumes (emptyDir, Secret,
// ConfigMap and projected service-account tokens, the API server's CA and
// the downward API) at their mount paths, init containers in order before
// the containers, restarts with back-off, and readiness from each
// container's probe, which it writes to the pod's status (the cluster's
// kwok stages leave containers not ready for it).

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	authv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"
)

// PodmanFlags are the global flags that make podman work on these
// machines: runc (crun fails on hybrid cgroups), cgroupfs and the vfs
// storage driver.
var PodmanFlags = []string{"--runtime", "runc", "--cgroup-manager", "cgroupfs", "--storage-driver", "vfs"}

// ListenHostEnv tells Berth's servers which address stands for "all
// addresses" in their listen flags. Pods with host networking share the
// machine's addresses, so Containers sets it to the pod's IP: each pod
// then listens on its own loopback IP, as it would in its own network
// namespace.
const ListenHostEnv = "BERTH_LISTEN_HOST"

// OwnerLabel labels every container Containers starts with the PID of the
// process that started it, so that containers a crashed test left behind
// are removed by the next one.
const OwnerLabel = "dev.berth.simcluster.owner"

// Containers runs pods' containers through podman.
type Containers struct {
	Client kubernetes.Interface
	// APIServer is the API server's host:port, given to containers as
	// KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT (the cluster's
	// service IP is not routable here).
	APIServer string
	// Dir holds the pods' volumes.
	Dir string
	// Podman is the podman binary ("podman" on PATH by default).
	Podman string
	// Logf reports what happens to pods (t.Logf in tests); may be nil.
	Logf func(format string, args ...any)

	mu      sync.Mutex
	pods    map[podUID]*runningPod
	stopped bool
	wg      sync.WaitGroup
	// stopping counts, per IP, the pods gone from the API whose containers
	// are still being removed; held marks the pods waiting for their IP
	// to be free (so that the wait is logged once per pod).
	stopping map[string]int
	held     map[podUID]bool
}

// podUID identifies a pod: a pod deleted and created again under its name
// is another pod.
type podUID string

type runningPod struct {
	name, namespace string
	ip              string
	movedLogged     bool // its IP changed in the API (logged once)
	cancel          context.CancelFunc
	done            chan struct{}
}

// Available reports whether podman and runc can run containers here.
func Available() error {
	for _, bin := range []string{"podman", "runc"} {
		if _, err := exec.LookPath(bin); err != nil {
			return fmt.Errorf("%s is not installed (apt-get install -y podman runc): %w", bin, err)
		}
	}
	return nil
}

func (k *Containers) logf(format string, args ...any) {
	if k.Logf != nil {
		k.Logf(format, args...)
	}
}

func (k *Containers) podman(ctx context.Context, args ...string) *exec.Cmd {
	bin := k.Podman
	if bin == "" {
		bin = "podman"
	}
	return exec.CommandContext(ctx, bin, append(append([]string{}, PodmanFlags...), args...)...)
}

// ContainerName is the podman name of a pod's container.
func ContainerName(p *corev1.Pod, container string) string {
	uid := string(p.UID)
	if len(uid) > 8 {
		uid = uid[:8]
	}
	return fmt.Sprintf("k8s_%s_%s_%s_%s", container, p.Name, p.Namespace, uid)
}

// Run follows the cluster's pods until ctx ends, then removes every
// container it started.
func (k *Containers) Run(ctx context.Context) {
	k.removeOrphans()
	defer k.stopAll()
	for ctx.Err() == nil {
		pods, err := k.Client.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
		if err == nil {
			present := map[podUID]bool{}
			for i := range pods.Items {
				p := &pods.Items[i]
				if p.DeletionTimestamp != nil || p.Status.PodIP == "" || p.Spec.NodeName == "" ||
					p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
					continue
				}
				present[podUID(p.UID)] = true
				k.start(ctx, p.DeepCopy())
			}
			k.stopGone(present)
		}
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func (k *Containers) start(ctx context.Context, p *corev1.Pod) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.pods == nil {
		k.pods, k.held, k.stopping = map[podUID]*runningPod{}, map[podUID]bool{}, map[string]int{}
	}
	if rp, ok := k.pods[podUID(p.UID)]; ok || k.stopped {
		if ok && rp.ip != p.Status.PodIP && !rp.movedLogged {
			rp.movedLogged = true
			k.logf("kubelet: pod %s/%s changed IP from %s to %s after its containers started", p.Namespace, p.Name, rp.ip, p.Status.PodIP)
		}
		return
	}
	// As a node's network would, never give one address to two pods: a
	// deleted pod's IP may come back before its containers are removed
	// (they would keep answering its probes and load balancer).
	if owner := k.ipOwner(p.Status.PodIP); owner != "" {
		if !k.held[podUID(p.UID)] {
			k.held[podUID(p.UID)] = true
			k.logf("kubelet: pod %s/%s waits: its IP %s is still %s's", p.Namespace, p.Name, p.Status.PodIP, owner)
		}
		return
	}
	delete(k.held, podUID(p.UID))
	pctx, cancel := context.WithCancel(ctx)
	rp := &runningPod{name: p.Name, namespace: p.Namespace, ip: p.Status.PodIP, cancel: cancel, done: make(chan struct{})}
	k.pods[podUID(p.UID)] = rp
	k.wg.Add(1)
	go func() {
		defer k.wg.Done()
		defer close(rp.done)
		k.runPod(pctx, p)
	}()
}

// ipOwner names the pod whose containers still use ip, if any; k.mu is held.
func (k *Containers) ipOwner(ip string) string {
	for _, rp := range k.pods {
		if rp.ip == ip {
			return "pod " + rp.namespace + "/" + rp.name
		}
	}
	if k.stopping[ip] > 0 {
		return "a deleted pod"
	}
	return ""
}

func (k *Containers) stopGone(present map[podUID]bool) {
	k.mu.Lock()
	var gone []*runningPod
	for uid, rp := range k.pods {
		if !present[uid] {
			gone = append(gone, rp)
			delete(k.pods, uid)
			k.stopping[rp.ip]++
		}
	}
	for uid := range k.held {
		if !present[uid] {
			delete(k.held, uid)
		}
	}
	k.mu.Unlock()
	for _, rp := range gone {
		rp.cancel()
		<-rp.done
		k.mu.Lock()
		if k.stopping[rp.ip]--; k.stopping[rp.ip] <= 0 {
			delete(k.stopping, rp.ip)
		}
		k.mu.Unlock()
		k.logf("kubelet: pod %s/%s (%s) is gone: its containers are removed", rp.namespace, rp.name, rp.ip)
	}
}

func (k *Containers) stopAll() {
	k.mu.Lock()
	k.stopped = true
	pods := k.pods
	k.pods = nil
	k.mu.Unlock()
	for _, rp := range pods {
		rp.cancel()
	}
	k.wg.Wait()
}

// removeOrphans removes containers whose owner process has ended.
func (k *Containers) removeOrphans() {
	out, err := k.podman(context.Background(), "ps", "-a", "--filter", "label="+OwnerLabel, "--format", "{{.ID}} {{index .Labels \""+OwnerLabel+"\"}}").Output()
	if err != nil {
		return
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		id, owner, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		pid, err := strconv.Atoi(owner)
		if err == nil && pid > 0 && syscall.Kill(pid, 0) == nil {
			continue
		}
		k.podman(context.Background(), "rm", "--force", "--ignore", "--time", "0", id).Run()
	}
}

// runPod runs one pod until ctx ends: volumes, init containers, then the
// containers, each restarted when it exits.
func (k *Containers) runPod(ctx context.Context, p *corev1.Pod) {
	root := k.podDir(p)
	defer os.RemoveAll(root)
	var names []string
	defer func() {
		if len(names) > 0 {
			k.podman(context.Background(), append([]string{"rm", "--force", "--ignore", "--time", "1"}, names...)...).Run()
		}
	}()
	vols, err := k.volumes(ctx, p, root)
	if err != nil {
		k.waiting(ctx, p, false, p.Spec.Containers[0].Name, "CreateContainerConfigError", err.Error())
		k.logf("kubelet: pod %s/%s: %v", p.Namespace, p.Name, err)
		return
	}
	k.publishLogs(ctx, p)
	for _, c := range p.Spec.InitContainers {
		name := ContainerName(p, c.Name)
		names = append(names, name)
		for attempt := 0; ; attempt++ {
			code, err := k.runOnce(ctx, p, &c, vols, name)
			if ctx.Err() != nil {
				return
			}
			if err == nil && code == 0 {
				k.terminated(ctx, p, c.Name, 0, "Completed", attempt)
				break
			}
			msg := k.tail(name)
			if err != nil {
				msg = err.Error()
			}
			k.logf("kubelet: init container %s of pod %s/%s exited %d: %s", c.Name, p.Namespace, p.Name, code, msg)
			k.terminated(ctx, p, c.Name, code, "Error", attempt+1)
			if !sleep(ctx, backoff(attempt)) {
				return
			}
		}
	}
	var wg sync.WaitGroup
	for i := range p.Spec.Containers {
		c := &p.Spec.Containers[i]
		name := ContainerName(p, c.Name)
		names = append(names, name)
		wg.Add(1)
		go func() {
			defer wg.Done()
			k.keepRunning(ctx, p, c, vols, name)
		}()
	}
	wg.Wait()
}

// keepRunning runs a container, probes its readiness and restarts it with
// back-off whenever it exits, until ctx ends.
func (k *Containers) keepRunning(ctx context.Context, p *corev1.Pod, c *corev1.Container, vols map[string]mount, name string) {
	for restarts := 0; ctx.Err() == nil; restarts++ {
		k.podman(context.Background(), "rm", "--force", "--ignore", "--time", "0", name).Run()
		args, err := k.runArgs(p, c, vols, name, true)
		if err != nil {
			k.waiting(ctx, p, false, c.Name, "CreateContainerConfigError", err.Error())
			return
		}
		out, err := k.podman(ctx, args...).CombinedOutput()
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			reason := "RunContainerError"
			if strings.Contains(string(out), "image not known") || strings.Contains(string(out), "short-name") {
				reason = "ErrImageNeverPull"
			}
			k.logf("kubelet: container %s of pod %s/%s did not start: %s", c.Name, p.Namespace, p.Name, out)
			k.waiting(ctx, p, false, c.Name, reason, strings.TrimSpace(string(out)))
			if !sleep(ctx, backoff(restarts)) {
				return
			}
			continue
		}
		id := strings.TrimSpace(string(out))
		k.running(ctx, p, c.Name, id, restarts, false)
		exited := make(chan exit, 1)
		go func() {
			k.podman(context.Background(), "wait", name).Run()
			exited <- k.inspectExit(name)
		}()
		ready := false
		tick := time.NewTicker(probePeriod(c.ReadinessProbe))
		probeOnce := func() {
			ok := k.probe(ctx, p, c)
			if ok != ready {
				ready = ok
				k.running(ctx, p, c.Name, id, restarts, ready)
				k.logf("kubelet: container %s of pod %s/%s (%s) ready: %v", c.Name, p.Namespace, p.Name, p.Status.PodIP, ready)
			}
		}
		probeOnce()
		var code exit
	wait:
		for {
			select {
			case <-ctx.Done():
				tick.Stop()
				return
			case code = <-exited:
				break wait
			case <-tick.C:
				probeOnce()
			}
		}
		tick.Stop()
		if ctx.Err() != nil {
			return
		}
		logTail := k.tail(name)
		k.logf("kubelet: container %s of pod %s/%s exited with code %d (OOM killed: %v):\n%s", c.Name, p.Namespace, p.Name, code.code, code.oom, logTail)
		msg := ""
		if c.TerminationMessagePolicy == corev1.TerminationMessageFallbackToLogsOnError && code.code != 0 {
			// As a kubelet does: the log's end (at most 2 KB) stands
			// for the termination message the container did not write.
			msg = logTail[max(0, len(logTail)-2048):]
		}
		k.crashed(ctx, p, c.Name, code, restarts+1, msg)
		if !sleep(ctx, backoff(restarts)) {
			return
		}
	}
}

// runOnce runs an init container to its end.
func (k *Containers) runOnce(ctx context.Context, p *corev1.Pod, c *corev1.Container, vols map[string]mount, name string) (int, error) {
	k.podman(context.Background(), "rm", "--force", "--ignore", "--time", "0", name).Run()
	args, err := k.runArgs(p, c, vols, name, false)
	if err != nil {
		return -1, err
	}
	k.waiting(ctx, p, true, c.Name, "PodInitializing", "")
	err = k.podman(ctx, args...).Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode(), nil
	}
	return 0, err
}

func (k *Containers) podDir(p *corev1.Pod) string {
	return filepath.Join(k.Dir, p.Namespace+"_"+p.Name+"_"+string(p.UID))
}

// logFile is where a pod's container logs (its previous run's, when
// previous).
func (k *Containers) logFile(p *corev1.Pod, container string, previous bool) string {
	name := container + ".log"
	if previous {
		name = container + ".previous.log"
	}
	return filepath.Join(k.podDir(p), "logs", name)
}

// publishLogs tells kwok, which answers the API server's requests for
// pod logs as a node's kubelet, where the pod's containers log: a Logs
// object (kwok.x-k8s.io/v1alpha1) named as the pod.
func (k *Containers) publishLogs(ctx context.Context, p *corev1.Pod) {
	var logs []map[string]any
	for _, c := range append(append([]corev1.Container{}, p.Spec.InitContainers...), p.Spec.Containers...) {
		logs = append(logs, map[string]any{"containers": []string{c.Name}, "follow": true,
			"logsFile": k.logFile(p, c.Name, false), "previousLogsFile": k.logFile(p, c.Name, true)})
	}
	body, _ := json.Marshal(map[string]any{"apiVersion": "kwok.x-k8s.io/v1alpha1", "kind": "Logs",
		"metadata": map[string]any{"name": p.Name, "namespace": p.Namespace}, "spec": map[string]any{"logs": logs}})
	rc := k.Client.Discovery().RESTClient()
	path := "/apis/kwok.x-k8s.io/v1alpha1/namespaces/" + p.Namespace + "/logs"
	rc.Delete().AbsPath(path, p.Name).Do(ctx) // a pod of the same name before
	if err := rc.Post().AbsPath(path).Body(body).Do(ctx).Error(); err != nil {
		k.logf("kubelet: pod %s/%s: its logs will not be served: %v", p.Namespace, p.Name, err)
	}
}

func (k *Containers) tail(name string) string {
	out, _ := k.podman(context.Background(), "logs", "--tail", "20", name).CombinedOutput()
	return string(out)
}

// Logs is what a pod's container printed (podman logs).
func (k *Containers) Logs(p *corev1.Pod, container string) string {
	out, _ := k.podman(context.Background(), "logs", ContainerName(p, container)).CombinedOutput()
	return string(out)
}

func backoff(n int) time.Duration {
	// The kubelet's back-off starts at 10 s; tests want a crash seen sooner.
	d := time.Second << min(n, 6)
	return min(d, time.Minute)
}

func sleep(ctx context.Context, d time.Duration) bool {
	select {
	case <-ctx.Done():
		return false
	case <-time.After(d):
		return true
	}
}

func probePeriod(pr *corev1.Probe) time.Duration {
	// Probe at most every second, so a test sees readiness without
	// waiting for a production period (the front end's is 5 s).
	d := time.Second
	if pr != nil && pr.PeriodSeconds > 0 && time.Duration(pr.PeriodSeconds)*time.Second < d {
		d = time.Duration(pr.PeriodSeconds) * time.Second
	}
	return d
}

// probe runs a container's readiness probe once (no probe: ready).
func (k *Containers) probe(ctx context.Context, p *corev1.Pod, c *corev1.Container) bool {
	pr := c.ReadinessProbe
	if pr == nil {
		return true
	}
	timeout := time.Second
	if pr.TimeoutSeconds > 0 {
		timeout = time.Duration(pr.TimeoutSeconds) * time.Second
	}
	switch {
	case pr.HTTPGet != nil:
		port, err := resolvePort(pr.HTTPGet.Port, c)
		if err != nil {
			return false
		}
		scheme := "http"
		if pr.HTTPGet.Scheme == corev1.URISchemeHTTPS {
			scheme = "https"
		}
		hc := &http.Client{Timeout: timeout}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s://%s%s", scheme, net.JoinHostPort(p.Status.PodIP, strconv.Itoa(port)), pr.HTTPGet.Path), nil)
		if err != nil {
			return false
		}
		resp, err := hc.Do(req)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode >= 200 && resp.StatusCode < 400
	case pr.TCPSocket != nil:
		port, err := resolvePort(pr.TCPSocket.Port, c)
		if err != nil {
			return false
		}
		conn, err := net.DialTimeout("tcp", net.JoinHostPort(p.Status.PodIP, strconv.Itoa(port)), timeout)
		if err != nil {
			return false
		}
		conn.Close()
		return true
	case pr.Exec != nil:
		return k.podman(ctx, append([]string{"exec", ContainerName(p, c.Name)}, pr.Exec.Command...)...).Run() == nil
	}
	return true
}

func resolvePort(port intstr.IntOrString, c *corev1.Container) (int, error) {
	if port.Type == intstr.Int {
		return port.IntValue(), nil
	}
	for _, cp := range c.Ports {
		if cp.Name == port.StrVal {
			return int(cp.ContainerPort), nil
		}
	}
	return 0, fmt.Errorf("container %s has no port named %q", c.Name, port.StrVal)
}

// mount is a volume prepared on this machine.
type mount struct {
	hostPath string
	readOnly bool
}

// volumes writes the pod's volumes under root.
func (k *Containers) volumes(ctx context.Context, p *corev1.Pod, root string) (map[string]mount, error) {
	vols := map[string]mount{}
	for _, v := range p.Spec.Volumes {
		dir := filepath.Join(root, "volumes", v.Name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
		switch {
		case v.EmptyDir != nil:
			// As a kubelet makes it: writable by any user of the pod.
			if err := os.Chmod(dir, 0o777); err != nil {
				return nil, err
			}
		case v.Secret != nil:
			s, err := k.Client.CoreV1().Secrets(p.Namespace).Get(ctx, v.Secret.SecretName, metav1.GetOptions{})
			if err != nil {
				if apierrors.IsNotFound(err) && v.Secret.Optional != nil && *v.Secret.Optional {
					break
				}
				return nil, fmt.Errorf("volume %s: secret %s: %w", v.Name, v.Secret.SecretName, err)
			}
			if err := writeKeys(dir, s.Data, v.Secret.Items, v.Secret.DefaultMode); err != nil {
				return nil, fmt.Errorf("volume %s: %w", v.Name, err)
			}
		case v.ConfigMap != nil:
			cm, err := k.Client.CoreV1().ConfigMaps(p.Namespace).Get(ctx, v.ConfigMap.Name, metav1.GetOptions{})
			if err != nil {
				if apierrors.IsNotFound(err) && v.ConfigMap.Optional != nil && *v.ConfigMap.Optional {
					break
				}
				return nil, fmt.Errorf("volume %s: configmap %s: %w", v.Name, v.ConfigMap.Name, err)
			}
			if err := writeKeys(dir, configMapData(cm), v.ConfigMap.Items, v.ConfigMap.DefaultMode); err != nil {
				return nil, fmt.Errorf("volume %s: %w", v.Name, err)
			}
		case v.Projected != nil:
			if err := k.projected(ctx, p, v.Projected, dir); err != nil {
				return nil, fmt.Errorf("volume %s: %w", v.Name, err)
			}
		case v.DownwardAPI != nil:
			for _, f := range v.DownwardAPI.Items {
				if f.FieldRef == nil {
					continue
				}
				val, err := fieldValue(p, f.FieldRef.FieldPath)
				if err != nil {
					return nil, fmt.Errorf("volume %s: %w", v.Name, err)
				}
				if err := writeFile(dir, f.Path, []byte(val), f.Mode); err != nil {
					return nil, err
				}
			}
		default:
			return nil, fmt.Errorf("volume %s: this kubelet stand-in supports emptyDir, secret, configMap, projected and downwardAPI volumes", v.Name)
		}
		vols[v.Name] = mount{hostPath: dir}
	}
	return vols, nil
}

// projected writes a projected volume: service-account tokens (minted for
// the pod, as the kubelet does), ConfigMaps, Secrets and downward API
// fields.
func (k *Containers) projected(ctx context.Context, p *corev1.Pod, v *corev1.ProjectedVolumeSource, dir string) error {
	for _, src := range v.Sources {
		switch {
		case src.ServiceAccountToken != nil:
			t := src.ServiceAccountToken
			exp := int64(3600)
			if t.ExpirationSeconds != nil {
				exp = *t.ExpirationSeconds
			}
			spec := authv1.TokenRequestSpec{ExpirationSeconds: &exp,
				BoundObjectRef: &authv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: p.Name, UID: p.UID}}
			if t.Audience != "" {
				spec.Audiences = []string{t.Audience}
			}
			sa := p.Spec.ServiceAccountName
			if sa == "" {
				sa = "default"
			}
			tr, err := k.Client.CoreV1().ServiceAccounts(p.Namespace).CreateToken(ctx, sa, &authv1.TokenRequest{Spec: spec}, metav1.CreateOptions{})
			if err != nil {
				return fmt.Errorf("token of service account %s: %w", sa, err)
			}
			if err := writeFile(dir, t.Path, []byte(tr.Status.Token), v.DefaultMode); err != nil {
				return err
			}
		case src.ConfigMap != nil:
			cm, err := k.Client.CoreV1().ConfigMaps(p.Namespace).Get(ctx, src.ConfigMap.Name, metav1.GetOptions{})
			if err != nil {
				return fmt.Errorf("configmap %s: %w", src.ConfigMap.Name, err)
			}
			if err := writeKeys(dir, configMapData(cm), src.ConfigMap.Items, v.DefaultMode); err != nil {
				return err
			}
		case src.Secret != nil:
			s, err := k.Client.CoreV1().Secrets(p.Namespace).Get(ctx, src.Secret.Name, metav1.GetOptions{})
			if err != nil {
				return fmt.Errorf("secret %s: %w", src.Secret.Name, err)
			}
			if err := writeKeys(dir, s.Data, src.Secret.Items, v.DefaultMode); err != nil {
				return err
			}
		case src.DownwardAPI != nil:
			for _, f := range src.DownwardAPI.Items {
				if f.FieldRef == nil {
					continue
				}
				val, err := fieldValue(p, f.FieldRef.FieldPath)
				if err != nil {
					return err
				}
				if err := writeFile(dir, f.Path, []byte(val), f.Mode); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func configMapData(cm *corev1.ConfigMap) map[string][]byte {
	data := map[string][]byte{}
	for k, v := range cm.Data {
		data[k] = []byte(v)
	}
	for k, v := range cm.BinaryData {
		data[k] = v
	}
	return data
}

// writeKeys writes a Secret's or ConfigMap's keys as files (only items'
// keys, at their paths, when items are given).
func writeKeys(dir string, data map[string][]byte, items []corev1.KeyToPath, mode *int32) error {
	if len(items) == 0 {
		for key, val := range data {
			if err := writeFile(dir, key, val, mode); err != nil {
				return err
			}
		}
		return nil
	}
	for _, it := range items {
		val, ok := data[it.Key]
		if !ok {
			return fmt.Errorf("key %s not found", it.Key)
		}
		m := mode
		if it.Mode != nil {
			m = it.Mode
		}
		if err := writeFile(dir, it.Path, val, m); err != nil {
			return err
		}
	}
	return nil
}

func writeFile(dir, rel string, data []byte, mode *int32) error {
	clean := path.Clean("/" + rel)
	if clean == "/" || strings.Contains(rel, "..") {
		return fmt.Errorf("invalid volume file path %q", rel)
	}
	// Files are readable by every user by default (defaultMode 0644), as
	// a kubelet writes them.
	perm := os.FileMode(0o644)
	if mode != nil {
		perm = os.FileMode(*mode) & 0o777
	}
	name := filepath.Join(dir, filepath.FromSlash(clean))
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(name, data, perm); err != nil {
		return err
	}
	return os.Chmod(name, perm)
}

// fieldValue is a downward API field of the pod.
func fieldValue(p *corev1.Pod, field string) (string, error) {
	switch field {
	case "metadata.name":
		return p.Name, nil
	case "metadata.namespace":
		return p.Namespace, nil
	case "metadata.uid":
		return string(p.UID), nil
	case "spec.nodeName":
		return p.Spec.NodeName, nil
	case "spec.serviceAccountName":
		return p.Spec.ServiceAccountName, nil
	case "status.podIP":
		return p.Status.PodIP, nil
	case "status.hostIP":
		return p.Status.HostIP, nil
	}
	if k, ok := strings.CutPrefix(field, "metadata.labels['"); ok {
		return p.Labels[strings.TrimSuffix(k, "']")], nil
	}
	if k, ok := strings.CutPrefix(field, "metadata.annotations['"); ok {
		return p.Annotations[strings.TrimSuffix(k, "']")], nil
	}
	return "", fmt.Errorf("field %s is not supported by this kubelet stand-in", field)
}

// env is a container's environment, as a kubelet computes it.
func (k *Containers) env(p *corev1.Pod, c *corev1.Container) ([]string, map[string]string, error) {
	ctx := context.Background()
	host, port, _ := net.SplitHostPort(k.APIServer)
	vars := map[string]string{}
	var order []string
	set := func(name, val string) {
		if _, ok := vars[name]; !ok {
			order = append(order, name)
		}
		vars[name] = val
	}
	set("KUBERNETES_SERVICE_HOST", host)
	set("KUBERNETES_SERVICE_PORT", port)
	set("KUBERNETES_SERVICE_PORT_HTTPS", port)
	set("HOSTNAME", p.Name)
	set(ListenHostEnv, p.Status.PodIP)
	for _, ef := range c.EnvFrom {
		switch {
		case ef.ConfigMapRef != nil:
			cm, err := k.Client.CoreV1().ConfigMaps(p.Namespace).Get(ctx, ef.ConfigMapRef.Name, metav1.GetOptions{})
			if err != nil {
				return nil, nil, fmt.Errorf("envFrom configmap %s: %w", ef.ConfigMapRef.Name, err)
			}
			for key, val := range cm.Data {
				set(ef.Prefix+key, val)
			}
		case ef.SecretRef != nil:
			s, err := k.Client.CoreV1().Secrets(p.Namespace).Get(ctx, ef.SecretRef.Name, metav1.GetOptions{})
			if err != nil {
				return nil, nil, fmt.Errorf("envFrom secret %s: %w", ef.SecretRef.Name, err)
			}
			for key, val := range s.Data {
				set(ef.Prefix+key, string(val))
			}
		}
	}
	for _, e := range c.Env {
		val := expand(e.Value, vars)
		if vf := e.ValueFrom; vf != nil {
			var err error
			switch {
			case vf.FieldRef != nil:
				val, err = fieldValue(p, vf.FieldRef.FieldPath)
			case vf.SecretKeyRef != nil:
				var s *corev1.Secret
				if s, err = k.Client.CoreV1().Secrets(p.Namespace).Get(ctx, vf.SecretKeyRef.Name, metav1.GetOptions{}); err == nil {
					val = string(s.Data[vf.SecretKeyRef.Key])
				}
			case vf.ConfigMapKeyRef != nil:
				var cm *corev1.ConfigMap
				if cm, err = k.Client.CoreV1().ConfigMaps(p.Namespace).Get(ctx, vf.ConfigMapKeyRef.Name, metav1.GetOptions{}); err == nil {
					val = cm.Data[vf.ConfigMapKeyRef.Key]
				}
			default:
				err = fmt.Errorf("this kubelet stand-in does not support its source")
			}
			if err != nil {
				return nil, nil, fmt.Errorf("env %s: %w", e.Name, err)
			}
		}
		set(e.Name, val)
	}
	env := make([]string, 0, len(order))
	for _, name := range order {
		env = append(env, name+"="+vars[name])
	}
	return env, vars, nil
}

// expand replaces $(VAR) with the variable's value, as Kubernetes does in
// env values, commands and args: $$ is a literal $, and unknown variables
// stay as written.
func expand(s string, vars map[string]string) string {
	if !strings.Contains(s, "$") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 >= len(s) {
			b.WriteByte(s[i])
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
		case '(':
			end := strings.IndexByte(s[i+2:], ')')
			if end < 0 {
				b.WriteString(s[i:])
				return b.String()
			}
			name := s[i+2 : i+2+end]
			if v, ok := vars[name]; ok {
				b.WriteString(v)
			} else {
				b.WriteString(s[i : i+3+end])
			}
			i += 2 + end
		default:
			b.WriteByte('$')
		}
	}
	return b.String()
}

// runArgs are podman's arguments to run container c of pod p.
func (k *Containers) runArgs(p *corev1.Pod, c *corev1.Container, vols map[string]mount, name string, detach bool) ([]string, error) {
	env, vars, err := k.env(p, c)
	if err != nil {
		return nil, err
	}
	args := []string{"run", "--name", name, "--pull", "never", "--network", "host",
		"--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024",
		"--hostname", p.Name,
		"--label", OwnerLabel + "=" + strconv.Itoa(os.Getpid()),
		"--label", "io.kubernetes.pod.name=" + p.Name,
		"--label", "io.kubernetes.pod.namespace=" + p.Namespace,
		"--label", "io.kubernetes.container.name=" + c.Name,
	}
	if detach {
		args = append(args, "-d")
	} else {
		args = append(args, "--rm")
	}
	// The log in the CRI format a kubelet keeps, where kwok serves it
	// from (publishLogs); the last run's is kept as the previous one.
	cur := k.logFile(p, c.Name, false)
	if err := os.MkdirAll(filepath.Dir(cur), 0o700); err != nil {
		return nil, err
	}
	os.Rename(cur, k.logFile(p, c.Name, true))
	args = append(args, "--log-driver", "k8s-file", "--log-opt", "path="+cur)
	sc := c.SecurityContext
	psc := p.Spec.SecurityContext
	switch {
	case sc != nil && sc.RunAsUser != nil:
		u := strconv.FormatInt(*sc.RunAsUser, 10)
		if sc.RunAsGroup != nil {
			u += ":" + strconv.FormatInt(*sc.RunAsGroup, 10)
		}
		args = append(args, "--user", u)
	case psc != nil && psc.RunAsUser != nil:
		u := strconv.FormatInt(*psc.RunAsUser, 10)
		if psc.RunAsGroup != nil {
			u += ":" + strconv.FormatInt(*psc.RunAsGroup, 10)
		}
		args = append(args, "--user", u)
	}
	if sc != nil && sc.ReadOnlyRootFilesystem != nil && *sc.ReadOnlyRootFilesystem {
		// No tmpfs on /tmp and /run: Kubernetes mounts none either.
		args = append(args, "--read-only", "--read-only-tmpfs=false")
	}
	if sc != nil && sc.AllowPrivilegeEscalation != nil && !*sc.AllowPrivilegeEscalation {
		args = append(args, "--security-opt", "no-new-privileges")
	}
	for _, e := range env {
		args = append(args, "--env", e)
	}
	mounts := append([]corev1.VolumeMount{}, c.VolumeMounts...)
	sort.SliceStable(mounts, func(i, j int) bool { return len(mounts[i].MountPath) < len(mounts[j].MountPath) })
	for _, vm := range mounts {
		v, ok := vols[vm.Name]
		if !ok {
			return nil, fmt.Errorf("container %s mounts volume %s, which the pod does not have", c.Name, vm.Name)
		}
		src := v.hostPath
		if vm.SubPath != "" {
			src = filepath.Join(src, filepath.FromSlash(path.Clean("/"+vm.SubPath)))
		}
		opt := "rw"
		if vm.ReadOnly || v.readOnly {
			opt = "ro"
		}
		args = append(args, "--volume", src+":"+vm.MountPath+":"+opt)
	}
	if c.WorkingDir != "" {
		args = append(args, "--workdir", c.WorkingDir)
	}
	if c.StdinOnce || c.TTY {
		return nil, fmt.Errorf("container %s: stdin and tty are not supported by this kubelet stand-in", c.Name)
	}
	var cmd []string
	for _, s := range c.Command {
		cmd = append(cmd, expand(s, vars))
	}
	if len(cmd) > 0 {
		// The JSON form keeps every word of the command.
		args = append(args, "--entrypoint", jsonArray(cmd))
	}
	args = append(args, c.Image)
	for _, s := range c.Args {
		args = append(args, expand(s, vars))
	}
	return args, nil
}

func jsonArray(words []string) string {
	b, _ := json.Marshal(words) // strings always marshal
	return string(b)
}

// Pod status: the kubelet stand-in writes what a kubelet reports.

func (k *Containers) updateStatus(ctx context.Context, p *corev1.Pod, change func(*corev1.Pod)) {
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur, err := k.Client.CoreV1().Pods(p.Namespace).Get(ctx, p.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if cur.UID != p.UID || cur.DeletionTimestamp != nil {
			return nil
		}
		change(cur)
		_, err = k.Client.CoreV1().Pods(p.Namespace).UpdateStatus(ctx, cur, metav1.UpdateOptions{})
		return err
	})
	if err != nil && ctx.Err() == nil && !apierrors.IsNotFound(err) {
		k.logf("kubelet: status of pod %s/%s: %v", p.Namespace, p.Name, err)
	}
}

func statusOf(statuses *[]corev1.ContainerStatus, name, image string) *corev1.ContainerStatus {
	for i := range *statuses {
		if (*statuses)[i].Name == name {
			return &(*statuses)[i]
		}
	}
	*statuses = append(*statuses, corev1.ContainerStatus{Name: name, Image: image})
	return &(*statuses)[len(*statuses)-1]
}

func imageOf(p *corev1.Pod, name string, init bool) string {
	list := p.Spec.Containers
	if init {
		list = p.Spec.InitContainers
	}
	for _, c := range list {
		if c.Name == name {
			return c.Image
		}
	}
	return ""
}

func setCondition(p *corev1.Pod, t corev1.PodConditionType, ok bool, reason string) {
	st := corev1.ConditionFalse
	if ok {
		st = corev1.ConditionTrue
	}
	for i := range p.Status.Conditions {
		c := &p.Status.Conditions[i]
		if c.Type == t {
			if c.Status != st {
				c.Status, c.LastTransitionTime = st, metav1.Now()
			}
			c.Reason = reason
			return
		}
	}
	p.Status.Conditions = append(p.Status.Conditions, corev1.PodCondition{Type: t, Status: st, Reason: reason, LastTransitionTime: metav1.Now()})
}

// readiness recomputes the pod's Ready and ContainersReady conditions.
func readiness(p *corev1.Pod) {
	ready := len(p.Status.ContainerStatuses) == len(p.Spec.Containers)
	for _, cs := range p.Status.ContainerStatuses {
		ready = ready && cs.Ready
	}
	reason := ""
	if !ready {
		reason = "ContainersNotReady"
	}
	setCondition(p, corev1.ContainersReady, ready, reason)
	setCondition(p, corev1.PodReady, ready, reason)
}

func (k *Containers) waiting(ctx context.Context, p *corev1.Pod, init bool, name, reason, msg string) {
	k.updateStatus(ctx, p, func(cur *corev1.Pod) {
		list := &cur.Status.ContainerStatuses
		if init {
			list = &cur.Status.InitContainerStatuses
			setCondition(cur, corev1.PodInitialized, false, "ContainersNotInitialized")
		}
		cs := statusOf(list, name, imageOf(cur, name, init))
		cs.Ready, cs.Started = false, ptr(false)
		cs.State = corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: msg}}
		readiness(cur)
	})
}

func (k *Containers) terminated(ctx context.Context, p *corev1.Pod, name string, code int, reason string, restarts int) {
	k.updateStatus(ctx, p, func(cur *corev1.Pod) {
		cs := statusOf(&cur.Status.InitContainerStatuses, name, imageOf(cur, name, true))
		cs.Ready = code == 0
		cs.RestartCount = int32(restarts)
		cs.State = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: int32(code), Reason: reason, FinishedAt: metav1.Now()}}
		done := true
		for _, ic := range cur.Spec.InitContainers {
			s := statusOf(&cur.Status.InitContainerStatuses, ic.Name, ic.Image)
			done = done && s.State.Terminated != nil && s.State.Terminated.ExitCode == 0
		}
		setCondition(cur, corev1.PodInitialized, done, "")
		readiness(cur)
	})
}

func (k *Containers) running(ctx context.Context, p *corev1.Pod, name, id string, restarts int, ready bool) {
	k.updateStatus(ctx, p, func(cur *corev1.Pod) {
		cs := statusOf(&cur.Status.ContainerStatuses, name, imageOf(cur, name, false))
		cs.ContainerID = "podman://" + id
		cs.Ready, cs.Started = ready, ptr(true)
		cs.RestartCount = int32(restarts)
		if cs.State.Running == nil {
			cs.State = corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.Now()}}
		}
		readiness(cur)
	})
}

// exit is how a container ended.
type exit struct {
	code int
	oom  bool
}

func (k *Containers) inspectExit(name string) exit {
	out, err := k.podman(context.Background(), "inspect", "--format", "{{.State.ExitCode}} {{.State.OOMKilled}}", name).Output()
	if err != nil {
		return exit{code: -1}
	}
	code, oom, _ := strings.Cut(strings.TrimSpace(string(out)), " ")
	n, err := strconv.Atoi(code)
	if err != nil {
		n = -1
	}
	return exit{code: n, oom: oom == "true"}
}

func (k *Containers) crashed(ctx context.Context, p *corev1.Pod, name string, e exit, restarts int, message string) {
	k.updateStatus(ctx, p, func(cur *corev1.Pod) {
		cs := statusOf(&cur.Status.ContainerStatuses, name, imageOf(cur, name, false))
		reason := "Error"
		switch {
		case e.oom:
			reason = "OOMKilled"
		case e.code == 0:
			reason = "Completed"
		}
		cs.LastTerminationState = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: int32(e.code), Reason: reason, Message: message, FinishedAt: metav1.Now()}}
		cs.State = corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff",
			Message: fmt.Sprintf("back-off restarting failed container %s in pod %s", name, cur.Name)}}
		cs.Ready, cs.Started = false, ptr(false)
		cs.RestartCount = int32(restarts)
		readiness(cur)
	})
}

func ptr[T any](v T) *T { return &v }

// LoadImage loads an image archive into podman's storage and returns the
// names it was given.
func LoadImage(ctx context.Context, archive string) (string, error) {
	cmd := exec.CommandContext(ctx, "podman", append(append([]string{}, PodmanFlags...), "load", "-i", archive)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("podman load -i %s: %v: %s", archive, err, out)
	}
	return string(out), nil
}
