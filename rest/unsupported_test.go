package rest_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/occopus-go/occopus/descr"
)

// TestCreateTypeNotInThisBuild: a description whose node type's stored
// definition (imported by another build, or by an older Occopus) names a
// resource type this build has no backend for is refused with 400 and
// the reason, and nothing is stored: no infrastructure, no retry loop.
func TestCreateTypeNotInThisBuild(t *testing.T) {
	f := newFixture(t)
	_, hs := f.server(t, nil)
	defs := map[string]json.RawMessage{
		"occi_node": json.RawMessage(`[{"resource": {"type": "occi", "endpoint": "https://occi.example"},
			"contextualisation": {"type": "cloudinit", "context_template": "#cloud-config\n"}}]`),
	}
	if err := f.st.PutNodeDefs(t.Context(), defs); err != nil {
		t.Fatal(err)
	}
	before := expect(t, call(t, "GET", hs.URL+"/infrastructures/", ""), 200)
	body := "infra_name: old\nnodes:\n  - name: vm\n    type: occi_node\n"
	v := expect(t, call(t, "POST", hs.URL+"/infrastructures/", body), 400)
	want := `request:4:11: nodes[0].type: node type "occi_node" (node_def:occi_node[0]): unknown resource type "occi" (supported: ` +
		strings.Join(descr.SectionTypes(descr.SectionResource), ", ") + ")"
	if v["message"] != want {
		t.Fatalf("message %q\nwant    %q", v["message"], want)
	}
	after := expect(t, call(t, "GET", hs.URL+"/infrastructures/", ""), 200)
	if len(after["infrastructures"].([]any)) != len(before["infrastructures"].([]any)) {
		t.Fatalf("an infrastructure was stored: before %v, after %v", before, after)
	}
}
