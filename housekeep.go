package occopus

import (
	"context"
	"fmt"
	"time"

	"github.com/occopus-go/occopus/store"
)

// Defaults of Options.Retention.
const (
	DefaultEventMaxAge    = 30 * 24 * time.Hour
	DefaultEventsPerInfra = 10000
)

// Retention bounds the event log: events older than MaxAge go, and of
// each infrastructure all but the newest PerInfra. Zero fields take the
// defaults; a negative one turns that bound off.
type Retention struct {
	MaxAge   time.Duration
	PerInfra int
}

func (r Retention) withDefaults() Retention {
	if r.MaxAge == 0 {
		r.MaxAge = DefaultEventMaxAge
	}
	if r.PerInfra == 0 {
		r.PerInfra = DefaultEventsPerInfra
	}
	return r
}

// HousekeepingReport says what Housekeep did.
type HousekeepingReport struct {
	// EventsRemoved by the retention bounds.
	EventsRemoved int
}

// Housekeep applies the retention bounds to the event log (and the store
// gives the space back). The REST service runs it at start and then
// every few minutes; a program maintaining infrastructures for long
// should too.
func (m *Manager) Housekeep(ctx context.Context) (*HousekeepingReport, error) {
	if m.opt.Store == nil {
		return nil, ErrNoStore
	}
	r := m.opt.Retention.withDefaults()
	var olderThan time.Time
	if r.MaxAge > 0 {
		olderThan = m.now().Add(-r.MaxAge)
	}
	keep := max(r.PerInfra, 0)
	n, err := m.opt.Store.PruneEvents(ctx, olderThan, keep)
	rep := &HousekeepingReport{EventsRemoved: n}
	if err != nil {
		return rep, fmt.Errorf("prune events: %w", err)
	}
	if n > 0 {
		m.log.Info("events pruned", "removed", n, "max_age", r.MaxAge, "per_infrastructure", r.PerInfra)
	}
	return rep, nil
}

// Check asks the store whether it is whole (its schema and identity
// marker, its integrity), when it can tell (store.Checker). The REST
// service refuses to start on a store that fails it: the infrastructures
// it recorded may still be running.
func (m *Manager) Check(ctx context.Context) error {
	if m.opt.Store == nil {
		return ErrNoStore
	}
	if c, ok := m.opt.Store.(store.Checker); ok {
		return c.Check(ctx)
	}
	return nil
}

func (m *Manager) now() time.Time {
	if m.opt.Now != nil {
		return m.opt.Now()
	}
	return time.Now()
}
