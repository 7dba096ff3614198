package e2e

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/berth-ml/berth/api"
	"github.com/berth-ml/berth/internal/testenv/browser"
	"github.com/berth-ml/berth/internal/testenv/simcluster"
)

// tab is one browser tab on the Studio.
type tab struct {
	t    *testing.T
	ctx  context.Context
	base string
}

// do runs steps within timeout; on failure it shows where the tab is.
func (b *tab) do(timeout time.Duration, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	get(b, timeout, chromedp.Steps(steps...))
}

// get runs one action that returns a value.
func get[T any](b *tab, timeout time.Duration, a chromedp.Action[T]) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, timeout)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		loc, _ := chromedp.Run(b.ctx, chromedp.Location())
		body, _ := chromedp.Run(b.ctx, chromedp.Text(chromedp.CSS("main")))
		b.t.Fatalf("browser: %v\nat %s:\n%s", err, loc, body)
	}
	return v
}

func (b *tab) open(path string) {
	b.t.Helper()
	b.do(20*time.Second, chromedp.Navigate(b.base+path), chromedp.WaitReady(chromedp.CSS("main")))
}

func (b *tab) text(sel string) string {
	b.t.Helper()
	return get(b, 10*time.Second, chromedp.Text(chromedp.CSS(sel)))
}

func (b *tab) attr(sel, name string) string {
	b.t.Helper()
	return get(b, 10*time.Second, chromedp.AttributeValue(chromedp.CSS(sel), name)).Value
}

// waitFor waits until the JavaScript expression is true, across the
// page's navigations (a form's answer, a reload).
func (b *tab) waitFor(expr string, timeout time.Duration) {
	b.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](expr))
		cancel()
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			loc, _ := chromedp.Run(b.ctx, chromedp.Location())
			body, _ := chromedp.Run(b.ctx, chromedp.Text(chromedp.CSS("main")))
			b.t.Fatalf("browser: after %v, still not %s (%v)\nat %s:\n%s", timeout, expr, err, loc, body)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// waitText waits until sel's text contains want.
func (b *tab) waitText(sel, want string, timeout time.Duration) {
	b.t.Helper()
	b.waitFor(fmt.Sprintf(`(document.querySelector(%q)?.textContent || "").includes(%q)`, sel, want), timeout)
}

func (b *tab) signIn(token string) {
	b.t.Helper()
	b.open("/")
	b.do(20*time.Second, chromedp.SendKeys(chromedp.ID("token"), token), chromedp.Submit(chromedp.ID("token")),
		chromedp.WaitVisible(chromedp.CSS("nav")))
}

// axe runs axe-core (hack/chromium.sh fetches it) in the page and fails on
// serious or critical accessibility violations.
func (b *tab) axe(page string) {
	b.t.Helper()
	path := os.Getenv("BERTH_AXE_JS")
	if path == "" {
		b.t.Logf("no axe-core (BERTH_AXE_JS): %s not checked for accessibility", page)
		return
	}
	src, err := os.ReadFile(path)
	if err != nil {
		b.t.Fatal(err)
	}
	get(b, 30*time.Second, chromedp.Evaluate[any](string(src)+";0"))
	type violation struct {
		ID, Impact, Help string
		Nodes            []struct{ Target []string }
	}
	res := get(b, 30*time.Second, chromedp.Evaluate[[]violation](`axe.run(document, {resultTypes: ["violations"]}).then(r => r.violations)`,
		chromedp.EvalAwaitPromise))
	for _, v := range res {
		if v.Impact == "serious" || v.Impact == "critical" {
			b.t.Errorf("%s: accessibility (%s) %s: %s %v", page, v.Impact, v.ID, v.Help, v.Nodes)
		}
	}
}

// screenshot saves the page as docs/img/NAME.png when
// BERTH_UPDATE_SCREENSHOTS=1 (the README shows them).
func (b *tab) screenshot(name string) {
	if os.Getenv("BERTH_UPDATE_SCREENSHOTS") != "1" {
		return
	}
	png := get(b, 20*time.Second, chromedp.FullScreenshot(100))
	if err := os.WriteFile(filepath.Join("..", "docs", "img", name+".png"), png, 0o644); err != nil {
		b.t.Error(err)
	}
}

// irisArchive packs the bundled iris model folder as the .tar.gz a user
// would upload.
func irisArchive(t *testing.T) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "iris.tar.gz")
	f, _ := os.Create(out)
	gz := gzip.NewWriter(f)
	tw := tar.NewWriter(gz)
	for _, name := range []string{"metadata.json", "model.bin"} {
		b, err := os.ReadFile(filepath.Join("..", "models", "iris", name))
		if err != nil {
			t.Fatal(err)
		}
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(b)), Typeflag: tar.TypeReg})
		tw.Write(b)
	}
	tw.Close()
	gz.Close()
	f.Close()
	return out
}

// TestStudioInBrowser walks the Studio in headless Chromium as its users
// do: sign in, attach a simulated cluster through the form and watch its
// events to Succeeded, see a bad attach's problems next to their fields,
// upload and deploy the bundled model on the local compute, score it from
// "try it", see the request-rate plot rise after 200 requests, regenerate a
// key, detach, and sign in as a reader who finds no key and no action.
func TestStudioInBrowser(t *testing.T) {
	t.Parallel()
	cl := simcluster.StartT(t, simcluster.Options{Nodes: simcluster.Nodes(1, "4")})
	e := newAttachEnv(t, "--metrics-interval", "1s")
	ctx := browser.Start(t)
	b := &tab{t: t, ctx: ctx, base: e.srv.url()}
	b.signIn(ownerToken(t, e.dir))
	b.open("/w/team/computes")
	b.axe("computes (empty)")

	// A bad attach: every problem next to its field, nothing attached.
	b.open("/w/team/attach")
	b.axe("attach")
	submit := chromedp.Click(chromedp.CSS(`main form button[type="submit"]`))
	b.do(10*time.Second, chromedp.SetValue(chromedp.ID("name"), "_bad!"), chromedp.SetValue(chromedp.ID("credentials"), "not a kubeconfig"),
		submit, chromedp.WaitVisible(chromedp.ID("err-name")))
	if !strings.Contains(b.text("#err-name"), "must start with a letter") || !strings.Contains(b.text("#err-credentials"), "kubeconfig") {
		t.Errorf("field errors: name %q, credentials %q", b.text("#err-name"), b.text("#err-credentials"))
	}
	b.axe("attach with errors")
	b.screenshot("studio-attach-errors")

	// The simulated cluster, attached through the form.
	kubeconfig, _ := os.ReadFile(cl.KubeconfigPath)
	b.open("/w/team/attach")
	b.do(10*time.Second, chromedp.SetValue(chromedp.ID("name"), "sim-1"), chromedp.SetValue(chromedp.ID("credentials"), string(kubeconfig)),
		chromedp.SetValue(chromedp.ID("purpose"), "DevTest"), submit, chromedp.WaitVisible(chromedp.ID("events")))
	b.waitText("#op-state", "Succeeded", 2*time.Minute)
	b.open("/w/team/computes")
	if row := b.text("table.computes tbody"); !strings.Contains(row, "sim-1") || !strings.Contains(row, "Succeeded") || !strings.Contains(row, "DevTest") {
		t.Errorf("computes list: %q", row)
	}
	b.screenshot("studio-computes")

	// The bundled model, uploaded and deployed on the local compute.
	e.mustBerth("compute", "create", "local", "-n", "laptop")
	b.open("/w/team/models")
	b.do(30*time.Second, chromedp.SetValue(chromedp.ID("m-name"), "iris"), chromedp.SetUploadFiles(chromedp.ID("m-file"), []string{irisArchive(t)}),
		chromedp.Click(chromedp.CSS("#upload button")))
	b.waitText("#upload-result", "Registered iris version 1", 30*time.Second)
	b.open("/w/team/deploy")
	b.axe("deploy")
	cmd := berthBin + " model-server --model-dir $BERTH_MODEL_DIR --listen 127.0.0.1:$PORT"
	b.do(10*time.Second, chromedp.SetValue(chromedp.ID("f-name"), "iris"), chromedp.SetValue(chromedp.ID("f-compute"), "laptop"),
		chromedp.SetValue(chromedp.ID("f-models"), "iris:1"), chromedp.SetValue(chromedp.ID("f-command"), cmd),
		chromedp.SetValue(chromedp.ID("f-replicas"), "1"), submit, chromedp.WaitVisible(chromedp.ID("events")))
	b.waitText("#op-state", "Succeeded", time.Minute)
	b.open("/w/team/services/iris")
	b.do(10*time.Second, chromedp.Click(chromedp.CSS("#try button")))
	b.waitText("#try-result", "setosa", 20*time.Second)

	// 200 requests: the request-rate plot rises.
	for range 200 {
		if sc, err := e.client.ScoreService(context.Background(), "team", "iris", []byte(`{"data":[[6.7,3.0,5.2,2.3]]}`)); err != nil || sc.StatusCode != 200 {
			t.Fatalf("score: %v %+v", err, sc)
		}
	}
	b.open("/w/team/services/iris")
	b.waitFor(`Number(document.querySelector(".plots")?.dataset.requests || 0) >= 200 && document.querySelectorAll(".plots canvas").length >= 5`, 40*time.Second)
	if n, _ := strconv.ParseFloat(b.attr(".plots", "data-requests"), 64); n < 200 {
		t.Errorf("the plot holds %v requests", n)
	}
	b.axe("service")
	b.screenshot("studio-service")

	// Regenerate the primary key: the page shows a new one.
	before := b.attr("button.copy", "data-copy")
	b.do(20*time.Second, chromedp.SetValue(chromedp.ID("regen-which"), "primary"),
		chromedp.Click(chromedp.CSS(`form[action$="/regen-key"] button`)))
	b.waitFor(fmt.Sprintf(`(document.querySelector("button.copy")?.dataset.copy || %q) !== %q`, before, before), 20*time.Second)
	after := b.attr("button.copy", "data-copy")
	keys, err := e.client.ServiceKeys(context.Background(), "team", "iris")
	if err != nil || after == before || after != keys.PrimaryKey {
		t.Errorf("regenerate: before %.6s…, after %.6s…, API %.6s…", before, after, keys.PrimaryKey)
	}

	// An endpoint over the model: its pages, and a traffic change.
	e.mustBerth("endpoint", "create", "-n", "fraud", "--compute", "laptop")
	e.mustBerth(append([]string{"endpoint", "version", "add", "-e", "fraud", "--version-name", "v1", "--model", "iris", "--replicas", "1"},
		commandFlags(berthBin, "model-server", "--model-dir", "$BERTH_MODEL_DIR", "--listen", "127.0.0.1:$PORT")...)...)
	b.open("/w/team/endpoints")
	b.axe("endpoints")
	b.open("/w/team/endpoints/fraud")
	b.axe("endpoint")
	b.do(10*time.Second, chromedp.SetValue(chromedp.ID("t-v1"), "90"), chromedp.Click(chromedp.CSS(`form[action$="/traffic"] button`)))
	b.waitText(".errors", "traffic sums to 90", 10*time.Second)
	b.axe("endpoint with a refused change")

	// A reader, in another browser: no keys, no actions.
	reader := e.mustBerth("token", "create", "--role", "reader", "-o", "json")
	var tok api.TokenCreated
	json.Unmarshal([]byte(reader.stdout), &tok)
	rb := &tab{t: t, ctx: browser.Start(t), base: e.srv.url()}
	rb.signIn(tok.Secret)
	for _, page := range []string{"/w/team/services/iris", "/w/team/computes/sim-1", "/w/team/models", "/w/team/services", "/w/team/computes", "/w/team/endpoints/fraud"} {
		rb.open(page)
		html := get(rb, 10*time.Second, chromedp.OuterHTML(chromedp.CSS("main")))
		if strings.Contains(html, keys.PrimaryKey) || strings.Contains(html, keys.SecondaryKey) || strings.Contains(html, `method="post"`) ||
			strings.Contains(html, `id="try"`) || strings.Contains(html, `id="upload"`) {
			t.Errorf("the reader's %s shows a key or an action", page)
		}
	}

	// Detach through the compute's page.
	b.open("/w/team/computes/sim-1")
	b.axe("compute")
	b.screenshot("studio-compute")
	b.do(10*time.Second, chromedp.Click(chromedp.ID("detach-sure")), chromedp.Click(chromedp.CSS(`form[action$="/detach"] button`)),
		chromedp.WaitVisible(chromedp.ID("events")))
	b.waitText("#op-state", "Succeeded", 2*time.Minute)
	waitNoBerthObjects(t, cl)
}
