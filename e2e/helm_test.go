package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-ml/berth/internal/testenv/simcluster"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/restmapper"
)

// chartDir is the chart under test, from the e2e folder.
const chartDir = "../deploy/helm/berth"

// helmBin is the Helm CLI hack/helm.sh builds (BERTH_HELM, else
// .cache/helm/bin/helm); the tests skip without it unless
// BERTH_REQUIRE_HELM=1.
func helmBin(t *testing.T) string {
	t.Helper()
	bin := os.Getenv("BERTH_HELM")
	if bin == "" {
		bin, _ = filepath.Abs("../.cache/helm/bin/helm")
	}
	if _, err := os.Stat(bin); err != nil {
		if os.Getenv("BERTH_REQUIRE_HELM") == "1" {
			t.Fatalf("helm: %v (build it with ./hack/helm.sh)", err)
		}
		t.Skipf("helm is not built (./hack/helm.sh): %v", err)
	}
	return bin
}

// helm runs the Helm CLI with a private home (no user repositories or
// plugins) and returns its output and exit code.
func helm(t *testing.T, kubeconfig string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(helmBin(t), args...)
	home := t.TempDir()
	cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+filepath.Join(home, "cache"), "HELM_CONFIG_HOME="+filepath.Join(home, "config"),
		"HELM_DATA_HOME="+filepath.Join(home, "data"), "KUBECONFIG="+kubeconfig)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatal(err)
	}
	return out.String(), errb.String(), cmd.ProcessState.ExitCode()
}

// mustHelm is helm that fails the test on a non-zero exit.
func mustHelm(t *testing.T, kubeconfig string, args ...string) string {
	t.Helper()
	out, errs, code := helm(t, kubeconfig, args...)
	if code != 0 {
		t.Fatalf("helm %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errs)
	}
	return out
}

// manifests splits helm template's output into objects.
func manifests(t *testing.T, rendered string) []*unstructured.Unstructured {
	t.Helper()
	dec := utilyaml.NewYAMLOrJSONDecoder(strings.NewReader(rendered), 4096)
	var objs []*unstructured.Unstructured
	for {
		u := &unstructured.Unstructured{}
		if err := dec.Decode(&u.Object); errors.Is(err, io.EOF) {
			return objs
		} else if err != nil {
			t.Fatalf("decode rendered chart: %v\n%s", err, rendered)
		}
		if len(u.Object) > 0 {
			objs = append(objs, u)
		}
	}
}

// chartValueSets are the value sets the chart is rendered and validated
// with: the defaults, a production install (S3 with credentials, Ingress
// with TLS, NetworkPolicy, the operator's own secrets, a load balancer)
// and a single replica with its own service account and extras.
var chartValueSets = map[string][]string{
	"defaults": nil,
	"production": {"--set", "replicaCount=3", "--set", "artifactStore.url=s3://models/berth?region=eu-west-1",
		"--set", "artifactStore.existingSecret=berth-s3", "--set", "publicURL=https://berth.example.com",
		"--set", "ingress.enabled=true", "--set", "ingress.host=berth.example.com", "--set", "ingress.tlsSecretName=berth-tls",
		"--set", "ingress.className=nginx", "--set", "networkPolicy.enabled=true",
		"--set-json", `networkPolicy.from=[{"namespaceSelector":{"matchLabels":{"team":"ml"}}}]`,
		"--set", "secretKey.existingSecret=my-key", "--set", "ownerToken.existingSecret=my-token",
		"--set", "service.type=LoadBalancer", "--set", "image.tag=1.2.3", "--set", "resources.limits.cpu=2"},
	"single": {"--set", "replicaCount=1", "--set", "podDisruptionBudget.enabled=false", "--set", "serviceAccount.create=false",
		"--set", "serviceAccount.name=berth-sa", "--set", "service.type=NodePort", "--set", "server.logFormat=text",
		"--set", "server.frontendImage=mirror.example:5000/ml/berth:1.2.3", "--set-json", `server.extraArgs=["--reconcile-interval=10m"]`,
		"--set-json", `server.extraEnv=[{"name":"SSL_CERT_DIR","value":"/etc/berth-ca"}]`, "--set", "database.existingSecret=pg", "--set", "database.key=dsn"},
}

// TestHelmChart: `helm lint` is clean; the chart rendered with each value
// set is accepted by a Kubernetes API server (server-side apply, dry run:
// admission and validation, nothing stored) and carries the probes, the
// security settings and no cluster rights; the schema refuses bad values
// with messages that name them.
func TestHelmChart(t *testing.T) {
	out := mustHelm(t, "", "lint", chartDir)
	if strings.Contains(out, "[ERROR]") || strings.Contains(out, "[WARNING]") {
		t.Fatalf("helm lint:\n%s", out)
	}
	cl := simcluster.StartT(t, simcluster.Options{})
	ctx := context.Background()
	const ns = "berth-dry"
	if _, err := cl.Client().CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	dyn, err := dynamic.NewForConfig(cl.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(cl.Client().Discovery()))
	for name, set := range chartValueSets {
		t.Run(name, func(t *testing.T) {
			rendered := mustHelm(t, "", append([]string{"template", "berth", chartDir, "--namespace", ns}, set...)...)
			kinds := map[string]int{}
			for _, u := range manifests(t, rendered) {
				kinds[u.GetKind()]++
				gvk := u.GroupVersionKind()
				m, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
				if err != nil {
					t.Fatalf("%s: %v", gvk, err)
				}
				if _, err := dyn.Resource(m.Resource).Namespace(ns).Apply(ctx, u.GetName(), u,
					metav1.ApplyOptions{FieldManager: "helm-test", DryRun: []string{metav1.DryRunAll}}); err != nil {
					t.Errorf("the API server refused %s %s: %v", u.GetKind(), u.GetName(), err)
				}
				if u.GetKind() == "Deployment" {
					checkServerPod(t, name, u)
				}
			}
			for _, k := range []string{"Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"} {
				if kinds[k] != 0 {
					t.Errorf("the chart grants cluster rights: %d %s", kinds[k], k)
				}
			}
			want := map[string]map[string]int{
				"defaults":   {"Deployment": 1, "Service": 1, "PodDisruptionBudget": 1, "ServiceAccount": 1, "Secret": 1},
				"production": {"Deployment": 1, "Service": 1, "PodDisruptionBudget": 1, "ServiceAccount": 1, "Ingress": 1, "NetworkPolicy": 1},
				"single":     {"Deployment": 1, "Service": 1, "Secret": 1},
			}[name]
			for k, n := range kinds {
				if want[k] != n {
					t.Errorf("rendered %d %s, want %d (all: %v)", n, k, want[k], kinds)
				}
			}
		})
	}

	// The schema refuses bad values, naming them, before anything renders.
	for _, c := range []struct{ set, want string }{
		{"replicaCount=-1", "at '/replicaCount': minimum: got -1, want 0"},
		{"database.existingSecret=", "at '/database/existingSecret': minLength: got 0, want 1"},
		{"database.existingSecret=null", "at '/database': missing property 'existingSecret'"},
		{"image.tag=1.0 beta", "at '/image/tag': '1.0 beta' does not match pattern"},
		{"artifactStore.url=http://minio:9000/b", "at '/artifactStore/url'"},
		{"ingress.enabled=true", "at '/ingress/host': minLength: got 0, want 1"},
	} {
		out, errs, code := helm(t, "", "template", "berth", chartDir, "--set", c.set)
		if code == 0 || !strings.Contains(errs, "values don't meet the specifications of the schema") || !strings.Contains(errs, c.want) {
			t.Errorf("--set %s: exit %d, want a refusal saying %q:\n%s%s", c.set, code, c.want, errs, out)
		}
	}
}

// checkServerPod checks what every value set must keep in the server's pod.
func checkServerPod(t *testing.T, set string, u *unstructured.Unstructured) {
	t.Helper()
	spec, _, _ := unstructured.NestedMap(u.Object, "spec", "template", "spec")
	containers, _, _ := unstructured.NestedSlice(spec, "containers")
	c := containers[0].(map[string]any)
	str := func(fields ...string) string { s, _, _ := unstructured.NestedString(c, fields...); return s }
	boolean := func(m map[string]any, fields ...string) bool {
		b, _, _ := unstructured.NestedBool(m, fields...)
		return b
	}
	if str("readinessProbe", "httpGet", "path") != "/readyz" || str("livenessProbe", "httpGet", "path") != "/healthz" {
		t.Errorf("%s: probes %v %v", set, c["readinessProbe"], c["livenessProbe"])
	}
	if !boolean(c, "securityContext", "readOnlyRootFilesystem") || boolean(c, "securityContext", "allowPrivilegeEscalation") ||
		!boolean(spec, "securityContext", "runAsNonRoot") || boolean(spec, "automountServiceAccountToken") {
		t.Errorf("%s: security settings: pod %v container %v", set, spec["securityContext"], c["securityContext"])
	}
	if n, _, _ := unstructured.NestedFieldNoCopy(u.Object, "spec", "replicas"); (set == "defaults") != (fmt.Sprint(n) == "2") {
		t.Errorf("%s: %v replicas", set, n)
	}
}
