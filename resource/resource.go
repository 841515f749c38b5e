// Package resource defines the contract between the engine and the backends
// that run node instances (docker, local processes, EC2, Nova, ...), and the
// registry through which each backend package makes itself known.
//
// A backend lives in its own sub-package, registers itself from init() under
// the YAML `type:` string it serves, and registers the schema of its resource
// section with package descr beside it.
package resource

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
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
	// instead of making another one. Resources carry the infra id, node id
	// and node name as labels/tags.
	Create(ctx context.Context, spec Spec) (Handle, error)
	// Destroy removes the instance. An instance already gone is success.
	Destroy(ctx context.Context, h Handle) error
	// State reports the backend state; ErrNotFound when gone.
	State(ctx context.Context, h Handle) (State, error)
	// Addresses reports the instance's addresses; ErrNotFound when gone.
	Addresses(ctx context.Context, h Handle) (Addresses, error)
}

// Owned is one backend resource found by a Lister.
type Owned struct {
	Handle   Handle
	InfraID  string
	NodeID   string
	NodeName string
}

// Lister is implemented by handlers that can find every resource they made
// for an infrastructure by its labels/tags: used to adopt instances after a
// crash and to remove orphans on destroy.
type Lister interface {
	List(ctx context.Context, infraID string) ([]Owned, error)
}

// Finder is implemented by handlers that can find the instance made for one
// node id (adoption of a `creating` record after a crash).
type Finder interface {
	Find(ctx context.Context, infraID, nodeID string) (Handle, bool, error)
}

// Config is what a Factory gets to build a Handler.
type Config struct {
	// Resource is the rendered resource section (endpoint etc.).
	Resource map[string]any
	// Auth is the selected auth_data entry, nil when none.
	Auth map[string]any
	// Home is $OCCOPUS_HOME, where a backend may keep files.
	Home   string
	Logger *slog.Logger
}

// Factory builds a Handler for one resource section.
type Factory func(cfg Config) (Handler, error)

var (
	mu        sync.RWMutex
	factories = map[string]Factory{}
)

// Register makes a backend available under its YAML type name. It panics on
// an empty or duplicate name, so a broken build fails at start.
func Register(typ string, f Factory) {
	mu.Lock()
	defer mu.Unlock()
	if typ == "" || f == nil {
		panic("resource: Register with empty type or nil factory")
	}
	if _, dup := factories[typ]; dup {
		panic("resource: duplicate registration of " + typ)
	}
	factories[typ] = f
}

// New builds the handler for a resource section by its `type`.
func New(cfg Config) (Handler, error) {
	typ, _ := cfg.Resource["type"].(string)
	mu.RLock()
	f, ok := factories[typ]
	mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("resource type %q has no backend in this build (have: %v)", typ, Types())
	}
	return f(cfg)
}

// Str reads a string setting from a resource section: absent or null is
// "", other scalars are written as text (YAML reads `tag: 20.04` as a
// number), surrounding space is trimmed.
func Str(section map[string]any, key string) string {
	v, ok := section[key]
	if !ok || v == nil {
		return ""
	}
	if s, ok := v.(string); ok {
		return strings.TrimSpace(s)
	}
	return strings.TrimSpace(fmt.Sprint(v))
}

// Types lists the registered backend names, sorted.
func Types() []string {
	mu.RLock()
	defer mu.RUnlock()
	out := make([]string, 0, len(factories))
	for k := range factories {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
