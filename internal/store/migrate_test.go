package store_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/berth-ml/berth/api"
	"github.com/berth-ml/berth/internal/provider"
	"github.com/berth-ml/berth/internal/provider/aks"
	"github.com/berth-ml/berth/internal/provider/kubernetes"
	"github.com/berth-ml/berth/internal/provider/local"
	"github.com/berth-ml/berth/internal/secretbox"
	"github.com/berth-ml/berth/internal/store"
	"github.com/berth-ml/berth/internal/testenv/testdb"
	"github.com/berth-ml/berth/internal/testenv/testprovider"
)

// The fixtures in testdata/schema3 were written by the release before
// typed settings, through its own store code (see their README): computes
// of every type with their properties maps, and a pending attach whose
// parameters carry properties.
const fixtureDir = "testdata/schema3"

var fixtureKey = []byte("berth-fixture-key-0123456789abcd")

// openFixture opens a copy of the fixture database of kind with this
// release's store, which migrates it.
func openFixture(t *testing.T, kind string) (*store.Store, func() *store.Store) {
	t.Helper()
	box, err := secretbox.New(fixtureKey)
	if err != nil {
		t.Fatal(err)
	}
	var u string
	switch kind {
	case "sqlite":
		b, err := os.ReadFile(filepath.Join(fixtureDir, "berth.db"))
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(t.TempDir(), "berth.db")
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		u = "sqlite:" + path
	case "postgres":
		u = testdb.Postgres(t, "")
		dump, err := os.ReadFile(filepath.Join(fixtureDir, "postgres.sql"))
		if err != nil {
			t.Fatal(err)
		}
		// pg_dump's output is many statements: send it as one simple query.
		pu, _ := url.Parse(u)
		q := pu.Query()
		q.Set("default_query_exec_mode", "simple_protocol")
		pu.RawQuery = q.Encode()
		db, err := sql.Open("pgx", pu.String())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec(string(dump)); err != nil {
			t.Fatalf("load the PostgreSQL fixture: %v", err)
		}
		db.Close()
	}
	open := func() *store.Store {
		s, err := store.Open(context.Background(), u, t.TempDir(), box)
		if err != nil {
			t.Fatalf("open the fixture: %v", err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	return open(), open
}

// strict decodes a settings or status document into v refusing unknown
// fields: the migrated documents must be exactly the providers' types.
func strict(t *testing.T, what string, raw json.RawMessage, v any) {
	t.Helper()
	if len(raw) == 0 {
		return
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Errorf("%s %s: %v", what, raw, err)
	}
}

func ptr[T any](v T) *T { return &v }

// TestMigrateTypedSettings opens databases the previous release wrote, on
// SQLite and PostgreSQL, and checks that every compute's properties came
// through as typed settings and status, completely, unknown keys kept
// under status.legacy, secrets and the rest of the document untouched,
// and a pending attach's parameters rewritten the same way.
func TestMigrateTypedSettings(t *testing.T) {
	retryAt := time.Date(2026, 12, 1, 14, 30, 0, 0, time.UTC)
	sub := "00000000-1111-2222-3333-444444444444"
	created := "/subscriptions/" + sub + "/resourceGroups/berth-ml-prod/providers/Microsoft.ContainerService/managedClusters/aks-created"
	attached := "/subscriptions/" + sub + "/resourceGroups/team-rg/providers/Microsoft.ContainerService/managedClusters/team-aks"
	want := map[string]struct {
		settings, status any
	}{
		"k8s-scoped": {&kubernetes.Settings{CredentialMode: "scoped"}, &kubernetes.Status{ACMEAccount: "https://acme.example.org/acct/42"}},
		"k8s-asgiven": {&kubernetes.Settings{Context: "kind-berth", CredentialMode: "as-given"}, &kubernetes.Status{
			CertificateStatus: api.CertificateStatus{CertificateError: "acme: error: 429 :: urn:ietf:params:acme:error:rateLimited",
				CertificateFailures: 3, CertificateRetryAt: &retryAt},
			Legacy: map[string]string{"team": "ml-platform"}}},
		"k8s-attaching": {&kubernetes.Settings{CredentialMode: "scoped"}, &kubernetes.Status{GivenContext: "prod-admin"}},
		"aks-created": {&aks.Settings{AgentCount: ptr(4), VMSize: "Standard_D3_v2", Location: "westeurope", KubernetesVersion: "1.30.4",
			VNetResourceGroupName: "net-rg", VNetName: "berth-vnet", SubnetName: "aks-subnet", ServiceCIDR: "10.0.0.0/16",
			DNSServiceIP: "10.0.0.10", DockerBridgeCIDR: "172.17.0.1/16", CredentialMode: "scoped"},
			&aks.Status{Status: kubernetes.Status{ACMEAccount: "https://acme.example.org/acct/43", DNSLabel: "aks-created-x1y2",
				DNSZone: "westeurope.cloudapp.azure.com", FQDN: "aks-created-x1y2.westeurope.cloudapp.azure.com"},
				SubscriptionID: sub, AzureCredential: "default", ResourceID: created, ResourceGroup: "berth-ml-prod", ClusterName: "aks-created",
				AgentPoolName: "agentpool", Location: "westeurope", VMSize: "Standard_D3_v2"}},
		"aks-attached": {&aks.Settings{ResourceID: attached, CredentialMode: "as-given"},
			&aks.Status{Status: kubernetes.Status{DNSZone: "northeurope.cloudapp.azure.com"}, SubscriptionID: sub,
				ResourceID: attached, ResourceGroup: "team-rg", ClusterName: "team-aks", Location: "northeurope", VMSize: "Standard_DS2_v2"}},
		"local": {&local.Settings{}, &local.Status{Port: 50123}},
		"test-flaky": {&testprovider.Settings{EffectsDir: "/var/lib/berth-test/effects", Steps: ptr(4),
			StepDelay: provider.Duration(150 * time.Millisecond), FlakyAt: 2}, &testprovider.Status{}},
		"test-failed": {&testprovider.Settings{EffectsDir: "/tmp/effects", FailAt: 3}, &testprovider.Status{}},
	}
	for _, kind := range testdb.Kinds {
		t.Run(kind.Name, func(t *testing.T) {
			s, reopen := openFixture(t, kind.Name)
			ctx := context.Background()
			if v, err := s.SchemaVersion(ctx); err != nil || v != 5 {
				t.Fatalf("schema version %d, %v", v, err)
			}
			ws, err := s.GetWorkspace(ctx, "ml-prod")
			if err != nil {
				t.Fatal(err)
			}
			docs, err := s.ListComputeDocs(ctx, ws.ID)
			if err != nil {
				t.Fatal(err)
			}
			if len(docs) != len(want) {
				t.Fatalf("%d computes, want %d", len(docs), len(want))
			}
			for _, doc := range docs {
				var fields map[string]json.RawMessage
				json.Unmarshal(doc, &fields)
				if _, ok := fields["properties"]; ok {
					t.Errorf("properties left in %s", doc)
				}
			}
			list, _ := s.ListComputes(ctx, ws.ID)
			for _, listed := range list {
				c, err := s.GetComputeByID(ctx, listed.ID)
				if err != nil {
					t.Fatal(err)
				}
				w, ok := want[c.Name]
				if !ok {
					t.Errorf("unexpected compute %s", c.Name)
					continue
				}
				// Typed: the documents decode strictly into the providers' structs…
				gotSettings := reflect.New(reflect.TypeOf(w.settings).Elem()).Interface()
				gotStatus := reflect.New(reflect.TypeOf(w.status).Elem()).Interface()
				strict(t, c.Name+" settings", c.Settings, gotSettings)
				strict(t, c.Name+" status", c.Status, gotStatus)
				// …and complete: every property is where it belongs, converted.
				if !reflect.DeepEqual(gotSettings, w.settings) {
					t.Errorf("%s settings %s\n got %+v\nwant %+v", c.Name, c.Settings, gotSettings, w.settings)
				}
				if !reflect.DeepEqual(gotStatus, w.status) {
					t.Errorf("%s status %s\n got %+v\nwant %+v", c.Name, c.Status, gotStatus, w.status)
				}
				// The provider's own readers see the same.
				if c.Type == "kubernetes" && kubernetes.SettingsOf(c) != *w.settings.(*kubernetes.Settings) {
					t.Errorf("%s: SettingsOf %+v", c.Name, kubernetes.SettingsOf(c))
				}
				// The rest of the document and the secrets are as they were.
				if c.Workspace != "ml-prod" || c.AttachmentID != "att-"+c.ID || c.FrontendImage != "ghcr.io/berth-ml/berth:0.4.0" {
					t.Errorf("%s: document changed: %+v", c.Name, c.Compute)
				}
				if c.Type != "test" && len(c.Secrets) == 0 {
					t.Errorf("%s: secrets lost", c.Name)
				}
			}
			if c, _ := s.GetCompute(ctx, ws.ID, "k8s-scoped"); c.Secrets["acmeAccountKey"] == "" || !c.HasCredentials ||
				c.SSLConfiguration.FQDN != "scoring.berth.example.net" || c.SSLConfiguration.NotAfter == nil {
				t.Errorf("k8s-scoped: %+v", c)
			}
			if c, _ := s.GetCompute(ctx, ws.ID, "test-failed"); len(c.ProvisioningErrors) != 1 || c.ProvisioningState != "Failed" {
				t.Errorf("test-failed: %+v", c.Compute)
			}

			// The pending attach still has its request, settings typed.
			op, err := s.GetOperation(ctx, "op-attach-1")
			if err != nil {
				t.Fatal(err)
			}
			var req map[string]json.RawMessage
			json.Unmarshal(op.Params, &req)
			if _, ok := req["properties"]; ok || op.State != api.OpPending {
				t.Errorf("attach params %s (%s)", op.Params, op.State)
			}
			var set kubernetes.Settings
			strict(t, "attach settings", req["settings"], &set)
			if set != (kubernetes.Settings{Context: "prod-admin", CredentialMode: "scoped"}) || string(req["name"]) != `"k8s-attaching"` {
				t.Errorf("attach params %s", op.Params)
			}

			// Once: opening again changes nothing.
			before, _ := s.ListComputeDocs(ctx, ws.ID)
			s.Close()
			s = reopen()
			after, _ := s.ListComputeDocs(ctx, ws.ID)
			if !reflect.DeepEqual(before, after) {
				t.Errorf("reopening changed the documents")
			}
		})
	}
}
