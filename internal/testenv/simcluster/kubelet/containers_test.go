package kubelet

import (
	"context"
	"fmt"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// The $(VAR) expansion of Kubernetes' env values, commands and args.
func TestExpand(t *testing.T) {
	vars := map[string]string{"PORT": "5001", "POD_IP": "127.10.0.7"}
	for in, want := range map[string]string{
		"plain":                  "plain",
		"$(POD_IP):$(PORT)":      "127.10.0.7:5001",
		"$$(PORT)":               "$(PORT)",
		"$(UNKNOWN)":             "$(UNKNOWN)",
		"$PORT":                  "$PORT",
		"cost $":                 "cost $",
		"$(PORT":                 "$(PORT",
		"a$(PORT)b$(PORT)$$done": "a5001b5001$done",
	} {
		if got := expand(in, vars); got != want {
			t.Errorf("expand(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestEnv(t *testing.T) {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "fe-1", Namespace: "berth-system", UID: "u-1"},
		Status: corev1.PodStatus{PodIP: "127.10.0.9"}}
	c := &corev1.Container{Env: []corev1.EnvVar{
		{Name: "PORT", Value: "8080"},
		{Name: "ADDR", Value: "$(BERTH_LISTEN_HOST):$(PORT)"},
		{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
		{Name: "POD_IP", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "status.podIP"}}},
	}}
	k := &Containers{APIServer: "127.0.0.1:6443"}
	_, vars, err := k.env(p, c)
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"KUBERNETES_SERVICE_HOST": "127.0.0.1", "KUBERNETES_SERVICE_PORT": "6443",
		"ADDR": "127.10.0.9:8080", "POD_NAME": "fe-1", "POD_IP": "127.10.0.9", ListenHostEnv: "127.10.0.9"} {
		if vars[name] != want {
			t.Errorf("%s = %q, want %q", name, vars[name], want)
		}
	}
	if _, err := fieldValue(p, "status.podIPs"); err == nil {
		t.Error("an unsupported field path passed")
	}
}

// Commands reach podman's --entrypoint as a JSON array, word for word.
func TestJSONArray(t *testing.T) {
	if got, want := jsonArray([]string{"berth", "model-server", `a "b"`, "é\x01"}), `["berth","model-server","a \"b\"","é\u0001"]`; got != want {
		t.Errorf("jsonArray = %s, want %s", got, want)
	}
}

// A pod whose IP another pod's containers still use (running, or being
// removed after a delete) is not started until the address is free.
func TestPodWaitsForItsIP(t *testing.T) {
	var logs []string
	k := &Containers{Logf: func(f string, a ...any) { logs = append(logs, fmt.Sprintf(f, a...)) }}
	done := make(chan struct{})
	close(done)
	old := &runningPod{name: "old", namespace: "ns", ip: "127.20.0.2", cancel: func() {}, done: done}
	k.pods, k.held, k.stopping = map[podUID]*runningPod{"u-old": old}, map[podUID]bool{}, map[string]int{"127.20.0.3": 1}
	for _, ip := range []string{"127.20.0.2", "127.20.0.3"} {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "new-" + ip, Namespace: "ns", UID: types.UID("u-" + ip)},
			Status: corev1.PodStatus{PodIP: ip}}
		k.start(context.Background(), p)
		k.start(context.Background(), p) // logged once
		if _, started := k.pods[podUID(p.UID)]; started {
			t.Fatalf("pod with %s started while the address is in use", ip)
		}
	}
	want := []string{"kubelet: pod ns/new-127.20.0.2 waits: its IP 127.20.0.2 is still pod ns/old's",
		"kubelet: pod ns/new-127.20.0.3 waits: its IP 127.20.0.3 is still a deleted pod's"}
	if !slices.Equal(logs, want) {
		t.Fatalf("logs %q, want %q", logs, want)
	}
	// Once the old pod is gone, held pods are forgotten with it.
	k.stopGone(map[podUID]bool{})
	if len(k.held) != 0 || k.stopping["127.20.0.2"] != 0 || k.stopping["127.20.0.3"] != 1 {
		t.Fatalf("after stopGone: held %v, stopping %v", k.held, k.stopping)
	}
}
