// Package storetest is the conformance suite every store.Store
// implementation must pass.
package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/occopus-go/occopus/store"
)

// Run runs the suite. open must return a new, empty store each call and
// arrange (with t.Cleanup) for it to be closed and discarded.
//
// Times are compared as instants (time.Time.Equal): a store need not keep
// the location or the monotonic reading, but must keep nanoseconds.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	t.Run("PruneEvents", func(t *testing.T) { RunPrune(t, open) })
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"NodeDefs", testNodeDefs},
		{"InfraCRUD", testInfraCRUD},
		{"InfraRoundTrip", testInfraRoundTrip},
		{"InfraOrigin", testInfraOrigin},
		{"InfrasOrder", testInfrasOrder},
		{"Instances", testInstances},
		{"InstanceRoundTrip", testInstanceRoundTrip},
		{"PutInstances", testPutInstances},
		{"Revision", testRevision},
		{"ScaleRequests", testScaleRequests},
		{"UpdateTargets", testUpdateTargets},
		{"InstanceOwner", testInstanceOwner},
		{"DeleteInfraCascades", testDeleteInfraCascades},
		{"Events", testEvents},
		{"EventsAfterLimit", testEventsAfterLimit},
		{"Concurrency", testConcurrency},
		{"ContextCanceled", testContextCanceled},
		{"Checker", testChecker},
		{"PassStatus", testPassStatus},
		{"PassStatusAtomic", testPassStatusAtomic},
		{"Notify", testNotify},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, open(t)) })
	}
}

// Fixed times with nanoseconds and a non-UTC zone, to catch truncation and
// zone mix-ups.
var (
	zone = time.FixedZone("CET", 3600)
	t0   = time.Date(2024, 3, 5, 10, 20, 30, 123456789, zone)
	t1   = t0.Add(time.Second + 1)
	t2   = t0.Add(2*time.Hour + 7)
)

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func wantErr(t *testing.T, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("got error %v, want %v", err, target)
	}
}

// norm makes stored and expected values comparable with reflect.DeepEqual:
// times as UTC instants without monotonic reading, empty JSON and maps as nil.
func normTime(t time.Time) time.Time { return t.Round(0).UTC() }

func normRaw(m json.RawMessage) json.RawMessage {
	if len(m) == 0 {
		return nil
	}
	return m
}

func normInfra(in store.Infra) store.Infra {
	in.Description = normRaw(in.Description)
	in.Notify = normRaw(in.Notify)
	in.LastPass.At = normTime(in.LastPass.At)
	if len(in.Targets) == 0 {
		in.Targets = nil
	}
	in.CreatedAt, in.UpdatedAt = normTime(in.CreatedAt), normTime(in.UpdatedAt)
	return in
}

func normInstance(in store.Instance) store.Instance {
	in.Resource, in.Handle = normRaw(in.Resource), normRaw(in.Handle)
	in.FailingSince = normTime(in.FailingSince)
	in.CreatedAt, in.UpdatedAt = normTime(in.CreatedAt), normTime(in.UpdatedAt)
	return in
}

func normEvent(e store.Event) store.Event {
	e.Data = normRaw(e.Data)
	e.Time = normTime(e.Time)
	return e
}

func normScale(r store.ScaleRequest) store.ScaleRequest {
	r.CreatedAt = normTime(r.CreatedAt)
	return r
}

func equal[T any](t *testing.T, what string, got, want T, norm func(T) T) {
	t.Helper()
	if g, w := norm(got), norm(want); !reflect.DeepEqual(g, w) {
		t.Fatalf("%s:\n got %+v\nwant %+v", what, g, w)
	}
}

func intp(i int) *int { return &i }

func infra(id string, created time.Time) store.Infra {
	return store.Infra{
		ID:          id,
		Name:        "name-" + id,
		Description: json.RawMessage(`{"nodes":[{"name":"n"}]}`),
		Targets:     map[string]int{"n": 1},
		CreatedAt:   created,
		UpdatedAt:   created,
	}
}

func instance(infraID, nodeID string, created time.Time) store.Instance {
	return store.Instance{
		InfraID: infraID, NodeID: nodeID, NodeName: "n", State: store.StateCreating,
		Backend: "docker", CreatedAt: created, UpdatedAt: created,
	}
}

func testNodeDefs(t *testing.T, s store.Store) {
	ctx := t.Context()
	types, err := s.NodeDefTypes(ctx)
	must(t, err)
	if len(types) != 0 {
		t.Fatalf("empty store has types %v", types)
	}
	_, err = s.NodeDef(ctx, "a")
	wantErr(t, err, store.ErrNotFound)

	must(t, s.PutNodeDefs(ctx, map[string]json.RawMessage{
		"b": json.RawMessage(`[{"type":"docker","v":1}]`),
		"a": json.RawMessage(`[{"type":"ec2"}]`),
	}))
	// Replacing b and adding c must leave a alone.
	must(t, s.PutNodeDefs(ctx, map[string]json.RawMessage{
		"b": json.RawMessage(`[{"type":"docker","v":2}]`),
		"c": json.RawMessage(`[]`),
	}))
	must(t, s.PutNodeDefs(ctx, map[string]json.RawMessage{})) // no-op

	want := map[string]string{"a": `[{"type":"ec2"}]`, "b": `[{"type":"docker","v":2}]`, "c": `[]`}
	for typ, def := range want {
		got, err := s.NodeDef(ctx, typ)
		must(t, err)
		if string(got) != def {
			t.Errorf("NodeDef(%s) = %s, want %s", typ, got, def)
		}
	}
	types, err = s.NodeDefTypes(ctx)
	must(t, err)
	if !slices.Equal(types, []string{"a", "b", "c"}) {
		t.Fatalf("NodeDefTypes = %v, want [a b c]", types)
	}
}

func testInfraCRUD(t *testing.T, s store.Store) {
	ctx := t.Context()
	_, err := s.Infra(ctx, "x")
	wantErr(t, err, store.ErrNotFound)
	wantErr(t, s.UpdateInfra(ctx, infra("x", t0)), store.ErrNotFound)
	wantErr(t, s.DeleteInfra(ctx, "x"), store.ErrNotFound)

	in := infra("x", t0)
	must(t, s.CreateInfra(ctx, in))
	dup := infra("x", t1)
	dup.Name = "other"
	wantErr(t, s.CreateInfra(ctx, dup), store.ErrExists)
	got, err := s.Infra(ctx, "x")
	must(t, err)
	equal(t, "infra after failed duplicate", got, in, normInfra)

	// UpdateInfra replaces name, description, targets and attached, keeps
	// CreatedAt and takes UpdatedAt from the argument.
	up := store.Infra{
		ID: "x", Name: "renamed", Description: json.RawMessage(`{"v":2}`),
		Targets: map[string]int{"n": 3, "m": 0}, Attached: true,
		CreatedAt: t2, UpdatedAt: t1,
	}
	must(t, s.UpdateInfra(ctx, up))
	got, err = s.Infra(ctx, "x")
	must(t, err)
	wantUp := up
	wantUp.CreatedAt = t0
	equal(t, "updated infra", got, wantUp, normInfra)

	// Without UpdatedAt the store stamps the current time.
	before := time.Now()
	up.UpdatedAt = time.Time{}
	up.Targets = nil
	must(t, s.UpdateInfra(ctx, up))
	got, err = s.Infra(ctx, "x")
	must(t, err)
	if got.UpdatedAt.Before(before.Add(-time.Second)) || got.UpdatedAt.After(time.Now().Add(time.Second)) {
		t.Errorf("UpdatedAt = %v, want about now", got.UpdatedAt)
	}
	if len(got.Targets) != 0 {
		t.Errorf("Targets = %v, want none", got.Targets)
	}

	must(t, s.DeleteInfra(ctx, "x"))
	_, err = s.Infra(ctx, "x")
	wantErr(t, err, store.ErrNotFound)
	wantErr(t, s.DeleteInfra(ctx, "x"), store.ErrNotFound)
	// The id is free again.
	must(t, s.CreateInfra(ctx, infra("x", t1)))
}

func testInfraRoundTrip(t *testing.T, s store.Store) {
	ctx := t.Context()
	now := time.Now() // with monotonic reading and local zone
	tests := []store.Infra{
		{
			ID: "full", Name: "Full infra", Description: json.RawMessage(`{"a":[1,2,{"b":null}],"ü":"\u00e9"}`),
			Targets: map[string]int{"lb": 1, "web": 5, "db": 0}, Attached: true, Origin: store.OriginNetwork,
			CreatedAt: t0, UpdatedAt: t2,
		},
		{ID: "minimal"},
		{ID: "now", Name: "n", CreatedAt: now, UpdatedAt: now},
		{ID: "weird id/with:chars ?&", Name: "", Description: json.RawMessage(`null`)},
		{ID: "utc", CreatedAt: time.Date(1999, 12, 31, 23, 59, 59, 999999999, time.UTC), UpdatedAt: time.Date(2100, 1, 1, 0, 0, 0, 1, time.UTC)},
	}
	for _, in := range tests {
		t.Run(in.ID, func(t *testing.T) {
			must(t, s.CreateInfra(ctx, in))
			got, err := s.Infra(ctx, in.ID)
			must(t, err)
			equal(t, "infra", got, in, normInfra)
		})
	}
}

func testInfrasOrder(t *testing.T, s store.Store) {
	ctx := t.Context()
	list, err := s.Infras(ctx)
	must(t, err)
	if len(list) != 0 {
		t.Fatalf("empty store lists %d infras", len(list))
	}
	// Created out of time order: listing follows CreatedAt, not insertion.
	for _, c := range []struct {
		id string
		at time.Time
	}{{"c", t2}, {"a", t0}, {"b", t1}} {
		must(t, s.CreateInfra(ctx, infra(c.id, c.at)))
	}
	list, err = s.Infras(ctx)
	must(t, err)
	var ids []string
	for _, in := range list {
		ids = append(ids, in.ID)
	}
	if !slices.Equal(ids, []string{"a", "b", "c"}) {
		t.Fatalf("Infras order = %v, want [a b c]", ids)
	}
	equal(t, "listed infra", list[1], infra("b", t1), normInfra)
}

func testInstances(t *testing.T, s store.Store) {
	ctx := t.Context()
	wantErr(t, s.PutInstance(ctx, instance("nope", "i", t0)), store.ErrNotFound)
	must(t, s.CreateInfra(ctx, infra("x", t0)))
	must(t, s.CreateInfra(ctx, infra("y", t0)))

	_, err := s.Instance(ctx, "x", "i1")
	wantErr(t, err, store.ErrNotFound)
	list, err := s.Instances(ctx, "x")
	must(t, err)
	if len(list) != 0 {
		t.Fatalf("no instances yet, got %d", len(list))
	}

	// Put out of creation order; Instances lists by CreatedAt.
	must(t, s.PutInstance(ctx, instance("x", "i3", t2)))
	must(t, s.PutInstance(ctx, instance("x", "i1", t0)))
	must(t, s.PutInstance(ctx, instance("x", "i2", t1)))
	must(t, s.PutInstance(ctx, instance("y", "i1", t0))) // same node id, other infra

	// Replace: every field follows the new record.
	repl := instance("x", "i1", t0)
	repl.State, repl.Address, repl.Handle, repl.UpdatedAt = store.StateReady, "10.0.0.1", json.RawMessage(`{"id":"c1"}`), t2
	must(t, s.PutInstance(ctx, repl))
	got, err := s.Instance(ctx, "x", "i1")
	must(t, err)
	equal(t, "replaced instance", got, repl, normInstance)
	// and back: fields may be cleared by a replace.
	must(t, s.PutInstance(ctx, instance("x", "i1", t0)))
	got, err = s.Instance(ctx, "x", "i1")
	must(t, err)
	equal(t, "re-replaced instance", got, instance("x", "i1", t0), normInstance)

	list, err = s.Instances(ctx, "x")
	must(t, err)
	var ids []string
	for _, in := range list {
		if in.InfraID != "x" {
			t.Errorf("Instances(x) returned one of %s", in.InfraID)
		}
		ids = append(ids, in.NodeID)
	}
	if !slices.Equal(ids, []string{"i1", "i2", "i3"}) {
		t.Fatalf("Instances order = %v, want [i1 i2 i3]", ids)
	}

	must(t, s.DeleteInstance(ctx, "x", "i2"))
	must(t, s.DeleteInstance(ctx, "x", "i2"))    // missing is fine
	must(t, s.DeleteInstance(ctx, "nope", "i2")) // also for a missing infra
	_, err = s.Instance(ctx, "x", "i2")
	wantErr(t, err, store.ErrNotFound)
	if _, err := s.Instance(ctx, "y", "i1"); err != nil {
		t.Fatalf("instance of other infra: %v", err)
	}
	list, err = s.Instances(ctx, "x")
	must(t, err)
	if len(list) != 2 {
		t.Fatalf("after delete %d instances, want 2", len(list))
	}
}

func testInstanceRoundTrip(t *testing.T, s store.Store) {
	ctx := t.Context()
	must(t, s.CreateInfra(ctx, infra("x", t0)))
	now := time.Now()
	tests := []struct {
		name string
		in   store.Instance
	}{
		{"full", store.Instance{
			InfraID: "x", NodeID: "full", NodeName: "web", State: store.StateFailed, Backend: "ec2", Impl: 3,
			Resource: json.RawMessage(`{"type":"ec2","image":"ami-1","tags":{"a":"b"}}`),
			Handle:   json.RawMessage(`{"instance_id":"i-0abc"}`),
			Address:  "203.0.113.7", PrivAddress: "10.1.2.3", FailingSince: t1,
			Error: "health: tcp 22: connection refused", CreatedAt: t0, UpdatedAt: t2,
		}},
		{"zero failing since", store.Instance{
			InfraID: "x", NodeID: "healthy", NodeName: "db", State: store.StateReady, Backend: "docker",
			Handle: json.RawMessage(`"c0ffee"`), CreatedAt: now, UpdatedAt: now,
		}},
		{"minimal", store.Instance{InfraID: "x", NodeID: "min"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			must(t, s.PutInstance(ctx, tc.in))
			got, err := s.Instance(ctx, tc.in.InfraID, tc.in.NodeID)
			must(t, err)
			equal(t, "instance", got, tc.in, normInstance)
			if tc.in.FailingSince.IsZero() && !got.FailingSince.IsZero() {
				t.Fatalf("FailingSince = %v, want zero", got.FailingSince)
			}
		})
	}
	list, err := s.Instances(ctx, "x")
	must(t, err)
	if len(list) != len(tests) {
		t.Fatalf("Instances: %d, want %d", len(list), len(tests))
	}
}

func testScaleRequests(t *testing.T, s store.Store) {
	ctx := t.Context()
	_, err := s.AddScaleRequest(ctx, store.ScaleRequest{InfraID: "nope", NodeName: "n", Delta: 1})
	wantErr(t, err, store.ErrNotFound)
	must(t, s.CreateInfra(ctx, infra("x", t0)))
	must(t, s.CreateInfra(ctx, infra("y", t0)))

	reqs := []store.ScaleRequest{
		{InfraID: "x", NodeName: "web", Delta: 1, CreatedAt: t0},
		{InfraID: "y", NodeName: "web", Delta: 1, CreatedAt: t0},
		{InfraID: "x", NodeName: "web", Delta: -1, Victim: "10.0.0.4", CreatedAt: t1},
		{InfraID: "x", NodeName: "db", Set: intp(0), CreatedAt: t2}, // scaleto 0 is not "no Set"
		{InfraID: "x", NodeName: "db", Set: intp(7)},
	}
	var last int64
	var added []store.ScaleRequest
	for _, r := range reqs {
		got, err := s.AddScaleRequest(ctx, r)
		must(t, err)
		if got.ID <= last {
			t.Fatalf("id %d after %d: ids must increase", got.ID, last)
		}
		last = got.ID
		r.ID = got.ID
		equal(t, "returned request", got, r, normScale)
		added = append(added, r)
	}
	list, err := s.ScaleRequests(ctx, "x")
	must(t, err)
	wantX := []store.ScaleRequest{added[0], added[2], added[3], added[4]}
	equal(t, "requests of x", list, wantX, func(l []store.ScaleRequest) []store.ScaleRequest {
		out := make([]store.ScaleRequest, len(l))
		for i, r := range l {
			out[i] = normScale(r)
		}
		return out
	})

	// Deleting consumed ones leaves the rest; ids of another infra and
	// unknown ids are ignored.
	must(t, s.DeleteScaleRequests(ctx, "x", []int64{added[0].ID, added[3].ID, added[1].ID, 999999}))
	must(t, s.DeleteScaleRequests(ctx, "x", nil))
	list, err = s.ScaleRequests(ctx, "x")
	must(t, err)
	if len(list) != 2 || list[0].ID != added[2].ID || list[1].ID != added[4].ID {
		t.Fatalf("after delete: %+v", list)
	}
	list, err = s.ScaleRequests(ctx, "y")
	must(t, err)
	if len(list) != 1 {
		t.Fatalf("y lost its request: %+v", list)
	}

	// Ids keep increasing after deletions (never reused).
	must(t, s.DeleteScaleRequests(ctx, "x", []int64{added[2].ID, added[4].ID}))
	got, err := s.AddScaleRequest(ctx, store.ScaleRequest{InfraID: "x", NodeName: "web", Delta: 1})
	must(t, err)
	if got.ID <= last {
		t.Fatalf("id %d after deleting %d: ids must not be reused", got.ID, last)
	}
	list, err = s.ScaleRequests(ctx, "nope")
	must(t, err)
	if len(list) != 0 {
		t.Fatalf("requests of missing infra: %+v", list)
	}
}

func testDeleteInfraCascades(t *testing.T, s store.Store) {
	ctx := t.Context()
	for _, id := range []string{"x", "y"} {
		must(t, s.CreateInfra(ctx, infra(id, t0)))
		for i := range 3 {
			must(t, s.PutInstance(ctx, instance(id, fmt.Sprint("i", i), t0)))
		}
		_, err := s.AddScaleRequest(ctx, store.ScaleRequest{InfraID: id, NodeName: "n", Delta: 1})
		must(t, err)
		must(t, s.AppendEvent(ctx, store.Event{InfraID: id, Kind: "infra.created"}))
	}
	must(t, s.DeleteInfra(ctx, "x"))

	_, err := s.Instance(ctx, "x", "i0")
	wantErr(t, err, store.ErrNotFound)
	insts, err := s.Instances(ctx, "x")
	must(t, err)
	reqs, err := s.ScaleRequests(ctx, "x")
	must(t, err)
	if len(insts) != 0 || len(reqs) != 0 {
		t.Fatalf("after DeleteInfra: %d instances, %d scale requests remain", len(insts), len(reqs))
	}
	// Its events go too, from the log of all events as well; those of y
	// stay, and an event appended for x afterwards is a new one.
	evs, err := s.Events(ctx, "x", 0, 0)
	must(t, err)
	if len(evs) != 0 {
		t.Fatalf("events of deleted infra: %d, want none", len(evs))
	}
	all, err := s.Events(ctx, "", 0, 0)
	must(t, err)
	if len(all) != 1 || all[0].InfraID != "y" {
		t.Fatalf("all events after DeleteInfra(x): %+v, want y's only", all)
	}
	must(t, s.AppendEvent(ctx, store.Event{InfraID: "x", Kind: "infra.destroyed"}))
	evs, err = s.Events(ctx, "x", 0, 0)
	must(t, err)
	if len(evs) != 1 || evs[0].Kind != "infra.destroyed" || evs[0].Seq <= all[0].Seq {
		t.Fatalf("event appended after DeleteInfra: %+v", evs)
	}

	// The other infrastructure is untouched.
	insts, err = s.Instances(ctx, "y")
	must(t, err)
	reqs, err = s.ScaleRequests(ctx, "y")
	must(t, err)
	if len(insts) != 3 || len(reqs) != 1 {
		t.Fatalf("y: %d instances, %d requests; want 3, 1", len(insts), len(reqs))
	}

	// A new infrastructure under the old id starts empty.
	must(t, s.CreateInfra(ctx, infra("x", t1)))
	insts, err = s.Instances(ctx, "x")
	must(t, err)
	reqs, err = s.ScaleRequests(ctx, "x")
	must(t, err)
	if len(insts) != 0 || len(reqs) != 0 {
		t.Fatalf("recreated x inherits %d instances, %d requests", len(insts), len(reqs))
	}
}

func testEvents(t *testing.T, s store.Store) {
	ctx := t.Context()
	evs, err := s.Events(ctx, "", 0, 0)
	must(t, err)
	if len(evs) != 0 {
		t.Fatalf("empty store has %d events", len(evs))
	}
	// Events need no stored infrastructure.
	in := []store.Event{
		{Time: t0, InfraID: "x", NodeName: "web", NodeID: "i1", Kind: "instance.state",
			From: store.StateCreating, To: store.StateReady, Message: "up", Data: json.RawMessage(`{"addr":"10.0.0.1"}`)},
		{Time: t1, InfraID: "y", Kind: "infra.created"},
		{InfraID: "x", Kind: "infra.deleted"}, // zero Time: the store stamps it
	}
	before := time.Now()
	for _, e := range in {
		must(t, s.AppendEvent(ctx, e))
	}
	after := time.Now()

	all, err := s.Events(ctx, "", 0, 0)
	must(t, err)
	if len(all) != len(in) {
		t.Fatalf("%d events, want %d", len(all), len(in))
	}
	for i, e := range all {
		if i > 0 && e.Seq <= all[i-1].Seq {
			t.Fatalf("seq %d after %d: must increase", e.Seq, all[i-1].Seq)
		}
		want := in[i]
		want.Seq = e.Seq
		if want.Time.IsZero() {
			if e.Time.Before(before.Add(-time.Second)) || e.Time.After(after.Add(time.Second)) {
				t.Errorf("stamped time %v, want about now", e.Time)
			}
			want.Time = e.Time
		}
		equal(t, fmt.Sprint("event ", i), e, want, normEvent)
	}

	xs, err := s.Events(ctx, "x", 0, 0)
	must(t, err)
	if len(xs) != 2 || xs[0].Seq != all[0].Seq || xs[1].Seq != all[2].Seq {
		t.Fatalf("events of x: %+v", xs)
	}
	none, err := s.Events(ctx, "nope", 0, 0)
	must(t, err)
	if len(none) != 0 {
		t.Fatalf("events of unknown infra: %+v", none)
	}
}

func testEventsAfterLimit(t *testing.T, s store.Store) {
	ctx := t.Context()
	// 10 events alternating between x and y.
	for i := range 10 {
		id := "x"
		if i%2 == 1 {
			id = "y"
		}
		must(t, s.AppendEvent(ctx, store.Event{InfraID: id, Kind: "k", Message: fmt.Sprint(i)}))
	}
	all, err := s.Events(ctx, "", 0, 0)
	must(t, err)
	if len(all) != 10 {
		t.Fatalf("%d events, want 10", len(all))
	}
	seq := func(i int) int64 { return all[i].Seq }
	tests := []struct {
		name  string
		infra string
		after int64
		limit int
		want  []string // messages
	}{
		{"all", "", 0, 0, []string{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"}},
		{"limit", "", 0, 3, []string{"0", "1", "2"}},
		{"after", "", seq(6), 0, []string{"7", "8", "9"}},
		{"after and limit", "", seq(2), 2, []string{"3", "4"}},
		{"limit beyond end", "", seq(7), 10, []string{"8", "9"}},
		{"after last", "", seq(9), 0, nil},
		{"infra", "y", 0, 0, []string{"1", "3", "5", "7", "9"}},
		{"infra after", "y", seq(3), 0, []string{"5", "7", "9"}},
		{"infra after other's seq", "y", seq(4), 2, []string{"5", "7"}},
		{"infra limit", "x", 0, 2, []string{"0", "2"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			evs, err := s.Events(ctx, tc.infra, tc.after, tc.limit)
			must(t, err)
			var got []string
			for _, e := range evs {
				got = append(got, e.Message)
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("Events(%q, %d, %d) = %v, want %v", tc.infra, tc.after, tc.limit, got, tc.want)
			}
		})
	}
}

func testConcurrency(t *testing.T, s store.Store) {
	ctx := t.Context()
	must(t, s.CreateInfra(ctx, infra("x", t0)))
	const workers, each = 16, 20
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				in := instance("x", fmt.Sprintf("w%d-i%d", w, i), time.Now())
				if err := s.PutInstance(ctx, in); err != nil {
					errs <- err
					return
				}
				// Update it again, as the maintenance loop does.
				in.State = store.StateReady
				if err := s.PutInstance(ctx, in); err != nil {
					errs <- err
					return
				}
				if err := s.AppendEvent(ctx, store.Event{InfraID: "x", NodeID: in.NodeID, Kind: "instance.state",
					Message: fmt.Sprint(w, " ", i)}); err != nil {
					errs <- err
					return
				}
				// Readers run beside writers and see their own writes.
				if got, err := s.Instance(ctx, "x", in.NodeID); err != nil || got.State != store.StateReady {
					errs <- fmt.Errorf("read back %s: state %q, %v", in.NodeID, got.State, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		return
	}
	insts, err := s.Instances(ctx, "x")
	must(t, err)
	if len(insts) != workers*each {
		t.Fatalf("%d instances, want %d", len(insts), workers*each)
	}
	for _, in := range insts {
		if in.State != store.StateReady {
			t.Fatalf("instance %s in state %s, want ready", in.NodeID, in.State)
		}
	}
	evs, err := s.Events(ctx, "x", 0, 0)
	must(t, err)
	if len(evs) != workers*each {
		t.Fatalf("%d events, want %d", len(evs), workers*each)
	}
	// Each worker's events appear in the order it appended them.
	next := map[int]int{}
	for i, e := range evs {
		if i > 0 && e.Seq <= evs[i-1].Seq {
			t.Fatalf("seq %d after %d", e.Seq, evs[i-1].Seq)
		}
		var w, n int
		if _, err := fmt.Sscan(e.Message, &w, &n); err != nil {
			t.Fatal(err)
		}
		if n != next[w] {
			t.Fatalf("worker %d: event %d, want %d", w, n, next[w])
		}
		next[w]++
	}
	if got := len(slices.Collect(maps.Keys(next))); got != workers {
		t.Fatalf("events from %d workers, want %d", got, workers)
	}
}

func testContextCanceled(t *testing.T, s store.Store) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	calls := map[string]func() error{
		"PutNodeDefs": func() error {
			return s.PutNodeDefs(ctx, map[string]json.RawMessage{"a": json.RawMessage(`[]`)})
		},
		"CreateInfra": func() error { return s.CreateInfra(ctx, infra("x", t0)) },
		"Infra":       func() error { _, err := s.Infra(ctx, "x"); return err },
		"Infras":      func() error { _, err := s.Infras(ctx); return err },
		"AppendEvent": func() error { return s.AppendEvent(ctx, store.Event{InfraID: "x", Kind: "k"}) },
		"Events":      func() error { _, err := s.Events(ctx, "", 0, 0); return err },
		"PruneEvents": func() error { _, err := s.PruneEvents(ctx, t2, 1); return err },
	}
	for name, call := range calls {
		if err := call(); !errors.Is(err, context.Canceled) {
			t.Errorf("%s with canceled context: %v, want context.Canceled", name, err)
		}
	}
	// Nothing was written.
	live := t.Context()
	if _, err := s.Infra(live, "x"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("infra written under canceled context: %v", err)
	}
	if types, err := s.NodeDefTypes(live); err != nil || len(types) != 0 {
		t.Errorf("node defs written under canceled context: %v %v", types, err)
	}
}

func testUpdateTargets(t *testing.T, s store.Store) {
	ctx := t.Context()
	wantErr(t, s.UpdateTargets(ctx, "nope", map[string]int{"web": 1}, nil), store.ErrNotFound)
	must(t, s.CreateInfra(ctx, infra("x", t0)))
	r1, err := s.AddScaleRequest(ctx, store.ScaleRequest{InfraID: "x", NodeName: "web", Delta: 2, CreatedAt: t0})
	must(t, err)
	r2, err := s.AddScaleRequest(ctx, store.ScaleRequest{InfraID: "x", NodeName: "web", Delta: -1, CreatedAt: t1})
	must(t, err)
	// Consume only the first: targets and the consumption land together.
	must(t, s.UpdateTargets(ctx, "x", map[string]int{"web": 3, "db": 1}, []int64{r1.ID}))
	got, err := s.Infra(ctx, "x")
	must(t, err)
	if got.Targets["web"] != 3 || got.Targets["db"] != 1 || len(got.Targets) != 2 {
		t.Fatalf("targets %v, want web=3 db=1", got.Targets)
	}
	left, err := s.ScaleRequests(ctx, "x")
	must(t, err)
	if len(left) != 1 || left[0].ID != r2.ID {
		t.Fatalf("requests left %v, want only %d", left, r2.ID)
	}
	must(t, s.UpdateTargets(ctx, "x", map[string]int{"web": 2}, nil))
	got, err = s.Infra(ctx, "x")
	must(t, err)
	if len(got.Targets) != 1 || got.Targets["web"] != 2 {
		t.Fatalf("targets %v, want web=2 only", got.Targets)
	}
}

func testInstanceOwner(t *testing.T, s store.Store) {
	ctx := t.Context()
	must(t, s.CreateInfra(ctx, infra("x", t0)))
	in := instance("x", "i1", t0)
	in.Owner = "host/123/456"
	must(t, s.PutInstance(ctx, in))
	got, err := s.Instance(ctx, "x", "i1")
	must(t, err)
	if got.Owner != in.Owner {
		t.Fatalf("owner %q, want %q", got.Owner, in.Owner)
	}
	in.Owner = ""
	must(t, s.PutInstance(ctx, in))
	got, err = s.Instance(ctx, "x", "i1")
	must(t, err)
	if got.Owner != "" {
		t.Fatalf("owner %q after clearing", got.Owner)
	}
}

func testInfraOrigin(t *testing.T, s store.Store) {
	ctx := t.Context()
	for _, o := range []string{"", store.OriginLocal, store.OriginNetwork} {
		in := infra("o-"+o, t0)
		in.Origin = o
		must(t, s.CreateInfra(ctx, in))
		got, err := s.Infra(ctx, in.ID)
		must(t, err)
		if got.Origin != o {
			t.Fatalf("origin %q read back as %q", o, got.Origin)
		}
	}
	list, err := s.Infras(ctx)
	must(t, err)
	for _, in := range list {
		if want := in.ID[len("o-"):]; in.Origin != want {
			t.Errorf("Infras: %s has origin %q, want %q", in.ID, in.Origin, want)
		}
	}

	// A read-modify-write keeps it; so does UpdateTargets.
	in, err := s.Infra(ctx, "o-network")
	must(t, err)
	in.Attached = true
	must(t, s.UpdateInfra(ctx, in))
	must(t, s.UpdateTargets(ctx, "o-network", map[string]int{"n": 2}, nil))
	got, err := s.Infra(ctx, "o-network")
	must(t, err)
	if got.Origin != store.OriginNetwork || !got.Attached {
		t.Fatalf("after attach and UpdateTargets: origin %q attached %v", got.Origin, got.Attached)
	}
	// UpdateInfra replaces it with the description it belongs to, in both
	// directions, and "" clears it.
	for _, o := range []string{store.OriginLocal, store.OriginNetwork, ""} {
		got.Origin = o
		must(t, s.UpdateInfra(ctx, got))
		again, err := s.Infra(ctx, "o-network")
		must(t, err)
		if again.Origin != o {
			t.Fatalf("UpdateInfra to origin %q: read %q", o, again.Origin)
		}
	}

	// Other values are refused and nothing is written.
	bad := infra("o-bad", t0)
	bad.Origin = "Network"
	if err := s.CreateInfra(ctx, bad); err == nil {
		t.Fatal("CreateInfra accepted origin \"Network\"")
	}
	if _, err := s.Infra(ctx, "o-bad"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("infra with a bad origin stored: %v", err)
	}
	got.Origin = "remote"
	if err := s.UpdateInfra(ctx, got); err == nil {
		t.Fatal("UpdateInfra accepted origin \"remote\"")
	}
	again, err := s.Infra(ctx, "o-network")
	must(t, err)
	if again.Origin != "" {
		t.Fatalf("refused update changed origin to %q", again.Origin)
	}
}

// testChecker: a store that implements store.Checker passes its own check
// when new and after use.
func testChecker(t *testing.T, s store.Store) {
	c, ok := s.(store.Checker)
	if !ok {
		t.Skip("not a store.Checker")
	}
	ctx := t.Context()
	must(t, c.Check(ctx))
	must(t, s.CreateInfra(ctx, infra("x", t0)))
	must(t, s.AppendEvent(ctx, store.Event{InfraID: "x", Kind: "k"}))
	must(t, c.Check(ctx))
}

// RunPrune runs the PruneEvents part of the suite (Run includes it), so
// that an implementation can also run it with small internal batches.
func RunPrune(t *testing.T, open func(t *testing.T) store.Store) {
	minute := func(i int) time.Time { return t0.Add(time.Duration(i) * time.Minute) }
	// The events, in order of appending: infrastructures a (6 events, a
	// minute apart), b (3, then one stamped an hour early: clocks step
	// back), events without an infrastructure, and those of d, deleted
	// with its events and then given one more.
	type ev struct {
		infra string
		at    time.Time
		msg   string
	}
	setup := []ev{
		{"a", minute(0), "a0"}, {"b", minute(0), "b0"}, {"a", minute(1), "a1"}, {"", minute(1), "-0"},
		{"a", minute(2), "a2"}, {"b", minute(2), "b1"}, {"a", minute(3), "a3"}, {"b", minute(4), "b2"},
		{"a", minute(4), "a4"}, {"", minute(5), "-1"}, {"a", minute(5), "a5"}, {"b", minute(-60), "b3"},
		{"d", minute(5), "d-gone"},
	}
	after := ev{"d", minute(6), "d0"}
	tests := []struct {
		name      string
		olderThan time.Time
		keep      int
		want      []string // messages left, in Seq order
	}{
		{"no bounds", time.Time{}, 0, []string{"a0", "b0", "a1", "-0", "a2", "b1", "a3", "b2", "a4", "-1", "a5", "b3", "d0"}},
		{"keep 2 per infra", time.Time{}, 2, []string{"-0", "b2", "a4", "-1", "a5", "b3", "d0"}},
		{"keep 1 per infra", time.Time{}, 1, []string{"-1", "a5", "b3", "d0"}},
		{"keep more than there are", time.Time{}, 100, []string{"a0", "b0", "a1", "-0", "a2", "b1", "a3", "b2", "a4", "-1", "a5", "b3", "d0"}},
		// Strictly before: an event at the bound stays. The early b3 goes
		// although it is b's newest.
		{"older than 2m", minute(2), 0, []string{"a2", "b1", "a3", "b2", "a4", "-1", "a5", "d0"}},
		{"older than all", minute(7), 0, nil},
		{"older than none", minute(-61), 0, []string{"a0", "b0", "a1", "-0", "a2", "b1", "a3", "b2", "a4", "-1", "a5", "b3", "d0"}},
		{"both bounds", minute(3), 3, []string{"a3", "b2", "a4", "-1", "a5", "d0"}},
		{"zone of the bound", minute(2).In(time.FixedZone("west", -5*3600)), 0, []string{"a2", "b1", "a3", "b2", "a4", "-1", "a5", "d0"}},
		{"far future", time.Date(12000, 1, 1, 0, 0, 0, 0, time.UTC), 0, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t)
			ctx := t.Context()
			must(t, s.CreateInfra(ctx, infra("a", t0)))
			must(t, s.CreateInfra(ctx, infra("d", t0)))
			for _, e := range setup {
				must(t, s.AppendEvent(ctx, store.Event{InfraID: e.infra, Time: e.at, Kind: "k", Message: e.msg}))
			}
			must(t, s.DeleteInfra(ctx, "d"))
			must(t, s.AppendEvent(ctx, store.Event{InfraID: after.infra, Time: after.at, Kind: "k", Message: after.msg}))
			before, err := s.Events(ctx, "", 0, 0)
			must(t, err)

			removed, err := s.PruneEvents(ctx, tc.olderThan, tc.keep)
			must(t, err)
			all, err := s.Events(ctx, "", 0, 0)
			must(t, err)
			if got := messages(all); !slices.Equal(got, tc.want) {
				t.Fatalf("PruneEvents(%v, %d) left %v, want %v", tc.olderThan, tc.keep, got, tc.want)
			}
			if removed != len(before)-len(all) {
				t.Errorf("PruneEvents reported %d removed, %d went", removed, len(before)-len(all))
			}
			// Each infrastructure's view agrees with the view of all.
			for _, id := range []string{"a", "b", "", "d"} {
				evs, err := s.Events(ctx, id, 0, 0)
				must(t, err)
				var want []string
				for _, e := range all {
					if e.InfraID == id {
						want = append(want, e.Message)
					}
				}
				if id == "" {
					want = messages(all) // "" lists all
				}
				if got := messages(evs); !slices.Equal(got, want) {
					t.Errorf("events of %q: %v, want %v", id, got, want)
				}
			}
			// Again: nothing more to do.
			if n, err := s.PruneEvents(ctx, tc.olderThan, tc.keep); err != nil || n != 0 {
				t.Errorf("second PruneEvents: %d, %v; want 0, nil", n, err)
			}
			// Sequences go on after pruned events.
			must(t, s.AppendEvent(ctx, store.Event{InfraID: "a", Kind: "k", Message: "new"}))
			evs, err := s.Events(ctx, "a", before[len(before)-1].Seq, 0)
			must(t, err)
			if len(evs) != 1 || evs[0].Message != "new" {
				t.Errorf("event after pruning: %+v", evs)
			}
		})
	}
	t.Run("negative keep", func(t *testing.T) {
		s := open(t)
		must(t, s.AppendEvent(t.Context(), store.Event{InfraID: "a", Kind: "k"}))
		if _, err := s.PruneEvents(t.Context(), time.Time{}, -1); err == nil {
			t.Fatal("PruneEvents accepted keepPerInfra -1")
		}
		evs, err := s.Events(t.Context(), "", 0, 0)
		must(t, err)
		if len(evs) != 1 {
			t.Fatalf("refused PruneEvents removed events: %d left", len(evs))
		}
	})
	// Many events of one infrastructure, more than one batch of Redis'
	// default size (SQLite's tests run this suite with small batches too),
	// beside another infrastructure's.
	t.Run("many", func(t *testing.T) {
		s := open(t)
		ctx := t.Context()
		const n = 250
		for i := range n {
			must(t, s.AppendEvent(ctx, store.Event{InfraID: "big", Time: minute(i), Kind: "k", Message: fmt.Sprint(i)}))
			if i%25 == 0 {
				must(t, s.AppendEvent(ctx, store.Event{InfraID: "small", Time: minute(i), Kind: "k", Message: fmt.Sprint(i)}))
			}
		}
		removed, err := s.PruneEvents(ctx, time.Time{}, 5)
		must(t, err)
		if want := (n - 5) + (n/25 - 5); removed != want {
			t.Fatalf("removed %d, want %d", removed, want)
		}
		big, err := s.Events(ctx, "big", 0, 0)
		must(t, err)
		if got := messages(big); !slices.Equal(got, []string{"245", "246", "247", "248", "249"}) {
			t.Fatalf("big keeps %v", got)
		}
		// small keeps 125..225, all older than 247 minutes.
		removed, err = s.PruneEvents(ctx, minute(247), 0)
		must(t, err)
		if removed != 2+5 {
			t.Fatalf("by age: removed %d, want 7", removed)
		}
		all, err := s.Events(ctx, "", 0, 0)
		must(t, err)
		if got := messages(all); !slices.Equal(got, []string{"247", "248", "249"}) {
			t.Fatalf("left %v", got)
		}
	})
}

func messages(evs []store.Event) []string {
	var out []string
	for _, e := range evs {
		out = append(out, e.Message)
	}
	return out
}
