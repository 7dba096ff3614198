package server_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sort"
	"testing"
	"time"

	"github.com/berth-ml/berth/api"
	"github.com/berth-ml/berth/internal/store"
	"github.com/berth-ml/berth/internal/testenv/testdb"
	"github.com/google/uuid"
)

// The API-level figures of issue 2: show a compute ≤ 1 ms and list 1,000
// computes ≤ 10 ms (median, SQLite), measured as whole HTTP round trips on
// loopback including reading the body. Each benchmark reports p50-ms.
//
//	go test -run x -bench API ./internal/server/

func benchEnv(b *testing.B, kind testdb.Kind, n int) (*env, string) {
	e := start(b, kind)
	e.workspace("bench")
	ctx := context.Background()
	ws, _ := e.srv.Store().GetWorkspace(ctx, "bench")
	for i := 0; i < n; i++ {
		c := &store.Compute{WorkspaceID: ws.ID, Secrets: map[string]string{"credentials": "kubeconfig"}, Compute: api.Compute{
			ID: uuid.NewString(), Name: fmt.Sprintf("compute-%04d", i), Workspace: "bench", Type: "test", Origin: api.OriginAttached,
			ClusterPurpose: api.PurposeFastProd, LoadBalancerType: api.LoadBalancerPublicIP, SSLConfiguration: api.SSLConfiguration{Status: api.SSLDisabled},
			ProvisioningState: api.StateSucceeded, ProvisioningErrors: []api.ErrorDetail{}, Health: api.HealthHealthy,
			KubernetesVersion: "v1.37.2", NodeCount: 3, AllocatableCpus: 12, Endpoint: "203.0.113.10"}}
		if err := e.srv.Store().CreateCompute(ctx, c); err != nil {
			b.Fatal(err)
		}
	}
	return e, tokenOf(nil, e)
}

func measure(b *testing.B, url, token string) {
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	hc := &http.Client{}
	// Warm up connections and caches.
	for i := 0; i < 20; i++ {
		resp, err := hc.Do(req)
		if err != nil || resp.StatusCode != 200 {
			b.Fatalf("%v %v", resp, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		resp, err := hc.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		lat = append(lat, time.Since(t0))
	}
	b.StopTimer()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}

func BenchmarkAPIShowCompute(b *testing.B) {
	for _, kind := range testdb.Kinds {
		b.Run(kind.Name, func(b *testing.B) {
			e, tok := benchEnv(b, kind, 1000)
			measure(b, e.url+"/api/v1/workspaces/bench/computes/compute-0420", tok)
		})
	}
}

func BenchmarkAPIList1000Computes(b *testing.B) {
	for _, kind := range testdb.Kinds {
		b.Run(kind.Name, func(b *testing.B) {
			e, tok := benchEnv(b, kind, 1000)
			measure(b, e.url+"/api/v1/workspaces/bench/computes", tok)
		})
	}
}
