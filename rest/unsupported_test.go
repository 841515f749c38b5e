package rest_test

import (
	"encoding/json"
	"testing"
)

// TestCreateTypeNotInThisBuild: a description whose node type's stored
// definition (imported by another build, or by Occopus itself) names a
// resource type this build has no backend for is refused with 400 and the
// reason, and nothing is stored: no infrastructure, no retry loop.
func TestCreateTypeNotInThisBuild(t *testing.T) {
	f := newFixture(t)
	_, hs := f.server(t, nil)
	defs := map[string]json.RawMessage{
		"azure_node": json.RawMessage(`[{"resource": {"type": "azure_vm", "endpoint": "https://management.azure.com",
			"resource_group": "rg", "location": "westeurope", "vm_size": "Standard_B1s", "publisher": "Canonical",
			"offer": "UbuntuServer", "sku": "18.04-LTS", "version": "latest", "username": "ubuntu"},
			"contextualisation": {"type": "cloudinit", "context_template": "#cloud-config\n"}}]`),
	}
	if err := f.st.PutNodeDefs(t.Context(), defs); err != nil {
		t.Fatal(err)
	}
	before := expect(t, call(t, "GET", hs.URL+"/infrastructures/", ""), 200)
	body := "infra_name: az\nnodes:\n  - name: vm\n    type: azure_node\n"
	v := expect(t, call(t, "POST", hs.URL+"/infrastructures/", body), 400)
	want := `request:4:11: nodes[0].type: node type "azure_node" (node_def:azure_node[0]): resource type azure_vm is not supported by this build (supported: docker, ec2, local, nova)`
	if v["message"] != want {
		t.Fatalf("message %q\nwant    %q", v["message"], want)
	}
	after := expect(t, call(t, "GET", hs.URL+"/infrastructures/", ""), 200)
	if len(after["infrastructures"].([]any)) != len(before["infrastructures"].([]any)) {
		t.Fatalf("an infrastructure was stored: before %v, after %v", before, after)
	}
}
