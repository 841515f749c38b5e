package occopus

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/occopus-go/occopus/store"
)

func TestHousekeep(t *testing.T) {
	dir := t.TempDir()
	m := newManager(t, filepath.Join(dir, "db"), dir)
	id := submitHello(t, m)
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	m.opt.Now = func() time.Time { return now }
	for i := range 20 {
		if err := m.opt.Store.AppendEvent(t.Context(), store.Event{InfraID: id, Kind: "test", Time: now.Add(-time.Duration(20-i) * 24 * time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	count := func() int {
		evs, err := m.opt.Store.Events(t.Context(), id, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, ev := range evs {
			if ev.Kind == "test" {
				n++
			}
		}
		return n
	}
	m.opt.Retention = Retention{MaxAge: 10 * 24 * time.Hour, PerInfra: -1}
	rep, err := m.Housekeep(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if got := count(); got != 10 || rep.EventsRemoved < 10 {
		t.Fatalf("after max_age 10 days: %d test events left (want 10: the one exactly 10 days old stays), %d removed", got, rep.EventsRemoved)
	}
	m.opt.Retention = Retention{MaxAge: -1, PerInfra: 3}
	if _, err := m.Housekeep(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := count(); got != 3 {
		t.Fatalf("after per_infrastructure 3: %d test events left", got)
	}
	if err := m.Check(t.Context()); err != nil {
		t.Fatalf("a whole store fails its check: %v", err)
	}
}

// failingCheck is a store whose check fails.
type failingCheck struct{ store.Store }

func (failingCheck) Check(context.Context) error { return store.ErrNoIdentity }

func TestCheckAsksTheStore(t *testing.T) {
	dir := t.TempDir()
	base := newManager(t, filepath.Join(dir, "db"), dir)
	m, err := New(Options{Store: failingCheck{base.opt.Store}})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if err := m.Check(t.Context()); !errors.Is(err, store.ErrNoIdentity) {
		t.Fatalf("Check = %v", err)
	}
}
