// Package browser starts Debian's Chromium headless for tests that drive
// the Studio (hack/chromium.sh installs it).
package browser

import (
	"context"
	"os"
	"os/exec"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/berth-ml/berth/internal/testenv"
)

// Start runs headless Chromium until the test ends and returns a chromedp
// context on one tab. Tests skip without Chromium unless
// BERTH_REQUIRE_CHROMIUM=1.
func Start(t testing.TB) context.Context {
	t.Helper()
	testenv.SkipShort(t, "headless Chromium")
	path, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("BERTH_REQUIRE_CHROMIUM") == "1" {
			t.Fatalf("chromium: %v (./hack/chromium.sh installs it)", err)
		}
		t.Skip("no chromium here (./hack/chromium.sh installs it)")
	}
	// The flags that keep Chromium off this machine's closed network.
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1280, 900))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	return ctx
}
