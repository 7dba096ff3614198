// Command mkfixture writes computes of every type, as this release stores
// them, into a database (throwaway: makes the migration test's fixtures).
package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/berth-ml/berth/api"
	"github.com/berth-ml/berth/internal/secretbox"
	"github.com/berth-ml/berth/internal/store"
)

// Key is the fixture's secret key (base64 of 32 bytes "berth-fixture-key-0123456789abcd").
var Key = []byte("berth-fixture-key-0123456789abcd")

func main() {
	ctx := context.Background()
	box, err := secretbox.New(Key)
	must(err)
	st, err := store.Open(ctx, os.Args[1], "", box)
	must(err)
	defer st.Close()
	ws := &api.Workspace{ID: "ws-0001", Name: "ml-prod", Region: "westeurope",
		Settings: api.WorkspaceSettings{DNSZone: "berth.example.net", AzureSubscriptionID: "00000000-1111-2222-3333-444444444444"}}
	ws.CreatedAt = time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	must(st.CreateWorkspace(ctx, ws))
	notAfter := time.Date(2027, 2, 1, 10, 0, 0, 0, time.UTC)
	recon := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	kc := "apiVersion: v1\nkind: Config\nclusters: []\n"
	base := func(id, name, typ, origin string) api.Compute {
		return api.Compute{ID: id, Name: name, Workspace: ws.Name, Type: typ, Origin: origin,
			ClusterPurpose: api.PurposeFastProd, LoadBalancerType: api.LoadBalancerPublicIP,
			SSLConfiguration: api.SSLConfiguration{Status: api.SSLDisabled}, ProvisioningState: "Succeeded",
			ProvisioningErrors: []api.ErrorDetail{}, Health: api.HealthHealthy, KubernetesVersion: "1.30.4",
			NodeCount: 3, AllocatableCpus: 11.58, LastReconcile: &recon, AttachmentID: "att-" + id,
			FrontendImage: "ghcr.io/berth-ml/berth:0.4.0"}
	}
	var cs []*store.Compute
	add := func(c api.Compute, props map[string]string, secrets map[string]string) {
		c.Properties = props
		cs = append(cs, &store.Compute{Compute: c, WorkspaceID: ws.ID, Secrets: secrets})
	}

	// kubernetes, scoped attach finished, automatic certificate.
	k1 := base("cmp-k8s-scoped", "k8s-scoped", "kubernetes", api.OriginAttached)
	k1.SSLConfiguration = api.SSLConfiguration{Status: api.SSLAuto, LeafDomainLabel: "scoring", FQDN: "scoring.berth.example.net", NotAfter: &notAfter}
	k1.Endpoint = "203.0.113.10"
	add(k1, map[string]string{"credentialMode": "scoped", "acmeAccount": "https://acme.example.org/acct/42"},
		map[string]string{"credentials": kc, "acmeAccountKey": "-----BEGIN EC PRIVATE KEY-----\nMHc=\n-----END EC PRIVATE KEY-----\n", "tlsCert": "CERT", "tlsKey": "KEY"})
	// kubernetes, as-given with a context; automatic certificate failing; one key this release never wrote.
	k2 := base("cmp-k8s-asgiven", "k8s-asgiven", "kubernetes", api.OriginAttached)
	k2.SSLConfiguration = api.SSLConfiguration{Status: api.SSLAuto, LeafDomainLabel: "dev", FQDN: "dev.berth.example.net"}
	k2.ClusterPurpose, k2.Health = api.PurposeDevTest, api.HealthUnhealthy
	add(k2, map[string]string{"context": "kind-berth", "credentialMode": "as-given",
		"certificateError": "acme: error: 429 :: urn:ietf:params:acme:error:rateLimited", "certificateFailures": "3",
		"certificateRetryAt": "2026-12-01T14:30:00Z", "team": "ml-platform"},
		map[string]string{"credentials": kc})
	// kubernetes, scoped attach interrupted after the credentials step.
	k3 := base("cmp-k8s-attaching", "k8s-attaching", "kubernetes", api.OriginAttached)
	k3.ProvisioningState, k3.Health = "Attaching", api.HealthUnknown
	k3.LoadBalancerType, k3.LoadBalancerSubnet = api.LoadBalancerInternal, "berth-ilb"
	add(k3, map[string]string{"credentialMode": "scoped", "givenContext": "prod-admin"},
		map[string]string{"credentials": kc, "given": kc})
	// aks, created with a custom VNet, public IP DNS label and its FQDN.
	a1 := base("cmp-aks-created", "aks-created", "aks", api.OriginCreated)
	a1.SSLConfiguration = api.SSLConfiguration{Status: api.SSLAuto, LeafDomainLabel: "aks-created-x1y2", FQDN: "aks-created-x1y2.westeurope.cloudapp.azure.com", NotAfter: &notAfter}
	a1.Endpoint = "aks-created-x1y2.westeurope.cloudapp.azure.com"
	add(a1, map[string]string{"agentCount": "4", "vmSize": "Standard_D3_v2", "location": "westeurope",
		"kubernetesVersion": "1.30.4", "vnetResourceGroupName": "net-rg", "vnetName": "berth-vnet", "subnetName": "aks-subnet",
		"serviceCidr": "10.0.0.0/16", "dnsServiceIp": "10.0.0.10", "dockerBridgeCidr": "172.17.0.1/16",
		"credentialMode": "scoped", "subscriptionId": "00000000-1111-2222-3333-444444444444", "azureCredential": "default",
		"resourceGroup": "berth-ml-prod", "clusterName": "aks-created", "agentPoolName": "agentpool",
		"resourceId": "/subscriptions/00000000-1111-2222-3333-444444444444/resourceGroups/berth-ml-prod/providers/Microsoft.ContainerService/managedClusters/aks-created",
		"dnsZone":    "westeurope.cloudapp.azure.com", "dnsLabel": "aks-created-x1y2", "fqdn": "aks-created-x1y2.westeurope.cloudapp.azure.com",
		"acmeAccount": "https://acme.example.org/acct/43"},
		map[string]string{"credentials": kc})
	// aks, attached by resource id, internal load balancer.
	a2 := base("cmp-aks-attached", "aks-attached", "aks", api.OriginAttached)
	a2.LoadBalancerType, a2.LoadBalancerSubnet = api.LoadBalancerInternal, "ilb-subnet"
	add(a2, map[string]string{"resourceId": "/subscriptions/00000000-1111-2222-3333-444444444444/resourceGroups/team-rg/providers/Microsoft.ContainerService/managedClusters/team-aks",
		"credentialMode": "as-given", "subscriptionId": "00000000-1111-2222-3333-444444444444", "azureCredential": "",
		"resourceGroup": "team-rg", "clusterName": "team-aks", "location": "northeurope", "dnsZone": "northeurope.cloudapp.azure.com",
		"vmSize": "Standard_DS2_v2"},
		map[string]string{"credentials": kc})
	// local.
	l1 := base("cmp-local", "local", "local", api.OriginCreated)
	l1.NodeCount, l1.AllocatableCpus, l1.KubernetesVersion = 1, 2, ""
	l1.Endpoint = "127.0.0.1:50123"
	add(l1, map[string]string{"port": "50123"}, map[string]string{"caCert": "CA", "tlsCert": "CERT", "tlsKey": "KEY"})
	// test type (created), and one with no properties at all.
	t1 := base("cmp-test", "test-flaky", "test", api.OriginCreated)
	add(t1, map[string]string{"effectsDir": "/var/lib/berth-test/effects", "steps": "4", "stepDelay": "150ms", "failAt": "0", "flakyAt": "2"}, nil)
	t2 := base("cmp-test-failed", "test-failed", "test", api.OriginAttached)
	t2.ProvisioningState = "Failed"
	t2.ProvisioningErrors = []api.ErrorDetail{{Code: "StepFailed", Message: "step 3 failed", Target: "step3"}}
	add(t2, map[string]string{"effectsDir": "/tmp/effects", "failAt": "3"}, nil)
	for _, c := range cs {
		must(st.CreateCompute(ctx, c))
	}
	// An attach still pending when the server stopped: its params carry the old properties.
	req := api.ComputeRequest{Name: "k8s-attaching", Type: "kubernetes", Origin: api.OriginAttached,
		Properties: map[string]string{"context": "prod-admin", "credentialMode": "scoped"}, Credentials: kc}
	params, _ := json.Marshal(req)
	op := &store.Operation{Operation: api.Operation{ID: "op-attach-1", Workspace: ws.Name, TargetType: "compute",
		TargetID: k3.ID, TargetName: k3.Name, Kind: api.OpAttach, CreatedAt: time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)},
		WorkspaceID: ws.ID, Params: params}
	must(st.CreateOperation(ctx, op))
	v, _ := st.SchemaVersion(ctx)
	fmt.Fprintf(os.Stderr, "wrote %d computes, schema version %d, key %s\n", len(cs), v, base64.StdEncoding.EncodeToString(Key))
}

func must(err error) {
	if err != nil {
		panic(err)
	}
}
