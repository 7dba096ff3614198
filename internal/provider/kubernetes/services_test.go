package kubernetes

import (
	"context"
	"errors"
	"fmt"

	"github.com/berth-ml/berth/internal/frontend"
	"github.com/berth-ml/berth/internal/kubeconn"
	"github.com/berth-ml/berth/internal/operation"
	"github.com/berth-ml/berth/internal/testenv/simcluster"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"strings"
	"testing"

	"github.com/berth-ml/berth/api"
	"github.com/berth-ml/berth/internal/store"
)

func TestModelDeliveryNeedsAReachableServer(t *testing.T) {
	c := &store.Compute{Compute: api.Compute{Type: Type}}
	fetch := &api.ServiceSpec{ModelDelivery: api.ModelDeliveryFetch}
	image := &api.ServiceSpec{ModelDelivery: api.ModelDeliveryImage}
	noURL, withURL := &Provider{}, &Provider{PublicURL: "http://berth.example:8470"}
	if d := noURL.CheckService(c, fetch); len(d) != 1 || d[0].Code != "ModelDeliveryUnavailable" ||
		!strings.Contains(d[0].Message, "start it with --public-url URL (or BERTH_PUBLIC_URL), or bake the models into the image and deploy with `modelDelivery` image") {
		t.Errorf("fetch without a public URL: %v", d)
	}
	if d := withURL.CheckService(c, fetch); len(d) != 0 {
		t.Errorf("fetch with a public URL: %v", d)
	}
	if d := noURL.CheckService(c, image); len(d) != 0 {
		t.Errorf("models in the image: %v", d)
	}
}

func TestClusterReplicaBounds(t *testing.T) {
	p := &Provider{PublicURL: "http://berth.example:8470"}
	c := &store.Compute{Compute: api.Compute{Type: Type}}
	if d := p.CheckService(c, &api.ServiceSpec{Replicas: 100000}); len(d) != 1 || !strings.Contains(d[0].Message, "at most 500") {
		t.Errorf("100000 replicas: %v", d)
	}
	if d := p.CheckService(c, &api.ServiceSpec{Replicas: MaxServiceReplicas}); len(d) != 0 {
		t.Errorf("the limit: %v", d)
	}
}

// A replica whose model-init container ended in error fails the deploy at
// once, naming the replica and the container's exit code: model-init only
// exits on what waiting cannot fix (an artifact over the limits, a model
// gone).
func TestRefusedModelsFailTheDeploy(t *testing.T) {
	kc, sv, pod := pendingReplica(t, corev1.PodSpec{
		InitContainers: []corev1.Container{{Name: InitContainerName, Image: "berth"}}, Containers: []corev1.Container{{Name: "model", Image: "berth"}}})
	ctx := context.Background()
	if err := modelsRefused(ctx, kc, sv); err != nil {
		t.Fatalf("a pending replica: %v", err)
	}
	setStatus(t, kc, pod.Name, func(st *corev1.PodStatus) {
		st.InitContainerStatuses = []corev1.ContainerStatus{{Name: InitContainerName,
			State:                corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}},
			LastTerminationState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 1, Reason: "Error"}}}}
	})
	err := modelsRefused(ctx, kc, sv)
	var f *operation.Failure
	if !errors.As(err, &f) || f.Code != api.CodeModelUnpackFailed || !strings.Contains(f.Message, "replica iris-1 could not get its models (berth-models exited with code 1)") {
		t.Fatalf("a replica whose models were refused: %v", err)
	}
}

// setStatus writes a pod's status as a kubelet would. The scheduler
// writes it too (unschedulable): take the latest before each try.
func setStatus(t *testing.T, kc *kubeconn.Cluster, pod string, change func(*corev1.PodStatus)) {
	t.Helper()
	ctx := context.Background()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur, err := kc.Client.CoreV1().Pods("default").Get(ctx, pod, metav1.GetOptions{})
		if err != nil {
			return err
		}
		change(&cur.Status)
		_, err = kc.Client.CoreV1().Pods("default").UpdateStatus(ctx, cur, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// A replica's model server that exits is an event with its exit code and
// its last lines (from the status, where no kubelet serves logs); it fails
// the deploy once it exited 3 times (CrashLoopBackOff), at once when it was
// killed for its memory (OOMKilled) or its image cannot be pulled.
func TestFailingReplicasFailTheDeploy(t *testing.T) {
	kc, sv, pod := pendingReplica(t, corev1.PodSpec{Containers: []corev1.Container{{Name: ModelContainerName, Image: "berth"}}})
	ctx := context.Background()
	var events []string
	warn := func(format string, args ...any) { events = append(events, fmt.Sprintf(format, args...)) }
	seen := map[string]int32{}
	crashed := func(restarts int32, reason string, waiting string) {
		setStatus(t, kc, pod.Name, func(st *corev1.PodStatus) {
			st.ContainerStatuses = []corev1.ContainerStatus{{Name: ModelContainerName, Image: "berth", RestartCount: restarts,
				State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: waiting}},
				LastTerminationState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 1, Reason: reason,
					Message: "loading\nError: no model here\n"}}}}
		})
	}
	crashed(1, "Error", "CrashLoopBackOff")
	if err := replicasFailing(ctx, kc, sv, seen, warn); err != nil || len(events) != 1 || events[0] != "Replica iris-1 exited (exit code 1); its last lines:\nloading\nError: no model here" {
		t.Fatalf("a first exit: %v %q", err, events)
	}
	if err := replicasFailing(ctx, kc, sv, seen, warn); err != nil || len(events) != 1 {
		t.Fatalf("the same exit again: %v %q", err, events)
	}
	crashed(3, "Error", "CrashLoopBackOff")
	err := replicasFailing(ctx, kc, sv, seen, warn)
	var f *operation.Failure
	if !errors.As(err, &f) || f.Code != api.CodeReplicaCrashLoop || len(events) != 2 ||
		f.Message != "replica iris-1 of iris exited 3 times (CrashLoopBackOff; last: exit code 1); its last lines:\nloading\nError: no model here" {
		t.Fatalf("a third exit: %v %q", err, events)
	}
	crashed(4, "OOMKilled", "CrashLoopBackOff")
	if err := replicasFailing(ctx, kc, sv, seen, warn); !errors.As(err, &f) || f.Code != api.CodeReplicaCrashLoop ||
		!strings.Contains(f.Message, "killed for using more memory than its limit (exit code 1, OOMKilled): raise it with --memory-limit") {
		t.Fatalf("killed for its memory: %v", err)
	}
	setStatus(t, kc, pod.Name, func(st *corev1.PodStatus) {
		st.ContainerStatuses = []corev1.ContainerStatus{{Name: ModelContainerName, Image: "example/nope:1",
			State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ImagePullBackOff", Message: "Back-off pulling image"}}}}
	})
	if err := replicasFailing(ctx, kc, sv, map[string]int32{}, warn); !errors.As(err, &f) || f.Code != api.CodeImagePullFailed ||
		f.Message != "replica iris-1 cannot get its image example/nope:1 (ImagePullBackOff): Back-off pulling image" {
		t.Fatalf("an image that cannot be pulled: %v", err)
	}
}

// pendingReplica starts a simulated cluster with one replica pod of service
// iris that no node runs (no kubelet rewrites its status), so a test can
// write the status a cluster would report.
func pendingReplica(t *testing.T, spec corev1.PodSpec) (*kubeconn.Cluster, *store.Service, *corev1.Pod) {
	t.Helper()
	cl := simcluster.StartT(t, simcluster.Options{Nodes: simcluster.Nodes(1, "4")})
	kc, err := kubeconn.Connect(cl.Kubeconfig, "")
	if err != nil {
		t.Fatal(err)
	}
	sv := &store.Service{Service: api.Service{Name: "iris", ServiceSpec: api.ServiceSpec{Namespace: "default"}}}
	spec.NodeSelector = map[string]string{"nowhere": "true"}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "iris-1", Namespace: "default", Labels: map[string]string{frontend.ServiceLabel: "iris"}}, Spec: spec}
	pod, err = kc.Client.CoreV1().Pods("default").Create(context.Background(), pod, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return kc, sv, pod
}
