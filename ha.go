package occopus

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/occopus-go/occopus/internal/proc"
	"github.com/occopus-go/occopus/store"
)

// ErrLeaseLost: the Manager's lease on an infrastructure ended while it
// worked on it (a renewal was refused, or none succeeded within the ttl
// minus a margin), so the work stopped before its next backend call and
// its writes are fenced. It comes wrapped with ErrBusy.
var ErrLeaseLost = store.ErrLeaseLost

// Kind of the event a replica records when it starts owning an
// infrastructure (To: the owner).
const EventOwner = "infra.owner"

// DefaultScanInterval is how often, at most, a sharing Manager looks
// for infrastructures nobody maintains: a fifth of the lease ttl.
func defaultScan(ttl time.Duration) time.Duration { return max(ttl/5, 100*time.Millisecond) }

// leaseMargin is how long before its ttl runs out a lease counts as lost
// when no renewal succeeded: the store's clock and this host's may
// differ a little, and the work must stop before another replica can
// start.
func leaseMargin(ttl time.Duration) time.Duration { return ttl / 5 }

func leaseKey(id string) string { return "infra:" + id }

// haState is what a sharing Manager keeps of ownership.
type haState struct {
	mu sync.Mutex
	// owned maps the infrastructures whose lease this Manager holds
	// between passes (sharing) to the context that ends when it is lost.
	owned       map[string]context.Context
	leaseLosses atomic.Int64
	takeovers   atomic.Int64
	scanOnce    sync.Once
}

// Ownership is what a Manager owns (see Options.Share).
type Ownership struct {
	// Owner names this Manager in the store's leases (host/pid/start/uuid).
	Owner string `json:"owner"`
	// Shared is Options.Share.
	Shared bool `json:"shared"`
	// Owned lists, sorted, the infrastructures whose lease it holds.
	Owned []string `json:"owned"`
	// LeaseLosses counts leases lost while working (ErrLeaseLost).
	LeaseLosses int64 `json:"lease_losses"`
	// Takeovers counts infrastructures it started to own that another
	// process had maintained before (they had a last pass).
	Takeovers int64 `json:"takeovers"`
}

// Ownership reports what this Manager owns now.
func (m *Manager) Ownership() Ownership {
	m.ha.mu.Lock()
	owned := make([]string, 0, len(m.ha.owned))
	for id := range m.ha.owned {
		owned = append(owned, id)
	}
	m.ha.mu.Unlock()
	slices.Sort(owned)
	return Ownership{Owner: m.owner, Shared: m.opt.Share, Owned: owned,
		LeaseLosses: m.ha.leaseLosses.Load(), Takeovers: m.ha.takeovers.Load()}
}

// ownedCtx returns the context of the ownership of id, nil if not owned.
func (m *Manager) ownedCtx(id string) context.Context {
	m.ha.mu.Lock()
	defer m.ha.mu.Unlock()
	return m.ha.owned[id]
}

// acquire takes the lease on id's key; a holder that died on this host
// (kill -9) is released on its behalf first, instead of waiting for the
// expiry.
func (m *Manager) acquire(ctx context.Context, l store.Leaser, id string) (bool, error) {
	key := leaseKey(id)
	for range 2 {
		got, err := l.Acquire(ctx, key, m.owner, m.opt.LeaseTTL)
		if err != nil || got {
			return got, err
		}
		holder, err := l.Holder(ctx, key)
		if err != nil || holder == "" || proc.Alive(holder) {
			return false, err
		}
		m.log.Info("taking over the lease of a process that is gone", "infra", id, "holder", holder)
		if err := l.Release(ctx, key, holder); err != nil {
			return false, err
		}
	}
	return false, nil
}

// keep renews the lease on id every third of the ttl until stop closes
// or ctx ends. It cancels with ErrLeaseLost when a renewal is refused, or
// when none has succeeded for the ttl minus a margin (the store may be
// out of reach, and its lease ended: another replica may own id by now),
// so that the work stops before its next backend call. A failed renewal
// is retried at the next tick, within that bound.
func (m *Manager) keep(ctx context.Context, l store.Leaser, id string, cancel context.CancelCauseFunc, stop <-chan struct{}) {
	ttl := m.opt.LeaseTTL
	bound := ttl - leaseMargin(ttl)
	deadlineAt := time.Now().Add(bound)
	deadline := time.NewTimer(bound)
	defer deadline.Stop()
	tick := time.NewTicker(ttl / 3)
	defer tick.Stop()
	lost := func(why string) {
		m.ha.leaseLosses.Add(1)
		m.log.Warn("lease lost; work on the infrastructure stops", "infra", id, "why", why)
		cancel(fmt.Errorf("%w: %w: %s", ErrBusy, ErrLeaseLost, why))
	}
	expired := func() { lost(fmt.Sprintf("no renewal succeeded for %v", bound)) }
	for {
		select {
		case <-stop:
			return
		case <-ctx.Done():
			return
		case <-deadline.C:
			expired()
			return
		case <-tick.C:
			start := time.Now()
			// A renewal that hangs (the store out of reach) must not hold
			// up the deadline.
			until := start.Add(ttl / 3)
			if deadlineAt.Before(until) {
				until = deadlineAt
			}
			rctx, rcancel := context.WithDeadline(ctx, until)
			ok, err := l.Renew(rctx, leaseKey(id), m.owner, ttl)
			rcancel()
			switch {
			case ctx.Err() != nil:
				return
			case err == nil && !ok:
				lost("the store says another process holds it, or nobody")
				return
			case err == nil:
				// The store extended it at some time after start.
				deadlineAt = start.Add(bound)
				deadline.Reset(time.Until(deadlineAt))
			case !time.Now().Before(deadlineAt):
				expired()
				return
			default:
				m.log.Warn("lease renewal failed; retrying", "infra", id, "err", err)
			}
		}
	}
}

// ownLoop is the background loop of a sharing Manager: take the lease
// of id, keep it while maintaining id, give it back when maintenance
// stops (detach, shutdown). Without the lease it returns at once: the
// scan tries again when nobody holds it.
func (m *Manager) ownLoop(ctx context.Context, id string) {
	l := m.opt.Store.(store.Leaser)
	// Under the pass lock, and only while attached: a teardown or a pass
	// of this process holding the lease (same owner) must not have it
	// taken and released under it.
	unlock := m.passLocks.Lock(id)
	got, err := m.acquire(ctx, l, id)
	if err == nil && got && !m.stillAttached(ctx, id) {
		l.Release(context.WithoutCancel(ctx), leaseKey(id), m.owner) //nolint:errcheck // expires anyway
		got = false
	}
	unlock()
	if err != nil {
		if ctx.Err() == nil {
			m.log.Warn("taking the lease failed", "infra", id, "err", err)
		}
		return
	}
	if !got {
		return
	}
	octx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stop := make(chan struct{})
	go m.keep(ctx, l, id, cancel, stop)
	fctx := store.WithFence(octx, store.Fence{Key: leaseKey(id), Owner: m.owner})
	m.ha.mu.Lock()
	m.ha.owned[id] = fctx
	m.ha.mu.Unlock()
	if inf, err := m.opt.Store.Infra(fctx, id); err == nil && !inf.LastPass.At.IsZero() {
		m.ha.takeovers.Add(1)
	}
	m.log.Info("owning infrastructure", "infra", id, "owner", m.owner)
	if err := m.opt.Store.AppendEvent(fctx, store.Event{InfraID: id, Kind: EventOwner, To: m.owner,
		Message: "maintained by " + m.owner}); err != nil {
		m.log.Warn("recording the owner failed", "infra", id, "err", err)
	}

	m.loop(fctx, id)

	close(stop)
	m.ha.mu.Lock()
	delete(m.ha.owned, id)
	m.ha.mu.Unlock()
	cause := context.Cause(octx)
	// Logged once the loop returned, that is once no work of this
	// Manager on id is in flight (the HA test relies on it).
	m.log.Info("stopped maintaining infrastructure", "infra", id, "owner", m.owner, "lost", errors.Is(cause, ErrLeaseLost))
	if !errors.Is(cause, ErrLeaseLost) {
		// Under the pass lock: a teardown of this process may hold the
		// lease now under the same owner; it releases it itself.
		unlock := m.passLocks.Lock(id)
		defer unlock()
		if m.ownedCtx(id) != nil {
			return
		}
		rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer rcancel()
		if err := l.Release(rctx, leaseKey(id), m.owner); err != nil {
			m.log.Warn("releasing the lease failed; it expires", "infra", id, "err", err)
		}
	}
}

// stillAttached tells a sharing loop whether id is still attached in the
// store (a detach may have come through another replica). Without
// sharing it is true: Detach stops this process's loop itself.
func (m *Manager) stillAttached(ctx context.Context, id string) bool {
	if !m.opt.Share {
		return true
	}
	inf, err := m.opt.Store.Infra(ctx, id)
	if err != nil {
		return !errors.Is(err, store.ErrNotFound) // an unreachable store is no detach
	}
	if !inf.Attached {
		m.log.Info("detached (perhaps through another replica); maintenance stops", "infra", id)
	}
	return inf.Attached
}

// startSharing starts the scan, once.
func (m *Manager) startSharing() {
	m.ha.scanOnce.Do(func() {
		ctx, cancel := context.WithCancel(context.Background())
		m.mu.Lock()
		if m.closed {
			m.mu.Unlock()
			cancel()
			return
		}
		m.stopScan = cancel
		m.wg.Add(1)
		m.mu.Unlock()
		go func() {
			defer m.wg.Done()
			m.scan(ctx)
		}()
	})
}

// scan looks, every ScanInterval, at the attached infrastructures in the
// store and starts a loop (which takes the lease) for each one nobody
// holds a lease on. Loops stop by themselves when their infrastructure
// is detached or removed (through any replica): each pass begins by
// reading it (stillAttached).
func (m *Manager) scan(ctx context.Context) {
	t := time.NewTicker(m.opt.ScanInterval)
	defer t.Stop()
	for {
		if err := m.scanOnce(ctx); err != nil && ctx.Err() == nil {
			m.log.Warn("scanning the store for unowned infrastructures failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (m *Manager) scanOnce(ctx context.Context) error {
	infras, err := m.opt.Store.Infras(ctx)
	if err != nil {
		return err
	}
	l := m.opt.Store.(store.Leaser)
	var holders map[string]string
	if hl, ok := l.(store.HolderLister); ok {
		if holders, err = hl.Holders(ctx, "infra:"); err != nil {
			return err
		}
	}
	for _, inf := range infras {
		if !inf.Attached || m.Attached(inf.ID) {
			continue
		}
		holder := ""
		if holders != nil {
			holder = holders[leaseKey(inf.ID)]
		} else if holder, err = l.Holder(ctx, leaseKey(inf.ID)); err != nil {
			return err
		}
		if holder == "" || !proc.Alive(holder) {
			m.startLoop(inf.ID)
		}
	}
	return nil
}
