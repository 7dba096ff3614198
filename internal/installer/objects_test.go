package installer

import (
	"encoding/json"
	"strings"
	"testing"
)

func settings(purpose, lb string) Settings {
	return Settings{AttachmentID: "a1b2c3", Workspace: "team", Compute: "prod", Purpose: purpose, LoadBalancerType: lb,
		LoadBalancerSubnet: "sub", Image: "example/berth:1"}
}

func TestEveryObjectIsLabelled(t *testing.T) {
	for _, s := range []Settings{settings("FastProd", "PublicIp"), settings("DevTest", "InternalLoadBalancer")} {
		objs := append(FrontendObjects(s), ManagerRole(s))
		objs = append(objs, ManagerDependents(s, "uid-1")...)
		for _, o := range objs {
			u, err := unstructuredOf(o)
			if err != nil {
				t.Fatal(err)
			}
			l := u.GetLabels()
			if l[LabelManagedBy] != "berth" || l[LabelAttachment] != "a1b2c3" || l[LabelComponent] == "" {
				t.Errorf("%s labels %v", o, l)
			}
			if u.GetKind() == "" || u.GetAPIVersion() == "" || u.GetName() == "" {
				t.Errorf("%s lacks kind, apiVersion or name", o)
			}
		}
	}
}

func find(objs []Object, kind string) map[string]any {
	for _, o := range objs {
		if o.Kind.Kind == kind {
			u, _ := unstructuredOf(o)
			return u.Object
		}
	}
	return nil
}

func TestPurposeAndLoadBalancerShapeTheObjects(t *testing.T) {
	prod := FrontendObjects(settings("FastProd", "PublicIp"))
	if find(prod, "PodDisruptionBudget") == nil {
		t.Error("FastProd without a PodDisruptionBudget")
	}
	dep, _ := json.Marshal(find(prod, "Deployment"))
	if !strings.Contains(string(dep), `"replicas":3`) || !strings.Contains(string(dep), "topologySpreadConstraints") {
		t.Errorf("FastProd deployment: %s", dep)
	}
	svc, _ := json.Marshal(find(prod, "Service"))
	if strings.Contains(string(svc), "internal") || !strings.Contains(string(svc), `"type":"LoadBalancer"`) {
		t.Errorf("public service: %s", svc)
	}
	dev := FrontendObjects(settings("DevTest", "InternalLoadBalancer"))
	if find(dev, "PodDisruptionBudget") != nil {
		t.Error("DevTest with a PodDisruptionBudget")
	}
	dep, _ = json.Marshal(find(dev, "Deployment"))
	if !strings.Contains(string(dep), `"replicas":1`) {
		t.Errorf("DevTest deployment: %s", dep)
	}
	svc, _ = json.Marshal(find(dev, "Service"))
	for _, want := range []string{`"service.beta.kubernetes.io/azure-load-balancer-internal":"true"`, `"service.beta.kubernetes.io/azure-load-balancer-internal-subnet":"sub"`} {
		if !strings.Contains(string(svc), want) {
			t.Errorf("internal service lacks %s: %s", want, svc)
		}
	}
	ns := find(dev, "Namespace")
	ann := ns["metadata"].(map[string]any)["annotations"].(map[string]any)
	if ann[AnnotationCompute] != "prod" || ann[AnnotationWorkspace] != "team" || ann[AnnotationAttachment] != "a1b2c3" {
		t.Errorf("marker annotations %v", ann)
	}
}

func TestDiffDescribesChanges(t *testing.T) {
	live := map[string]any{"spec": map[string]any{"replicas": float64(5), "a": "x"}, "metadata": map[string]any{"labels": map[string]any{"k": "v", "extra": "1"}}}
	want := map[string]any{"spec": map[string]any{"replicas": float64(3), "a": "x"}, "metadata": map[string]any{"labels": map[string]any{"k": "v"}}}
	got := strings.Join(diff("", live, want), "\n")
	for _, w := range []string{"spec.replicas was 5 (restoring 3)", "metadata.labels.extra was added"} {
		if !strings.Contains(got, w) {
			t.Errorf("diff lacks %q:\n%s", w, got)
		}
	}
	if d := diff("", want, want); len(d) != 0 {
		t.Errorf("no change reported %v", d)
	}
}

// On AKS an automatic certificate's name is the public IP's Azure DNS
// label; internal load balancers have no public name.
func TestDNSLabelNamesThePublicIP(t *testing.T) {
	s := settings("DevTest", "PublicIp")
	s.DNSLabel = "webab12cd"
	svc, _ := json.Marshal(find(FrontendObjects(s), "Service"))
	if !strings.Contains(string(svc), `"service.beta.kubernetes.io/azure-dns-label-name":"webab12cd"`) {
		t.Errorf("public service lacks the DNS label: %s", svc)
	}
	s = settings("DevTest", "InternalLoadBalancer")
	s.DNSLabel = "webab12cd"
	svc, _ = json.Marshal(find(FrontendObjects(s), "Service"))
	if strings.Contains(string(svc), "azure-dns-label-name") {
		t.Errorf("internal service with a DNS label: %s", svc)
	}
}
