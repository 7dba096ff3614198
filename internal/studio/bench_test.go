package studio_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/berth-ml/berth/api"
	"github.com/berth-ml/berth/internal/store"
	"github.com/berth-ml/berth/internal/testenv/browser"
)

// BenchmarkStudio measures the Studio's performance targets in headless
// Chromium: the bytes the first page (sign-in) transfers with its
// stylesheet and script (target: at most 250 KB), and the time from
// navigation to the load event of the computes list with 1,000 computes
// (target: at most 1 s). bench/studio.sh runs it with the metrics
// store's memory benchmark.
func BenchmarkStudio(b *testing.B) {
	e := start(b)
	ctx := context.Background()
	ws, err := e.owner.GetWorkspace(ctx, "team")
	if err != nil {
		b.Fatal(err)
	}
	exp := time.Now().AddDate(0, 3, 0)
	for i := range 1000 {
		c := &store.Compute{WorkspaceID: ws.ID, Compute: api.Compute{ID: fmt.Sprintf("bench-%04d", i), Name: fmt.Sprintf("cluster-%04d", i),
			Type: "kubernetes", Origin: api.OriginAttached, ClusterPurpose: api.PurposeFastProd, LoadBalancerType: api.LoadBalancerPublicIP,
			ProvisioningState: api.StateSucceeded, Health: api.HealthHealthy, KubernetesVersion: "1.34.1", NodeCount: 3, AllocatableCpus: 11.6,
			Endpoint: fmt.Sprintf("20.1.%d.%d", i/250, i%250), SSLConfiguration: api.SSLConfiguration{Status: api.SSLEnabled,
				Cname: fmt.Sprintf("cluster-%04d.example.com", i), NotAfter: &exp}}}
		if err := e.srv.Store().CreateCompute(ctx, c); err != nil {
			b.Fatal(err)
		}
	}
	tab := browser.Start(b)
	run := func(a chromedp.Action[chromedp.Void]) {
		if err := chromedp.Do(tab, a); err != nil {
			b.Fatal(err)
		}
	}
	run(chromedp.Navigate(e.srv.URL + "/signin"))
	bytes, err := chromedp.Run(tab, chromedp.Evaluate[float64](`performance.getEntriesByType("navigation")[0].transferSize +
		performance.getEntriesByType("resource").reduce((n, r) => n + r.transferSize, 0)`))
	if err != nil {
		b.Fatal(err)
	}
	run(chromedp.Steps(chromedp.SendKeys(chromedp.ID("token"), e.srv.Token), chromedp.Submit(chromedp.ID("token")),
		chromedp.WaitVisible(chromedp.CSS("nav"))))
	var total float64
	b.ResetTimer()
	for range b.N {
		run(chromedp.Steps(chromedp.Navigate(e.srv.URL+"/w/team/computes"), chromedp.WaitReady(chromedp.CSS("table.computes"))))
		ms, err := chromedp.Run(tab, chromedp.Evaluate[float64](`(() => { const n = performance.getEntriesByType("navigation")[0]; return n.loadEventEnd - n.startTime })()`))
		if err != nil {
			b.Fatal(err)
		}
		rows, _ := chromedp.Run(tab, chromedp.Evaluate[int](`document.querySelectorAll("table.computes tbody tr").length`))
		if rows != 1000 {
			b.Fatalf("the list shows %d computes, want 1000", rows)
		}
		total += ms
	}
	b.ReportMetric(bytes/1024, "KB-first-page")
	b.ReportMetric(total/float64(b.N), "ms-computes-1000")
}
