// Package kubelet plays a node's kubelet for Berth's service pods on a
// simulated cluster, where kwok gives pods loopback IPs but runs no
// containers. For each pod it mints the pod's projected service-account
// token (TokenRequest, bound to the pod), runs the init container's
// `berth model-init` with the pod's environment, then the model
// container's `berth model-server` on the pod's IP. It stops a pod's
// processes when the pod is gone. Tests and benchmarks use it.
package kubelet

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/berth-ml/berth/internal/testenv"
	authv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// ModelsPath is where Berth's pods mount their models (kubernetes.ModelsPath in internal/provider/kubernetes).
const ModelsPath = "/var/berth/models"

// Kubelet runs the pods of Berth services as processes of this machine.
type Kubelet struct {
	// Bin is the berth binary.
	Bin    string
	Client kubernetes.Interface
	// Dir holds the pods' volumes.
	Dir string
	// Errorf reports a pod that could not start (t.Errorf in tests).
	Errorf func(format string, args ...any)

	mu      sync.Mutex
	pods    map[string]*pod
	stopped bool
}

type pod struct {
	service string
	log     *testenv.Buffer
	stop    func()
}

// failed reports a pod that could not start, unless the pod is gone (or
// going): a real kubelet gives up on those silently.
func (k *Kubelet) failed(p *corev1.Pod, format string, args ...any) {
	cur, err := k.Client.CoreV1().Pods(p.Namespace).Get(context.Background(), p.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) || (err == nil && (cur.DeletionTimestamp != nil || cur.UID != p.UID)) {
		return
	}
	if k.Errorf != nil {
		k.Errorf(format, args...)
	}
}

// Log is what a pod's processes printed.
func (k *Kubelet) Log(name string) string {
	k.mu.Lock()
	defer k.mu.Unlock()
	if p := k.pods[name]; p != nil && p.log != nil {
		return p.log.String()
	}
	return "(pod never ran)"
}

// Logs are every pod's output, for a failed test.
func (k *Kubelet) Logs() string {
	k.mu.Lock()
	defer k.mu.Unlock()
	var b strings.Builder
	for name, p := range k.pods {
		if p.log != nil {
			fmt.Fprintf(&b, "pod %s:\n%s\n", name, p.log.String())
		}
	}
	return b.String()
}

// Stop ends every process.
func (k *Kubelet) Stop() {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.stopped = true
	for _, p := range k.pods {
		if p.stop != nil {
			p.stop()
		}
	}
}

// Env is a container's environment as a map.
func Env(c corev1.Container) map[string]string {
	m := map[string]string{}
	for _, e := range c.Env {
		m[e.Name] = e.Value
	}
	return m
}

// Audience is the audience of the pod's projected token volume.
func Audience(p *corev1.Pod) string {
	for _, v := range p.Spec.Volumes {
		if v.Projected != nil {
			for _, src := range v.Projected.Sources {
				if src.ServiceAccountToken != nil {
					return src.ServiceAccountToken.Audience
				}
			}
		}
	}
	return ""
}

// Token mints a token as the kubelet does for a projected
// serviceAccountToken volume: for the ServiceAccount sa with the audience,
// bound to the pod when sa is the pod's own (the API refuses binding a pod
// to another account's token).
func Token(ctx context.Context, c kubernetes.Interface, p *corev1.Pod, sa, audience string) (string, error) {
	exp := int64(600)
	spec := authv1.TokenRequestSpec{Audiences: []string{audience}, ExpirationSeconds: &exp}
	if p.Spec.ServiceAccountName == sa {
		spec.BoundObjectRef = &authv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: p.Name, UID: p.UID}
	}
	tr, err := c.CoreV1().ServiceAccounts(p.Namespace).CreateToken(ctx, sa, &authv1.TokenRequest{Spec: spec}, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("token for pod %s: %w", p.Name, err)
	}
	return tr.Status.Token, nil
}

// Run starts a pod's containers (once per pod); problems go to Errorf, so
// it may run in a goroutine.
func (k *Kubelet) Run(p corev1.Pod) {
	k.mu.Lock()
	if k.pods == nil {
		k.pods = map[string]*pod{}
	}
	_, seen := k.pods[p.Name]
	if seen || k.stopped {
		k.mu.Unlock()
		return
	}
	st := &pod{service: p.Labels["berth.dev/service"], log: &testenv.Buffer{}}
	k.pods[p.Name] = st
	k.mu.Unlock()
	root := filepath.Join(k.Dir, p.Name)
	modelDir := ""
	for _, ic := range p.Spec.InitContainers {
		if ic.Name != "berth-models" || len(ic.Command) < 2 {
			k.failed(&p, "pod %s has an unexpected init container %s", p.Name, ic.Name)
			return
		}
		env := Env(ic)
		token, err := Token(context.Background(), k.Client, &p, p.Spec.ServiceAccountName, Audience(&p))
		if err != nil {
			k.failed(&p, "%v", err)
			return
		}
		tokenFile := filepath.Join(root, "token")
		if err := os.MkdirAll(root, 0o700); err != nil {
			k.failed(&p, "%v", err)
			return
		}
		if err := os.WriteFile(tokenFile, []byte(token), 0o600); err != nil {
			k.failed(&p, "%v", err)
			return
		}
		cmd := exec.Command(k.Bin, append(ic.Command[1:], "--token-file", tokenFile, "--dest", filepath.Join(root, "models"), "--timeout", "30s")...)
		cmd.Env = append(os.Environ(), "BERTH_MODEL_SOURCE="+env["BERTH_MODEL_SOURCE"], "BERTH_MODELS="+env["BERTH_MODELS"])
		cmd.Stdout, cmd.Stderr = st.log, st.log
		if err := cmd.Run(); err != nil {
			k.failed(&p, "init container of pod %s: %v\n%s", p.Name, err, st.log.String())
			return
		}
		// The model container sees the shared volume at the same place.
		dir := Env(p.Spec.Containers[0])["BERTH_MODEL_DIR"]
		modelDir = filepath.Join(root, "models", strings.TrimPrefix(dir, ModelsPath))
	}
	addr := net.JoinHostPort(p.Status.PodIP, "5001")
	// A deleted pod's IP can come back before its process is stopped.
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if ln, err := net.Listen("tcp", addr); err == nil {
			ln.Close()
			break
		}
	}
	args := []string{"model-server", "--listen", addr}
	if modelDir != "" {
		args = append(args, "--model-dir", modelDir)
	}
	cmd := exec.Command(k.Bin, args...)
	cmd.Stdout, cmd.Stderr = st.log, st.log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		k.failed(&p, "pod %s: %v", p.Name, err)
		return
	}
	var once sync.Once
	stop := func() {
		once.Do(func() {
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			cmd.Wait()
		})
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.stopped {
		stop()
		return
	}
	st.stop = stop
}

// Follow runs every pod of a service as it gets an IP, and stops the
// processes of its pods that are gone, until ctx ends.
func (k *Kubelet) Follow(ctx context.Context, service string) {
	go func() {
		for ctx.Err() == nil {
			pods, err := k.Client.CoreV1().Pods("").List(ctx, metav1.ListOptions{LabelSelector: "berth.dev/service=" + service})
			if err == nil {
				present := map[string]bool{}
				for _, p := range pods.Items {
					present[p.Name] = true
					if p.Status.PodIP != "" {
						go k.Run(p)
					}
				}
				k.stopGone(service, present)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
}

func (k *Kubelet) stopGone(service string, present map[string]bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	for name, p := range k.pods {
		if p.service == service && !present[name] && p.stop != nil {
			p.stop()
			p.stop = nil
		}
	}
}
