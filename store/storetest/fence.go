package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/occopus-go/occopus/store"
)

// LeasingStore is a store that leases, as the fencing suite needs.
type LeasingStore interface {
	store.Store
	store.Leaser
}

// RunFence checks that writes made under a store.Fence succeed while the
// fence's owner holds the lease and are refused with store.ErrFenced,
// changing nothing, once another owner took it over.
func RunFence(t *testing.T, open func(t *testing.T) LeasingStore) {
	const key = "infra:x"
	writes := []struct {
		name string
		fn   func(ctx context.Context, s store.Store) error
		// changed reports whether the write took effect.
		changed func(ctx context.Context, t *testing.T, s store.Store) bool
	}{
		{"PutInstance", func(ctx context.Context, s store.Store) error {
			return s.PutInstance(ctx, instance("x", "late", t1))
		}, func(ctx context.Context, t *testing.T, s store.Store) bool {
			_, err := s.Instance(ctx, "x", "late")
			return err == nil
		}},
		{"DeleteInstance", func(ctx context.Context, s store.Store) error {
			return s.DeleteInstance(ctx, "x", "keep")
		}, func(ctx context.Context, t *testing.T, s store.Store) bool {
			_, err := s.Instance(ctx, "x", "keep")
			return errors.Is(err, store.ErrNotFound)
		}},
		{"SetPassStatus", func(ctx context.Context, s store.Store) error {
			return s.SetPassStatus(ctx, "x", store.PassStatus{Result: store.PassError, Error: "stale", At: t1, Failures: 1})
		}, func(ctx context.Context, t *testing.T, s store.Store) bool {
			in, err := s.Infra(ctx, "x")
			must(t, err)
			return in.LastPass.Error == "stale"
		}},
		{"UpdateTargets", func(ctx context.Context, s store.Store) error {
			return s.UpdateTargets(ctx, "x", map[string]int{"n": 7}, nil)
		}, func(ctx context.Context, t *testing.T, s store.Store) bool {
			in, err := s.Infra(ctx, "x")
			must(t, err)
			return in.Targets["n"] == 7
		}},
		{"AppendEvent", func(ctx context.Context, s store.Store) error {
			return s.AppendEvent(ctx, store.Event{InfraID: "x", Kind: "k", Message: "stale"})
		}, func(ctx context.Context, t *testing.T, s store.Store) bool {
			evs, err := s.Events(ctx, "x", 0, 0)
			must(t, err)
			return len(evs) > 0
		}},
		{"DeleteInfra", func(ctx context.Context, s store.Store) error {
			return s.DeleteInfra(ctx, "x")
		}, func(ctx context.Context, t *testing.T, s store.Store) bool {
			_, err := s.Infra(ctx, "x")
			return errors.Is(err, store.ErrNotFound)
		}},
	}
	for _, w := range writes {
		t.Run(w.name, func(t *testing.T) {
			s := open(t)
			ctx := t.Context()
			must(t, s.CreateInfra(ctx, infra("x", t0)))
			must(t, s.PutInstance(ctx, instance("x", "keep", t0)))
			ok, err := s.Acquire(ctx, key, "a", time.Minute)
			must(t, err)
			if !ok {
				t.Fatal("acquire by a refused")
			}
			fa := store.WithFence(ctx, store.Fence{Key: key, Owner: "a"})
			// Held: a fenced write passes (then set up again).
			if w.name != "DeleteInfra" {
				must(t, w.fn(fa, s))
				if !w.changed(ctx, t, s) {
					t.Fatal("a write under a held fence did not take effect")
				}
				must(t, s.DeleteInfra(ctx, "x"))
				must(t, s.CreateInfra(ctx, infra("x", t0)))
				must(t, s.PutInstance(ctx, instance("x", "keep", t0)))
			}
			// a loses the lease to b.
			must(t, s.Release(ctx, key, "a"))
			if ok, err := s.Acquire(ctx, key, "b", time.Minute); err != nil || !ok {
				t.Fatalf("acquire by b: %v %v", ok, err)
			}
			err = w.fn(fa, s)
			if !errors.Is(err, store.ErrFenced) {
				t.Fatalf("write by a after b took the lease: %v, want ErrFenced", err)
			}
			if w.changed(ctx, t, s) {
				t.Fatal("a fenced write took effect")
			}
			// b's fence passes.
			fb := store.WithFence(ctx, store.Fence{Key: key, Owner: "b"})
			must(t, w.fn(fb, s))
		})
	}
	t.Run("unfenced writes pass", func(t *testing.T) {
		s := open(t)
		ctx := t.Context()
		if ok, err := s.Acquire(ctx, key, "b", time.Minute); err != nil || !ok {
			t.Fatalf("acquire by b: %v %v", ok, err)
		}
		must(t, s.CreateInfra(ctx, infra("x", t0)))
		must(t, s.SetNotify(ctx, "x", json.RawMessage(`{"a":1}`)))
	})
}
