package occopus

import (
	"context"
	"errors"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/occopus-go/occopus/store"
	"github.com/occopus-go/occopus/store/sqlite"
)

// faultyLeases is a real SQLite store whose Renew can be made to fail or
// to be refused, as when the store is out of reach or the lease ended.
type faultyLeases struct {
	*sqlite.Store
	mode    atomic.Value // "", "error", "refuse"
	renewed atomic.Int32 // renewals passed through and granted
}

func (f *faultyLeases) Renew(ctx context.Context, key, owner string, ttl time.Duration) (bool, error) {
	switch f.mode.Load() {
	case "error":
		return false, errors.New("store out of reach")
	case "refuse":
		return false, nil
	}
	ok, err := f.Store.Renew(ctx, key, owner, ttl)
	if ok && err == nil {
		f.renewed.Add(1)
	}
	return ok, err
}

func openShared(t *testing.T, path string) *sqlite.Store {
	t.Helper()
	st, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// TestLeaseLossStopsPass: the renewal's result is no longer ignored. A
// pass stops (its context ends with ErrLeaseLost) when renewals fail for
// the ttl minus the margin, when one is refused, and when another owner
// took the lease; its store writes are fenced from then on. With
// renewals granted it runs on past the ttl.
func TestLeaseLossStopsPass(t *testing.T) {
	cases := []struct {
		name     string
		mode     string
		takeover bool // another owner takes the lease during the pass
		wantLost bool
	}{
		{"renewals fail", "error", false, true},
		{"renewal refused", "refuse", false, true},
		{"taken over", "", true, true},
		{"renewals granted", "", false, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			st := &faultyLeases{Store: openShared(t, filepath.Join(dir, "db"))}
			m, err := New(Options{Store: st, Home: dir, LeaseTTL: time.Second})
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			id := brittleInfra(t, m, "fine")
			st.mode.Store(tc.mode)
			var fencedErr error
			err = m.withLease(t.Context(), id, false, func(ctx context.Context) error {
				if tc.takeover {
					if err := st.Store.Release(ctx, leaseKey(id), m.owner); err != nil {
						return err
					}
					if ok, err := st.Store.Acquire(ctx, leaseKey(id), "another/replica", time.Minute); err != nil || !ok {
						t.Errorf("takeover: %v %v", ok, err)
					}
				}
				if !tc.wantLost {
					// Three renewals: the lease outlived its ttl.
					for st.renewed.Load() < 3 {
						select {
						case <-ctx.Done():
							return context.Cause(ctx)
						case <-time.After(10 * time.Millisecond):
						}
					}
					return st.SetPassStatus(ctx, id, store.PassStatus{Result: store.PassOK})
				}
				<-ctx.Done()
				fencedErr = st.SetPassStatus(context.WithoutCancel(ctx), id, store.PassStatus{Result: store.PassError, Error: "stale"})
				return context.Cause(ctx)
			})
			lost := m.Ownership().LeaseLosses
			if !tc.wantLost {
				if err != nil || lost != 0 {
					t.Fatalf("pass with renewals granted: %v, %d losses", err, lost)
				}
				return
			}
			if !errors.Is(err, ErrLeaseLost) || !errors.Is(err, ErrBusy) {
				t.Fatalf("pass after losing the lease: %v, want ErrLeaseLost and ErrBusy", err)
			}
			if lost != 1 {
				t.Fatalf("%d lease losses counted, want 1", lost)
			}
			if tc.takeover && !errors.Is(fencedErr, store.ErrFenced) {
				t.Fatalf("write after the takeover: %v, want ErrFenced", fencedErr)
			}
			if inf, _ := st.Infra(t.Context(), id); tc.takeover && inf.LastPass.Error == "stale" {
				t.Fatal("a fenced write landed")
			}
		})
	}
}

// TestSharing: two sharing Managers on one store. The one that attaches
// owns; the other does not act on it; a detach through the other reaches
// the owner; when the owner goes, the other's scan takes it over.
func TestSharing(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "db")
	newShared := func() *Manager {
		m, err := New(Options{Store: openShared(t, path), Home: dir, Share: true, LeaseTTL: time.Second,
			Interval: 50 * time.Millisecond, ScanInterval: 50 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { m.Close() })
		return m
	}
	m1, m2 := newShared(), newShared()
	id := brittleInfra(t, m1, "fine")
	var passes [2]atomic.Int32
	for i, m := range []*Manager{m1, m2} {
		m.Subscribe(Observer{Pass: func(pid string, _ time.Duration, _ *PassResult, _ error) {
			if pid == id {
				passes[i].Add(1)
			}
		}})
	}
	owns := func(m *Manager) bool { o := m.Ownership(); return len(o.Owned) == 1 && o.Owned[0] == id }
	if err := m1.Attach(t.Context(), id); err != nil {
		t.Fatal(err)
	}
	if _, err := m2.ResumeAttached(t.Context()); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, func() bool { return owns(m1) && passes[0].Load() >= 3 })
	if owns(m2) || passes[1].Load() != 0 {
		t.Fatalf("m2 owns %v and ran %d passes while m1 owns it", m2.Ownership().Owned, passes[1].Load())
	}
	// Detach through m2: m1 stops within a pass.
	if err := m2.Detach(t.Context(), id); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, func() bool { return !owns(m1) && !m1.Attached(id) })
	if h, err := m1.opt.Store.(store.Leaser).Holder(t.Context(), leaseKey(id)); err != nil || h != "" {
		t.Fatalf("after the detach the lease is held by %q (%v)", h, err)
	}
	// Attach through m2: m2 owns it now; m1 (still scanning) does not.
	if err := m2.Attach(t.Context(), id); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, func() bool { return owns(m2) })
	before := passes[0].Load()
	if _, err := m1.ResumeAttached(t.Context()); err != nil {
		t.Fatal(err)
	}
	if owns(m1) {
		t.Fatal("m1 took an infrastructure m2 holds")
	}
	// m2 goes away: m1's scan takes over.
	m2.Close()
	waitUntil(t, func() bool { return owns(m1) && passes[0].Load() > before })
	if o := m1.Ownership(); o.Takeovers < 1 {
		t.Fatalf("takeovers %d, want at least 1", o.Takeovers)
	}
	evs, err := m1.Events(t.Context(), id, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	var owners []string
	for _, e := range evs {
		if e.Kind == EventOwner {
			owners = append(owners, e.To)
		}
	}
	want := []string{m1.owner, m2.owner, m1.owner}
	if len(owners) != len(want) || owners[0] != want[0] || owners[1] != want[1] || owners[2] != want[2] {
		t.Fatalf("owner events %v, want %v", owners, want)
	}
}

// TestShareNeedsLeases: a store that cannot lease cannot be shared.
func TestShareNeedsLeases(t *testing.T) {
	type plain struct{ store.Store }
	dir := t.TempDir()
	_, err := New(Options{Store: plain{openShared(t, filepath.Join(dir, "db"))}, Share: true})
	if err == nil {
		t.Fatal("New accepted Share with a store that does not lease")
	}
}
