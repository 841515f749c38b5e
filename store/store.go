// Package store keeps what the orchestrator knows: node definitions,
// infrastructures, node instances, scaling requests and the event log.
// Implementations live in sub-packages (sqlite, redis); one conformance suite
// (storetest) runs against each.
//
// Every method that changes more than one record is atomic: readers in this
// or other processes see all of the change or none of it.
package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
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

	// CreateInfra stores a new infrastructure; ErrExists if the id is taken.
	CreateInfra(ctx context.Context, in Infra) error
	// UpdateInfra replaces name, description, origin, targets and attached
	// of an existing infrastructure; ErrNotFound if missing.
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
	// then nothing is removed. Events appended for the id afterwards (say,
	// "infra.destroyed") are new and kept, subject to PruneEvents.
	DeleteInfra(ctx context.Context, id string) error

	// PutInstance inserts or replaces an instance record. The infrastructure
	// must exist (ErrNotFound otherwise).
	PutInstance(ctx context.Context, in Instance) error
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
