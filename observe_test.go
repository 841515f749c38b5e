package occopus

import (
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// TestSubscribe: an observer sees the events, the pass, the backend calls
// and the probes of a pass; after unsubscribing it sees nothing more, and
// another observer is unaffected.
func TestSubscribe(t *testing.T) {
	dir := t.TempDir()
	m := newManager(t, filepath.Join(dir, "db"), dir)
	type counts struct{ events, passes, calls, probes int }
	type seen struct {
		mu sync.Mutex
		counts
	}
	watch := func() (*seen, func()) {
		s := &seen{}
		un := m.Subscribe(Observer{
			Event:       func(Event) { s.mu.Lock(); s.events++; s.mu.Unlock() },
			Pass:        func(string, time.Duration, *PassResult, error) { s.mu.Lock(); s.passes++; s.mu.Unlock() },
			BackendCall: func(string, string, time.Duration, error) { s.mu.Lock(); s.calls++; s.mu.Unlock() },
			Probe:       func(string, string, ProbeResult) { s.mu.Lock(); s.probes++; s.mu.Unlock() },
		})
		return s, un
	}
	a, unA := watch()
	b, unB := watch()
	defer unB()
	id := submitHello(t, m)
	if _, err := m.Maintain(t.Context(), id); err != nil {
		t.Fatal(err)
	}
	a.mu.Lock()
	if a.events < 3 || a.passes != 1 || a.calls < 2 {
		t.Errorf("observer saw %d events, %d passes, %d backend calls; want >= 3, 1, >= 2", a.events, a.passes, a.calls)
	}
	before := a.counts
	a.mu.Unlock()
	unA()
	unA() // twice is harmless
	if _, err := m.Scale(t.Context(), ScaleRequest{InfraID: id, Node: "hello", Change: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Maintain(t.Context(), id); err != nil {
		t.Fatal(err)
	}
	a.mu.Lock()
	if a.events != before.events || a.passes != before.passes || a.calls != before.calls {
		t.Errorf("an unsubscribed observer still sees: %d/%d events, %d/%d passes", a.events, before.events, a.passes, before.passes)
	}
	a.mu.Unlock()
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.passes != 2 || b.events <= before.events {
		t.Errorf("the other observer saw %d passes and %d events, want 2 and more than %d", b.passes, b.events, before.events)
	}
}

// TestNoStore: a Manager without a store validates and renders, and says
// so for everything else.
func TestNoStore(t *testing.T) {
	m, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if _, err := m.List(t.Context()); err != ErrNoStore {
		t.Errorf("List: %v, want ErrNoStore", err)
	}
	if _, err := m.Maintain(t.Context(), "x"); err != ErrNoStore {
		t.Errorf("Maintain: %v, want ErrNoStore", err)
	}
	if v, err := m.Validate(t.Context(), "examples/local-ping/nodes.yaml"); err != nil || v.Kind != "node definitions" {
		t.Errorf("Validate: %+v, %v", v, err)
	}
}
