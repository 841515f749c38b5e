package occopus

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/occopus-go/occopus/descr"
	"github.com/occopus-go/occopus/resource"
	"github.com/occopus-go/occopus/store/sqlite"
)

// sweepable is an in-memory backend that lists everything it holds in a
// zone (ListAll), registered like a real plugin.
type sweepable struct{ zone string }

type sweepableRes struct {
	zone, infra, node, name, store string
}

var (
	sweepMu  sync.Mutex
	sweepRes = map[string]sweepableRes{} // by backend id
	sweepSeq int
)

func init() {
	resource.Register(resource.Plugin{Type: "sweepable", Schema: descr.SchemaOf[brittleSettings](), New: func(cfg resource.Config) (resource.Handler, error) {
		var s brittleSettings
		if err := descr.Decode("resource", cfg.Resource, &s); err != nil {
			return nil, err
		}
		return sweepable{zone: s.Zone}, nil
	}})
}

func sweepPlant(zone, infra, node, storeID string) string {
	sweepMu.Lock()
	defer sweepMu.Unlock()
	sweepSeq++
	id := fmt.Sprint("sw-", sweepSeq)
	sweepRes[id] = sweepableRes{zone: zone, infra: infra, node: node, name: "n", store: storeID}
	return id
}

func sweepHas(id string) bool {
	sweepMu.Lock()
	defer sweepMu.Unlock()
	_, ok := sweepRes[id]
	return ok
}

func (s sweepable) Create(_ context.Context, spec resource.Spec) (resource.Handle, error) {
	sweepMu.Lock()
	defer sweepMu.Unlock()
	for id, r := range sweepRes {
		if r.node == spec.NodeID {
			return resource.Handle{ID: id}, nil
		}
	}
	sweepSeq++
	id := fmt.Sprint("sw-", sweepSeq)
	sweepRes[id] = sweepableRes{zone: s.zone, infra: spec.InfraID, node: spec.NodeID, name: spec.NodeName, store: spec.StoreID}
	return resource.Handle{ID: id}, nil
}

func (sweepable) Destroy(_ context.Context, h resource.Handle) error {
	sweepMu.Lock()
	defer sweepMu.Unlock()
	delete(sweepRes, h.ID)
	return nil
}

func (sweepable) State(_ context.Context, h resource.Handle) (resource.State, error) {
	if !sweepHas(h.ID) {
		return resource.StateUnknown, resource.ErrNotFound
	}
	return resource.StateRunning, nil
}

func (sweepable) Addresses(context.Context, resource.Handle) (resource.Addresses, error) {
	return resource.Addresses{Public: "127.0.0.1"}, nil
}

func (s sweepable) ListAll(context.Context) ([]resource.Owned, error) {
	sweepMu.Lock()
	defer sweepMu.Unlock()
	var out []resource.Owned
	for id, r := range sweepRes {
		if r.zone == s.zone {
			out = append(out, resource.Owned{Handle: resource.Handle{ID: id}, InfraID: r.infra, NodeID: r.node, NodeName: r.name, StoreID: r.store})
		}
	}
	return out, nil
}

var _ resource.Sweeper = sweepable{}

// clock is a settable Options.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// sweepManager is a Manager over a fresh store with one built
// infrastructure in a zone of its own.
func sweepManager(t *testing.T, path string, clk *clock, orphans OrphanOptions) (m *Manager, zone, infra, storeID string) {
	t.Helper()
	st, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	m, err = New(Options{Store: st, Home: t.TempDir(), Now: clk.now, Orphans: orphans})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	storeID, _ = st.ID(t.Context())
	zone = "z-" + uuid.NewString()[:8]
	root, _ := descr.Parse("nodes.yaml", []byte("'node_def:sw':\n  - resource: {type: sweepable, zone: "+zone+"}\n    health_check: {ping: false}\n"), descr.LoadOptions{})
	defs, err := descr.DecodeNodeDefs("nodes.yaml", root)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.ImportNodeDefs(t.Context(), defs); err != nil {
		t.Fatal(err)
	}
	in, err := descr.ParseInfra("infra.yaml", []byte("infra_name: sw\nnodes:\n  - {name: a, type: sw}\n"), descr.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	res, err := m.Build(t.Context(), in, "")
	if err != nil {
		t.Fatal(err)
	}
	return m, zone, res.ID, storeID
}

func states(rep *OrphanReport) map[string]Orphan {
	out := map[string]Orphan{}
	for _, o := range rep.Orphans {
		out[o.ID] = o
	}
	return out
}

// The Manager's sweep over time: a known instance is never reported; this
// store's orphans (unknown node of a known infrastructure, unknown
// infrastructure) are found, and removed only once seen for the grace
// period; a foreign one is reported and never removed; report mode never
// removes; a restart only delays a removal.
func TestOrphansGrace(t *testing.T) {
	clk := &clock{t: time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)}
	dir := t.TempDir()
	m, zone, infra, storeID := sweepManager(t, filepath.Join(dir, "occopus.db"), clk, OrphanOptions{Grace: 10 * time.Minute})
	ctx := t.Context()
	start := clk.now()
	ids := map[string]string{
		"unknown node":  sweepPlant(zone, infra, "lost", storeID),
		"unknown infra": sweepPlant(zone, uuid.NewString(), "n1", storeID),
		"foreign":       sweepPlant(zone, uuid.NewString(), "n2", uuid.NewString()),
	}
	steps := []struct {
		name    string
		advance time.Duration
		remove  bool
		// want: state per planted resource ("" = not reported), and
		// whether it is still at the backend afterwards.
		want      map[string]string
		firstSeen time.Time
	}{
		{"first sight: inside the grace", 0, true,
			map[string]string{"unknown node": OrphanFound, "unknown infra": OrphanFound, "foreign": OrphanForeign}, start},
		{"report mode after the grace: nothing removed", 10 * time.Minute, false,
			map[string]string{"unknown node": OrphanFound, "unknown infra": OrphanFound, "foreign": OrphanForeign}, start},
		{"remove after the grace", time.Second, true,
			map[string]string{"unknown node": OrphanRemoved, "unknown infra": OrphanRemoved, "foreign": OrphanForeign}, start},
		{"gone, the foreign one stays", 10 * time.Minute, true,
			map[string]string{"foreign": OrphanForeign}, start},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			clk.add(st.advance)
			rep, err := m.Orphans(ctx, st.remove)
			if err != nil {
				t.Fatal(err)
			}
			if rep.StoreID != storeID {
				t.Errorf("store id %q, want %q", rep.StoreID, storeID)
			}
			got := states(rep)
			if len(got) != len(st.want) {
				t.Errorf("%d orphans, want %d: %+v", len(got), len(st.want), rep.Orphans)
			}
			for name, id := range ids {
				o, ok := got[id]
				if st.want[name] == "" {
					if ok {
						t.Errorf("%s reported: %+v", name, o)
					}
					continue
				}
				if !ok || o.State != st.want[name] || !o.FirstSeen.Equal(st.firstSeen) {
					t.Errorf("%s: %+v (reported %v), want %s first seen %s", name, o, ok, st.want[name], st.firstSeen)
				}
				if sweepHas(id) == (st.want[name] == OrphanRemoved) {
					t.Errorf("%s: at the backend %v after state %s", name, sweepHas(id), st.want[name])
				}
			}
			for _, o := range rep.Orphans {
				if o.InfraID == infra && o.NodeID != "lost" {
					t.Errorf("a recorded instance is reported: %+v", o)
				}
			}
		})
	}
	if !sweepHas(ids["foreign"]) {
		t.Fatal("the foreign resource was removed")
	}

	// A restart: the new Manager has seen nothing yet, so an orphan that
	// the first one had seen long ago waits the whole grace again.
	late := sweepPlant(zone, uuid.NewString(), "n3", storeID)
	if rep, err := m.Orphans(ctx, true); err != nil || states(rep)[late].State != OrphanFound {
		t.Fatalf("first Manager: %+v, %v", rep, err)
	}
	clk.add(9 * time.Minute)
	m2, err := New(Options{Store: m.Store(), Home: t.TempDir(), Now: clk.now, Orphans: OrphanOptions{Grace: 10 * time.Minute}})
	if err != nil {
		t.Fatal(err)
	}
	defer m2.Close()
	clk.add(2 * time.Minute) // 11 minutes after the first Manager saw it
	rep, err := m2.Orphans(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	if o := states(rep)[late]; o.State != OrphanFound || !o.FirstSeen.Equal(clk.now()) || !sweepHas(late) {
		t.Errorf("after a restart: %+v, at the backend %v; want found, first seen now, kept", o, sweepHas(late))
	}
	clk.add(10 * time.Minute)
	if rep, err := m2.Orphans(ctx, true); err != nil || states(rep)[late].State != OrphanRemoved || sweepHas(late) {
		t.Errorf("after the restarted Manager's grace: %+v, %v", states(rep)[late], err)
	}
}

// A negative grace (`occopus orphans --remove`) removes this store's
// orphans at first sight, and still never a foreign one.
func TestOrphansNoGrace(t *testing.T) {
	clk := &clock{t: time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)}
	m, zone, _, storeID := sweepManager(t, filepath.Join(t.TempDir(), "occopus.db"), clk, OrphanOptions{Grace: -1})
	ours := sweepPlant(zone, uuid.NewString(), "n1", storeID)
	foreign := sweepPlant(zone, uuid.NewString(), "n2", "")
	rep, err := m.Orphans(t.Context(), true)
	if err != nil {
		t.Fatal(err)
	}
	got := states(rep)
	if got[ours].State != OrphanRemoved || sweepHas(ours) {
		t.Errorf("ours: %+v, at the backend %v", got[ours], sweepHas(ours))
	}
	if got[foreign].State != OrphanForeign || !sweepHas(foreign) {
		t.Errorf("unlabelled: %+v, at the backend %v", got[foreign], sweepHas(foreign))
	}
	if rep.Count(OrphanRemoved) != 1 || rep.Count(OrphanForeign) != 1 || rep.Count(OrphanFound) != 0 {
		t.Errorf("counts found %d removed %d foreign %d", rep.Count(OrphanFound), rep.Count(OrphanRemoved), rep.Count(OrphanForeign))
	}
	evs, _ := m.Events(t.Context(), got[ours].InfraID, 0, 0)
	if len(evs) != 1 || evs[0].Kind != "orphan.removed" {
		t.Errorf("events %+v, want orphan.removed", evs)
	}
}

func TestOrphanOptions(t *testing.T) {
	tests := []struct {
		in, want OrphanOptions
	}{
		{OrphanOptions{}, OrphanOptions{Sweep: SweepRemove, Grace: DefaultOrphanGrace, Interval: DefaultOrphanInterval}},
		{OrphanOptions{Sweep: SweepOff, Grace: -1, Interval: time.Minute}, OrphanOptions{Sweep: SweepOff, Grace: -1, Interval: time.Minute}},
		{OrphanOptions{Sweep: SweepReport, Grace: time.Second}, OrphanOptions{Sweep: SweepReport, Grace: time.Second, Interval: DefaultOrphanInterval}},
	}
	for _, tc := range tests {
		if got := tc.in.withDefaults(); got != tc.want {
			t.Errorf("%+v.withDefaults() = %+v, want %+v", tc.in, got, tc.want)
		}
	}
	for mode, ok := range map[string]bool{"": true, "remove": true, "report": true, "off": true, "delete": false} {
		if err := CheckSweep(mode); (err == nil) != ok {
			t.Errorf("CheckSweep(%q) = %v", mode, err)
		}
	}
	if _, err := (&Manager{}).Orphans(t.Context(), false); err != ErrNoStore {
		t.Errorf("Orphans without a store: %v", err)
	}
}
