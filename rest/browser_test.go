package rest_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// browser starts headless Chromium (chromium finds it, or skips/fails as
// CI says) with a window of width×height and returns a tab's context; the
// browser is closed when the test ends.
func browser(t *testing.T, width, height int) context.Context {
	t.Helper()
	path := chromium(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(width, height),
		chromedp.Flag("hide-scrollbars", true),
	)
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelB := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	// The generous bound of the whole browser session; single waits are
	// bounded by it, not by a timing assertion.
	ctx, cancelC := context.WithTimeout(ctx, 3*time.Minute)
	t.Cleanup(func() { cancelC(); cancelB(); cancelA() })
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// run runs browser actions, failing the test with what was being done.
func run(t *testing.T, ctx context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, actions...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// value runs one browser action and returns its value.
func value[T any](t *testing.T, ctx context.Context, what string, a chromedp.Action[T]) T {
	t.Helper()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return v
}

// textOf reads an element's text in one evaluation in the page. The page
// redraws its tables on every event, so querying a node and then reading it
// (chromedp.Text) can find the node gone in between.
func textOf(sel string) chromedp.Action[string] {
	q, _ := json.Marshal(sel)
	return chromedp.Evaluate[string](`(() => { const e = document.querySelector(` + string(q) + `); if (!e) throw new Error("no element " + ` + string(q) + `); return e.innerText; })()`)
}

// screenshot writes a full-page PNG of the tab into dir.
func screenshot(t *testing.T, ctx context.Context, dir, name string) {
	t.Helper()
	// Messages of earlier steps are not part of the picture.
	run(t, ctx, "hide the toast", chromedp.Evaluate[chromedp.Void](`void (document.getElementById("toast").className = "")`))
	png := value(t, ctx, "screenshot "+name, chromedp.FullScreenshot(100))
	if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestLookAtRunningService is for a person: with OCCOPUS_LOOK_URL and
// OCCOPUS_LOOK_DIR set it screenshots a running service's pages.
func TestLookAtRunningService(t *testing.T) {
	url, dir := os.Getenv("OCCOPUS_LOOK_URL"), os.Getenv("OCCOPUS_LOOK_DIR")
	if url == "" || dir == "" {
		t.Skip("set OCCOPUS_LOOK_URL and OCCOPUS_LOOK_DIR to screenshot a running service")
	}
	for _, w := range []int{1400, 390} {
		ctx := browser(t, w, 900)
		run(t, ctx, "overview", chromedp.Navigate(url+"/"), chromedp.WaitVisible(chromedp.CSS(`#overview`)))
		time.Sleep(500 * time.Millisecond)
		screenshot(t, ctx, dir, "look-overview-"+itoa(w)+".png")
		if id := os.Getenv("OCCOPUS_LOOK_INFRA"); id != "" {
			run(t, ctx, "infra", chromedp.Navigate(url+"/#/infra/"+id), chromedp.WaitVisible(chromedp.CSS(`#graph`)))
			time.Sleep(500 * time.Millisecond)
			screenshot(t, ctx, dir, "look-infra-"+itoa(w)+".png")
		}
	}
}

func itoa(n int) string {
	return string(rune('0'+n/1000%10)) + string(rune('0'+n/100%10)) + string(rune('0'+n/10%10)) + string(rune('0'+n%10))
}

// openNode clicks a node's box in the graph from inside the page: the
// graph is redrawn by live events, so a node found by the protocol may be
// gone by the time a protocol click lands.
func openNode(name string) chromedp.Action[chromedp.Void] {
	return chromedp.Evaluate[chromedp.Void](`void document.querySelector('#graph g.node[data-node="` + name + `"]').dispatchEvent(new MouseEvent("click", {bubbles: true}))`)
}

// clickJS clicks the element a CSS selector finds, from inside the page,
// in one task: live redraws replace elements, and a protocol click looks
// an element up and clicks it in separate steps.
func clickJS(sel string) chromedp.Action[chromedp.Void] {
	q, _ := json.Marshal(sel)
	return chromedp.Evaluate[chromedp.Void](`void (() => { const e = document.querySelector(` + string(q) + `); if (!e) throw new Error("no element " + ` + string(q) + `); e.click(); })()`)
}
