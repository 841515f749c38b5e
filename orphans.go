package occopus

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/occopus-go/occopus/engine"
)

// Modes of the periodic sweep for orphans (OrphanOptions.Sweep).
const (
	// SweepRemove reports orphans and removes those of this store once
	// seen for the grace period (the default: every resource carries the
	// id of the store that made it, so another installation's are never
	// touched).
	SweepRemove = "remove"
	// SweepReport only reports (logs and metrics).
	SweepReport = "report"
	// SweepOff turns the periodic sweep off; `occopus orphans` still works.
	SweepOff = "off"
)

// Defaults of OrphanOptions.
const (
	DefaultOrphanGrace    = 10 * time.Minute
	DefaultOrphanInterval = 10 * time.Minute
)

// OrphanOptions configure the sweep for orphans: backend resources
// labelled with an infrastructure or node the store does not know (a
// record lost, a store restored from an older backup, a crash at the wrong
// moment in an older version), which would otherwise run forever.
type OrphanOptions struct {
	// Sweep is what the REST service's periodic sweep does: SweepRemove
	// (default), SweepReport or SweepOff.
	Sweep string
	// Grace is how long an orphan must have been seen by this Manager
	// before it is removed (default 10 minutes; negative: no wait, as
	// `occopus orphans --remove`, where the user asked).
	Grace time.Duration
	// Interval is the time between two periodic sweeps (default 10
	// minutes).
	Interval time.Duration
}

func (o OrphanOptions) withDefaults() OrphanOptions {
	if o.Sweep == "" {
		o.Sweep = SweepRemove
	}
	if o.Grace == 0 {
		o.Grace = DefaultOrphanGrace
	}
	if o.Interval <= 0 {
		o.Interval = DefaultOrphanInterval
	}
	return o
}

// CheckSweep validates an OrphanOptions.Sweep ("" is the default).
func CheckSweep(mode string) error {
	switch mode {
	case "", SweepRemove, SweepReport, SweepOff:
		return nil
	}
	return fmt.Errorf("orphan sweep %q: want %q, %q or %q", mode, SweepRemove, SweepReport, SweepOff)
}

// States of an orphan in an OrphanReport.
const (
	// OrphanFound: this store's, not removed (yet): inside its grace
	// period, a report-only sweep, or a removal that failed (Error).
	OrphanFound = "found"
	// OrphanRemoved: removed by this sweep.
	OrphanRemoved = "removed"
	// OrphanForeign: labelled with another store's id, or none: reported,
	// never removed.
	OrphanForeign = "foreign"
)

// Orphan is one backend resource the store does not account for.
type Orphan struct {
	engine.Orphan
	// FirstSeen is when this Manager first saw it as an orphan.
	FirstSeen time.Time `json:"first_seen"`
	// State is OrphanFound, OrphanRemoved or OrphanForeign.
	State string `json:"state"`
	// Error says why a removal failed.
	Error string `json:"error,omitempty"`
}

// OrphanReport is what a sweep found and did.
type OrphanReport struct {
	// StoreID is this store's id, the label that proves a resource ours.
	StoreID string `json:"store_id"`
	// Orphans, ordered by backend, infrastructure and node.
	Orphans []Orphan `json:"orphans"`
	// Configurations is how many backend configurations were asked.
	Configurations int `json:"configurations"`
	// Failed are the backends that could not be asked, with why.
	Failed []Leftover `json:"failed,omitempty"`
}

// Count returns how many orphans are in a state.
func (r *OrphanReport) Count(state string) int {
	n := 0
	for _, o := range r.Orphans {
		if o.State == state {
			n++
		}
	}
	return n
}

// orphanMemory is what the Manager remembers between sweeps: when it
// first saw each orphan. Memory is enough: a restarted Manager sees every
// orphan anew and waits the grace period again, so a restart can only
// delay a removal, never hasten one.
type orphanMemory struct {
	mu   sync.Mutex // also one sweep at a time
	seen map[string]time.Time
}

func orphanKey(o engine.Orphan) string {
	return o.Backend + "\x00" + o.ID + "\x00" + o.InfraID + "\x00" + o.NodeID
}

// OrphanOptions returns the Manager's sweep options with the defaults
// filled in (the REST service runs its periodic sweep by them).
func (m *Manager) OrphanOptions() OrphanOptions { return m.opt.Orphans.withDefaults() }

// Orphans sweeps for orphans: every backend configuration the store knows
// of is listed, then the store is read, and what it does not account for
// is reported, with when this Manager first saw it. With remove, the
// orphans labelled with this store's id that were first seen at least
// the grace period ago (Options.Orphans.Grace) are removed through their
// backend; foreign ones never are. The error joins the removals that
// failed; backends that could not be asked are in the report's Failed.
func (m *Manager) Orphans(ctx context.Context, remove bool) (out *OrphanReport, err error) {
	defer func() { err = m.clean(err) }()
	if m.opt.Store == nil {
		return nil, ErrNoStore
	}
	o := m.OrphanOptions()
	m.orphans.mu.Lock()
	defer m.orphans.mu.Unlock()
	scan, err := m.eng.FindOrphans(ctx)
	if err != nil {
		return nil, err
	}
	now := m.now()
	seen := make(map[string]time.Time, len(scan.Orphans))
	rep := &OrphanReport{StoreID: scan.StoreID, Configurations: scan.Configurations, Failed: scan.Failed, Orphans: make([]Orphan, 0, len(scan.Orphans))}
	var errs []error
	for _, eo := range scan.Orphans {
		k := orphanKey(eo)
		first, ok := m.orphans.seen[k]
		if !ok {
			first = now
			m.log.Info("orphan found", "backend", eo.Backend, "id", eo.ID, "infra", eo.InfraID, "node_id", eo.NodeID,
				"node", eo.NodeName, "store", eo.StoreID, "foreign", eo.Foreign)
		}
		seen[k] = first
		r := Orphan{Orphan: eo, FirstSeen: first, State: OrphanFound}
		if eo.Foreign {
			r.State = OrphanForeign
		} else if remove && (o.Grace < 0 || now.Sub(first) >= o.Grace) {
			err := m.eng.RemoveOrphan(ctx, eo)
			switch {
			case errors.Is(err, engine.ErrNotOrphan):
				delete(seen, k) // recorded since the listing: not an orphan
				continue
			case err != nil:
				err = m.clean(err)
				r.Error = err.Error()
				errs = append(errs, err)
			default:
				r.State = OrphanRemoved
				delete(seen, k)
			}
		}
		rep.Orphans = append(rep.Orphans, r)
	}
	// Only what this sweep saw is remembered: the map never outgrows
	// what the backends hold.
	m.orphans.seen = seen
	if n := rep.Count(OrphanRemoved); n > 0 || rep.Count(OrphanFound) > 0 {
		m.log.Info("sweep for orphans", "found", rep.Count(OrphanFound), "removed", n, "foreign", rep.Count(OrphanForeign),
			"grace", o.Grace, "remove", remove)
	}
	return rep, errors.Join(errs...)
}
