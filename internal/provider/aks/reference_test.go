package aks_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/berth-ml/berth/api"
	"github.com/berth-ml/berth/internal/provider/aks"
)

// docRow is a row of docs/from-azure-ml.md: the reference's command or SDK
// call, and Berth's equivalent.
type docRow struct{ reference, berth string }

var cellRe = regexp.MustCompile("^`+(.*?)`+$")

// in is the env with t as its test (a subtest's).
func (e *env) in(t *testing.T) *env {
	c := *e
	c.t = t
	return &c
}

// docRows reads the table of docs/from-azure-ml.md, in its order.
func docRows(t *testing.T) []docRow {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "..", "docs", "from-azure-ml.md"))
	if err != nil {
		t.Fatal(err)
	}
	var rows []docRow
	for _, line := range strings.Split(string(b), "\n") {
		cells := strings.Split(strings.Trim(line, "| "), " | ")
		if !strings.HasPrefix(line, "| `") || len(cells) < 2 {
			continue
		}
		ref, berth := cellRe.FindStringSubmatch(strings.TrimSpace(cells[0])), cellRe.FindStringSubmatch(strings.TrimSpace(cells[1]))
		if ref == nil || berth == nil {
			t.Fatalf("row %q: the first two cells must be code", line)
		}
		// "`a` + `b`" names two calls; "`` x `y` ``" is code with backticks in it.
		rows = append(rows, docRow{strings.ReplaceAll(strings.TrimSpace(ref[1]), "` + `", " + "), strings.TrimSpace(berth[1])})
	}
	return rows
}

// commandPath is a command line's words up to its first flag.
func commandPath(args []string) string {
	var words []string
	for _, a := range args {
		if strings.HasPrefix(a, "-") {
			break
		}
		words = append(words, a)
	}
	return strings.Join(words, " ")
}

// TestFromAzureMLRows runs every row of docs/from-azure-ml.md, in the
// page's order, against Azure's fake servers and the simulated cluster:
// each row's test runs the Berth command the row names (its command path
// must be the row's) and checks what the row says. A row without a test,
// or a test without a row, fails.
func TestFromAzureMLRows(t *testing.T) {
	cl, fake := simulatedAzure(t)
	id := fake.AddCluster("team-rg", "prod", "westus2", "1.37.2")
	azID := strings.Replace(id, "/resourceGroups/", "/resourcegroups/", 1) // as `az aks show --query id` prints it
	e := start(t, fake)
	_, certFile, keyFile := certificateFiles(t, "scoring.contoso.test")
	model := filepath.Join(t.TempDir(), "model.bin")
	os.WriteFile(model, []byte("weights"), 0o600)
	vnet := []string{"--vnet-resourcegroup-name", "vnet-rg", "--vnet-name", "vnet", "--subnet-name", "aks-subnet",
		"--service-cidr", "10.0.0.0/16", "--dns-service-ip", "10.0.0.10", "--docker-bridge-cidr", "172.17.0.1/16"}
	query := "orchestrators[?default == `true`].orchestratorVersion"

	// run runs a row's command and returns its result; out is stdout and stderr.
	type check func(t *testing.T) []string
	ok := func(t *testing.T, args []string, parts ...string) []string {
		t.Helper()
		r := e.in(t).ok(args...)
		mustContain(t, strings.Join(args, " "), r.stdout+r.stderr, parts...)
		return args
	}
	refuse := func(t *testing.T, code int, args []string, parts ...string) []string {
		t.Helper()
		r := e.in(t).berth(args...)
		if r.code != code {
			t.Errorf("berth %s: exit %d, want %d\n%s%s", strings.Join(args, " "), r.code, code, r.stdout, r.stderr)
		}
		mustContain(t, strings.Join(args, " "), r.stderr, parts...)
		return args
	}
	dryRun := []string{"Dry run: nothing was changed", "PUT https://management.azure.com/subscriptions/" + aks.FakeSubscription}
	rows := map[string]check{
		"az ml computetarget create aks -n myaks": func(t *testing.T) []string {
			return ok(t, []string{"computetarget", "create", "aks", "-n", "myaks", "-g", "berth-rg"}, "Creating AKS cluster myaks in westus2: 3 × Standard_D3_v2", "Front end ready")
		},
		"AksCompute.provisioning_configuration() + ComputeTarget.create(ws, name, config)": func(t *testing.T) []string {
			return ok(t, []string{"compute", "create", "aks", "-n", "dry1", "--agent-count", "6", "--vm-size", "Standard_D2_v2", "--location", "eastus", "--dry-run"},
				append(dryRun, "6 × Standard_D2_v2 in eastus")...)
		},
		"provisioning_configuration(cluster_purpose=AksCompute.ClusterPurpose.DEV_TEST)": func(t *testing.T) []string {
			refuse(t, 2, []string{"compute", "create", "aks", "-n", "dry1", "--cluster-purpose", "prod"}, `--cluster-purpose "prod" is not a cluster purpose: Berth spells them FastProd`, "and DevTest")
			ok(t, []string{"compute", "create", "aks", "-n", "dry1", "--cluster-purpose", "DEV_TEST", "--agent-count", "1", "--dry-run"}, "purpose DevTest")
			return ok(t, []string{"compute", "create", "aks", "-n", "dry1", "--cluster-purpose", "dev-test", "--agent-count", "1", "--vm-size", "Standard_D2_v2", "--dry-run"},
				append(dryRun, "1 × Standard_D2_v2", "purpose DevTest")...)
		},
		`provisioning_configuration(load_balancer_type="InternalLoadBalancer", load_balancer_subnet=S)`: func(t *testing.T) []string {
			return ok(t, []string{"compute", "create", "aks", "-n", "dry1", "--load-balancer-type", "InternalLoadBalancer", "--dry-run"}, append(dryRun, "load balancer InternalLoadBalancer")...)
		},
		"provisioning_configuration(vnet_resourcegroup_name, vnet_name, subnet_name, service_cidr, dns_service_ip, docker_bridge_cidr)": func(t *testing.T) []string {
			return ok(t, append([]string{"compute", "create", "aks", "-n", "dry1", "--dry-run"}, vnet...),
				append(dryRun, "/resourceGroups/vnet-rg/providers/Microsoft.Network/virtualNetworks/vnet/subnets/aks-subnet", `"serviceCidr": "10.0.0.0/16"`)...)
		},
		"config.enable_ssl(ssl_cert_pem_file, ssl_key_pem_file, ssl_cname)": func(t *testing.T) []string {
			return ok(t, []string{"compute", "create", "aks", "-n", "dry1", "--ssl-cert-file", certFile, "--ssl-key-file", keyFile, "--ssl-cname", "scoring.contoso.test", "--dry-run"}, dryRun...)
		},
		`config.enable_ssl(leaf_domain_label="contoso")`: func(t *testing.T) []string {
			return ok(t, []string{"compute", "create", "aks", "-n", "dry1", "--ssl-leaf-domain-label", "contoso", "--dry-run"}, dryRun...)
		},
		"aks_target.wait_for_completion(show_output=True)": func(t *testing.T) []string {
			return ok(t, []string{"compute", "wait", "-n", "myaks"}, "Succeeded")
		},
		`ComputeTarget(workspace=ws, name="myaks")`: func(t *testing.T) []string {
			return ok(t, []string{"compute", "show", "-n", "myaks", "-o", "json"}, `"provisioningState": "Succeeded"`, `"health": "Healthy"`, `"nodeCount"`, `"allocatableCpus"`)
		},
		"ComputeTarget.list(ws)": func(t *testing.T) []string {
			return ok(t, []string{"compute", "list"}, "myaks")
		},
		"az ml computetarget update aks -n myaks --ssl-cname C --ssl-cert-file F --ssl-key-file K": func(t *testing.T) []string {
			ok(t, []string{"computetarget", "update", "aks", "-n", "myaks", "-g", "berth-rg", "--ssl-cname", "scoring.contoso.test", "--ssl-cert-file", certFile, "--ssl-key-file", keyFile},
				"Custom certificate for scoring.contoso.test")
			return ok(t, []string{"compute", "update", "-n", "myaks", "--ssl-cname", "scoring.contoso.test", "--ssl-cert-file", certFile, "--ssl-key-file", keyFile},
				"Custom certificate for scoring.contoso.test")
		},
		"kubectl get secret/azuremlfessl -o yaml": func(t *testing.T) []string {
			return ok(t, []string{"compute", "get-certificate", "-n", "myaks"}, "-----BEGIN CERTIFICATE-----")
		},
		"aks_target.update(AksUpdateConfiguration(SslConfiguration(leaf_domain_label=L, overwrite_existing_domain=True)))": func(t *testing.T) []string {
			// A CA nothing answers for: the compute keeps the new name and says why it has no certificate.
			e.in(t).ok("workspace", "update", "-n", "ml-team", "--acme-directory-url", "https://127.0.0.1:1/directory")
			args := ok(t, []string{"compute", "update", "-n", "myaks", "--ssl-leaf-domain-label", "contoso", "--ssl-overwrite-domain"}, "No certificate for contoso")
			if c := e.in(t).compute("myaks"); c.Health != api.HealthUnhealthy || c.SSLConfiguration.Status != api.SSLAuto || !strings.HasSuffix(c.SSLConfiguration.FQDN, ".westus2.cloudapp.azure.com") {
				t.Errorf("after the update: health %s, ssl %+v", c.Health, c.SSLConfiguration)
			}
			return args
		},
		`aks_target.update(AksUpdateConfiguration(load_balancer_type="InternalLoadBalancer", load_balancer_subnet=S))`: func(t *testing.T) []string {
			args := ok(t, []string{"compute", "update", "-n", "myaks", "--load-balancer-type", "InternalLoadBalancer", "--load-balancer-subnet", "aks-subnet"}, "waiting for its new address")
			if c := e.in(t).compute("myaks"); c.LoadBalancerType != api.LoadBalancerInternal || status(c).FQDN != "" {
				t.Errorf("after the update: load balancer %s, fqdn %q", c.LoadBalancerType, status(c).FQDN)
			}
			ok(t, []string{"compute", "update", "-n", "myaks", "--load-balancer-type", "PublicIp"}) // back, for the rows below
			return args
		},
		"aks_target.delete()": func(t *testing.T) []string {
			args := ok(t, []string{"compute", "delete", "-n", "myaks"}, "Deleting AKS cluster myaks")
			waitNamespaceGone(t, cl)
			return args
		},
		"az aks show -n myexistingcluster -g myresourcegroup --query id": func(t *testing.T) []string {
			return refuse(t, 2, []string{"aks", "show", "-n", "prod", "-g", "team-rg", "--query", "id"}, "`berth aks show` is not a Berth command", "az aks show -n CLUSTER -g RG --query id -o tsv", "berth compute attach aks -n NAME -i ID")
		},
		"AksCompute.attach_configuration(resource_group=RG, cluster_name=C) + ComputeTarget.attach(ws, name, config)": func(t *testing.T) []string {
			return ok(t, []string{"compute", "attach", "aks", "-n", "prod1", "--resource-group", "team-rg", "--cluster-name", "prod", "--dry-run"}, "found managed cluster prod", "Preflight passed")
		},
		"AksCompute.attach_configuration(resource_id=ID)": func(t *testing.T) []string {
			return ok(t, []string{"compute", "attach", "aks", "-n", "prod1", "-i", id, "--dry-run"}, "found managed cluster prod", "Preflight passed")
		},
		"az ml computetarget attach aks -n myaks -i aksresourceid -g myresourcegroup -w myworkspace": func(t *testing.T) []string {
			refuse(t, 2, []string{"computetarget", "attach", "aks", "-n", "prod1", "-i", azID, "-g", "myresourcegroup", "-w", "ml-team"},
				`-g myresourcegroup differs from workspace "ml-team"'s Azure resource group berth-rg`)
			e.in(t).ok("workspace", "create", "-n", "no-rg", "--region", "westus2", "--azure-subscription-id", aks.FakeSubscription)
			refuse(t, 2, []string{"computetarget", "attach", "aks", "-n", "prod1", "-i", azID, "-g", "myresourcegroup", "-w", "no-rg"},
				`-g myresourcegroup: workspace "no-rg" records no Azure resource group to check it against`, "berth workspace update -n no-rg --azure-resource-group myresourcegroup")
			if r := e.in(t).berth("compute", "show", "-n", "prod1"); r.code == 0 {
				t.Error("an attach refused for its -g recorded the compute")
			}
			return ok(t, []string{"computetarget", "attach", "aks", "-n", "prod1", "-i", azID, "-g", "BERTH-RG", "-w", "ml-team"}, "Found AKS cluster prod in resource group team-rg", "Front end ready")
		},
		"az aks get-versions -l westus -o table": func(t *testing.T) []string {
			ok(t, []string{"aks", "get-versions", "-l", "westus2", "-o", "table"}, "KubernetesVersion", "1.37.2 (default)")
			return ok(t, []string{"versions", "-l", "westus2"}, "KubernetesVersion", "Upgrades", "1.38.0(preview)", "1.37.2 (default)")
		},
		"az aks get-versions -l westus --query \"orchestrators[?default == `true`].orchestratorVersion\" -o table": func(t *testing.T) []string {
			return ok(t, []string{"versions", "-l", "westus2", "--query", query, "-o", "tsv"}, "1.37.2")
		},
		"Model.register(ws, model_path, model_name)": func(t *testing.T) []string {
			return ok(t, []string{"model", "register", "-n", "iris", "--path", model})
		},
		"Model.deploy(ws, name, models, inference_config, AksWebservice.deploy_configuration(), aks_target)": func(t *testing.T) []string {
			return ok(t, []string{"service", "deploy", "-n", "scorer", "--compute", "prod1", "--model", "iris", "--image", "example/iris:1", "--model-delivery", "image", "--replicas", "1", "-o", "json"},
				`"state": "Healthy"`, `"auth": "key"`)
		},
		"service.wait_for_deployment(show_output=True)": func(t *testing.T) []string {
			return ok(t, []string{"service", "wait", "-n", "scorer"}, "Healthy")
		},
		"service.scoring_uri": func(t *testing.T) []string {
			return ok(t, []string{"service", "show", "-n", "scorer", "--query", "scoringUri", "-o", "tsv"}, ".westus2.cloudapp.azure.com/api/v1/service/scorer/score")
		},
		"service.get_keys()": func(t *testing.T) []string {
			return ok(t, []string{"service", "keys", "-n", "scorer", "-o", "json"}, "primaryKey", "secondaryKey")
		},
		"service.get_token()": func(t *testing.T) []string {
			refuse(t, 1, []string{"service", "token", "-n", "scorer"}, "token")
			ok(t, []string{"service", "deploy", "-n", "tokened", "--compute", "prod1", "--model", "iris", "--image", "example/iris:1", "--model-delivery", "image", "--replicas", "1", "--auth", "token"})
			return ok(t, []string{"service", "token", "-n", "tokened", "-o", "json"}, "accessToken")
		},
		"service.get_logs()": func(t *testing.T) []string {
			return ok(t, []string{"service", "logs", "-n", "scorer"}, "==> scorer-")
		},
		"service.run(input_data)": func(t *testing.T) []string {
			// The scoring URI's name is Azure's, which does not resolve here:
			// the call gets as far as looking it up.
			return refuse(t, 1, []string{"service", "score", "-n", "scorer", "--data", `{"data":[[5.1,3.5,1.4,0.2]]}`}, "scorer", "cloudapp.azure.com")
		},
		`service.regen_key("Primary")`: func(t *testing.T) []string {
			return ok(t, []string{"service", "regen-key", "-n", "scorer", "--key", "primary"})
		},
		"service.update(...)": func(t *testing.T) []string {
			return ok(t, []string{"service", "update", "-n", "scorer", "--replicas", "2", "-o", "json"}, `"state": "Healthy"`)
		},
		"service.delete()": func(t *testing.T) []string {
			return ok(t, []string{"service", "delete", "-n", "scorer"})
		},
		`Model.deploy(ws, name, models, inference_config, AksEndpoint.deploy_configuration(version_name="v1", traffic_percentile=100), aks_target)`: func(t *testing.T) []string {
			args := ok(t, []string{"endpoint", "create", "-n", "fraud", "--compute", "prod1"}, ".westus2.cloudapp.azure.com/api/v1/endpoint/fraud/score")
			ok(t, []string{"endpoint", "version", "add", "-e", "fraud", "--version-name", "v1", "--model", "iris", "--image", "example/iris:1", "--model-delivery", "image", "--replicas", "1"},
				"v1       100", "Healthy")
			return args
		},
		`endpoint.create_version(version_name="v2", inference_config, models, traffic_percentile=10)`: func(t *testing.T) []string {
			return ok(t, []string{"endpoint", "version", "add", "-e", "fraud", "--version-name", "v2", "--model", "iris", "--image", "example/iris:1", "--model-delivery", "image", "--replicas", "1", "--traffic", "10"},
				"v1       90", "v2       10")
		},
		`endpoint.update_version(version_name="v2", traffic_percentile=100)`: func(t *testing.T) []string {
			return ok(t, []string{"endpoint", "version", "update", "-e", "fraud", "--version-name", "v2", "--traffic", "100"}, "v1       0", "v2       100")
		},
		`endpoint.delete_version(version_name="v1")`: func(t *testing.T) []string {
			refuse(t, 1, []string{"endpoint", "version", "delete", "-e", "fraud", "--version-name", "v2"}, "version v2 still has 100% of endpoint fraud's traffic")
			return ok(t, []string{"endpoint", "version", "delete", "-e", "fraud", "--version-name", "v1"}, "v2       100")
		},
		"endpoint.get_keys()": func(t *testing.T) []string {
			return ok(t, []string{"endpoint", "keys", "-n", "fraud", "-o", "json"}, "primaryKey", "secondaryKey")
		},
		"az ml computetarget detach -n myaks -g myresourcegroup -w myworkspace": func(t *testing.T) []string {
			args := ok(t, []string{"computetarget", "detach", "-n", "prod1", "-g", "berth-rg", "-w", "ml-team"}, "Removed every Berth object")
			waitNamespaceGone(t, cl)
			return args
		},
	}
	doc := docRows(t)
	seen := map[string]bool{}
	for _, row := range doc {
		seen[row.reference] = true
		if rows[row.reference] == nil {
			t.Errorf("docs/from-azure-ml.md row %q has no test", row.reference)
		}
	}
	for ref := range rows {
		if !seen[ref] {
			t.Errorf("test of %q has no row in docs/from-azure-ml.md", ref)
		}
	}
	for _, row := range doc {
		run := rows[row.reference]
		if run == nil {
			continue
		}
		if !t.Run(row.reference, func(t *testing.T) {
			args := run(t)
			got, want := "berth "+commandPath(args), commandPath(strings.Fields(row.berth))
			if strings.Replace(got, "berth computetarget ", "berth compute ", 1) != want {
				t.Errorf("the row's test ran %q, the row says %q", got, want)
			}
		}) {
			break // later rows build on earlier ones
		}
	}
}
