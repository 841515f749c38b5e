// Package resource defines the contract between the engine and the backends
// that run node instances (docker, local processes, EC2, Nova, ...), and the
// registry through which each backend package makes itself known.
//
// A backend lives in its own sub-package and registers itself once, from
// init(), with a Plugin value: its YAML `type:`, the schema of its resource
// section and its constructor (see docs/DESIGN.md, "How to add a backend").
package resource

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"

	"github.com/occopus-go/occopus/descr"
	"github.com/occopus-go/occopus/plugin"
)

// ErrNotFound is returned by State and Addresses when the backend no longer
// has the instance. Destroy never returns it: gone is success.
var ErrNotFound = errors.New("instance not found at the backend")

// State is what the backend says of an instance, before health checks.
type State string

const (
	StatePending  State = "pending"  // being created or booting
	StateRunning  State = "running"  // up; health checks decide readiness
	StateShutdown State = "shutdown" // stopped, exited, terminated
	StateFailed   State = "failed"   // the backend reports an error
	StateUnknown  State = "unknown"  // the backend gave no usable answer
)

// Spec is everything a backend needs to create one node instance.
type Spec struct {
	InfraID  string
	NodeID   string // unique per instance; the idempotency key of Create
	NodeName string
	// StoreID is the identity of the store that records the instance
	// (store.Identified), labelled beside the infra id, node id and node
	// name, so that a sweep for orphans removes only what its own store
	// made when several installations share a backend. "" when the store
	// has no identity: the resource is then not provably anyone's.
	StoreID string
	// Resource is the rendered `resource` section of the chosen implementation.
	Resource map[string]any
	// Context is the contextualisation result.
	Context Context
	// Auth holds credentials selected from auth_data for this resource. Never log it.
	Auth map[string]any
}

// Context is the output of contextualisation for a backend.
type Context struct {
	// UserData is rendered cloud-init (cloudinit contextualisation).
	UserData string
	// Env and Command come from docker contextualisation (also used by the
	// local backend).
	Env     []string
	Command []string
}

// Handle identifies a created instance at its backend. It is stored with the
// instance record and given back to Destroy, State and Addresses, also by a
// different process after a restart.
type Handle struct {
	ID   string          `json:"id"`             // backend resource id (container id, pid, instance id)
	Data json.RawMessage `json:"data,omitempty"` // backend-private details, opaque to others
}

// Addresses of an instance. Public is what getip() returns; Private what
// getprivip() returns. Either may equal the other.
type Addresses struct {
	Public  string `json:"public,omitempty"`
	Private string `json:"private,omitempty"`
}

// Handler runs instances on one backend endpoint. All methods are safe for
// concurrent use.
type Handler interface {
	// Create starts an instance for spec.NodeID. It is idempotent per node
	// id: a second call for the same node id returns the existing instance
	// instead of making another one. Resources carry the infra id, node
	// id, node name and store id (when not empty) as labels/tags.
	Create(ctx context.Context, spec Spec) (Handle, error)
	// Destroy removes the instance. An instance already gone is success.
	Destroy(ctx context.Context, h Handle) error
	// State reports the backend state; ErrNotFound when gone.
	State(ctx context.Context, h Handle) (State, error)
	// Addresses reports the instance's addresses; ErrNotFound when gone.
	Addresses(ctx context.Context, h Handle) (Addresses, error)
}

// Owned is one backend resource found by a Lister or a Sweeper.
type Owned struct {
	Handle   Handle
	InfraID  string
	NodeID   string
	NodeName string
	// StoreID is the store id the resource is labelled with (Spec.StoreID);
	// "" when it carries none (made before store ids, by a store without
	// one, or by a backend that cannot carry it).
	StoreID string
}

// Lister is implemented by handlers that can find every resource they made
// for an infrastructure by its labels/tags: used to adopt instances after a
// crash and to remove orphans on destroy.
type Lister interface {
	List(ctx context.Context, infraID string) ([]Owned, error)
}

// Sweeper is implemented by handlers that can list every resource of
// their backend configuration (endpoint, account, resource group, home)
// that carries occopus's labels/tags, whatever its infra id: the sweep for
// orphans compares them with what the store knows. It returns at most
// MaxSweep resources (more are left for a later sweep, and the handler
// logs that it stopped); a resource it cannot tell the ids of is left out.
type Sweeper interface {
	ListAll(ctx context.Context) ([]Owned, error)
}

// MaxSweep bounds what one ListAll returns: far above what the engine's
// instance limits let a store make (2000 by default), so that only a
// backend shared by many installations comes near it.
const MaxSweep = 10000

// Finder is implemented by handlers that can find the instance made for one
// node id (adoption of a `creating` record after a crash).
type Finder interface {
	Find(ctx context.Context, infraID, nodeID string) (Handle, bool, error)
}

// Labeller is implemented by handlers that can put occopus's labels/tags
// (infra id, node id, node name, store id when not empty: what Create
// puts) on an instance something else made, so that List, Find and the
// sweep for orphans know it afterwards: used when taking over another
// orchestrator's instances. A Docker container cannot be relabelled, so
// the docker handler does not implement it.
type Labeller interface {
	Label(ctx context.Context, h Handle, spec Spec) error
}

// Config is what a plugin's New gets to build a Handler.
type Config struct {
	// Resource is the rendered resource section (endpoint etc.). Decode it
	// into the plugin's settings struct with descr.Decode("resource", ...).
	Resource map[string]any
	// Auth is the selected auth_data entry, nil when none.
	Auth map[string]any
	// Home is $OCCOPUS_HOME, where a backend may keep files.
	Home   string
	Logger *slog.Logger
	// Limiter paces the calls of HTTP cloud backends per endpoint; it is
	// shared by every handler of one Manager. nil: no limit.
	Limiter Limiter
}

// Limiter paces calls to an endpoint (a client-side rate limit).
type Limiter interface {
	// Wait blocks until one call to endpoint is allowed or ctx ends.
	Wait(ctx context.Context, endpoint string) error
}

// Nearby is implemented by handlers whose State and Addresses are cheap
// calls on this host (a Docker engine on a unix socket, local processes).
// The engine polls a starting instance of such a handler every few
// milliseconds, so that readiness is seen within a few percent of the time
// the instance took; other backends are remote clouds with request-rate
// limits and are polled no more often than Options.PollRemote.
type Nearby interface {
	Nearby() bool
}

// Closer is implemented by handlers that hold resources of their own
// (connections, clients): the engine calls Close when it drops a cached
// handler and when it is closed itself. The instances stay.
type Closer interface {
	Close() error
}

// Plugin is a resource backend: its `type`, the schema of its resource
// section and its constructor, registered once with Register.
type Plugin struct {
	// Type is the YAML `type:` the backend serves (docker, ec2, ...).
	Type string
	// Schema checks the resource section (without `type`); usually
	// descr.SchemaOf of the backend's settings struct.
	Schema *descr.Schema
	// New builds a Handler for one rendered resource section and its
	// credentials. It should not contact the backend.
	New func(cfg Config) (Handler, error)
}

// PluginID implements plugin.Plugin: "resource.<type>".
func (p Plugin) PluginID() plugin.ID { return plugin.NewID(descr.SectionResource, p.Type) }

// Check implements plugin.Plugin.
func (p Plugin) Check() error {
	return plugin.Whole(descr.SectionResource, p.Type, p.Schema != nil, p.New != nil)
}

// SectionSchema implements descr.SectionPlugin.
func (p Plugin) SectionSchema() *descr.Schema { return p.Schema }

var _ descr.SectionPlugin = Plugin{}

// Register makes a backend available under its type. It panics on an
// empty or duplicate type, or a plugin without schema or constructor, so
// a broken build fails at start.
func Register(p Plugin) { plugin.Register(p) }

// Lookup returns the backend registered for a type.
func Lookup(typ string) (Plugin, bool) {
	return plugin.Get[Plugin](plugin.NewID(descr.SectionResource, typ))
}

// New builds the handler for a resource section by its `type`.
func New(cfg Config) (Handler, error) {
	typ, _ := cfg.Resource["type"].(string)
	p, ok := Lookup(typ)
	if !ok {
		return nil, descr.SupportedType(descr.SectionResource, typ)
	}
	return p.New(cfg)
}

// Types lists the registered backend names, sorted.
func Types() []string { return plugin.Names(descr.SectionResource) }

// Cost is what an instance has cost so far, as its backend tells it.
type Cost struct {
	// Total is the amount charged so far, in Currency.
	Total float64
	// Currency is "" when the backend does not say.
	Currency string
}

// Coster is implemented by handlers whose backend tells what an instance
// has cost (CloudBroker). Backends that cannot tell do not implement it:
// their instances have no cost, which is not a zero cost.
type Coster interface {
	// Cost reports what the instance has cost so far; ok is false when
	// the backend has no figure for it. ErrNotFound when it is gone.
	Cost(ctx context.Context, h Handle) (c Cost, ok bool, err error)
}
