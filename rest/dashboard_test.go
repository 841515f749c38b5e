package rest_test

import (
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// chromium finds a headless browser; under CI one must be there (the test
// command installs Debian's chromium).
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("no chromium under CI (scripts/test.sh installs Debian's chromium)")
	}
	t.Skip("no chromium: apt-get install chromium to run the browser test")
	return ""
}

// brokenYAML has an unknown key on line 5 and a node without a type.
const brokenYAML = `infra_name: broken
nodes:
  - name: ok
    type: dash_plain
  - nme: oops
`

// TestDashboardInBrowser drives the page in headless Chromium against a
// real service building real local processes: the overview, the graph,
// a live state change, every action (scale to the limit, remove an
// instance, detach and attach, create with validation errors shown at
// their lines, delete) end to end.
func TestDashboardInBrowser(t *testing.T) {
	f := newFixture(t)
	importDefs(t, f.st, dashDefs)
	_, hs := f.server(t, nil)
	id := create(t, hs.URL, dashInfra)
	waitFor(t, hs.URL, id, "both nodes ready", func(r report) bool { return r.ready("db") == 1 && r.ready("web") == 1 })
	ctx := browser(t, 1400, 900)
	waitJS := func(what, expr string) {
		t.Helper()
		if _, err := chromedp.Run(ctx, chromedp.Poll[bool](expr, chromedp.WithPollingInterval(20*time.Millisecond))); err != nil {
			html, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`location.hash + "\n" + document.getElementById("toast").textContent + "\n" + document.getElementById("view").innerText`))
			t.Fatalf("%s: %v\npage: %s\nlog:\n%s", what, err, html, f.logs.String())
		}
	}
	text := func(sel string) string {
		t.Helper()
		return value(t, ctx, "text of "+sel, textOf(sel))
	}

	// Overview: the row of the infrastructure with its name and counts.
	run(t, ctx, "overview", chromedp.Navigate(hs.URL+"/"), chromedp.WaitVisible(chromedp.CSS(`#infra-`+id)))
	row := text(`#infra-` + id)
	for _, want := range []string{"dash-graph", "attached", "2 ready", "ok"} {
		if !strings.Contains(row, want) {
			t.Errorf("overview row %q lacks %q", row, want)
		}
	}
	if live := text("#live"); live != "live" {
		t.Errorf("live badge %q", live)
	}

	// The infrastructure: graph boxes with state as text, the edge.
	run(t, ctx, "open the infrastructure", clickJS(`#infra-`+id+` a`), chromedp.WaitVisible(chromedp.CSS(`#graph`)))
	waitJS("graph", `document.querySelector('#graph g.node[data-node="db"][data-state="ready"]') !== null &&
		document.querySelector('#graph path.edge[data-from="db"][data-to="web"]') !== null &&
		document.querySelector('#graph g.node[data-node="web"]').textContent.includes("1/1 ready")`)

	// A state change made behind the page's back shows up from the event
	// stream: a second web instance is created and becomes ready.
	expect(t, call(t, "POST", hs.URL+"/infrastructures/"+id+"/scaleto/web/2", ""), 200)
	waitJS("live instance", `document.querySelectorAll('#instances tr[data-node="web"]').length === 2 &&
		document.querySelector('#timeline li[data-kind="scale.requested"]') !== null &&
		document.querySelector('#graph g.node[data-node="web"]').textContent.includes("2/2 ready")`)

	// Scale to 99: the answer says it is clamped at max 3; then + is off.
	// Typed and sent in one task of the page, so no live redraw comes between.
	run(t, ctx, "scale to 99", chromedp.Evaluate[chromedp.Void](`void (() => { const i = document.getElementById("scale-web"); i.value = "99"; i.dispatchEvent(new Event("input")); document.getElementById("scaleapply-web").click(); })()`))
	waitJS("clamp message", `document.getElementById("scalemsg-web").textContent.includes("Asked for 99; the target is 3")`)
	if msg := text("#scalemsg-web"); !strings.Contains(msg, "max") {
		t.Errorf("clamp message %q does not name the bound", msg)
	}
	waitJS("+ disabled at max", `document.querySelector('button[aria-label="one more web"]').disabled &&
		document.getElementById("scalehint-web").textContent.includes("at the maximum")`)
	waitJS("3 web instances", `document.querySelectorAll('#instances tr[data-node="web"]').length === 3`)

	// Remove one instance, confirmed.
	victim := value(t, ctx, "victim", chromedp.Evaluate[string](`document.querySelector('#instances tr[data-node="web"]').dataset.id`))
	run(t, ctx, "remove", clickJS(`#instances tr[data-id="`+victim+`"] button.danger`),
		chromedp.WaitVisible(chromedp.CSS(`#confirmDlg[open]`)), clickJS(`#confirmYes`))
	waitJS("instance removed", `document.querySelector('#instances tr[data-id="`+victim+`"]') === null &&
		document.querySelectorAll('#instances tr[data-node="web"]').length === 2`)

	// Detach, then attach again.
	run(t, ctx, "detach", clickJS(`#detach`), chromedp.WaitVisible(chromedp.CSS(`#attach`)))
	if v := expect(t, call(t, "GET", hs.URL+"/infrastructures/"+id+"/status", ""), 200); v["attached"] != false {
		t.Errorf("after detach: %v", v)
	}
	run(t, ctx, "attach", clickJS(`#attach`), chromedp.WaitVisible(chromedp.CSS(`#detach`)))

	// Resources and health: the db node's details.
	run(t, ctx, "node details", openNode("db"))
	waitJS("db details", `document.getElementById("node-db").open && document.querySelector("#node-db pre.resource").textContent.includes('"type": "local"') &&
		document.getElementById("node-db").textContent.includes("ports") && document.getElementById("node-db").textContent.includes("pass")`)

	// Create: a broken description shows its errors at their lines; a
	// good one opens the new infrastructure.
	run(t, ctx, "create broken", clickJS(`#new`), chromedp.WaitVisible(chromedp.CSS(`#createText`)),
		chromedp.SetValue(chromedp.CSS(`#createText`), brokenYAML), clickJS(`#createSubmit`))
	waitJS("validation errors", `document.querySelector('#createErrors li[data-line="5"]') !== null &&
		document.querySelector('#gutter span.bad[data-line="5"]') !== null`)
	if errs := text("#createErrors"); !strings.Contains(errs, `unknown key "nme"`) || !strings.Contains(errs, "line 5, column 5") {
		t.Errorf("errors shown: %q", errs)
	}
	good := strings.Replace(strings.Replace(dashInfra, "dash-graph", "from-the-page", 1), "dash_listener", "dash_plain", 1)
	run(t, ctx, "create good", chromedp.SetValue(chromedp.CSS(`#createText`), good), clickJS(`#createSubmit`))
	waitJS("new infrastructure page", `location.hash.startsWith("#/infra/") && !location.hash.includes("`+id+`") &&
		(document.getElementById("infraName") || {}).textContent === "from-the-page"`)
	newID := strings.TrimPrefix(value(t, ctx, "hash", chromedp.Evaluate[string](`decodeURIComponent(location.hash)`)), "#/infra/")

	// Delete it, confirmed: back to the overview, gone from the API.
	run(t, ctx, "delete", clickJS(`#delete`), chromedp.WaitVisible(chromedp.CSS(`#confirmDlg[open]`)),
		clickJS(`#confirmYes`))
	waitJS("back to overview", `location.hash === "#/" && document.getElementById("infra-`+id+`") !== null && document.getElementById("infra-`+newID+`") === null`)
	expect(t, call(t, "GET", hs.URL+"/infrastructures/"+newID, ""), 404)

	// Filtering and sorting the overview.
	run(t, ctx, "filter", chromedp.SetValue(chromedp.CSS(`#filter`), "nothing-like-it"))
	run(t, ctx, "filter input", chromedp.Evaluate[chromedp.Void](`void document.getElementById("filter").dispatchEvent(new Event("input"))`))
	waitJS("filtered out", `document.getElementById("infra-`+id+`") === null && document.getElementById("count").textContent.startsWith("0 of 1")`)
}

// TestDashboardTokenFlow: with a token, the page asks for it when the API
// answers 401, and works once it is given.
func TestDashboardTokenFlow(t *testing.T) {
	f := newFixture(t)
	_, hs := f.server(t, func(c *serverConfig) { c.Token = "s3cret-token" })
	r := call(t, "GET", hs.URL+"/", "")
	if r.code != 200 || !strings.Contains(string(r.body), "<title>occopus</title>") {
		t.Fatalf("dashboard: %d", r.code)
	}
	v := expect(t, call(t, "POST", hs.URL+"/infrastructures/", infraYAML, "Authorization", "Bearer s3cret-token"), 200)
	id := v["infraid"].(string)
	ctx := browser(t, 1400, 900)
	run(t, ctx, "open", chromedp.Navigate(hs.URL+"/"), chromedp.WaitVisible(chromedp.CSS(`#tokenDlg[open]`)))
	run(t, ctx, "wrong token", chromedp.SendKeys(chromedp.CSS(`#tokenInput`), "wrong"), clickJS(`#tokenOk`),
		chromedp.WaitVisible(chromedp.CSS(`#tokenDlg[open]`)))
	run(t, ctx, "right token", chromedp.SendKeys(chromedp.CSS(`#tokenInput`), "s3cret-token"),
		clickJS(`#tokenOk`), chromedp.WaitVisible(chromedp.CSS(`#infra-`+id)))
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`document.getElementById("live").textContent === "live"`)); err != nil {
		t.Fatalf("the event stream did not open with the token: %v", err)
	}
}
