// Package store keeps what the orchestrator knows: node definitions,
// infrastructures, node instances, scaling requests and the event log.
// Implementations live in sub-packages (sqlite, redis); one conformance suite
// (storetest) runs against each.
//
// Every method that changes more than one record is atomic: readers in this
// or other processes see all of the change or none of it.
package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"
)

// Sentinel errors. Implementations wrap them with %w.
var (
	ErrNotFound = errors.New("not found")
	ErrExists   = errors.New("already exists")
	// ErrNoIdentity: the database holds no store schema, or its identity
	// marker is missing or not the one seen when it was opened. It is
	// refused rather than used as an empty store, because the
	// infrastructures recorded in what was lost may still be running.
	ErrNoIdentity = errors.New("no store schema or identity marker")
	// ErrTooLarge: a value is over the store's bound for it (MaxNotify).
	ErrTooLarge = errors.New("too large")
)

// Origins of a description (Infra.Origin).
const (
	// OriginLocal: read from this host's files (the CLI). "" means the same.
	OriginLocal = "local"
	// OriginNetwork: received over the REST service.
	OriginNetwork = "network"
)

// CheckOrigin validates an Infra.Origin; the stores refuse other values,
// so that a typo cannot pass for a local description.
func CheckOrigin(origin string) error {
	switch origin {
	case "", OriginLocal, OriginNetwork:
		return nil
	}
	return fmt.Errorf("origin %q: want %q, %q or none", origin, OriginLocal, OriginNetwork)
}

// Results of a maintenance pass (PassStatus.Result).
const (
	// PassOK: the infrastructure is as described.
	PassOK = "ok"
	// PassRequeue: nothing failed, but instances are still pending, so
	// the next pass should come soon.
	PassRequeue = "requeue"
	// PassError: the pass failed in a way worth retrying (with backoff).
	PassError = "error"
	// PassTerminal: the pass cannot succeed until the description or the
	// configuration changes (no backend, a bad stored description,
	// missing credentials).
	PassTerminal = "terminal"
	// PassPanic: the pass panicked and was recovered.
	PassPanic = "panic"
)

// Bounds of what SetPassStatus and SetNotify store.
const (
	// MaxPassError is how many bytes of PassStatus.Error are kept; a
	// longer one is cut (CutString).
	MaxPassError = 4 << 10
	// MaxNotify is the largest Infra.Notify accepted, in bytes; a larger
	// one is refused with ErrTooLarge, as notify properties are small and
	// a large value would be read with every Infra.
	MaxNotify = 64 << 10
)

// LegacyNotifyKind is the kind of the events in which the REST service
// kept an infrastructure's notify properties before Infra.Notify. The
// stores import the newest one of each infrastructure into Notify once,
// when they upgrade a store written before Notify (SQLite: migration 9;
// Redis: layout version 2), unless it is JSON null or over MaxNotify (an
// older one is no substitute: the newest was in force). The events
// themselves are left to PruneEvents.
const LegacyNotifyKind = "rest.notify"

// PassStatus is the result of an infrastructure's last maintenance pass,
// kept in the store so that every process (the service, a CLI maintain,
// another replica) shows the same.
type PassStatus struct {
	// Result is PassOK, PassRequeue, PassError, PassTerminal or PassPanic.
	Result string `json:"result"`
	// Error says what went wrong (none for PassOK); at most MaxPassError
	// bytes of it are stored. The store keeps it as given: scrubbing
	// secrets from it is the caller's job.
	Error string `json:"error,omitempty"`
	// At is when the pass ended.
	At time.Time `json:"at"`
	// Failures counts consecutive passes that were not PassOK, this one
	// included, for backoff; 0 with PassOK.
	Failures int `json:"failures,omitempty"`
}

// Check validates a PassStatus for SetPassStatus, which refuses one that
// fails it: Result must be one of the Pass* values, Failures not
// negative, and 0 with PassOK.
func (p PassStatus) Check() error {
	switch p.Result {
	case PassOK, PassRequeue, PassError, PassTerminal, PassPanic:
	default:
		return fmt.Errorf("pass result %q: want %q, %q, %q, %q or %q",
			p.Result, PassOK, PassRequeue, PassError, PassTerminal, PassPanic)
	}
	if p.Failures < 0 {
		return fmt.Errorf("pass failures %d < 0", p.Failures)
	}
	if p.Result == PassOK && p.Failures != 0 {
		return fmt.Errorf("pass failures %d with result %q: an ok pass ends a run of failures", p.Failures, PassOK)
	}
	return nil
}

// CheckNotify validates notify properties for SetNotify and returns what
// to store: nil for none (nil, empty or JSON null), else props unchanged.
// More than MaxNotify bytes are refused with an error wrapping
// ErrTooLarge, before they are parsed; invalid JSON with another error.
// The errors do not quote props, which may hold a webhook's credentials.
func CheckNotify(props json.RawMessage) (json.RawMessage, error) {
	if len(props) > MaxNotify {
		return nil, fmt.Errorf("notify properties of %d bytes, more than %d: %w", len(props), MaxNotify, ErrTooLarge)
	}
	if len(props) == 0 {
		return nil, nil
	}
	if !json.Valid(props) {
		return nil, errors.New("notify properties: invalid JSON")
	}
	if string(bytes.TrimSpace(props)) == "null" {
		return nil, nil
	}
	return props, nil
}

// CutString returns s if it has at most limit bytes, else its longest
// prefix that ends at a rune boundary and leaves room for "…", followed
// by "…": at most limit bytes in all (a limit below 3 counts as 3). Bytes
// that are not UTF-8 count as runes of their own, as in utf8.DecodeRune.
func CutString(s string, limit int) string {
	const ellipsis = "…"
	if len(s) <= limit {
		return s
	}
	n := max(limit-len(ellipsis), 0)
	// s[n] belongs to the rune starting at the nearest rune start at most
	// utf8.UTFMax-1 bytes back, if that rune reaches past n; a rune start
	// at n is a boundary, and so is n with none in reach.
	for p := n; p >= 0 && p > n-utf8.UTFMax; p-- {
		if utf8.RuneStart(s[p]) {
			if _, w := utf8.DecodeRuneInString(s[p:]); p+w > n {
				n = p
			}
			break
		}
	}
	return s[:n] + ellipsis
}

// Instance states (DESIGN.md).
const (
	StateCreating   = "creating"
	StatePending    = "pending"
	StateReady      = "ready"
	StateFailed     = "failed"
	StateShutdown   = "shutdown"
	StateUnknown    = "unknown"
	StateDestroying = "destroying"
)

// Infra is one infrastructure.
type Infra struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	// Description is the infrastructure description as submitted, with
	// imports resolved, in canonical JSON. Opaque to the store.
	Description json.RawMessage `json:"description"`
	// Targets is the stored target instance count per node name.
	Targets map[string]int `json:"targets,omitempty"`
	// Attached is true while the infrastructure should be maintained
	// continuously (REST attach/detach).
	Attached bool `json:"attached"`
	// Origin says where Description came from, so that the policy for it
	// follows it to whichever process runs a pass: "" or OriginLocal for a
	// description read from this host's files, OriginNetwork for one
	// received over the REST service. CreateInfra stores it and UpdateInfra
	// replaces it like the description it belongs to (a read-modify-write
	// keeps it); records written before it existed read as "". Other
	// values are refused (CheckOrigin).
	Origin    string    `json:"origin,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	// LastPass is the result of the last maintenance pass; zero before
	// the first one. Infra and Infras read it; only SetPassStatus writes
	// it (CreateInfra and UpdateInfra ignore it, and UpdateInfra keeps
	// what is stored).
	LastPass PassStatus `json:"last_pass,omitzero"`
	// Notify holds the infrastructure's notify properties (REST), a JSON
	// document opaque to the store, at most MaxNotify bytes; nil when none
	// are set. Read like LastPass, written only by SetNotify, removed with
	// the infrastructure. It may hold a webhook's credentials: not for
	// logs or error messages.
	Notify json.RawMessage `json:"notify,omitempty"`
}

// Instance is one node instance of an infrastructure.
type Instance struct {
	InfraID  string `json:"infra_id"`
	NodeID   string `json:"node_id"`
	NodeName string `json:"node_name"`
	State    string `json:"state"`
	// Backend is the resource type (docker, local, ec2, ...).
	Backend string `json:"backend"`
	// Impl is the index of the chosen implementation in the node definition.
	Impl int `json:"impl"`
	// Resource is the rendered resource section the instance was made from,
	// so any process can rebuild its handler to inspect or destroy it.
	Resource json.RawMessage `json:"resource,omitempty"`
	// Handle is the backend's handle (resource.Handle as JSON); empty until
	// the backend answered Create.
	Handle json.RawMessage `json:"handle,omitempty"`
	// Address and PrivAddress as last seen.
	Address     string `json:"address,omitempty"`
	PrivAddress string `json:"priv_address,omitempty"`
	// FailingSince is when health checks started failing without pause;
	// zero while healthy.
	FailingSince time.Time `json:"failing_since,omitzero"`
	// Error is the last error seen for this instance.
	Error string `json:"error,omitempty"`
	// Owner names the process creating the instance (host/pid/start) while
	// it is `creating`, so others can tell a creation in flight from one
	// whose process died.
	Owner     string    `json:"owner,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// ScaleRequest asks the next maintenance pass to change a node's count.
type ScaleRequest struct {
	ID       int64  `json:"id"`
	InfraID  string `json:"infra_id"`
	NodeName string `json:"node_name"`
	// Delta is +1 per scale-up, -1 per scale-down; 0 with Set for absolute.
	Delta int `json:"delta,omitempty"`
	// Set, when non-nil, is an absolute target (scaleto).
	Set *int `json:"set,omitempty"`
	// Victim names the instance to remove (node id or IP) for a scale-down.
	Victim    string    `json:"victim,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

// Event is one entry of the event log.
type Event struct {
	Seq      int64           `json:"seq"`
	Time     time.Time       `json:"time"`
	InfraID  string          `json:"infra_id"`
	NodeName string          `json:"node_name,omitempty"`
	NodeID   string          `json:"node_id,omitempty"`
	Kind     string          `json:"kind"` // e.g. "instance.state", "infra.created"
	From     string          `json:"from,omitempty"`
	To       string          `json:"to,omitempty"`
	Message  string          `json:"message,omitempty"`
	Data     json.RawMessage `json:"data,omitempty"`
}

// Store is the persistence interface. Methods take ctx first; all are safe
// for concurrent use, also across processes sharing one database.
type Store interface {
	// PutNodeDefs replaces, in one transaction, the definitions of every
	// type named in defs (Occopus import semantics). A definition is the
	// JSON list of implementations. Types not named are kept.
	PutNodeDefs(ctx context.Context, defs map[string]json.RawMessage) error
	// NodeDef returns the definition of a type, or ErrNotFound.
	NodeDef(ctx context.Context, typ string) (json.RawMessage, error)
	// NodeDefTypes lists the stored types, sorted.
	NodeDefTypes(ctx context.Context) ([]string, error)

	// CreateInfra stores a new infrastructure, without LastPass or Notify
	// (they are ignored: see SetPassStatus, SetNotify); ErrExists if the id
	// is taken.
	CreateInfra(ctx context.Context, in Infra) error
	// UpdateInfra replaces name, description, origin, targets and attached
	// of an existing infrastructure, keeping its LastPass and Notify;
	// ErrNotFound if missing.
	UpdateInfra(ctx context.Context, in Infra) error
	// Infra returns one infrastructure or ErrNotFound.
	Infra(ctx context.Context, id string) (Infra, error)
	// Infras lists all infrastructures ordered by creation time.
	Infras(ctx context.Context) ([]Infra, error)
	// UpdateTargets stores the target counts of an infrastructure and
	// removes the scale requests they consumed, in one transaction (so a
	// request is never applied twice); ErrNotFound if the infra is missing.
	UpdateTargets(ctx context.Context, infraID string, targets map[string]int, consumed []int64) error
	// DeleteInfra removes everything of the infrastructure in one
	// transaction: its record, instances, pending scaling requests and
	// events (from the log of all events too); ErrNotFound if missing, and
	// then nothing is removed. Its LastPass and Notify, being part of the
	// record, go with it. Events appended for the id afterwards (say,
	// "infra.destroyed") are new and kept, subject to PruneEvents.
	DeleteInfra(ctx context.Context, id string) error
	// SetPassStatus stores s as the infrastructure's LastPass, replacing
	// the one stored, in one atomic write of that record alone (a pass
	// calls it every time): readers see the old status or the new one,
	// whole. Error is cut to MaxPassError bytes (CutString); a zero At is
	// set to the current time. Nothing else of the record changes, not
	// UpdatedAt either. It returns ErrNotFound if the infrastructure is
	// missing, and an error (storing nothing) if s fails PassStatus.Check.
	// The last call wins; the store does not compare At.
	SetPassStatus(ctx context.Context, id string, s PassStatus) error
	// SetNotify stores props as the infrastructure's Notify, replacing
	// what is stored, in one atomic write of that record alone; nil, empty
	// or JSON null clears it (Notify reads nil). Nothing else of the record
	// changes, not UpdatedAt either. props must be valid JSON, stored byte
	// for byte, of at most MaxNotify bytes: more is refused with an error
	// wrapping ErrTooLarge, invalid JSON with another error, and then
	// nothing is stored. It returns ErrNotFound if the infrastructure is
	// missing.
	SetNotify(ctx context.Context, id string, props json.RawMessage) error

	// PutInstance inserts or replaces an instance record. The infrastructure
	// must exist (ErrNotFound otherwise).
	PutInstance(ctx context.Context, in Instance) error
	// PutInstances writes, in one transaction, every record of ins (as
	// PutInstance does) and appends every event of evs (as AppendEvent
	// does, in order): readers see all of it or none. When an
	// infrastructure of ins is missing it returns ErrNotFound and writes
	// nothing. The engine writes a level's `creating` records with it
	// before the first backend call of the level, so that 100 creations
	// cost one commit instead of 100 while every record still exists
	// before its call. Empty ins and evs is a no-op. A store whose
	// transactions are bounded (etcd: 128 operations) may write a large
	// batch as several transactions in order, after checking every
	// infrastructure; it says so in its documentation.
	PutInstances(ctx context.Context, ins []Instance, evs []Event) error
	// Instance returns one instance or ErrNotFound.
	Instance(ctx context.Context, infraID, nodeID string) (Instance, error)
	// Instances lists the instances of an infrastructure ordered by creation.
	Instances(ctx context.Context, infraID string) ([]Instance, error)
	// DeleteInstance removes one instance record; missing is not an error.
	DeleteInstance(ctx context.Context, infraID, nodeID string) error

	// AddScaleRequest stores a request and returns it with its id set.
	AddScaleRequest(ctx context.Context, r ScaleRequest) (ScaleRequest, error)
	// ScaleRequests lists pending requests of an infrastructure, oldest first.
	ScaleRequests(ctx context.Context, infraID string) ([]ScaleRequest, error)
	// DeleteScaleRequests removes the given requests (consumed).
	DeleteScaleRequests(ctx context.Context, infraID string, ids []int64) error

	// AppendEvent adds an event; Seq and (if zero) Time are set by the store.
	AppendEvent(ctx context.Context, e Event) error
	// Events returns events of an infrastructure (all when infraID is "")
	// with Seq > after, oldest first, at most limit (0 = no limit).
	Events(ctx context.Context, infraID string, after int64, limit int) ([]Event, error)
	// PruneEvents removes the events whose Time is before olderThan (zero:
	// no age bound) and, per InfraID, all but the newest (highest Seq)
	// keepPerInfra (0: no count bound). Events are grouped by InfraID
	// whether or not the store holds that infrastructure: those without
	// one, and those appended after a DeleteInfra, are groups too. Every
	// kind of event goes alike, so nothing may rely on an old event staying.
	// It returns how many it removed. Work is done in batches, each one
	// transaction on one group's events, so a call never holds the store
	// for long; a reader sees each event either there or gone, in the
	// per-infrastructure and the all-events view alike. An error (or the
	// end of ctx) stops it, with the batches done so far kept and counted.
	// keepPerInfra < 0 is an error. Stores that keep freed space (sqlite)
	// give it back to the file system here, also what DeleteInfra freed.
	PruneEvents(ctx context.Context, olderThan time.Time, keepPerInfra int) (removed int, err error)

	Close() error
}

// Checker is implemented by stores that can verify that they are whole
// and still the store they were when opened (sqlite: PRAGMA quick_check
// and the identity marker; redis: the identity marker). The service calls
// it at start, before maintaining anything:
//
//	if c, ok := s.(store.Checker); ok { err = c.Check(ctx) }
//
// A lost marker is reported wrapping ErrNoIdentity.
type Checker interface {
	Check(ctx context.Context) error
}

// Identified is implemented by stores that carry an identity marker
// (sqlite: table meta; redis: the meta hash): ID returns the store's id, a
// UUID made when the store was first created and kept with its data, the
// one read when it was opened. Every backend resource is labelled with it,
// so that a sweep for orphans can tell what this store made from what
// another installation sharing the Docker engine or cloud account made:
//
//	if s, ok := st.(store.Identified); ok { id, err = s.ID(ctx) }
//
// Two stores restored from one backup share an id; so do the processes
// and replicas sharing one database, which are one store.
type Identified interface {
	ID(ctx context.Context) (string, error)
}

// Revisioned is implemented by stores that tell cheaply whether anything
// changed: Revision returns a number that is larger than one returned
// earlier whenever a write of this process through this store was
// committed in between (read-your-writes), and, within a bounded delay,
// when another process sharing the database committed one (sqlite: its
// own count of writes, plus PRAGMA data_version read at most every
// millisecond on a connection of its own). An equal number means nothing
// changed, as far as the store can tell yet. It is read before a read
// whose result is kept in memory (the REST service's view), and that
// result is used only while the number stays.
//
//	if r, ok := st.(store.Revisioned); ok { rev, err = r.Revision(ctx) }
type Revisioned interface {
	Revision(ctx context.Context) (uint64, error)
}
