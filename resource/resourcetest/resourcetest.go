// Package resourcetest is a conformance suite that every resource.Handler
// backend runs against its real backend, so that the engine can rely on the
// same Create/State/Destroy semantics whatever the backend.
package resourcetest

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/occopus-go/occopus/resource"
)

// Option tunes the suite for one backend.
type Option func(*options)

type options struct {
	kill    func(t *testing.T, h resource.Handle)
	timeout time.Duration
}

// WithKill gives the suite a way to end an instance behind the handler's
// back (kill -9 a process, `docker kill` a container), to check that State
// notices. Without it that part of the suite is skipped.
func WithKill(kill func(t *testing.T, h resource.Handle)) Option {
	return func(o *options) { o.kill = kill }
}

// WithTimeout bounds each wait for a state change (default 30 s).
func WithTimeout(d time.Duration) Option {
	return func(o *options) { o.timeout = d }
}

// Run runs the conformance suite. newSpec must return a spec with an infra
// id and node id unique to the test, for an instance that keeps running
// until destroyed; a spec without a store id gets one (a UUID, as the
// stores' ids are), so that every backend shows it labels it.
func Run(t *testing.T, h resource.Handler, newSpec func(t *testing.T) resource.Spec, opts ...Option) {
	t.Helper()
	o := options{timeout: 30 * time.Second}
	for _, f := range opts {
		f(&o)
	}
	storeID := uuid.NewString()
	withStore := func(t *testing.T) resource.Spec {
		spec := newSpec(t)
		if spec.StoreID == "" {
			spec.StoreID = storeID
		}
		return spec
	}
	s := &suite{h: h, newSpec: withStore, o: o}
	t.Run("Lifecycle", s.lifecycle)
	t.Run("ConcurrentCreate", s.concurrentCreate)
	t.Run("TwoNodes", s.twoNodes)
	t.Run("KilledBehindTheBack", s.killed)
}

type suite struct {
	h       resource.Handler
	newSpec func(t *testing.T) resource.Spec
	o       options
}

func (s *suite) ctx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*s.o.timeout)
	t.Cleanup(cancel)
	return ctx
}

// create creates and registers a cleanup, so a failing test leaves nothing.
func (s *suite) create(t *testing.T, ctx context.Context, spec resource.Spec) resource.Handle {
	t.Helper()
	h, err := s.h.Create(ctx, spec)
	if err != nil {
		t.Fatalf("Create(%s): %v", spec.NodeID, err)
	}
	if h.ID == "" {
		t.Fatalf("Create(%s) returned an empty handle id", spec.NodeID)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), s.o.timeout)
		defer cancel()
		if err := s.h.Destroy(ctx, h); err != nil {
			t.Errorf("cleanup Destroy(%s): %v", h.ID, err)
		}
	})
	return h
}

// waitState polls until State satisfies ok.
func (s *suite) waitState(t *testing.T, ctx context.Context, h resource.Handle, what string, ok func(resource.State, error) bool) {
	t.Helper()
	deadline := time.Now().Add(s.o.timeout)
	var (
		st  resource.State
		err error
	)
	for {
		st, err = s.h.State(ctx, h)
		if ok(st, err) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("instance %s: waited %v for %s; last State = %q, %v", h.ID, s.o.timeout, what, st, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (s *suite) waitRunning(t *testing.T, ctx context.Context, h resource.Handle) {
	t.Helper()
	s.waitState(t, ctx, h, "running", func(st resource.State, err error) bool {
		if err != nil {
			t.Fatalf("State(%s) while waiting for running: %v", h.ID, err)
		}
		if st != resource.StatePending && st != resource.StateRunning {
			t.Fatalf("State(%s) = %q while waiting for running", h.ID, st)
		}
		return st == resource.StateRunning
	})
}

func gone(st resource.State, err error) bool {
	return errors.Is(err, resource.ErrNotFound) || (err == nil && st == resource.StateShutdown)
}

// owned lists the infra's resources, or returns ok=false without a Lister.
func (s *suite) owned(t *testing.T, ctx context.Context, infraID string) ([]resource.Owned, bool) {
	t.Helper()
	l, ok := s.h.(resource.Lister)
	if !ok {
		return nil, false
	}
	got, err := l.List(ctx, infraID)
	if err != nil {
		t.Fatalf("List(%s): %v", infraID, err)
	}
	return got, true
}

// all lists every labelled resource, or returns ok=false without a
// Sweeper.
func (s *suite) all(t *testing.T, ctx context.Context) ([]resource.Owned, bool) {
	t.Helper()
	sw, ok := s.h.(resource.Sweeper)
	if !ok {
		return nil, false
	}
	got, err := sw.ListAll(ctx)
	if err != nil {
		t.Fatalf("ListAll: %v", err)
	}
	if len(got) > resource.MaxSweep {
		t.Fatalf("ListAll returned %d resources, more than resource.MaxSweep (%d)", len(got), resource.MaxSweep)
	}
	return got, true
}

func findOwned(all []resource.Owned, id string) (resource.Owned, bool) {
	for _, o := range all {
		if o.Handle.ID == id {
			return o, true
		}
	}
	return resource.Owned{}, false
}

func (s *suite) lifecycle(t *testing.T) {
	ctx := s.ctx(t)
	spec := s.newSpec(t)
	h := s.create(t, ctx, spec)
	s.waitRunning(t, ctx, h)

	// Idempotent per node id: the same instance, not a second one.
	h2, err := s.h.Create(ctx, spec)
	if err != nil {
		t.Fatalf("second Create: %v", err)
	}
	if h2.ID != h.ID {
		t.Fatalf("second Create returned %q, want the first instance %q", h2.ID, h.ID)
	}
	if got, ok := s.owned(t, ctx, spec.InfraID); ok {
		if len(got) != 1 {
			t.Fatalf("List after two Creates of one node: %d resources, want 1: %+v", len(got), got)
		}
		if got[0].Handle.ID != h.ID || got[0].NodeID != spec.NodeID || got[0].InfraID != spec.InfraID {
			t.Errorf("List = %+v, want handle %s node %s infra %s", got[0], h.ID, spec.NodeID, spec.InfraID)
		}
		if got[0].NodeName != spec.NodeName {
			t.Errorf("List node name = %q, want %q", got[0].NodeName, spec.NodeName)
		}
		if got[0].StoreID != spec.StoreID {
			t.Errorf("List store id = %q, want %q", got[0].StoreID, spec.StoreID)
		}
	}
	if all, ok := s.all(t, ctx); ok {
		o, found := findOwned(all, h.ID)
		if !found {
			t.Errorf("ListAll (%d resources) lacks %s of node %s", len(all), h.ID, spec.NodeID)
		} else if o.InfraID != spec.InfraID || o.NodeID != spec.NodeID || o.NodeName != spec.NodeName || o.StoreID != spec.StoreID {
			t.Errorf("ListAll has %+v, want infra %s node %s name %s store %s", o, spec.InfraID, spec.NodeID, spec.NodeName, spec.StoreID)
		}
	}
	if f, ok := s.h.(resource.Finder); ok {
		fh, found, err := f.Find(ctx, spec.InfraID, spec.NodeID)
		if err != nil || !found || fh.ID != h.ID {
			t.Errorf("Find(%s, %s) = %q, %v, %v; want %q", spec.InfraID, spec.NodeID, fh.ID, found, err, h.ID)
		}
		if _, found, err := f.Find(ctx, spec.InfraID, spec.NodeID+"-other"); err != nil || found {
			t.Errorf("Find of an unknown node id = found %v, %v; want not found", found, err)
		}
	}

	addr, err := s.h.Addresses(ctx, h)
	if err != nil {
		t.Fatalf("Addresses: %v", err)
	}
	if addr.Public == "" || addr.Private == "" {
		t.Errorf("Addresses = %+v, want both set", addr)
	}

	if err := s.h.Destroy(ctx, h); err != nil {
		t.Fatalf("Destroy: %v", err)
	}
	st, err := s.h.State(ctx, h)
	if !gone(st, err) {
		t.Errorf("State after Destroy = %q, %v; want ErrNotFound or shutdown", st, err)
	}
	if _, err := s.h.Addresses(ctx, h); !errors.Is(err, resource.ErrNotFound) {
		t.Errorf("Addresses after Destroy: %v, want ErrNotFound", err)
	}
	if got, ok := s.owned(t, ctx, spec.InfraID); ok && len(got) != 0 {
		t.Errorf("List after Destroy = %+v, want empty", got)
	}
	if all, ok := s.all(t, ctx); ok {
		if o, found := findOwned(all, h.ID); found {
			t.Errorf("ListAll after Destroy still has %+v", o)
		}
	}
	if f, ok := s.h.(resource.Finder); ok {
		if _, found, err := f.Find(ctx, spec.InfraID, spec.NodeID); err != nil || found {
			t.Errorf("Find after Destroy = found %v, %v; want not found", found, err)
		}
	}
	if err := s.h.Destroy(ctx, h); err != nil {
		t.Errorf("second Destroy: %v, want nil (gone is success)", err)
	}
}

// concurrentCreate: the engine may retry a Create while the first is still
// in flight; there must still be one instance.
func (s *suite) concurrentCreate(t *testing.T) {
	ctx := s.ctx(t)
	spec := s.newSpec(t)
	const n = 4
	var (
		wg   sync.WaitGroup
		hs   [n]resource.Handle
		errs [n]error
	)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			hs[i], errs[i] = s.h.Create(ctx, spec)
		}()
	}
	wg.Wait()
	for i := range n {
		if errs[i] == nil {
			hi := hs[i]
			t.Cleanup(func() { _ = s.h.Destroy(context.Background(), hi) })
		}
	}
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("concurrent Create %d: %v", i, errs[i])
		}
		if hs[i].ID != hs[0].ID {
			t.Fatalf("concurrent Creates of one node id returned %q and %q", hs[0].ID, hs[i].ID)
		}
	}
	if got, ok := s.owned(t, ctx, spec.InfraID); ok && len(got) != 1 {
		t.Fatalf("List after concurrent Creates: %d resources, want 1: %+v", len(got), got)
	}
	s.waitRunning(t, ctx, hs[0])
}

func (s *suite) twoNodes(t *testing.T) {
	ctx := s.ctx(t)
	a := s.newSpec(t)
	b := s.newSpec(t)
	b.InfraID = a.InfraID
	if b.NodeID == a.NodeID {
		t.Fatalf("newSpec returned the same node id twice: %s", a.NodeID)
	}
	ha := s.create(t, ctx, a)
	hb := s.create(t, ctx, b)
	if ha.ID == hb.ID {
		t.Fatalf("two node ids got one instance %q", ha.ID)
	}
	s.waitRunning(t, ctx, ha)
	s.waitRunning(t, ctx, hb)
	if got, ok := s.owned(t, ctx, a.InfraID); ok {
		byNode := map[string]string{}
		for _, o := range got {
			byNode[o.NodeID] = o.Handle.ID
		}
		if len(got) != 2 || byNode[a.NodeID] != ha.ID || byNode[b.NodeID] != hb.ID {
			t.Errorf("List = %+v, want %s→%s and %s→%s", got, a.NodeID, ha.ID, b.NodeID, hb.ID)
		}
	}
	if err := s.h.Destroy(ctx, ha); err != nil {
		t.Fatalf("Destroy a: %v", err)
	}
	// Destroying one node leaves the other alone.
	if st, err := s.h.State(ctx, hb); err != nil || st != resource.StateRunning {
		t.Errorf("State(b) after destroying a = %q, %v; want running", st, err)
	}
}

func (s *suite) killed(t *testing.T) {
	if s.o.kill == nil {
		t.Skip("backend gave no WithKill")
	}
	ctx := s.ctx(t)
	spec := s.newSpec(t)
	h := s.create(t, ctx, spec)
	s.waitRunning(t, ctx, h)
	s.o.kill(t, h)
	s.waitState(t, ctx, h, "shutdown or not found", func(st resource.State, err error) bool {
		if err != nil && !errors.Is(err, resource.ErrNotFound) {
			t.Fatalf("State after kill: %v", err)
		}
		return gone(st, err)
	})
	if err := s.h.Destroy(ctx, h); err != nil {
		t.Fatalf("Destroy after kill: %v", err)
	}
	if got, ok := s.owned(t, ctx, spec.InfraID); ok && len(got) != 0 {
		t.Errorf("List after Destroy = %+v, want empty", got)
	}
}
