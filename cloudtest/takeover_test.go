package cloudtest

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/occopus-go/occopus"
	"github.com/occopus-go/occopus/descr"
	"github.com/occopus-go/occopus/resource"
	"github.com/occopus-go/occopus/resource/ec2"
	"github.com/occopus-go/occopus/resource/ec2/ec2fake"
	"github.com/occopus-go/occopus/resource/nova"
	"github.com/occopus-go/occopus/resource/nova/novafake"
)

// takeoverCloud is one backend whose instances, made by another
// orchestrator, are taken over and must come out labelled as ours.
type takeoverCloud struct {
	name, tutorial, infraFile string
	// setup starts the fake and returns the placeholders, the auth_data,
	// a function making an instance as Occopus did (no occopus labels),
	// one reading the labels the fake holds on an instance, and the auth
	// entry for a handler of our own.
	setup func(t *testing.T) (placeholders map[string]any, authData string, launch func(node string) string,
		labels func(id string) map[string]string, auth map[string]any, live func() int, newHandler func(resource.Config) (resource.Handler, error))
	keys [4]string // infra id, node id, node name, store id
}

var takeoverClouds = []takeoverCloud{
	{
		name: "ec2", tutorial: "ec2-ping", infraFile: "infra-ec2-ping.yaml",
		keys: [4]string{ec2.TagInfraID, ec2.TagNodeID, ec2.TagNodeName, ec2.TagStoreID},
		setup: func(t *testing.T) (map[string]any, string, func(string) string, func(string) map[string]string, map[string]any, func() int, func(resource.Config) (resource.Handler, error)) {
			fake := ec2fake.New(ec2fake.Options{})
			t.Cleanup(fake.Close)
			ph := map[string]any{"endpoint": fake.URL(), "regionname": fake.Region(), "image_id": "ami-0123456789abcdef0"}
			auth := map[string]any{"accesskey": fake.AccessKey(), "secretkey": "fake-secret-key-0123456789"}
			ad := fmt.Sprintf("resource:\n  - type: ec2\n    endpoint: %s\n    auth_data:\n      accesskey: %s\n      secretkey: %s\n", fake.URL(), auth["accesskey"], auth["secretkey"])
			launch := func(node string) string {
				return fake.Launch("ami-0123456789abcdef0", "m1.small", map[string]string{"Name": node + "-by-occopus"})
			}
			labels := func(id string) map[string]string {
				in, ok := fake.Instance(id)
				if !ok {
					t.Fatalf("the fake has no instance %s", id)
				}
				return in.Tags
			}
			return ph, ad, launch, labels, auth, fake.Live, ec2.New
		},
	},
	{
		name: "nova", tutorial: "nova-ping", infraFile: "infra-nova-ping.yaml",
		keys: [4]string{nova.MetaInfraID, nova.MetaNodeID, nova.MetaNodeName, nova.MetaStoreID},
		setup: func(t *testing.T) (map[string]any, string, func(string) string, func(string) map[string]string, map[string]any, func() int, func(resource.Config) (resource.Handler, error)) {
			fake := novafake.New(novafake.Options{})
			t.Cleanup(fake.Close)
			ph := map[string]any{"endpoint": fake.URL(), "flavor_name": "m1.small", "floating_ip": "no", "floating_ip_pool": "public"}
			auth := map[string]any{"username": fake.User(), "password": fake.Password()}
			ad := fmt.Sprintf("resource:\n  - type: nova\n    endpoint: %s\n    auth_data:\n      username: %s\n      password: %s\n", fake.URL(), fake.User(), fake.Password())
			launch := func(node string) string {
				return fake.Launch(node+"-by-occopus", map[string]string{"made_by": "occopus-1.10"})
			}
			labels := func(id string) map[string]string {
				for _, s := range fake.Servers() {
					if s.ID == id {
						return s.Metadata
					}
				}
				t.Fatalf("the fake has no server %s", id)
				return nil
			}
			return ph, ad, launch, labels, auth, fake.Live, nova.New
		},
	},
}

// TestTakeoverLabels: instances another orchestrator made on EC2 / Nova
// carry none of occopus's labels; Take (not dry) labels them like our own,
// so that the backend's Find and sweep see them as this store's, and the
// sweep for orphans counts none. A dry Take changes nothing at the fake.
func TestTakeoverLabels(t *testing.T) {
	for _, c := range takeoverClouds {
		t.Run(c.name, func(t *testing.T) {
			dir := tutorial(t, c.tutorial)
			ph, authData, launch, labels, auth, live, newHandler := c.setup(t)
			defs, err := descr.LoadNodeDefs(filepath.Join(dir, "nodes", "node_definitions.yaml"), descr.LoadOptions{})
			if err != nil {
				t.Fatal(err)
			}
			replacePlaceholders(t, defs, ph)
			m := newManager(t, authData, managerOptions{})
			ctx := t.Context()
			if err := m.ImportNodeDefs(ctx, defs); err != nil {
				t.Fatal(err)
			}
			in, err := descr.LoadInfra(filepath.Join(dir, c.infraFile), descr.LoadOptions{})
			if err != nil {
				t.Fatal(err)
			}
			const infraID = "6f1c2a9e-3b7d-4e21-9a55-0c8e7d4b1f30"
			tk := occopus.Takeover{ID: infraID, Desc: in}
			ids := map[string]string{} // node id -> backend id
			var res map[string]any
			for i, n := range in.Nodes {
				res = defs.Impls[n.Type][0].Section("resource")
				nodeID := fmt.Sprintf("node-%d-of-occopus", i)
				ids[nodeID] = launch(n.Name)
				tk.Instances = append(tk.Instances, occopus.TakeoverInstance{NodeName: n.Name, NodeID: nodeID, Resource: res, BackendID: ids[nodeID]})
			}

			before := map[string]string{}
			for _, id := range ids {
				before[id] = fmt.Sprint(labels(id))
			}
			rep, err := m.Take(ctx, tk, true)
			if err != nil {
				t.Fatalf("dry take: %v", err)
			}
			if len(rep.Adopted) != len(ids) {
				t.Fatalf("dry take adopted %d instances, want %d: %+v", len(rep.Adopted), len(ids), rep)
			}
			if !strings.Contains(strings.Join(rep.Notes, "\n"), "would be labelled") {
				t.Errorf("dry take does not say it would label: %q", rep.Notes)
			}
			for _, id := range ids {
				if got := fmt.Sprint(labels(id)); got != before[id] {
					t.Errorf("dry take changed the labels of %s: %s, was %s", id, got, before[id])
				}
			}

			rep, err = m.Take(ctx, tk, false)
			if err != nil {
				t.Fatalf("take: %v", err)
			}
			for _, a := range rep.Adopted {
				if !a.Labelled {
					t.Errorf("instance %s reported not labelled; notes %q", a.NodeID, rep.Notes)
				}
			}
			orph, err := m.Orphans(ctx, false)
			if err != nil {
				t.Fatal(err)
			}
			if orph.StoreID == "" || len(orph.Orphans) != 0 || len(orph.Failed) != 0 {
				t.Errorf("sweep after take: store %q, orphans %+v, failed %+v; want a store id and none", orph.StoreID, orph.Orphans, orph.Failed)
			}
			for _, tin := range tk.Instances {
				l := labels(tin.BackendID)
				want := [4]string{infraID, tin.NodeID, tin.NodeName, orph.StoreID}
				for i, k := range c.keys {
					if l[k] != want[i] {
						t.Errorf("instance %s: label %s = %q, want %q (all: %v)", tin.BackendID, k, l[k], want[i], l)
					}
				}
			}

			// The backend's own view: Find and ListAll see them as ours.
			h, err := newHandler(resource.Config{Resource: res, Auth: auth})
			if err != nil {
				t.Fatal(err)
			}
			if cl, ok := h.(resource.Closer); ok {
				defer cl.Close()
			}
			for _, tin := range tk.Instances {
				hd, ok, err := h.(resource.Finder).Find(ctx, infraID, tin.NodeID)
				if err != nil || !ok || hd.ID != tin.BackendID {
					t.Errorf("Find(%s, %s) = %q, %v, %v; want %s", infraID, tin.NodeID, hd.ID, ok, err, tin.BackendID)
				}
			}
			all, err := h.(resource.Sweeper).ListAll(ctx)
			if err != nil {
				t.Fatal(err)
			}
			seen := 0
			for _, o := range all {
				if o.InfraID == infraID && o.StoreID == orph.StoreID && ids[o.NodeID] == o.Handle.ID {
					seen++
				}
			}
			if seen != len(ids) {
				t.Errorf("ListAll sees %d of the %d taken-over instances as this store's: %+v", seen, len(ids), all)
			}

			if _, err := m.TearDown(ctx, infraID); err != nil {
				t.Fatalf("teardown: %v", err)
			}
			if n := live(); n != 0 {
				t.Errorf("%d instances left at the fake after teardown", n)
			}
		})
	}
}
