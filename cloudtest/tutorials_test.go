package cloudtest

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/occopus-go/occopus"
	"github.com/occopus-go/occopus/descr"
	"github.com/occopus-go/occopus/resource/ec2"
	"github.com/occopus-go/occopus/resource/ec2/ec2fake"
	"github.com/occopus-go/occopus/resource/nova"
	"github.com/occopus-go/occopus/resource/nova/novafake"
)

// The tutorials are built with their own files. In memory only, and only
// in the resource sections, these values are replaced (each of them is a
// placeholder in the tutorial, which replacePlaceholders checks):
//
//	ec2-ping:  endpoint   → the fake's URL
//	           regionname → the fake's signing region (the SDK signs with it)
//	           image_id   → ami-0123456789abcdef0 (EC2 rejects ids not starting with ami-)
//	nova-ping: endpoint         → the fake's Keystone URL
//	           flavor_name      → m1.small (Nova rejects an unknown flavor)
//	           floating_ip      → "yes" (the placeholder is no yes/no), so the
//	                              floating IP path is built and released
//	           floating_ip_pool → public (an external network of the fake)
//
// Left as the tutorials have them, because the fakes do not model them:
// ec2 instance_type, key_name, security_group_ids, subnet_id; nova
// project_id (the fake's tokens are not scoped), image_id, network_id
// (the server's port is on the network it names), key_name,
// security_groups. user_domain_name is Default in the tutorial already.

// placeholder reports whether a tutorial value is one to be replaced.
func placeholder(v any) bool {
	s, ok := v.(string)
	return ok && (strings.HasPrefix(s, "replace_with_") || strings.HasPrefix(s, "add_yes_"))
}

// replacePlaceholders sets keys of every implementation's resource
// section; each key must hold a placeholder in the file.
func replacePlaceholders(t *testing.T, defs *descr.NodeDefs, set map[string]any) {
	t.Helper()
	for _, typ := range defs.Types {
		for _, im := range defs.Impls[typ] {
			res := im.Section("resource")
			for k, v := range set {
				if !placeholder(res[k]) {
					t.Fatalf("%s: resource.%s is %v in the tutorial, not a placeholder", im.Path(), k, res[k])
				}
				res[k] = v
			}
		}
	}
}

// sent is what a fake received for one instance.
type sent struct {
	userData                  string
	infraID, nodeID, nodeName string
}

// buildTutorial imports the node definitions, builds the tutorial's
// infrastructure and checks the result against what the fake received:
// every node ready with a loopback address, its instance at the fake
// labelled with the infra id, node id and node name, the sender's user
// data holding the receiver's address. It returns the Manager and the
// infra id.
func buildTutorial(t *testing.T, dir string, defs *descr.NodeDefs, authData string, received func() map[string]sent) (*occopus.Manager, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	m := newManager(t, authData, managerOptions{})
	if err := m.ImportNodeDefs(ctx, defs); err != nil {
		t.Fatal(err)
	}
	infras, _ := filepath.Glob(filepath.Join(dir, "infra-*.yaml"))
	if len(infras) != 1 {
		t.Fatalf("want one infra-*.yaml in %s, found %v", dir, infras)
	}
	in, err := descr.LoadInfra(infras[0], descr.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	res, err := m.Build(ctx, in, "")
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	if len(res.Created) != 2 {
		t.Errorf("created %v, want 2 instances", res.Created)
	}
	rep, err := m.Get(ctx, res.ID)
	if err != nil {
		t.Fatal(err)
	}
	got := received()
	if len(got) != 2 {
		t.Fatalf("the fake has %d instances, want 2: %+v", len(got), got)
	}
	addr := map[string]string{}
	for _, name := range []string{"ping-receiver", "ping-sender"} {
		nr := rep[name]
		if len(nr.Instances) != 1 {
			t.Fatalf("node %s has %d instances in the report, want 1: %+v", name, len(nr.Instances), rep)
		}
		for nodeID, ir := range nr.Instances {
			if ir.State != "ready" {
				t.Errorf("%s: state %s, want ready", name, ir.State)
			}
			a, err := netip.ParseAddr(ir.ResourceAddress)
			if err != nil || !a.IsLoopback() {
				t.Errorf("%s: address %q is not a loopback address (the ping health check must stay on loopback)", name, ir.ResourceAddress)
			}
			addr[name] = ir.ResourceAddress
			s, ok := got[nodeID]
			if !ok {
				t.Errorf("%s: no instance at the fake labelled with node id %s", name, nodeID)
				continue
			}
			if s.infraID != res.ID || s.nodeID != nodeID || s.nodeName != name {
				t.Errorf("%s: labels at the fake: infra %q node id %q node name %q; want %q %q %q",
					name, s.infraID, s.nodeID, s.nodeName, res.ID, nodeID, name)
			}
			if want := "Hello World! I am the " + strings.TrimPrefix(name, "ping-") + " node created by Occopus."; !strings.Contains(s.userData, want) {
				t.Errorf("%s: user data lacks its rendered message %q:\n%s", name, want, s.userData)
			}
		}
	}
	for nodeID, s := range got {
		if s.nodeName != "ping-sender" {
			continue
		}
		want := fmt.Sprintf("ping %s -c 5 > /tmp/ping-result.txt", addr["ping-receiver"])
		if !strings.Contains(s.userData, want) {
			t.Errorf("sender %s: user data at the fake does not ping the receiver's address %s (want %q):\n%s", nodeID, addr["ping-receiver"], want, s.userData)
		}
	}
	return m, res.ID
}

// tearDown destroys the infrastructure and checks the store forgot it.
func tearDown(t *testing.T, m *occopus.Manager, id string) {
	t.Helper()
	rep, err := m.TearDown(t.Context(), id)
	if err != nil {
		t.Fatalf("teardown: %v", err)
	}
	if len(rep.Instances) != 2 || len(rep.Orphans) != 0 {
		t.Errorf("teardown destroyed %v and %d orphans, want the 2 instances", rep.Instances, len(rep.Orphans))
	}
	if _, err := m.Get(t.Context(), id); !errors.Is(err, occopus.ErrUnknownInfra) {
		t.Errorf("report after teardown: %v, want ErrUnknownInfra", err)
	}
}

func TestTutorialEC2Ping(t *testing.T) {
	dir := tutorial(t, "ec2-ping")
	fake := ec2fake.New(ec2fake.Options{})
	t.Cleanup(fake.Close)
	defs, err := descr.LoadNodeDefs(filepath.Join(dir, "nodes", "node_definitions.yaml"), descr.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	replacePlaceholders(t, defs, map[string]any{
		"endpoint":   fake.URL(),
		"regionname": fake.Region(),
		"image_id":   "ami-0123456789abcdef0",
	})
	authData := fmt.Sprintf(`resource:
  - type: ec2
    endpoint: %s
    auth_data:
      accesskey: %s
      secretkey: fake-secret-key-0123456789
`, fake.URL(), fake.AccessKey())
	received := func() map[string]sent {
		out := map[string]sent{}
		for _, in := range fake.Instances() {
			out[in.Tags[ec2.TagNodeID]] = sent{userData: in.UserData, infraID: in.Tags[ec2.TagInfraID],
				nodeID: in.Tags[ec2.TagNodeID], nodeName: in.Tags[ec2.TagNodeName]}
			if in.Tags["Name"] != in.Tags[ec2.TagNodeName] {
				t.Errorf("instance %s: Name tag %q, want the node name", in.ID, in.Tags["Name"])
			}
			if in.InstanceType != "replace_with_instance_type_of_your_image_on_your_target_cloud" {
				t.Errorf("instance %s: instance type %q is not the tutorial's", in.ID, in.InstanceType)
			}
		}
		return out
	}
	m, id := buildTutorial(t, dir, defs, authData, received)
	if n := fake.Created(); n != 2 {
		t.Errorf("the fake made %d instances, want 2", n)
	}
	tearDown(t, m, id)
	if n := fake.Live(); n != 0 {
		t.Errorf("%d instances left at the fake after teardown", n)
	}
	for _, e := range fake.Errors() {
		t.Error(e)
	}
}

func TestTutorialNovaPing(t *testing.T) {
	dir := tutorial(t, "nova-ping")
	fake := novafake.New(novafake.Options{})
	t.Cleanup(fake.Close)
	defs, err := descr.LoadNodeDefs(filepath.Join(dir, "nodes", "node_definitions.yaml"), descr.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	replacePlaceholders(t, defs, map[string]any{
		"endpoint":         fake.URL(),
		"flavor_name":      "m1.small",
		"floating_ip":      "yes",
		"floating_ip_pool": "public",
	})
	authData := fmt.Sprintf(`resource:
  - type: nova
    endpoint: %s
    auth_data:
      username: %s
      password: %s
`, fake.URL(), fake.User(), fake.Password())
	received := func() map[string]sent {
		out := map[string]sent{}
		for _, s := range fake.Servers() {
			out[s.Metadata[nova.MetaNodeID]] = sent{userData: s.UserData, infraID: s.Metadata[nova.MetaInfraID],
				nodeID: s.Metadata[nova.MetaNodeID], nodeName: s.Metadata[nova.MetaNodeName]}
			want := map[string]string{"ping-receiver": "mypingreceiver", "ping-sender": "mypingsender"}[s.Metadata[nova.MetaNodeName]]
			if s.Name != want {
				t.Errorf("server %s: name %q, want the tutorial's server_name %q", s.ID, s.Name, want)
			}
			if s.FloatingIP == "" {
				t.Errorf("server %s has no floating IP (the tutorial asks for one)", s.ID)
			}
		}
		return out
	}
	m, id := buildTutorial(t, dir, defs, authData, received)
	// The address in the report is the floating IP (what getip gives).
	rep, _ := m.Get(t.Context(), id)
	var fips, addrs []string
	for _, f := range fake.FloatingIPs() {
		fips = append(fips, fmt.Sprint(f["floating_ip_address"]))
	}
	for _, nr := range rep {
		for _, ir := range nr.Instances {
			addrs = append(addrs, ir.ResourceAddress)
		}
	}
	sort.Strings(fips)
	sort.Strings(addrs)
	if fmt.Sprint(fips) != fmt.Sprint(addrs) {
		t.Errorf("report addresses %v, want the floating IPs %v", addrs, fips)
	}
	if n := fake.Created(); n != 2 {
		t.Errorf("the fake made %d servers, want 2", n)
	}
	tearDown(t, m, id)
	if n := fake.Live(); n != 0 {
		t.Errorf("%d servers left at the fake after teardown", n)
	}
	if f := fake.FloatingIPs(); len(f) != 0 {
		t.Errorf("floating IPs left at the fake after teardown: %v", f)
	}
}
