package rest_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/occopus-go/occopus/descr"
	"github.com/occopus-go/occopus/store"
)

// brokenDefs: a process that exits at once, so its node never stays up.
const brokenDefs = `
'node_def:dash_broken':
  - resource:
      type: local
      stop_timeout: 1
    contextualisation:
      type: docker
      command: ["sh", "-c", "echo cannot reach the warehouse >&2; exit 3"]
    health_check:
      ping: false
`

const shopInfra = `infra_name: web-shop
nodes:
  - &DB
    name: db
    type: dash_listener
  - &CACHE
    name: cache
    type: dash_plain
  - &APP
    name: app
    type: dash_plain
    scaling: {min: 2, max: 4}
  - &WEB
    name: web
    type: dash_plain
    scaling: {min: 1, max: 3}
dependencies:
  - [ *APP, *DB ]
  - [ *APP, *CACHE ]
  - [ *WEB, *APP ]
`

const batchInfra = `infra_name: batch-workers
nodes:
  - name: worker
    type: dash_plain
    scaling: {min: 3, max: 8}
`

const failingInfra = `infra_name: analytics
nodes:
  - &DB
    name: warehouse
    type: dash_listener
  - &ETL
    name: etl
    type: dash_broken
dependencies:
  - [ *ETL, *DB ]
`

// TestScreenshots writes the README's screenshots (make screenshots):
// three infrastructures of real local processes, one failing, shown by
// the overview and the infrastructure page at 1400 px and at phone width.
func TestScreenshots(t *testing.T) {
	dir := os.Getenv("OCCOPUS_SCREENSHOTS")
	if dir == "" {
		t.Skip("set OCCOPUS_SCREENSHOTS=DIR (make screenshots) to write the dashboard's screenshots")
	}
	f := newFixture(t)
	importDefs(t, f.st, dashDefs+brokenDefs)
	_, hs := f.server(t, func(c *serverConfig) {
		c.Manager.Interval = time.Second
		c.Secrets = []string{"hush-hush-name"} // named by the db's resource: shown redacted
	})
	shop := create(t, hs.URL, shopInfra)
	create(t, hs.URL, batchInfra)
	failing := create(t, hs.URL, failingInfra)
	waitFor(t, hs.URL, shop, "the shop ready", func(r report) bool { return r.ready("web") == 1 && r.ready("app") == 2 })
	deadline := time.Now().Add(time.Minute)
	for {
		v := expect(t, call(t, "GET", hs.URL+"/infrastructures/"+failing+"/status", ""), 200)
		if lp, _ := v["last_pass"].(map[string]any); lp != nil && lp["error"] != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the failing infrastructure never failed")
		}
		time.Sleep(50 * time.Millisecond)
	}
	expect(t, call(t, "POST", hs.URL+"/infrastructures/"+shop+"/scaleto/web/99", ""), 200)
	for _, size := range []struct {
		name string
		w, h int64
	}{{"", 1400, 900}, {"-phone", 390, 844}} {
		ctx := browser(t, 1400, 900)
		run(t, ctx, "viewport", chromedp.EmulateViewport(size.w, size.h))
		run(t, ctx, "overview", chromedp.Navigate(hs.URL+"/"), chromedp.WaitVisible(chromedp.CSS(`#infra-`+failing)))
		screenshot(t, ctx, dir, "overview"+size.name+".png")
		run(t, ctx, "shop", chromedp.Navigate(hs.URL+"/#/infra/"+shop), chromedp.WaitVisible(chromedp.CSS(`#graph`)),
			chromedp.Evaluate[chromedp.Void](`void (() => { const i = document.getElementById("scale-web"); i.value = "99"; i.dispatchEvent(new Event("input")); document.getElementById("scaleapply-web").click(); })()`),
			chromedp.Poll[chromedp.Void](`document.getElementById("scalemsg-web").textContent.includes("Asked for 99")`),
			openNode("db"))
		screenshot(t, ctx, dir, "infrastructure"+size.name+".png")
		run(t, ctx, "failing", chromedp.Navigate(hs.URL+"/#/infra/"+failing), chromedp.WaitVisible(chromedp.CSS(`#lastError`)))
		screenshot(t, ctx, dir, "failing"+size.name+".png")
		run(t, ctx, "create", chromedp.Navigate(hs.URL+"/"), chromedp.WaitVisible(chromedp.CSS(`#overview`)), clickJS(`#new`),
			chromedp.SetValue(chromedp.CSS(`#createText`), brokenYAML), clickJS(`#createSubmit`),
			chromedp.WaitVisible(chromedp.CSS(`#createErrors li`)))
		screenshot(t, ctx, dir, "create-errors"+size.name+".png")
	}
}

// TestDashboardLoadTiming measures (and logs; it asserts no time) how
// long the page takes to show 100 infrastructures: the browser's
// navigation timing and the time until the overview table is drawn.
func TestDashboardLoadTiming(t *testing.T) {
	if os.Getenv("OCCOPUS_DASH_TIMING") == "" {
		t.Skip("set OCCOPUS_DASH_TIMING=1 (make screenshots) to measure the page with 100 infrastructures")
	}
	f := newFixture(t)
	importDefs(t, f.st, dashDefs)
	srv, hs := f.server(t, nil)
	ctx := context.Background()
	for i := range 100 {
		in, err := descr.ParseInfra("t.yaml", []byte(strings.Replace(dashInfra, "dash-graph", fmt.Sprintf("infra-%03d", i), 1)), descr.LoadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		// Submitted, not attached: records the page reads, with
		// instance records, and no processes.
		id, err := srv.m.Submit(ctx, in, "")
		if err != nil {
			t.Fatal(err)
		}
		for j, state := range []string{store.StateReady, store.StateReady, store.StatePending} {
			if err := f.st.PutInstance(ctx, store.Instance{InfraID: id, NodeID: fmt.Sprintf("%s-%d", id[:8], j), NodeName: "web", State: state, Backend: "local",
				CreatedAt: time.Now(), UpdatedAt: time.Now()}); err != nil {
				t.Fatal(err)
			}
		}
	}
	bctx := browser(t, 1400, 900)
	for round := range 3 {
		run(t, bctx, "load", chromedp.Navigate(hs.URL+"/"), chromedp.Poll[chromedp.Void](`document.querySelectorAll("#overview tbody tr").length === 100`))
		ms := value(t, bctx, "timing", chromedp.Evaluate[[]float64](`(() => { const n = performance.getEntriesByType("navigation")[0];
			return [n.responseEnd - n.startTime, n.domContentLoadedEventEnd - n.startTime, performance.getEntriesByName("overview-drawn")[0].startTime]; })()`))
		t.Logf("round %d, 100 infrastructures: page received %.1f ms, DOMContentLoaded %.1f ms, table of 100 drawn by %.1f ms", round, ms[0], ms[1], ms[2])
	}
}
