package simcluster

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/berth-ml/berth/internal/testenv/imagetest"
	"github.com/berth-ml/berth/internal/testenv/simcluster/kubelet"
	"github.com/berth-ml/berth/internal/testenv/testcert"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func httpProbe(path string, port intstr.IntOrString) *corev1.Probe {
	return &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: path, Port: port}}, PeriodSeconds: 1}
}

// TestContainers runs pods from Berth's image under podman: a front end
// serving TLS from a mounted Secret with its settings from a mounted
// ConfigMap, a model server after an init container, a pod whose probe
// never passes and one whose container exits. Readiness, restarts and
// removal are what a kubelet would report.
func TestContainers(t *testing.T) {
	t.Parallel()
	image := imagetest.Image(t)
	c := StartT(t, Options{Nodes: Nodes(1, "4"), Containers: true})
	ctx := t.Context()
	cs := c.Client()
	ns := "default"
	certPEM, keyPEM := testcert.SelfSigned(t, "fe.example.test")
	if _, err := cs.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "fe-tls"},
		Data: map[string][]byte{"cert.pem": certPEM, "key.pem": keyPEM}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "fe-static"},
		Data: map[string]string{"static.json": `{"services":[],"certFile":"/etc/berth/tls/cert.pem","keyFile":"/etc/berth/tls/key.pem"}`}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	yes, no := true, false
	pods := []*corev1.Pod{
		{ObjectMeta: metav1.ObjectMeta{Name: "fe"}, Spec: corev1.PodSpec{
			Containers: []corev1.Container{{Name: "fe", Image: image,
				Args:            []string{"frontend", "--static", "/etc/berth/static/static.json", "--log-format", "text", "--http", ":$(HTTP_PORT)"},
				Env:             []corev1.EnvVar{{Name: "HTTP_PORT", Value: "8080"}},
				Ports:           []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}, {Name: "https", ContainerPort: 8443}},
				ReadinessProbe:  httpProbe("/readyz", intstr.FromString("http")),
				SecurityContext: &corev1.SecurityContext{RunAsNonRoot: &yes, ReadOnlyRootFilesystem: &yes, AllowPrivilegeEscalation: &no},
				VolumeMounts: []corev1.VolumeMount{{Name: "tls", MountPath: "/etc/berth/tls", ReadOnly: true},
					{Name: "static", MountPath: "/etc/berth/static", ReadOnly: true}}}},
			Volumes: []corev1.Volume{
				{Name: "tls", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "fe-tls"}}},
				{Name: "static", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "fe-static"}}}},
			}}},
		{ObjectMeta: metav1.ObjectMeta{Name: "model"}, Spec: corev1.PodSpec{
			InitContainers: []corev1.Container{{Name: "init", Image: image, Command: []string{"berth", "model-server", "--help"}}},
			Containers: []corev1.Container{{Name: "model", Image: image, Command: []string{"berth", "model-server"},
				Env:            []corev1.EnvVar{{Name: "PORT", Value: "5001"}},
				ReadinessProbe: httpProbe("/readyz", intstr.FromInt32(5001))}}}},
		{ObjectMeta: metav1.ObjectMeta{Name: "never-ready"}, Spec: corev1.PodSpec{
			Containers: []corev1.Container{{Name: "model", Image: image, Command: []string{"berth", "model-server"},
				Env:            []corev1.EnvVar{{Name: "PORT", Value: "5001"}},
				ReadinessProbe: httpProbe("/readyz", intstr.FromInt32(5999))}}}},
		{ObjectMeta: metav1.ObjectMeta{Name: "crash"}, Spec: corev1.PodSpec{
			Containers: []corev1.Container{{Name: "crash", Image: image, Args: []string{"no-such-command"}}}}},
	}
	for _, p := range pods {
		if _, err := cs.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	get := func(name string) *corev1.Pod {
		p, err := cs.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, name := range []string{"fe", "model"} {
		eventually(t, c, 90*time.Second, func() error {
			if p := get(name); !podReady(p) {
				return fmt.Errorf("pod %s is not Ready: %+v", name, p.Status)
			}
			return nil
		})
	}
	// The init container ran to completion before the model container.
	if m := get("model"); len(m.Status.InitContainerStatuses) != 1 || m.Status.InitContainerStatuses[0].State.Terminated == nil ||
		m.Status.InitContainerStatuses[0].State.Terminated.ExitCode != 0 {
		t.Errorf("init container status: %+v", m.Status.InitContainerStatuses)
	}

	// The front end serves the mounted certificate, on its pod's IP.
	fe := get("fe")
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(certPEM)
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "fe.example.test"}}}
	resp, err := hc.Get("https://" + net.JoinHostPort(fe.Status.PodIP, "8443") + "/healthz")
	if err != nil {
		t.Fatalf("HTTPS to the front end's pod: %v\n%s", err, c.Kubelet.Logs(fe, "fe"))
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.TLS.PeerCertificates[0].Subject.CommonName != "fe.example.test" {
		t.Errorf("front end over TLS: %s, certificate %s", resp.Status, resp.TLS.PeerCertificates[0].Subject)
	}

	// The model server scores on its pod's IP.
	m := get("model")
	resp, err = http.Post("http://"+net.JoinHostPort(m.Status.PodIP, "5001")+"/score", "application/json", strings.NewReader(`{"data":[[5.1,3.5,1.4,0.2]]}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), "setosa") {
		t.Errorf("score: %s %s", resp.Status, body)
	}

	// podman shows the containers, running as the image's non-root user.
	out, err := exec.Command("podman", append(append([]string{}, kubelet.PodmanFlags...), "ps", "--filter", "label=io.kubernetes.pod.name=model",
		"--format", "{{.Names}} {{.Image}} {{.State}}")...).CombinedOutput()
	if err != nil || !strings.Contains(string(out), kubelet.ContainerName(m, "model")+" "+image) {
		t.Errorf("podman ps: %v\n%s", err, out)
	}
	out, err = exec.Command("podman", append(append([]string{}, kubelet.PodmanFlags...), "inspect", "--format", "{{.Config.User}}", kubelet.ContainerName(m, "model"))...).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "65532:65532" {
		t.Errorf("the model container's user: %v\n%s", err, out)
	}

	// A failing probe keeps a pod out of service; an exiting container is
	// restarted with back-off and reported.
	eventually(t, c, 60*time.Second, func() error {
		p := get("crash")
		if len(p.Status.ContainerStatuses) != 1 {
			return fmt.Errorf("crash: %+v", p.Status)
		}
		st := p.Status.ContainerStatuses[0]
		if st.RestartCount < 1 || st.LastTerminationState.Terminated == nil || st.LastTerminationState.Terminated.ExitCode == 0 {
			return fmt.Errorf("crash: %+v", st)
		}
		return nil
	})
	if p := get("never-ready"); podReady(p) || len(p.Status.ContainerStatuses) != 1 || p.Status.ContainerStatuses[0].State.Running == nil {
		t.Errorf("never-ready: %+v", p.Status)
	}
	// (The crashing container has no probe: it is Ready while it runs, as
	// with a kubelet, so its readiness flips and is not checked here.)

	// A deleted pod's containers are removed.
	if err := cs.CoreV1().Pods(ns).Delete(ctx, "model", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, c, 30*time.Second, func() error {
		out, err := exec.Command("podman", append(append([]string{}, kubelet.PodmanFlags...), "ps", "-a", "--filter", "label=io.kubernetes.pod.name=model", "--format", "{{.Names}}")...).Output()
		if err != nil || strings.TrimSpace(string(out)) != "" {
			return fmt.Errorf("containers of the deleted pod: %v %s", err, out)
		}
		return nil
	})
}
