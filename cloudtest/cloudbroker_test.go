package cloudtest

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/occopus-go/occopus/descr"
	"github.com/occopus-go/occopus/resource/cloudbroker/cbfake"
)

// cloudbroker-ping is built with its own files; in memory only, and only
// in the resource sections:
//
//	endpoint → the fake's URL
//
// Left as the tutorial has them, because the fake does not check them:
// the description's deployment_id, instance_type_id, key_pair_id and
// opened_port (sent as written).
func TestTutorialCloudBrokerPing(t *testing.T) {
	dir := tutorial(t, "cloudbroker-ping")
	fake := cbfake.New(cbfake.Options{})
	t.Cleanup(fake.Close)
	defs, err := descr.LoadNodeDefs(filepath.Join(dir, "nodes", "node_definitions.yaml"), descr.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	replacePlaceholders(t, defs, map[string]any{"endpoint": fake.URL()})
	authData := fmt.Sprintf(`resource:
  - type: cloudbroker
    endpoint: %s
    auth_data:
      email: %s
      password: %s
`, fake.URL(), fake.Email(), fake.Password())
	received := func() map[string]sent {
		out := map[string]sent{}
		for _, in := range fake.Live() {
			s, ok := brokerName(in.Name)
			if !ok {
				t.Errorf("instance %s: name %q is not occopus-<node name>-<infra id>-<node id>[-<store id>]", in.ID, in.Name)
				continue
			}
			s.userData = in.UserData
			out[s.nodeID] = s
			want := map[string]string{
				"deployment_id": "replace_with_deployment_id", "instance_type_id": "replace_with_instance_type_id",
				"key_pair_id": "replace_with_keypair_id", "opened_port": "replace_with_list_of_ports_separated_with_comma",
				"disable_autostop": "true", "isolated": "true", "cloud_init_b64": "true",
			}
			for k, v := range want {
				if in.Fields[k] != v {
					t.Errorf("instance %s: %s = %q, want %q", in.ID, k, in.Fields[k], v)
				}
			}
		}
		return out
	}
	m, id := buildTutorial(t, dir, defs, authData, received)
	if n := fake.Created(); n != 2 {
		t.Errorf("the fake made %d instances, want 2", n)
	}
	// CloudBroker tells what each instance cost (the fake's Total: 0.12 EUR).
	c, err := m.Cost(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	if c.TotalCost == nil || *c.TotalCost != 0.24 || c.Currency != "EUR" {
		t.Errorf("cost %+v, want 0.24 EUR", c)
	}
	for _, name := range []string{"ping-receiver", "ping-sender"} {
		nc := c.Nodes[name]
		if nc.TotalCost == nil || *nc.TotalCost != 0.12 || len(nc.Instances) != 1 {
			t.Errorf("%s: cost %+v, want 0.12 EUR for its one instance", name, nc)
		}
	}
	tearDown(t, m, id)
	if l := fake.Live(); len(l) != 0 {
		t.Errorf("instances left running at the fake after teardown: %+v", l)
	}
	for _, in := range fake.Instances() {
		if in.Status != "stopping" && in.Status != "halted" {
			t.Errorf("instance %s is %s after teardown", in.ID, in.Status)
		}
	}
}

// brokerName reads the labels of a CloudBroker instance out of its name,
// occopus-<node name>-<infra id>-<node id>, the ids being UUIDs.
func brokerName(name string) (sent, bool) {
	const uuidLen = 36
	rest, ok := strings.CutPrefix(name, "occopus-")
	if !ok || len(rest) < 2*uuidLen+3 {
		return sent{}, false
	}
	// The store id ends the name when the store has one (it has here).
	if n := len(rest); n > 3*uuidLen+3 && rest[n-uuidLen-1] == '-' && rest[n-2*uuidLen-2] == '-' && rest[n-3*uuidLen-3] == '-' {
		rest = rest[:n-uuidLen-1]
	}
	nodeID := rest[len(rest)-uuidLen:]
	infraID := rest[len(rest)-2*uuidLen-1 : len(rest)-uuidLen-1]
	nodeName := rest[:len(rest)-2*uuidLen-2]
	if rest[len(rest)-uuidLen-1] != '-' || rest[len(rest)-2*uuidLen-2] != '-' {
		return sent{}, false
	}
	return sent{infraID: infraID, nodeID: nodeID, nodeName: nodeName}, true
}
