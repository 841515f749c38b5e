package engine

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/occopus-go/occopus/resource"
	"github.com/occopus-go/occopus/store"
)

// Bounds of one sweep for orphans.
const (
	// MaxSweepConfigs is how many backend configurations (distinct
	// resource sections) one sweep asks. Sections that differ only in keys
	// a listing does not depend on (an image, a server name) reach the
	// same backend, so a few dozen cover what a store uses; the rest are
	// named in the scan's Failed and asked by a later sweep.
	MaxSweepConfigs = 64
	// MaxListedInfras is how many infrastructures a backend that cannot
	// list everything it made (a resource.Lister without
	// resource.Sweeper) is asked about, one call each.
	MaxListedInfras = 100
	// sweepParallel bounds the backends listed at once.
	sweepParallel = 4
)

// storeIDCache holds the store's id once it was read: it never changes
// while the store is open.
type storeIDCache struct {
	mu sync.Mutex
	id string
	ok bool
}

// StoreID returns the id of the engine's store (store.Identified), which
// every backend resource is labelled with; "" for a store without one
// (such resources are no store's provably, and never swept).
func (e *Engine) StoreID(ctx context.Context) string {
	e.sid.mu.Lock()
	defer e.sid.mu.Unlock()
	if e.sid.ok {
		return e.sid.id
	}
	idf, ok := e.store.(store.Identified)
	if !ok {
		e.sid.ok = true
		return ""
	}
	id, err := idf.ID(ctx)
	if err != nil {
		// Not cached: the next creation asks again.
		e.log.Warn("reading the store's id failed; resources made now carry none", "err", err)
		return ""
	}
	e.sid.id, e.sid.ok = id, true
	return id
}

// Orphan is a backend resource labelled by occopus that the store does
// not account for: its infrastructure is unknown, or its node id is not
// recorded in it.
type Orphan struct {
	// Backend is the resource type (docker, ec2, ...); ID the backend's
	// id of the resource.
	Backend string `json:"backend"`
	ID      string `json:"id"`
	// InfraID, NodeID, NodeName and StoreID are what its labels say.
	InfraID  string `json:"infra_id"`
	NodeID   string `json:"node_id"`
	NodeName string `json:"node_name,omitempty"`
	StoreID  string `json:"store_id,omitempty"`
	// KnownInfra: its infrastructure is in the store (its node id is not).
	KnownInfra bool `json:"known_infra"`
	// Foreign: labelled with another store's id, or with none (made
	// before store ids, or by a backend that cannot carry one), so not
	// provably this store's: reported, never removed.
	Foreign bool `json:"foreign"`

	handle resource.Handle
	res    map[string]any // the resource section of the handler that found it
}

// OrphanScan is what FindOrphans found.
type OrphanScan struct {
	// StoreID is this store's id ("" when it has none: then every
	// resource is foreign).
	StoreID string
	// Orphans, ordered by backend, infra id and node id.
	Orphans []Orphan
	// Configurations is how many backend configurations were asked.
	Configurations int
	// Failed are the backends that could not be asked, or were left for
	// a later sweep, with why.
	Failed []Leftover
}

// sweepConfig is one backend configuration to ask.
type sweepConfig struct {
	key string
	res map[string]any
}

// FindOrphans lists what every backend configuration the store knows of
// holds under occopus's labels (resource.Sweeper; else resource.Lister
// per known infrastructure), then reads the store and keeps what it does
// not account for. Listing comes first: a record is written before its
// backend is asked to create, so a resource made while the sweep runs has
// its record by the time the store is read, and is never taken for an
// orphan.
//
// The configurations are the resource sections of every recorded
// instance and the untemplated ones of every stored node definition, as
// Destroy gathers them for one infrastructure.
func (e *Engine) FindOrphans(ctx context.Context) (*OrphanScan, error) {
	scan := &OrphanScan{StoreID: e.StoreID(ctx)}
	configs, infraIDs, err := e.sweepConfigs(ctx)
	if err != nil {
		return nil, err
	}
	if len(configs) > MaxSweepConfigs {
		scan.Failed = append(scan.Failed, Leftover{Backend: "*", Error: fmt.Sprintf("%d backend configurations, more than the %d one sweep asks; %d left for a later sweep",
			len(configs), MaxSweepConfigs, len(configs)-MaxSweepConfigs)})
		configs = configs[:MaxSweepConfigs]
	}
	scan.Configurations = len(configs)
	listed := make([][]resource.Owned, len(configs))
	failed := make([]*Leftover, len(configs))
	var jobs []func() error
	for i, c := range configs {
		jobs = append(jobs, func() error {
			listed[i], failed[i] = e.listConfig(ctx, c, infraIDs)
			return nil
		})
	}
	// A job fails only by panicking (limitN recovers it): that backend's
	// listing is lost, the others count.
	if err := limitN(sweepParallel, jobs); err != nil {
		scan.Failed = append(scan.Failed, Leftover{Backend: "*", Error: e.Redact(fmt.Sprintf("listing a backend: %v", err))})
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	// Only now the store: what it knows after every listing ended.
	known, err := e.knownNodes(ctx, listed)
	if err != nil {
		return nil, err
	}
	seen := map[[2]string]bool{}
	for i, owned := range listed {
		if failed[i] != nil {
			scan.Failed = append(scan.Failed, *failed[i])
		}
		typ, _ := configs[i].res["type"].(string)
		for _, o := range owned {
			k := [2]string{typ, o.Handle.ID}
			if o.Handle.ID == "" || seen[k] {
				continue
			}
			seen[k] = true
			nodes, infraKnown := known[o.InfraID]
			if infraKnown && nodes[o.NodeID] {
				continue
			}
			scan.Orphans = append(scan.Orphans, Orphan{Backend: typ, ID: o.Handle.ID, InfraID: o.InfraID, NodeID: o.NodeID,
				NodeName: o.NodeName, StoreID: o.StoreID, KnownInfra: infraKnown,
				Foreign: scan.StoreID == "" || o.StoreID != scan.StoreID, handle: o.Handle, res: configs[i].res})
		}
	}
	slices.SortFunc(scan.Orphans, func(a, b Orphan) int {
		return cmp.Or(strings.Compare(a.Backend, b.Backend), strings.Compare(a.InfraID, b.InfraID),
			strings.Compare(a.NodeID, b.NodeID), strings.Compare(a.ID, b.ID))
	})
	return scan, nil
}

// sweepConfigs gathers the backend configurations the store knows of,
// the node definitions' first (they are few and reach every backend a
// description may use), and the ids of the known infrastructures.
func (e *Engine) sweepConfigs(ctx context.Context) ([]sweepConfig, []string, error) {
	var defs, recorded []sweepConfig
	seen := map[string]bool{}
	add := func(to *[]sweepConfig, res map[string]any) {
		key, err := json.Marshal(res)
		if err != nil || seen[string(key)] {
			return
		}
		seen[string(key)] = true
		*to = append(*to, sweepConfig{key: string(key), res: res})
	}
	types, err := e.store.NodeDefTypes(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("sweep for orphans: node definitions: %w", err)
	}
	for _, typ := range types {
		impls, err := Implementations(ctx, e.store, typ)
		if err != nil {
			e.log.Debug("sweep for orphans: a node definition cannot be read", "type", typ, "err", err)
			continue
		}
		for _, im := range impls {
			if res := im.Section("resource"); res != nil && !templated(res) {
				add(&defs, res)
			}
		}
	}
	infras, err := e.store.Infras(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("sweep for orphans: infrastructures: %w", err)
	}
	ids := make([]string, 0, len(infras))
	for _, inf := range infras {
		ids = append(ids, inf.ID)
		insts, err := e.store.Instances(ctx, inf.ID)
		if err != nil {
			return nil, nil, fmt.Errorf("sweep for orphans: instances of %s: %w", inf.ID, err)
		}
		for _, in := range insts {
			var res map[string]any
			if json.Unmarshal(in.Resource, &res) == nil && res != nil {
				add(&recorded, res)
			}
		}
	}
	for _, l := range [][]sweepConfig{defs, recorded} {
		slices.SortFunc(l, func(a, b sweepConfig) int { return strings.Compare(a.key, b.key) })
	}
	return append(defs, recorded...), ids, nil
}

// listConfig asks one backend configuration for what it holds.
func (e *Engine) listConfig(ctx context.Context, c sweepConfig, infraIDs []string) ([]resource.Owned, *Leftover) {
	typ, _ := c.res["type"].(string)
	h, _, release, err := e.handlerWithAuth(c.res)
	if err != nil {
		// A definition no handler can be made of (credentials missing,
		// say) made nothing either: nothing to look for.
		e.log.Debug("sweep for orphans: no handler for a resource section", "backend", typ, "err", err)
		return nil, nil
	}
	defer release()
	if sw, ok := asSweeper(h); ok {
		owned, err := sw.ListAll(ctx)
		if err != nil {
			return nil, &Leftover{Backend: typ, Error: e.Redact(fmt.Sprintf("list every labelled resource: %v", err))}
		}
		return owned, nil
	}
	l, ok := asLister(h)
	if !ok {
		return nil, nil // nothing to find resources with
	}
	var out []resource.Owned
	var errs []error
	if len(infraIDs) > MaxListedInfras {
		errs = append(errs, fmt.Errorf("%d infrastructures, more than the %d a backend that cannot list everything is asked about", len(infraIDs), MaxListedInfras))
		infraIDs = infraIDs[len(infraIDs)-MaxListedInfras:] // the newest
	}
	for _, id := range infraIDs {
		owned, err := l.List(ctx, id)
		if err != nil {
			errs = append(errs, fmt.Errorf("list infrastructure %s: %w", id, err))
			continue
		}
		out = append(out, owned...)
	}
	if err := errors.Join(errs...); err != nil {
		return out, &Leftover{Backend: typ, Error: e.Redact(err.Error())}
	}
	return out, nil
}

// knownNodes reads, for every infrastructure a listing named that the
// store has, the node ids it records.
func (e *Engine) knownNodes(ctx context.Context, listed [][]resource.Owned) (map[string]map[string]bool, error) {
	known := map[string]map[string]bool{}
	asked := map[string]bool{}
	for _, owned := range listed {
		for _, o := range owned {
			if asked[o.InfraID] {
				continue
			}
			asked[o.InfraID] = true
			nodes, found, err := e.recordedNodes(ctx, o.InfraID)
			if err != nil {
				return nil, fmt.Errorf("sweep for orphans: %w", err)
			}
			if found {
				known[o.InfraID] = nodes
			}
		}
	}
	return known, nil
}

// recordedNodes is the set of node ids the store records for an
// infrastructure; found is false when it has no such infrastructure.
func (e *Engine) recordedNodes(ctx context.Context, infraID string) (map[string]bool, bool, error) {
	if infraID == "" {
		return nil, false, nil
	}
	if _, err := e.store.Infra(ctx, infraID); errors.Is(err, store.ErrNotFound) {
		return nil, false, nil
	} else if err != nil {
		return nil, false, fmt.Errorf("infrastructure %s: %w", infraID, err)
	}
	insts, err := e.store.Instances(ctx, infraID)
	if err != nil {
		return nil, false, fmt.Errorf("instances of %s: %w", infraID, err)
	}
	nodes := make(map[string]bool, len(insts))
	for _, in := range insts {
		nodes[in.NodeID] = true
	}
	return nodes, true, nil
}

// ErrNotOrphan is returned by RemoveOrphan for a resource it must not
// remove: another store's (or no store's), or one the store now records.
var ErrNotOrphan = errors.New("not an orphan of this store")

// RemoveOrphan destroys an orphan FindOrphans found, through the handler
// that found it, after asking the store once more whether it records it
// (and refusing a foreign one): each removal is an "orphan.removed" event
// and a log line.
func (e *Engine) RemoveOrphan(ctx context.Context, o Orphan) error {
	if o.Foreign || o.res == nil {
		return fmt.Errorf("%s %s of infrastructure %s, node %s: %w", o.Backend, o.ID, o.InfraID, o.NodeID, ErrNotOrphan)
	}
	if sid := e.StoreID(ctx); sid == "" || o.StoreID != sid {
		return fmt.Errorf("%s %s is labelled for store %q, this is %q: %w", o.Backend, o.ID, o.StoreID, sid, ErrNotOrphan)
	}
	nodes, found, err := e.recordedNodes(ctx, o.InfraID)
	if err != nil {
		return err
	}
	if found && nodes[o.NodeID] {
		return fmt.Errorf("%s %s: node %s of infrastructure %s is recorded now: %w", o.Backend, o.ID, o.NodeID, o.InfraID, ErrNotOrphan)
	}
	h, _, release, err := e.handlerWithAuth(o.res)
	if err != nil {
		return fmt.Errorf("remove orphan %s %s: %w", o.Backend, o.ID, err)
	}
	defer release()
	if err := h.Destroy(ctx, o.handle); err != nil {
		return fmt.Errorf("remove orphan %s %s (infrastructure %s, node %s): %w", o.Backend, o.ID, o.InfraID, o.NodeID, err)
	}
	why := "its infrastructure is not in the store"
	if found {
		why = "its node is not recorded in its infrastructure"
	}
	e.log.Info("orphan removed", "backend", o.Backend, "id", o.ID, "infra", o.InfraID, "node_id", o.NodeID, "node", o.NodeName, "why", why)
	e.event(ctx, store.Event{InfraID: o.InfraID, NodeName: o.NodeName, NodeID: o.NodeID, Kind: "orphan.removed",
		Message: fmt.Sprintf("removed %s %s: %s", o.Backend, o.ID, why)})
	return nil
}
