package rest_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestStatusShowsTheLastPass: what went wrong is visible over HTTP (the
// status resource, the report's headers) and in the metrics.
func TestStatusShowsTheLastPass(t *testing.T) {
	f := newFixture(t)
	importDefs(t, f.st, "'node_def:broken':\n  - resource: {type: rest_fuzz, zone: broken}\n    health_check: {ping: false}\n")
	_, hs := f.server(t, nil)
	id := create(t, hs.URL, "infra_name: b\nnodes:\n  - {name: a, type: broken}\n")
	var st map[string]any
	waitFor(t, hs.URL, id, "a terminal pass", func(report) bool {
		st = expect(t, call(t, "GET", hs.URL+"/infrastructures/"+id+"/status", ""), 200)
		lp, _ := st["last_pass"].(map[string]any)
		return lp != nil && lp["result"] == "terminal"
	})
	lp := st["last_pass"].(map[string]any)
	if !strings.Contains(lp["error"].(string), "zone broken cannot be configured") || st["attached"] != true || st["name"] != "b" || lp["failures"] != float64(1) {
		t.Fatalf("status %v", st)
	}
	r := call(t, "GET", hs.URL+"/infrastructures/"+id, "")
	if r.header.Get("Occopus-Pass-Result") != "terminal" || !strings.Contains(r.header.Get("Occopus-Pass-Error"), "cannot be configured") {
		t.Fatalf("report headers %v", r.header)
	}
	expect(t, call(t, "GET", hs.URL+"/infrastructures/00000000-0000-4000-8000-000000000000/status", ""), 404)
	resp, err := http.Get(hs.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(b), `occopus_reconcile_pass_duration_seconds_count{result="terminal"} 1`) {
		t.Fatalf("metrics lack the terminal pass:\n%s", grep(string(b), "reconcile_pass"))
	}
}

func grep(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
