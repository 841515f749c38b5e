package storetest

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/occopus-go/occopus/store"
)

// RunLeaser runs the store.Leaser suite. open must return a new leaser with
// no leases each call and arrange for it to be closed (as for Run).
//
// Expiry is tested with short ttls (tens of milliseconds) and sleeps a few
// times as long, so a store's clock must resolve milliseconds.
func RunLeaser(t *testing.T, open func(t *testing.T) store.Leaser) {
	RunLeaserUnit(t, open, 60*time.Millisecond)
}

// RunLeaserUnit is RunLeaser with short leases of short: for stores whose
// leases have a coarser grain (etcd grants whole seconds).
func RunLeaserUnit(t *testing.T, open func(t *testing.T) store.Leaser, short time.Duration) {
	const long = time.Minute
	pause := 3 * short // long enough for a short lease to end
	type step struct {
		op    string // acquire, renew, release, sleep, nap
		owner string
		ttl   time.Duration
		want  bool // result of acquire/renew
	}
	acq := func(owner string, ttl time.Duration, want bool) step { return step{"acquire", owner, ttl, want} }
	ren := func(owner string, ttl time.Duration, want bool) step { return step{"renew", owner, ttl, want} }
	rel := func(owner string) step { return step{op: "release", owner: owner} }
	sleep := step{op: "sleep"}
	nap := step{op: "nap"} // short: less than a 2*short lease

	tests := []struct {
		name  string
		steps []step
	}{
		{"acquire free", []step{acq("a", long, true)}},
		{"contend", []step{acq("a", long, true), acq("b", long, false), acq("c", short, false)}},
		{"reacquire by holder extends", []step{acq("a", short, true), acq("a", long, true), sleep, acq("b", long, false)}},
		{"expire", []step{acq("a", short, true), sleep, acq("b", long, true), acq("a", long, false)}},
		{"renew by holder", []step{acq("a", short, true), ren("a", long, true), sleep, acq("b", long, false), ren("a", long, true)}},
		{"renew keeps it alive", []step{
			acq("a", 2*short, true), nap, ren("a", 2*short, true), nap, ren("a", 2*short, true), nap,
			ren("a", 2*short, true), acq("b", long, false),
		}},
		{"renew by other refused", []step{acq("a", long, true), ren("b", long, false), acq("b", long, false)}},
		{"renew free refused", []step{ren("a", long, false), acq("b", long, true)}},
		{"renew after expiry refused", []step{acq("a", short, true), sleep, ren("a", long, false), acq("b", long, true)}},
		{"release", []step{acq("a", long, true), rel("a"), acq("b", long, true)}},
		{"release by other refused", []step{acq("a", long, true), rel("b"), acq("b", long, false), ren("a", long, true)}},
		{"release free", []step{rel("a"), acq("a", long, true)}},
		{"release twice", []step{acq("a", long, true), rel("a"), rel("a"), acq("b", long, true)}},
		{"release after expiry and takeover", []step{
			acq("a", short, true), sleep, acq("b", long, true), rel("a"), acq("c", long, false), ren("b", long, true),
		}},
		{"renew after release refused", []step{acq("a", long, true), rel("a"), ren("a", long, false)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// A lease's holder that is refused although less than its
			// ttl went by since it was granted is a failure; if more went
			// by (this process was stalled: a loaded machine, -race), the
			// expectation did not hold and the case runs again.
			run := func(l store.Leaser) (stalled bool) {
				ctx := t.Context()
				var (
					holder    string
					grantedAt time.Time // before the call that granted it
					grantTTL  time.Duration
				)
				for i, st := range tc.steps {
					var (
						got bool
						err error
					)
					start := time.Now()
					switch st.op {
					case "acquire":
						got, err = l.Acquire(ctx, "k", st.owner, st.ttl)
					case "renew":
						got, err = l.Renew(ctx, "k", st.owner, st.ttl)
					case "release":
						err = l.Release(ctx, "k", st.owner)
					case "sleep":
						time.Sleep(pause)
						continue
					case "nap":
						time.Sleep(short)
						continue
					}
					if err != nil {
						t.Fatalf("step %d %s(%s): %v", i, st.op, st.owner, err)
					}
					if st.op != "release" && got != st.want {
						if since := time.Since(grantedAt); st.want && st.owner == holder && since >= grantTTL {
							t.Logf("step %d %s(%s) refused %v after a lease of %v was granted: stalled, again",
								i, st.op, st.owner, since.Round(time.Millisecond), grantTTL)
							return true
						}
						t.Fatalf("step %d %s(%s, %v) = %v, want %v", i, st.op, st.owner, st.ttl, got, st.want)
					}
					switch {
					case got:
						holder, grantedAt, grantTTL = st.owner, start, st.ttl
					case st.op == "release" && st.owner == holder:
						holder = ""
					}
				}
				return false
			}
			for attempt := 1; run(open(t)); attempt++ {
				if attempt == 5 {
					t.Fatal("stalled beyond a lease's ttl 5 times")
				}
			}
		})
	}

	t.Run("keys independent", func(t *testing.T) {
		l := open(t)
		ctx := t.Context()
		for _, k := range []string{"k1", "k2", "k 3/with:odd*chars?"} {
			if ok, err := l.Acquire(ctx, k, "a", long); err != nil || !ok {
				t.Fatalf("acquire %q by a: %v %v", k, ok, err)
			}
			if ok, err := l.Acquire(ctx, k, "b", long); err != nil || ok {
				t.Fatalf("acquire held %q by b: %v %v", k, ok, err)
			}
		}
		if err := l.Release(ctx, "k1", "a"); err != nil {
			t.Fatal(err)
		}
		if ok, err := l.Acquire(ctx, "k2", "b", long); err != nil || ok {
			t.Fatalf("releasing k1 freed k2: %v %v", ok, err)
		}
	})

	t.Run("holder", func(t *testing.T) {
		l := open(t)
		ctx := t.Context()
		if h, err := l.Holder(ctx, "h"); err != nil || h != "" {
			t.Fatalf("holder of a free key: %q %v", h, err)
		}
		if ok, err := l.Acquire(ctx, "h", "a", long); err != nil || !ok {
			t.Fatalf("acquire: %v %v", ok, err)
		}
		if h, err := l.Holder(ctx, "h"); err != nil || h != "a" {
			t.Fatalf("holder %q %v, want a", h, err)
		}
		if ok, err := l.Acquire(ctx, "short", "a", short/3); err != nil || !ok {
			t.Fatalf("acquire short: %v %v", ok, err)
		}
		time.Sleep(pause)
		if h, err := l.Holder(ctx, "short"); err != nil || h != "" {
			t.Fatalf("holder of an expired lease: %q %v", h, err)
		}
		if err := l.Release(ctx, "h", "a"); err != nil {
			t.Fatal(err)
		}
		if h, _ := l.Holder(ctx, "h"); h != "" {
			t.Fatalf("holder after release: %q", h)
		}
	})

	t.Run("bad arguments", func(t *testing.T) {
		l := open(t)
		ctx := t.Context()
		calls := map[string]func() error{
			"empty key":   func() error { _, err := l.Acquire(ctx, "", "a", long); return err },
			"empty owner": func() error { _, err := l.Acquire(ctx, "k", "", long); return err },
			"zero ttl":    func() error { _, err := l.Acquire(ctx, "k", "a", 0); return err },
			"tiny ttl":    func() error { _, err := l.Acquire(ctx, "k", "a", time.Microsecond); return err },
			"renew ttl":   func() error { _, err := l.Renew(ctx, "k", "a", -time.Second); return err },
			"release":     func() error { return l.Release(ctx, "k", "") },
		}
		for name, call := range calls {
			if err := call(); !errors.Is(err, store.ErrBadLease) {
				t.Errorf("%s: %v, want ErrBadLease", name, err)
			}
		}
	})

	t.Run("one winner", func(t *testing.T) {
		l := open(t)
		ctx := t.Context()
		const workers, rounds = 32, 5
		for round := range rounds {
			key := fmt.Sprint("race-", round)
			var (
				wg      sync.WaitGroup
				winners atomic.Int32
				start   = make(chan struct{})
				errs    = make(chan error, workers)
			)
			for w := range workers {
				wg.Go(func() {
					<-start
					ok, err := l.Acquire(ctx, key, fmt.Sprint("w", w), long)
					if err != nil {
						errs <- err
						return
					}
					if ok {
						winners.Add(1)
					}
				})
			}
			close(start)
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			if n := winners.Load(); n != 1 {
				t.Fatalf("round %d: %d winners, want 1", round, n)
			}
		}
	})

	// A lease passed around: each worker loops acquire/work/release; the
	// critical sections must never overlap.
	t.Run("mutual exclusion", func(t *testing.T) {
		l := open(t)
		ctx := t.Context()
		const workers, each = 8, 5
		var (
			wg     sync.WaitGroup
			inside atomic.Int32
			done   atomic.Int32
			errs   = make(chan error, workers)
		)
		deadline := time.Now().Add(30 * time.Second)
		for w := range workers {
			wg.Go(func() {
				owner := fmt.Sprint("w", w)
				for n := 0; n < each; {
					if time.Now().After(deadline) {
						errs <- fmt.Errorf("%s: starved", owner)
						return
					}
					ok, err := l.Acquire(ctx, "mutex", owner, long)
					if err != nil {
						errs <- err
						return
					}
					if !ok {
						time.Sleep(time.Millisecond)
						continue
					}
					if inside.Add(1) != 1 {
						errs <- fmt.Errorf("%s: two holders at once", owner)
					}
					time.Sleep(time.Millisecond)
					inside.Add(-1)
					if err := l.Release(ctx, "mutex", owner); err != nil {
						errs <- err
						return
					}
					done.Add(1)
					n++
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		if n := done.Load(); !t.Failed() && n != workers*each {
			t.Fatalf("%d critical sections, want %d", n, workers*each)
		}
	})
}
