package rest_test

import (
	"strings"
	"testing"
)

// TestDeleteForce: an infrastructure whose backend cannot remove its
// instances answers 500 with what is left and keeps its record; with
// ?force=true the record goes and the answer lists what may remain.
func TestDeleteForce(t *testing.T) {
	f := newFixture(t)
	importDefs(t, f.st, "'node_def:stuck':\n  - resource: {type: rest_fuzz, zone: unreachable}\n    health_check: {ping: false}\n")
	_, hs := f.server(t, nil)
	id := create(t, hs.URL, "infra_name: stuck\nnodes:\n  - {name: a, type: stuck}\n")
	waitFor(t, hs.URL, id, "ready", func(r report) bool { return r.ready("a") == 1 })
	r := call(t, "DELETE", hs.URL+"/infrastructures/"+id, "")
	v := expect(t, r, 500)
	left, _ := v["left"].([]any)
	if len(left) != 1 || !strings.Contains(v["message"].(string), "?force=true") {
		t.Fatalf("DELETE of a stuck infrastructure: %s", r.body)
	}
	if l := left[0].(map[string]any); l["backend"] != "rest_fuzz" || l["id"] == "" || !strings.Contains(l["error"].(string), "endpoint gone") {
		t.Fatalf("left %v", l)
	}
	expect(t, call(t, "GET", hs.URL+"/infrastructures/"+id, ""), 200) // still there
	expect(t, call(t, "DELETE", hs.URL+"/infrastructures/"+id+"?force=maybe", ""), 400)
	v = expect(t, call(t, "DELETE", hs.URL+"/infrastructures/"+id+"?force=true", ""), 200)
	if v["infraid"] != id || len(v["left"].([]any)) != 1 {
		t.Fatalf("forced DELETE: %v", v)
	}
	// DELETE answers once the record is gone.
	expect(t, call(t, "GET", hs.URL+"/infrastructures/"+id, ""), 404)
}
