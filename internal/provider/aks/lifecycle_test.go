package aks_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/berth-ml/berth/internal/testenv"
	"github.com/berth-ml/berth/internal/testenv/servertest"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/containerservice/armcontainerservice/v6"
	"github.com/berth-ml/berth/api"
	"github.com/berth-ml/berth/internal/cli"
	"github.com/berth-ml/berth/internal/installer"
	"github.com/berth-ml/berth/internal/provider/aks"
	"github.com/berth-ml/berth/internal/server"
	"github.com/berth-ml/berth/internal/testenv/simcluster"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// One simulated cluster for the package, started by the first test that
// needs it: the kubeconfig the fake Azure hands out points at it.
var (
	clusterOnce sync.Once
	cluster     *simcluster.Cluster
	clusterErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if cluster != nil {
		cluster.Stop()
	}
	os.Exit(code)
}

func simulated(t *testing.T) *simcluster.Cluster {
	t.Helper()
	testenv.SkipShort(t, "simulated cluster")
	clusterOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		cluster, clusterErr = simcluster.Start(ctx, simcluster.Options{Nodes: simcluster.Nodes(3, "4")})
	})
	if clusterErr != nil {
		t.Fatalf("simulated cluster: %v", clusterErr)
	}
	return cluster
}

// simulatedAzure is the package's simulated cluster and a fake Azure whose
// clusters' kubeconfig leads to it.
func simulatedAzure(t *testing.T) (*simcluster.Cluster, *aks.FakeAzure) {
	t.Helper()
	cl := simulated(t)
	fake := aks.NewFakeAzure()
	fake.Kubeconfig = cl.Kubeconfig
	return cl, fake
}

// env is a control plane whose AKS provider talks to a fake Azure, and a
// way to run the real CLI against it.
type env struct {
	t     *testing.T
	fake  *aks.FakeAzure
	url   string
	token string
	logs  *servertest.Log
}

func start(t *testing.T, fake *aks.FakeAzure, configure ...func(*server.Config)) *env {
	t.Helper()
	dir := t.TempDir()
	t.Setenv("BERTH_CONFIG", filepath.Join(dir, "config.yaml"))
	cfg := server.Config{DataDir: dir, Lease: 5 * time.Second, Poll: 100 * time.Millisecond,
		ReconcileInterval: -1, ReadyTimeout: 2 * time.Minute, Azure: fake.Options()}
	for _, f := range configure {
		f(&cfg)
	}
	srv := servertest.Start(t, cfg)
	e := &env{t: t, fake: fake, url: srv.URL, token: srv.Token, logs: srv.Log}
	e.ok("workspace", "create", "-n", "ml-team", "--region", "westus2", "--azure-subscription-id", aks.FakeSubscription, "--azure-resource-group", "berth-rg")
	return e
}

type result struct {
	code           int
	stdout, stderr string
}

func (e *env) berth(args ...string) result {
	e.t.Helper()
	var out, errb bytes.Buffer
	getenv := func(k string) string {
		switch k {
		case "BERTH_SERVER":
			return e.url
		case "BERTH_TOKEN":
			return e.token
		case "BERTH_WORKSPACE":
			return "ml-team"
		}
		return ""
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	code := cli.Execute(ctx, args, &out, &errb, getenv)
	return result{code, out.String(), errb.String()}
}

func (e *env) ok(args ...string) result {
	e.t.Helper()
	r := e.berth(args...)
	if r.code != 0 {
		e.t.Fatalf("berth %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r
}

func (e *env) compute(name string) api.Compute {
	e.t.Helper()
	var c api.Compute
	r := e.ok("compute", "show", "-n", name, "-o", "json")
	if err := json.Unmarshal([]byte(r.stdout), &c); err != nil {
		e.t.Fatal(err)
	}
	return c
}

func mustContain(t *testing.T, what, s string, parts ...string) {
	t.Helper()
	for _, p := range parts {
		if !strings.Contains(s, p) {
			t.Errorf("%s lacks %q:\n%s", what, p, s)
		}
	}
}

// TestCreateScaleDeleteAttach is the AKS journey through the real CLI and
// control plane: Azure is the SDK's fake servers, and the cluster the fake
// hands a kubeconfig for is a simulated Kubernetes cluster, so the install
// after creation runs for real.
func TestCreateScaleDeleteAttach(t *testing.T) {
	cl, fake := simulatedAzure(t)
	fake.PollError = errors.New("read tcp: connection reset by peer")
	nodes := 3
	fake.OnScale = func(n int32) {
		for ; nodes < int(n); nodes++ {
			if err := cl.AddNode(simcluster.NodeSpec{Name: fmt.Sprintf("kwok-node-%d", nodes+1), CPU: "4"}); err != nil {
				t.Errorf("add node: %v", err)
			}
		}
	}
	e := start(t, fake)

	// Dry run: every rule checked, the ARM request printed, nothing sent.
	r := e.ok("compute", "create", "aks", "-n", "aks1", "--dry-run")
	mustContain(t, "dry run", r.stdout, "Dry run: nothing was changed",
		"PUT https://management.azure.com/subscriptions/"+aks.FakeSubscription+"/resourceGroups/berth-rg/providers/Microsoft.ContainerService/managedClusters/aks1?api-version=",
		`"vmSize": "Standard_D3_v2"`, `"count": 3`, `"loadBalancerSku": "standard"`, `"type": "SystemAssigned"`, `"kubernetesVersion": "1.37"`)
	if fake.Sent("PUT", "") {
		t.Fatal("the dry run sent a PUT")
	}

	// Every problem at once, before any Azure change.
	r = e.berth("compute", "create", "aks", "-n", "aks1", "--agent-count", "0", "--vnet-name", "v", "--location", "mars")
	if r.code == 0 {
		t.Fatal("invalid create succeeded")
	}
	mustContain(t, "validation errors", r.stderr, "--agent-count must be a positive integer", "or none; missing: --vnet-resourcegroup-name", `location "mars" is not an Azure location`)

	// Create: the long-running operation followed with progress (a broken
	// poll is retried and the operation resumed), then the install path.
	r = e.ok("compute", "create", "aks", "-n", "aks1")
	out := r.stdout + r.stderr
	mustContain(t, "create output", out, "Creating AKS cluster aks1 in westus2: 3 × Standard_D3_v2, Kubernetes 1.37",
		"connection reset by peer", "Resuming: following the creation of AKS cluster aks1", "Creating AKS cluster aks1: done",
		"Got the cluster's kubeconfig from Azure", "Front end ready", "DNS label aks1",
		// One capacity rule on create, attach and scale: the VM size's vCPUs,
		// not the allocatable CPU the kubelets leave (below 12 here).
		"Preflight ✓ capacity: 12 vCPUs (3 × Standard_D3_v2 at 4; 11.76 allocatable) on 3 Ready, schedulable node(s) is enough for FastProd",
		"The API server accepts connections from any address (no authorized IP ranges)")
	c := e.compute("aks1")
	if c.ProvisioningState != api.StateSucceeded || c.Origin != api.OriginCreated || c.NodeCount != 3 || c.Endpoint == "" || !c.HasCredentials {
		t.Fatalf("compute after create: %+v", c)
	}
	if !regexp.MustCompile(`^aks1[a-z0-9]{6}\.westus2\.cloudapp\.azure\.com$`).MatchString(status(c).FQDN) {
		t.Errorf("fqdn %q", status(c).FQDN)
	}
	svc, err := cl.Client().CoreV1().Services(installer.Namespace).Get(context.Background(), installer.FrontendName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := svc.Annotations[aks.DNSLabelAnnotation]; got == "" || got != status(c).DNSLabel {
		t.Errorf("front end Service DNS label %q, compute's %q", got, status(c).DNSLabel)
	}
	fake.Mu.Lock()
	mc := fake.Clusters["berth-rg/aks1"]
	fake.Mu.Unlock()
	if mc == nil || *mc.Identity.Type != armcontainerservice.ResourceIdentityTypeSystemAssigned ||
		*mc.Properties.NetworkProfile.LoadBalancerSKU != armcontainerservice.LoadBalancerSKUStandard || *mc.Tags["berth.dev-attachment"] != c.AttachmentID {
		t.Fatalf("created cluster: %+v", mc)
	}
	if strings.Contains(e.logs.String(), "clusterAdmin") || strings.Contains(e.logs.String(), cl.AdminToken) {
		t.Error("the server log shows the kubeconfig")
	}

	// Reconcile keeps the DNS label.
	e.ok("compute", "reconcile", "-n", "aks1")
	svc, _ = cl.Client().CoreV1().Services(installer.Namespace).Get(context.Background(), installer.FrontendName, metav1.GetOptions{})
	if svc.Annotations[aks.DNSLabelAnnotation] != status(c).DNSLabel {
		t.Error("reconcile dropped the DNS label")
	}

	// Scale: purpose minimums, then Azure's agent pool and the new node.
	r = e.berth("compute", "scale", "-n", "aks1", "--node-count", "2")
	if r.code == 0 {
		t.Fatal("scaling a FastProd cluster to 2 nodes succeeded")
	}
	mustContain(t, "scale refusal", r.stderr, "cluster purpose FastProd needs at least 3 nodes (asked for 2)", "needs at least 12 vCPUs; 2 × Standard_D3_v2 is 8 vCPUs")
	r = e.ok("compute", "scale", "-n", "aks1", "--node-count", "4")
	mustContain(t, "scale output", r.stdout+r.stderr, "Scaling agent pool agentpool of aks1 from 3 to 4 nodes")
	if c := e.compute("aks1"); c.NodeCount != 4 || agentCount(c) != 4 || c.ProvisioningState != api.StateSucceeded {
		t.Errorf("after scale: nodes %d, agentCount %d, %s", c.NodeCount, agentCount(c), c.ProvisioningState)
	}

	// Services deploy to an AKS compute as to any cluster.
	model := filepath.Join(t.TempDir(), "model.bin")
	if err := os.WriteFile(model, []byte("weights"), 0o600); err != nil {
		t.Fatal(err)
	}
	e.ok("model", "register", "-n", "iris", "--path", model)
	r = e.ok("service", "deploy", "-n", "scorer", "--compute", "aks1", "--model", "iris", "--image", "example/iris:1",
		"--model-delivery", "image", "--replicas", "1", "-o", "json")
	mustContain(t, "service on aks", r.stdout, `"state": "Healthy"`, "cloudapp.azure.com/api/v1/service/scorer/score")
	if _, err := cl.Client().AppsV1().Deployments("default").Get(context.Background(), "scorer", metav1.GetOptions{}); err != nil {
		t.Errorf("the service's Deployment: %v", err)
	}
	e.ok("service", "delete", "-n", "scorer")

	// Delete: Berth's components, then the cluster.
	r = e.ok("compute", "delete", "-n", "aks1")
	mustContain(t, "delete output", r.stdout+r.stderr, "Removed every Berth object", "Deleting AKS cluster aks1")
	if _, err := cl.Client().CoreV1().Namespaces().Get(context.Background(), installer.Namespace, metav1.GetOptions{}); err == nil {
		ns, _ := cl.Client().CoreV1().Namespaces().Get(context.Background(), installer.Namespace, metav1.GetOptions{})
		if ns.DeletionTimestamp == nil {
			t.Error("berth-system is still there after delete")
		}
	} else if !apierrors.IsNotFound(err) {
		t.Error(err)
	}
	fake.Mu.Lock()
	_, still := fake.Clusters["berth-rg/aks1"]
	fake.Mu.Unlock()
	if still || !fake.Sent("DELETE", "managedClusters/aks1") {
		t.Error("the AKS cluster was not deleted")
	}
	waitNamespaceGone(t, cl)

	// Attach by resource id; delete is refused, detach leaves the cluster.
	id := fake.AddCluster("team-rg", "prod", "eastus", "1.37.2")
	r = e.ok("compute", "attach", "aks", "-n", "prod1", "-i", id, "--dry-run")
	mustContain(t, "attach dry run", r.stdout, "found managed cluster prod and got its kubeconfig", "Preflight passed")
	r = e.ok("compute", "attach", "aks", "-n", "prod1", "-i", id)
	mustContain(t, "attach output", r.stdout+r.stderr, "Found AKS cluster prod in resource group team-rg (eastus", "is in eastus, the workspace's region is westus2", "Front end ready",
		"The API server accepts connections from any address (no authorized IP ranges)", "Preflight ✓ capacity: 16 vCPUs (4 × Standard_D3_v2 at 4; 15.68 allocatable)")
	if c := e.compute("prod1"); c.Origin != api.OriginAttached || c.ProvisioningState != api.StateSucceeded || !strings.HasSuffix(status(c).FQDN, ".eastus.cloudapp.azure.com") {
		t.Errorf("attached: %+v", c)
	}
	// Internal and back: the DNS name goes and comes with the public IP.
	e.ok("compute", "update", "-n", "prod1", "--load-balancer-type", "InternalLoadBalancer", "--load-balancer-subnet", "aks-subnet")
	if c := e.compute("prod1"); status(c).FQDN != "" {
		t.Errorf("internal front end kept fqdn %q", status(c).FQDN)
	}
	e.ok("compute", "update", "-n", "prod1", "--load-balancer-type", "PublicIp")
	if c := e.compute("prod1"); !strings.HasSuffix(status(c).FQDN, ".eastus.cloudapp.azure.com") {
		t.Errorf("public again: fqdn %q", status(c).FQDN)
	}
	r = e.berth("compute", "delete", "-n", "prod1")
	if r.code == 0 {
		t.Fatal("delete of an attached AKS cluster succeeded")
	}
	mustContain(t, "delete refusal", r.stderr, "was attached, not created by Berth", "berth compute detach -n prod1")
	r = e.berth("compute", "scale", "-n", "prod1", "--node-count", "5")
	if r.code == 0 {
		t.Fatal("scale of an attached cluster succeeded")
	}
	e.ok("compute", "detach", "-n", "prod1")
	fake.Mu.Lock()
	_, kept := fake.Clusters["team-rg/prod"]
	fake.Mu.Unlock()
	if !kept || fake.Sent("DELETE", "managedClusters/prod") {
		t.Error("detach deleted the AKS cluster")
	}
	waitNamespaceGone(t, cl)
}

func waitNamespaceGone(t *testing.T, cl *simcluster.Cluster) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		_, err := cl.Client().CoreV1().Namespaces().Get(context.Background(), installer.Namespace, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("namespace %s still there", installer.Namespace)
}

// TestCreateFailures: Azure's refusals during creation end the operation
// with a message that says what to do, and nothing is installed.
func TestCreateFailures(t *testing.T) {
	group := "/subscriptions/" + aks.FakeSubscription + "/resourceGroups/berth-rg"
	cases := []struct {
		name  string
		setup func(f *aks.FakeAzure)
		want  []string
	}{
		{"quota exceeded mid-poll", func(f *aks.FakeAzure) {
			f.CreateFailure, f.CreateFailureCode = "QuotaExceeded", http.StatusConflict
		}, []string{"AzureQuotaExceeded", "the subscription's quota is too small to create managed cluster", "Request a quota increase for the VM family"}},
		{"policy forbids public IPs", func(f *aks.FakeAzure) {
			f.Inject = func(req *http.Request) *http.Response {
				if req.Method == http.MethodPut {
					return aks.AzureError(req, http.StatusForbidden, "RequestDisallowedByPolicy", "Resource 'kubernetes' was disallowed by policy: public IP addresses are not allowed")
				}
				return nil
			}
		}, []string{"AzurePolicyDenied", "public IP addresses are not allowed", "use --load-balancer-type InternalLoadBalancer"}},
		{"missing role on the resource group", func(f *aks.FakeAzure) {
			f.Inject = func(req *http.Request) *http.Response {
				if req.Method == http.MethodPut {
					return aks.AzureError(req, http.StatusForbidden, "AuthorizationFailed", "does not have authorization to perform action 'Microsoft.ContainerService/managedClusters/write'")
				}
				return nil
			}
		}, []string{"AzureRoleMissing", `assign it the "Contributor" role on scope ` + group}},
		{"throttled past the retries", func(f *aks.FakeAzure) {
			f.Inject = func(req *http.Request) *http.Response {
				if req.Method == http.MethodPut {
					return aks.AzureError(req, http.StatusTooManyRequests, "TooManyRequests", "slow down", "Retry-After", "1")
				}
				return nil
			}
		}, []string{"AzureThrottled", "Azure kept throttling requests (429 Too Many Requests)"}},
		{"name taken between check and create", func(f *aks.FakeAzure) {
			f.Inject = func(req *http.Request) *http.Response {
				if req.Method == http.MethodPut {
					return aks.AzureError(req, http.StatusConflict, "Conflict", "a managed cluster with this name is being created")
				}
				return nil
			}
		}, []string{"AzureNameConflict", "a managed cluster with this name is being created"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fake := aks.NewFakeAzure()
			fake.Kubeconfig = []byte("not used")
			tc.setup(fake)
			e := start(t, fake)
			r := e.berth("compute", "create", "aks", "-n", "aks1", "-o", "json")
			if r.code == 0 {
				t.Fatalf("create succeeded:\n%s", r.stdout)
			}
			c := e.compute("aks1")
			b, _ := json.Marshal(c.ProvisioningErrors)
			mustContain(t, "provisioning errors", string(b)+r.stderr, tc.want...)
			if c.ProvisioningState != api.StateFailed || fake.Sent("POST", "listClusterAdminCredential") {
				t.Errorf("state %s; credentials fetched: %v", c.ProvisioningState, fake.Sent("POST", "listClusterAdminCredential"))
			}
			// A failed create can be deleted: whatever Azure made goes.
			fake.Mu.Lock()
			fake.Inject = nil
			fake.Mu.Unlock()
			e.ok("compute", "delete", "-n", "aks1")
			fake.Mu.Lock()
			defer fake.Mu.Unlock()
			if len(fake.Clusters) != 0 {
				t.Errorf("clusters left in Azure: %v", fake.Clusters)
			}
		})
	}
}

// TestVersionsCommand: berth versions -l asks Azure, prints the table with
// preview and support marks, and the reference's --query works on the JSON.
func TestVersionsCommand(t *testing.T) {
	e := start(t, aks.NewFakeAzure())
	r := e.ok("versions", "-l", "westus2")
	mustContain(t, "versions table", r.stdout, "KubernetesVersion", "Upgrades", "1.38.0(preview) (not supported by Berth)", "1.37.2 (default)", "1.32.9 (not supported by Berth)", "1.36.3, 1.37.2")
	r = e.ok("versions", "-l", "westus2", "-o", "tsv", "--query", "orchestrators[?default == `true`].orchestratorVersion")
	if strings.TrimSpace(r.stdout) != "1.37.2" {
		t.Errorf("default query: %q", r.stdout)
	}
	r = e.berth("workspace", "create", "-n", "other-team", "--azure-credential", "password")
	if r.code == 0 || !strings.Contains(r.stderr, `Azure credential "password" is not known: use one of default, environment, workload-identity, managed-identity, azure-cli`) {
		t.Errorf("bad credential choice: %+v", r)
	}
	r = e.berth("versions", "-l", "mars")
	if r.code == 0 || !strings.Contains(r.stderr, `Azure has no Kubernetes versions for location "mars"`) {
		t.Errorf("unknown location: %+v", r)
	}
}

func status(c api.Compute) aks.Status {
	var st aks.Status
	if err := json.Unmarshal(c.Status, &st); err != nil && len(c.Status) > 0 {
		panic(err)
	}
	return st
}

func agentCount(c api.Compute) int {
	var set aks.Settings
	if json.Unmarshal(c.Settings, &set) != nil || set.AgentCount == nil {
		return 0
	}
	return *set.AgentCount
}
