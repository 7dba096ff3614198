package kubernetes

import (
	"context"
	"errors"

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
	cl := simcluster.StartT(t, simcluster.Options{Nodes: simcluster.Nodes(1, "4")})
	kc, err := kubeconn.Connect(cl.Kubeconfig, "")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	sv := &store.Service{Service: api.Service{Name: "iris", ServiceSpec: api.ServiceSpec{Namespace: "default"}}}
	// A pod no node runs (no kubelet rewrites its status), as a cluster
	// would report it.
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "iris-1", Namespace: "default", Labels: map[string]string{frontend.ServiceLabel: "iris"}},
		Spec: corev1.PodSpec{NodeSelector: map[string]string{"nowhere": "true"},
			InitContainers: []corev1.Container{{Name: InitContainerName, Image: "berth"}}, Containers: []corev1.Container{{Name: "model", Image: "berth"}}}}
	pod, err = kc.Client.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := modelsRefused(ctx, kc, sv); err != nil {
		t.Fatalf("a pending replica: %v", err)
	}
	// The scheduler writes the pod's status too (unschedulable): take the
	// latest before each try.
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur, err := kc.Client.CoreV1().Pods("default").Get(ctx, pod.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		cur.Status.InitContainerStatuses = []corev1.ContainerStatus{{Name: InitContainerName,
			State:                corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}},
			LastTerminationState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 1, Reason: "Error"}}}}
		_, err = kc.Client.CoreV1().Pods("default").UpdateStatus(ctx, cur, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	err = modelsRefused(ctx, kc, sv)
	var f *operation.Failure
	if !errors.As(err, &f) || f.Code != api.CodeModelUnpackFailed || !strings.Contains(f.Message, "replica iris-1 could not get its models (berth-models exited with code 1)") {
		t.Fatalf("a replica whose models were refused: %v", err)
	}
}
