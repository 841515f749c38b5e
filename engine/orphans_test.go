package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/occopus-go/occopus/descr"
	"github.com/occopus-go/occopus/resource"
	"github.com/occopus-go/occopus/store"
)

// fakeLister is the fake backend without ListAll: a third party's
// backend that can list one infrastructure only.
type fakeLister struct{ h *fakeHandler }

func (l fakeLister) Create(ctx context.Context, s resource.Spec) (resource.Handle, error) {
	return l.h.Create(ctx, s)
}
func (l fakeLister) Destroy(ctx context.Context, hd resource.Handle) error {
	return l.h.Destroy(ctx, hd)
}
func (l fakeLister) State(ctx context.Context, hd resource.Handle) (resource.State, error) {
	return l.h.State(ctx, hd)
}
func (l fakeLister) Addresses(ctx context.Context, hd resource.Handle) (resource.Addresses, error) {
	return l.h.Addresses(ctx, hd)
}
func (l fakeLister) List(ctx context.Context, infraID string) ([]resource.Owned, error) {
	cloud.mu.Lock()
	hook := cloud.onListAll
	cloud.mu.Unlock()
	if hook != nil {
		hook()
	}
	all, err := l.h.List(ctx, infraID)
	cloud.mu.Lock()
	defer cloud.mu.Unlock()
	var out []resource.Owned
	for _, o := range all { // its zone only, as ListAll
		if in, ok := cloud.instances[o.Handle.ID]; ok && in.zone == l.h.zone {
			out = append(out, o)
		}
	}
	return out, err
}

var _ resource.Lister = fakeLister{}

func init() {
	resource.Register(resource.Plugin{Type: "fakelister", Schema: descr.SchemaOf[fakeSettings](), New: func(cfg resource.Config) (resource.Handler, error) {
		var s fakeSettings
		if err := descr.Decode("resource", cfg.Resource, &s); err != nil {
			return nil, err
		}
		return fakeLister{&fakeHandler{zone: s.Zone}}, nil
	}})
}

// plant makes a resource at the fake behind the engine's back, labelled
// as the engine labels its own.
func plant(zone, infra, node, name, storeID string) string {
	cloud.mu.Lock()
	defer cloud.mu.Unlock()
	cloud.next++
	id := fmt.Sprintf("fake-%d", cloud.next)
	cloud.instances[id] = &fakeInstance{id: id, infra: infra, node: node, name: name, zone: zone, store: storeID, state: resource.StateRunning}
	return id
}

func (c *fakeCloud) has(id string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.instances[id]
	return ok
}

// sweepWorld is a world with one built infrastructure whose node type
// lives in a zone of its own.
func sweepWorld(t *testing.T, typ string) (w *world, zone, infra, storeID string) {
	t.Helper()
	w = newWorld(t, Options{})
	zone = "sweep-" + uuid.NewString()[:8]
	w.importDefs(fmt.Sprintf("'node_def:db':\n  - resource: {type: %s, zone: %s}\n    health_check: {ping: false}\n", typ, zone))
	infra = w.submit("infra_name: s\nnodes:\n  - {name: db, type: db}\n")
	if _, err := w.eng.Build(t.Context(), infra, BuildOptions{}); err != nil {
		t.Fatal(err)
	}
	storeID = w.eng.StoreID(t.Context())
	if _, err := uuid.Parse(storeID); err != nil {
		t.Fatalf("StoreID = %q: %v", storeID, err)
	}
	return w, zone, infra, storeID
}

func TestCreateLabelsTheStoreID(t *testing.T) {
	w, zone, infra, storeID := sweepWorld(t, "fake")
	ins, err := w.st.Instances(t.Context(), infra)
	if err != nil || len(ins) != 1 {
		t.Fatalf("instances %v, %v", ins, err)
	}
	var hd resource.Handle
	_ = json.Unmarshal(ins[0].Handle, &hd)
	cloud.mu.Lock()
	in := *cloud.instances[hd.ID]
	cloud.mu.Unlock()
	if in.store != storeID || in.zone != zone {
		t.Fatalf("instance made with store id %q in zone %q; want %q, %q", in.store, in.zone, storeID, zone)
	}
}

// The sweep: what the store records is kept; a node id the store does
// not record, in a known or an unknown infrastructure, labelled with this
// store's id, is an orphan; another store's or none is foreign; a
// resource made (record first) while the backends are listed is not
// taken. Both with a backend that lists everything and with one that
// lists per infrastructure.
func TestFindOrphans(t *testing.T) {
	for _, typ := range []string{"fake", "fakelister"} {
		t.Run(typ, func(t *testing.T) {
			w, zone, infra, storeID := sweepWorld(t, typ)
			ctx := t.Context()
			lostInfra := uuid.NewString()
			ids := map[string]string{
				"unknown node":     plant(zone, infra, "lost-node", "db", storeID),
				"unknown infra":    plant(zone, lostInfra, "n1", "web", storeID),
				"foreign":          plant(zone, lostInfra, "n2", "web", "another-store"),
				"no store id":      plant(zone, infra, "old-node", "db", ""),
				"foreign, known":   plant(zone, infra, "their-node", "db", "another-store"),
				"elsewhere (zone)": plant("zone-nobody-asks", uuid.NewString(), "n3", "x", storeID),
			}
			// Made while the sweep lists (ListAll, or List of the first
			// infrastructure): the record first, then the backend's
			// resource, as the engine creates.
			var during string
			cloud.mu.Lock()
			cloud.onListAll = func() {
				cloud.onListAll = nil
				res, _ := json.Marshal(map[string]any{"type": typ, "zone": zone})
				if err := w.st.PutInstance(ctx, store.Instance{InfraID: infra, NodeID: "in-flight", NodeName: "db", State: store.StateCreating,
					Backend: typ, Resource: res, CreatedAt: time.Now()}); err != nil {
					t.Error(err)
				}
				during = plant(zone, infra, "in-flight", "db", storeID)
			}
			cloud.mu.Unlock()
			t.Cleanup(func() { cloud.mu.Lock(); cloud.onListAll = nil; cloud.mu.Unlock() })

			scan, err := w.eng.FindOrphans(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if scan.StoreID != storeID || scan.Configurations < 1 || len(scan.Failed) != 0 {
				t.Fatalf("scan: store %q, %d configurations, failed %v", scan.StoreID, scan.Configurations, scan.Failed)
			}
			got := map[string]Orphan{}
			for _, o := range scan.Orphans {
				got[o.ID] = o
			}
			tests := []struct {
				name           string
				found, foreign bool
				knownInfra     bool
			}{
				{"unknown node", true, false, true},
				{"unknown infra", typ == "fake", false, false}, // a Lister knows only known infrastructures
				{"foreign", typ == "fake", true, false},
				{"no store id", true, true, true},
				{"foreign, known", true, true, true},
				{"elsewhere (zone)", false, false, false},
			}
			for _, tc := range tests {
				o, ok := got[ids[tc.name]]
				if ok != tc.found {
					t.Errorf("%s: found %v, want %v (orphans %+v)", tc.name, ok, tc.found, scan.Orphans)
					continue
				}
				if ok && (o.Foreign != tc.foreign || o.KnownInfra != tc.knownInfra || o.Backend != typ) {
					t.Errorf("%s: %+v, want foreign %v, known infra %v, backend %s", tc.name, o, tc.foreign, tc.knownInfra, typ)
				}
			}
			want := 0
			for _, tc := range tests {
				if tc.found {
					want++
				}
			}
			if len(got) != want {
				t.Errorf("%d orphans, want %d: %+v", len(got), want, scan.Orphans)
			}
			if _, ok := got[during]; ok || during == "" {
				t.Errorf("the resource made during the sweep (%q) was taken for an orphan", during)
			}
			// The built instance is known: never listed.
			ins, _ := w.st.Instances(ctx, infra)
			for _, in := range ins {
				for _, o := range scan.Orphans {
					if o.NodeID == in.NodeID {
						t.Errorf("recorded instance %s reported as an orphan", in.NodeID)
					}
				}
			}
		})
	}
}

// RemoveOrphan removes this store's orphans through the backend, with an
// event, and refuses a foreign one or one the store records now.
func TestRemoveOrphan(t *testing.T) {
	w, zone, infra, storeID := sweepWorld(t, "fake")
	ctx := t.Context()
	lostInfra := uuid.NewString()
	ours := plant(zone, lostInfra, "n1", "web", storeID)
	foreign := plant(zone, lostInfra, "n2", "web", "another-store")
	adopted := plant(zone, infra, "adopted", "db", storeID)
	scan, err := w.eng.FindOrphans(ctx)
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]Orphan{}
	for _, o := range scan.Orphans {
		byID[o.ID] = o
	}
	// Recorded between the scan and the removal (say, adopted).
	res, _ := json.Marshal(map[string]any{"type": "fake", "zone": zone})
	if err := w.st.PutInstance(ctx, store.Instance{InfraID: infra, NodeID: "adopted", NodeName: "db", State: store.StateReady, Backend: "fake", Resource: res}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		id      string
		removed bool
	}{
		{"this store's", ours, true},
		{"another store's", foreign, false},
		{"recorded since", adopted, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o, ok := byID[tc.id]
			if !ok {
				t.Fatalf("scan lacks %s: %+v", tc.id, scan.Orphans)
			}
			err := w.eng.RemoveOrphan(ctx, o)
			if tc.removed != (err == nil) || (!tc.removed && !errors.Is(err, ErrNotOrphan)) {
				t.Fatalf("RemoveOrphan: %v; want removed %v (else ErrNotOrphan)", err, tc.removed)
			}
			if cloud.has(tc.id) == tc.removed {
				t.Errorf("at the backend after RemoveOrphan: %v, want %v", cloud.has(tc.id), !tc.removed)
			}
		})
	}
	evs, err := w.st.Events(ctx, lostInfra, 0, 0)
	if err != nil || len(evs) != 1 || evs[0].Kind != "orphan.removed" || evs[0].NodeID != "n1" || !strings.Contains(evs[0].Message, ours) {
		t.Fatalf("events of the unknown infrastructure: %+v, %v; want one orphan.removed naming %s", evs, err, ours)
	}
	// Gone already (another sweep removed it): success.
	if err := w.eng.RemoveOrphan(ctx, byID[ours]); err != nil {
		t.Errorf("RemoveOrphan of one already gone: %v", err)
	}
}

// A backend that cannot be listed, or whose listing panics, is named in
// Failed; the sweep goes on with the others.
func TestFindOrphansBackendFails(t *testing.T) {
	w, zone, _, storeID := sweepWorld(t, "fake")
	w.importDefs("'node_def:gone':\n  - resource: {type: fake, zone: unreachable}\n    health_check: {ping: false}\n" +
		"'node_def:buggy':\n  - resource: {type: fake, zone: list-panics}\n    health_check: {ping: false}\n")
	lost := plant(zone, uuid.NewString(), "n1", "web", storeID)
	scan, err := w.eng.FindOrphans(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var why []string
	for _, f := range scan.Failed {
		why = append(why, f.Backend+": "+f.Error)
	}
	if len(why) != 2 || !strings.Contains(strings.Join(why, "\n"), "fake: list every labelled resource: zone unreachable: endpoint gone") ||
		!strings.Contains(strings.Join(why, "\n"), "a bug in ListAll") {
		t.Errorf("failed %q, want the unreachable zone and the panic", why)
	}
	if len(scan.Orphans) != 1 || scan.Orphans[0].ID != lost {
		t.Errorf("orphans %+v, want %s", scan.Orphans, lost)
	}
}
