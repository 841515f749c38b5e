package storetest

import (
	"encoding/json"
	"fmt"
	"slices"
	"testing"

	"github.com/occopus-go/occopus/store"
)

// testPutInstances: PutInstances writes every record and event or none.
func testPutInstances(t *testing.T, s store.Store) {
	ctx := t.Context()
	must(t, s.PutInstances(ctx, nil, nil)) // a no-op
	must(t, s.CreateInfra(ctx, infra("x", t0)))
	must(t, s.CreateInfra(ctx, infra("y", t0)))

	// An existing record is replaced like PutInstance replaces it and keeps
	// its place among records of the same creation time.
	must(t, s.PutInstance(ctx, instance("x", "a", t0)))
	var ins []store.Instance
	var evs []store.Event
	for i := range 50 {
		in := instance("x", fmt.Sprintf("b%02d", i), t1)
		in.Resource, in.Owner = json.RawMessage(`{"type":"docker"}`), "host/1/2"
		ins = append(ins, in)
		evs = append(evs, store.Event{Time: t1, InfraID: "x", NodeName: "n", NodeID: in.NodeID, Kind: "instance.state", To: store.StateCreating})
	}
	repl := instance("x", "a", t0)
	repl.State = store.StatePending
	ins = append(ins, repl, instance("y", "c", t2))
	evs = append(evs, store.Event{Time: t2, InfraID: "y", Kind: "k"})
	must(t, s.PutInstances(ctx, ins, evs))

	got, err := s.Instances(ctx, "x")
	must(t, err)
	if len(got) != 51 {
		t.Fatalf("x has %d instances, want 51", len(got))
	}
	equal(t, "replaced by PutInstances", got[0], repl, normInstance)
	for i, in := range got[1:] {
		equal(t, "batch instance", in, ins[i], normInstance)
	}
	y, err := s.Instance(ctx, "y", "c")
	must(t, err)
	equal(t, "other infra's", y, instance("y", "c", t2), normInstance)
	all, err := s.Events(ctx, "", 0, 0)
	must(t, err)
	if len(all) != len(evs) {
		t.Fatalf("%d events, want %d", len(all), len(evs))
	}
	for i, e := range all {
		if e.NodeID != evs[i].NodeID || e.InfraID != evs[i].InfraID || e.Kind != evs[i].Kind || (i > 0 && e.Seq <= all[i-1].Seq) {
			t.Fatalf("event %d = %+v, want %+v in order", i, e, evs[i])
		}
	}
	xe, err := s.Events(ctx, "x", 0, 0)
	must(t, err)
	if len(xe) != 50 {
		t.Errorf("x has %d events, want 50", len(xe))
	}

	// A missing infrastructure anywhere in the batch: ErrNotFound, and
	// nothing of the batch is written.
	bad := []store.Instance{instance("x", "new1", t2), instance("nope", "i", t2), instance("y", "new2", t2)}
	wantErr(t, s.PutInstances(ctx, bad, []store.Event{{InfraID: "x", Kind: "must-not-stay"}}), store.ErrNotFound)
	for _, in := range []store.Instance{bad[0], bad[2]} {
		_, err := s.Instance(ctx, in.InfraID, in.NodeID)
		wantErr(t, err, store.ErrNotFound)
	}
	after, err := s.Events(ctx, "", 0, 0)
	must(t, err)
	if len(after) != len(all) || slices.ContainsFunc(after, func(e store.Event) bool { return e.Kind == "must-not-stay" }) {
		t.Errorf("a refused batch left events: %d, want %d", len(after), len(all))
	}
	// Invalid JSON is refused before anything is written.
	broken := instance("x", "j", t2)
	broken.Resource = json.RawMessage(`{`)
	if err := s.PutInstances(ctx, []store.Instance{instance("x", "k", t2), broken}, nil); err == nil {
		t.Error("PutInstances took a resource of invalid JSON")
	}
	if _, err := s.Instance(ctx, "x", "k"); err == nil {
		t.Error("a refused batch left a record")
	}
}

// testRevision: for a store.Revisioned, every write through the store
// moves the revision up at once (read-your-writes), and it never goes
// back. (It may move without a write of its own: sqlite sees its own
// commits once more, later, as another connection's.)
func testRevision(t *testing.T, s store.Store) {
	r, ok := s.(store.Revisioned)
	if !ok {
		t.Skip("the store is not store.Revisioned")
	}
	ctx := t.Context()
	rev := func() uint64 {
		t.Helper()
		v, err := r.Revision(ctx)
		must(t, err)
		return v
	}
	last := rev()
	for _, w := range []struct {
		name string
		fn   func() error
	}{
		{"CreateInfra", func() error { return s.CreateInfra(ctx, infra("x", t0)) }},
		{"PutInstance", func() error { return s.PutInstance(ctx, instance("x", "a", t0)) }},
		{"PutInstances", func() error { return s.PutInstances(ctx, []store.Instance{instance("x", "b", t1)}, nil) }},
		{"UpdateTargets", func() error { return s.UpdateTargets(ctx, "x", map[string]int{"n": 3}, nil) }},
		{"SetPassStatus", func() error { return s.SetPassStatus(ctx, "x", store.PassStatus{Result: store.PassOK, At: t1}) }},
		{"AddScaleRequest", func() error {
			_, err := s.AddScaleRequest(ctx, store.ScaleRequest{InfraID: "x", NodeName: "n", Delta: 1})
			return err
		}},
		{"DeleteInstance", func() error { return s.DeleteInstance(ctx, "x", "a") }},
		{"DeleteInfra", func() error { return s.DeleteInfra(ctx, "x") }},
	} {
		must(t, w.fn())
		now := rev()
		if now <= last {
			t.Errorf("after %s the revision is %d, was %d: want it larger", w.name, now, last)
		}
		last = now
		if _, err := s.Infras(ctx); err != nil {
			t.Fatal(err)
		}
		if again := rev(); again < now {
			t.Errorf("the revision went back after %s: %d -> %d", w.name, now, again)
		}
	}
}
