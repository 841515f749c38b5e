package rest_test

import (
	"strings"
	"testing"

	"github.com/occopus-go/occopus"
	"github.com/occopus-go/occopus/store"
)

// TestNetworkPolicyFollowsTheDescription: a description POSTed to the
// service and maintained later by another process (the CLI, configured
// with allow_cmd only) still has its cmd() refused, naming the key that
// allows it; with allow_network_cmd as well it runs (issue 11 item 9).
func TestNetworkPolicyFollowsTheDescription(t *testing.T) {
	f := newFixture(t)
	importDefs(t, f.st, `
'node_def:rest_cmd':
  - resource: {type: local, stop_timeout: 1}
    contextualisation:
      type: docker
      command: ["sleep", "{{ cmd('echo 3600') }}"]
    health_check: {ping: false}
`)
	_, hs := f.server(t, nil)
	id := create(t, hs.URL, "infra_name: net\nnodes:\n  - {name: w, type: rest_cmd}\n")
	expect(t, call(t, "POST", hs.URL+"/infrastructures/"+id+"/detach", ""), 200)
	if inf, err := f.st.Infra(t.Context(), id); err != nil || inf.Origin != store.OriginNetwork {
		t.Fatalf("stored origin %q (%v), want %q", inf.Origin, err, store.OriginNetwork)
	}

	cli := func(allowNet bool) *occopus.Manager {
		m, err := occopus.New(occopus.Options{Store: f.st, Home: f.home, AllowCmd: true, AllowNetworkCmd: allowNet})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { m.Close() })
		return m
	}
	_, err := cli(false).Maintain(t.Context(), id)
	if err == nil || !strings.Contains(err.Error(), "allow_network_cmd") {
		t.Fatalf("maintain with allow_cmd only: %v, want cmd() refused naming allow_network_cmd", err)
	}
	if ins, _ := f.st.Instances(t.Context(), id); len(ins) != 0 {
		t.Fatalf("%d instances after the refusal", len(ins))
	}
	if _, err := cli(true).Maintain(t.Context(), id); err != nil {
		t.Fatalf("maintain with allow_network_cmd: %v", err)
	}
	if ins, _ := f.st.Instances(t.Context(), id); len(ins) != 1 {
		t.Fatalf("%d instances, want 1", len(ins))
	}
}
