package e2e

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/berth-ml/berth/api"
	"github.com/berth-ml/berth/client"
	"github.com/berth-ml/berth/internal/installer"
	"github.com/berth-ml/berth/internal/testenv/simcluster"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestReconcileRollsFrontendToServerImage plays a server upgrade: a
// cluster attached by one server keeps its front end's image until a
// server with another image reconciles it, and `compute show` tells which
// image the cluster runs all along.
func TestReconcileRollsFrontendToServerImage(t *testing.T) {
	t.Parallel()
	cl := simcluster.StartT(t, simcluster.Options{Nodes: simcluster.Nodes(1, "4")})
	kube := cl.Client()
	ctx := context.Background()
	dir, addr := t.TempDir(), freeAddr(t)
	args := []string{"--reconcile-interval", "1h", "--ready-timeout", "90s"}
	env := []string{"BERTH_SERVER=http://" + addr, "BERTH_DATA_DIR=" + dir, "BERTH_WORKSPACE=team"}
	run := func(args ...string) result {
		t.Helper()
		r := berth(t, env, args...)
		if r.code != 0 {
			t.Fatalf("berth %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
		}
		return r
	}
	show := func() api.Compute {
		t.Helper()
		var c api.Compute
		if r := run("compute", "show", "-n", "dev-1", "-o", "json"); json.Unmarshal([]byte(r.stdout), &c) != nil {
			t.Fatalf("compute show: %s", r.stdout)
		}
		return c
	}
	deployed := func() string {
		t.Helper()
		d, err := kube.AppsV1().Deployments(installer.Namespace).Get(ctx, installer.FrontendName, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return d.Spec.Template.Spec.Containers[0].Image
	}

	// The old server: images from a mirror, tagged with its version.
	old := startServer(t, dir, addr, nil, append(args, "--image-repository", "mirror.corp.example/ml/berth")...)
	c, _ := client.New(old.url(), ownerToken(t, dir))
	if _, err := c.CreateWorkspace(ctx, api.WorkspaceCreateRequest{Name: "team"}); err != nil {
		t.Fatal(err)
	}
	sv, err := c.ServerVersion(ctx)
	if err != nil {
		t.Fatal(err)
	}
	oldImage := "mirror.corp.example/ml/berth:" + sv.Version
	if sv.FrontendImage != oldImage {
		t.Fatalf("old server's image %s, want %s", sv.FrontendImage, oldImage)
	}
	r := run("compute", "attach", "kubernetes", "-n", "dev-1", "--kubeconfig", cl.KubeconfigPath, "--cluster-purpose", "DevTest", "-o", "json")
	var att api.Compute
	if json.Unmarshal([]byte(r.stdout), &att) != nil || att.FrontendImage != oldImage {
		t.Fatalf("attach: frontendImage %q, want %s\n%s", att.FrontendImage, oldImage, r.stdout)
	}
	if got := deployed(); got != oldImage {
		t.Fatalf("Deployment image %s after attach, want %s", got, oldImage)
	}

	// The upgraded server (here: another image) on the same store.
	old.kill()
	const newImage = "registry.example/berth/berth:2.0.0"
	startServer(t, dir, addr, nil, append(args, "--frontend-image", newImage)...)
	if c := show(); c.FrontendImage != oldImage {
		t.Errorf("before reconcile compute show says %s, want the cluster's %s", c.FrontendImage, oldImage)
	}
	if r := run("version", "--query", "server.frontendImage", "-o", "tsv"); strings.TrimSpace(r.stdout) != newImage {
		t.Errorf("the new server's image: %q", r.stdout)
	}

	r = run("compute", "reconcile", "-n", "dev-1")
	t.Logf("berth compute reconcile -n dev-1:\n%s", r.stderr)
	for _, want := range []string{
		"Rolling the front end from image " + oldImage + " to this server's " + newImage,
		"Drift: Deployment " + installer.Namespace + "/" + installer.FrontendName + ": spec.template.spec.containers[0].image was " + oldImage + " (restoring " + newImage + ")",
		"front end image " + newImage,
	} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("reconcile events lack %q:\n%s", want, r.stderr)
		}
	}
	if got := deployed(); got != newImage {
		t.Errorf("Deployment image %s after reconcile, want %s", got, newImage)
	}
	if c := show(); c.FrontendImage != newImage || c.Health != api.HealthHealthy {
		t.Errorf("after reconcile compute show says %s (%s), want %s", c.FrontendImage, c.Health, newImage)
	}
	if r := run("compute", "show", "-n", "dev-1"); !strings.Contains(r.stdout, "FrontendImage") || !strings.Contains(r.stdout, newImage) {
		t.Errorf("compute show table:\n%s", r.stdout)
	}
	if r := run("compute", "reconcile", "-n", "dev-1"); !strings.Contains(r.stderr, "No drift") || strings.Contains(r.stderr, "Rolling") {
		t.Errorf("second reconcile:\n%s", r.stderr)
	}
}
