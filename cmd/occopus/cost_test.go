package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/occopus-go/occopus/resource/cloudbroker/cbfake"
)

// maintain -r prints, after the report table, what the instances have
// cost where their backends tell it (CloudBroker). When none does it
// prints nothing more: the integration tests' reports on local and docker
// instances are unchanged.
func TestMaintainReportCost(t *testing.T) {
	cb := cbfake.New(cbfake.Options{})
	t.Cleanup(cb.Close)
	home := t.TempDir()
	t.Setenv("OCCOPUS_HOME", home)
	write := func(name, text string) string {
		t.Helper()
		p := filepath.Join(home, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write("auth_data.yaml", fmt.Sprintf("resource:\n  - type: cloudbroker\n    auth_data: {email: %s, password: %s}\n", cb.Email(), cb.Password()))
	nodes := write("nodes.yaml", fmt.Sprintf(`
'node_def:broker_node':
  - resource:
      type: cloudbroker
      endpoint: %s
      description: {deployment_id: dep-1, instance_type_id: it-1}
    contextualisation:
      type: cloudinit
      context_template: {write_files: [{path: /tmp/x, content: "{{ node_id }}"}]}
    health_check: {ping: false}
`, cb.URL()))
	infra := write("infra.yaml", "infra_name: cost-cli\nnodes:\n  - name: broker\n    type: broker_node\n    scaling: {min: 2}\n")
	if _, stderr, code := run(t, "import", nodes); code != 0 {
		t.Fatalf("import: exit %d\n%s", code, stderr)
	}
	stdout, stderr, code := run(t, "build", infra)
	if code != 0 {
		t.Fatalf("build: exit %d\n%s", code, stderr)
	}
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	id := lines[len(lines)-1]
	t.Cleanup(func() { run(t, "destroy", "-i", id) })

	stdout, stderr, code = run(t, "maintain", "-i", id, "-r")
	if code != 0 {
		t.Fatalf("maintain -r: exit %d\n%s", code, stderr)
	}
	ids := regexp.MustCompile(`(?m)^broker +(\S+) +ready `).FindAllStringSubmatch(stdout, -1)
	if len(ids) != 2 {
		t.Fatalf("report:\n%s\nwant two ready broker instances", stdout)
	}
	for _, m := range ids {
		if !regexp.MustCompile(`(?m)^broker +` + regexp.QuoteMeta(m[1]) + ` +0\.12 EUR$`).MatchString(stdout) {
			t.Errorf("no cost line for instance %s:\n%s", m[1], stdout)
		}
	}
	if !regexp.MustCompile(`(?m)^NODE +INSTANCE +COST$`).MatchString(stdout) || !regexp.MustCompile(`(?m)^total +0\.24 EUR$`).MatchString(stdout) {
		t.Errorf("no cost table with the total 0.24 EUR:\n%s", stdout)
	}
	if stderr != "" {
		t.Errorf("stderr: %s", stderr)
	}

	// A failing backend is named on stderr, without the password.
	one := cb.Live()[0].ID
	cb.Inject(&cbfake.Fault{Method: "GET", Path: "/instances/" + one + "/costs.xml", Status: 403,
		Body: "<errors><error>no access with " + cb.Password() + "</error></errors>"})
	stdout, stderr, code = run(t, "maintain", "-i", id, "-r")
	if code != 0 || !strings.Contains(stderr, "cost of broker ") || !strings.Contains(stderr, "HTTP 403") || strings.Contains(stderr+stdout, cb.Password()) {
		t.Errorf("maintain -r with a failing backend: exit %d\nstdout %s\nstderr %s", code, stdout, stderr)
	}
	if !regexp.MustCompile(`(?m)^total +0\.12 EUR$`).MatchString(stdout) {
		t.Errorf("total without the failing instance, want 0.12 EUR:\n%s", stdout)
	}

	// The JSON report keeps the REST report's shape: no cost in it.
	stdout, _, code = run(t, "maintain", "-i", id, "-r", "--format", "json")
	if code != 0 || strings.Contains(stdout, "cost") {
		t.Errorf("maintain -r --format json: exit %d, output mentions cost:\n%s", code, stdout)
	}
	// --format json without -r implies -r: the same report.
	withR := stdout
	stdout, _, code = run(t, "maintain", "-i", id, "--format", "json")
	if code != 0 || !strings.HasPrefix(strings.TrimSpace(stdout), "{") || len(stdout) != len(withR) {
		t.Errorf("maintain --format json (no -r): exit %d, want the report of -r:\n%s\n--- with -r\n%s", code, stdout, withR)
	}
	if _, stderr, code := run(t, "destroy", "-i", id); code != 0 {
		t.Fatalf("destroy: exit %d\n%s", code, stderr)
	}
	if l := cb.Live(); len(l) != 0 {
		t.Errorf("instances left running: %+v", l)
	}
}
