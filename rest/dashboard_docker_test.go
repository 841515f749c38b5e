package rest_test

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestDashboardDockerInBrowser: a Docker infrastructure on the page: the
// graph box ready, the instance with its docker backend and the rendered
// resource naming its image; deleting it from the page removes its
// containers.
func TestDashboardDockerInBrowser(t *testing.T) {
	requireDocker(t)
	f := newFixture(t)
	importDefs(t, f.st, dockerNodeDefs)
	_, hs := f.server(t, nil)
	id := create(t, hs.URL, dockerInfraYAML)
	t.Cleanup(func() { sweepContainers(t, id) })
	waitFor(t, hs.URL, id, "the container ready", func(r report) bool { return r.ready("web") == 1 })
	ctx := browser(t, 1400, 900)
	run(t, ctx, "open", chromedp.Navigate(hs.URL+"/#/infra/"+id),
		chromedp.Poll[chromedp.Void](`document.querySelector('#graph g.node[data-node="web"][data-state="ready"]') !== null &&
			document.querySelector('#instances tr[data-node="web"]') !== null`),
		openNode("web"),
		chromedp.Poll[chromedp.Void](`document.querySelector("#node-web pre.resource") !== null`))
	row := value(t, ctx, "row", textOf(`#instances tr[data-node="web"]`))
	if !strings.Contains(row, "docker") || !strings.Contains(row, "ready") {
		t.Errorf("instance row %q", row)
	}
	res := value(t, ctx, "resource", textOf(`#node-web pre.resource`))
	if !strings.Contains(res, "occopus/busybox-helloworld") {
		t.Errorf("resource %q", res)
	}
	run(t, ctx, "delete", clickJS(`#delete`), chromedp.WaitVisible(chromedp.CSS(`#confirmDlg[open]`)),
		clickJS(`#confirmYes`), chromedp.Poll[chromedp.Void](`location.hash === "#/"`))
	if left := containersOf(t, id); len(left) != 0 {
		t.Errorf("containers left after delete from the page: %v", left)
	}
}
