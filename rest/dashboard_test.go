package rest_test

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
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

// TestDashboardInRealBrowser loads the dashboard in headless Chromium,
// lets its script read the API, and checks the page it built: the
// infrastructure, a row per instance with its node, its state and its
// scaling, and the scale buttons.
func TestDashboardInRealBrowser(t *testing.T) {
	browser := chromium(t)
	f := newFixture(t)
	_, hs := f.server(t, nil)
	id := create(t, hs.URL, infraYAML)
	waitFor(t, hs.URL, id, "both nodes ready", func(r report) bool { return r.ready("worker") == 1 && r.ready("helper") == 1 })

	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
		"--user-data-dir="+t.TempDir(), "--virtual-time-budget=5000", "--dump-dom", hs.URL+"/")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium: %v", err)
	}
	dom := string(out)
	for _, want := range []string{
		`id="infra-` + id + `"`,
		`data-node="worker"`,
		`data-node="helper"`,
		`class="state ready"`,
		`1/1 (min 1, max 4)`,
		`title="scale up"`,
		`1 infrastructure(s)`,
	} {
		if !strings.Contains(dom, want) {
			t.Errorf("the page lacks %s", want)
		}
	}
	if t.Failed() {
		t.Logf("page:\n%s", dom)
	}
}

// TestDashboardNeedsNoTokenButTheAPIDoes: the page itself is static; with a
// token configured only the API calls it makes need it.
func TestDashboardNeedsNoTokenButTheAPIDoes(t *testing.T) {
	f := newFixture(t)
	_, hs := f.server(t, func(c *serverConfig) { c.Token = "s3cret-token" })
	r := call(t, "GET", hs.URL+"/", "")
	if r.code != 200 || !strings.Contains(string(r.body), "<title>occopus</title>") {
		t.Fatalf("dashboard: %d", r.code)
	}
	if r := call(t, "GET", hs.URL+"/infrastructures/", ""); r.code != 401 {
		t.Fatalf("API without token: %d, want 401", r.code)
	}
}
