// Package configmgr handles the config_management section of a node
// definition (chef, puppet_solo, ...). Each config manager is a Plugin,
// registered once by its YAML `type`, with two halves:
//
//   - Resolve renders the section for one instance and may offer names to
//     the node's templates (puppet_solo offers `puppet.modules` etc.). It
//     runs for `occopus render` as for a build, and contacts nothing.
//   - New builds the live Manager for one rendered section and its
//     credentials. What a Manager does at run time is found by type
//     assertion on small optional interfaces, in the order the engine calls
//     them: [InfraPreparer] (before the first node), [Registrar] (before
//     each instance's VM is created), [Reporter] (readiness: has the node
//     converged?), [NodeDropper] (after the VM is gone), [InfraDropper]
//     (destroy). A Manager that implements none (puppet_solo, whose VM
//     configures itself) has nothing to do at run time and its nodes are
//     ready as soon as their resource and health checks are.
//
// Every lifecycle method is idempotent: the engine may call it again after
// a retried or resumed pass, and "already there" or "already gone" is
// success.
package configmgr

import (
	"context"
	"log/slog"

	"github.com/occopus-go/occopus/descr"
	"github.com/occopus-go/occopus/plugin"
)

// Renderer renders the templates of one node instance.
type Renderer interface {
	// Render returns v with every string inside it rendered as a template.
	Render(path string, v any) (any, error)
}

// Resolver renders one kind of config_management section.
type Resolver interface {
	// Resolve renders section and returns it with the names the manager
	// adds to the template data of the node.
	Resolve(path string, section map[string]any, r Renderer) (rendered map[string]any, data map[string]any, err error)
}

// ResolveFunc is a Resolver made of a function.
type ResolveFunc func(path string, section map[string]any, r Renderer) (rendered map[string]any, data map[string]any, err error)

// Resolve implements Resolver.
func (f ResolveFunc) Resolve(path string, section map[string]any, r Renderer) (map[string]any, map[string]any, error) {
	return f(path, section, r)
}

// Manager is the live side of one rendered config_management section:
// one server, one set of credentials. It implements any of the lifecycle
// interfaces below that it needs.
type Manager interface {
	// String names what the manager works with for errors and events
	// ("chef server https://chef.example/organizations/acme"), never a
	// credential.
	String() string
}

// Config is what a plugin's New gets.
type Config struct {
	// Section is the rendered config_management section of one instance
	// (type included). Decode the part the manager needs with
	// descr.Decode("config_management", ...).
	Section map[string]any
	// Auth is the auth_data entry selected for the section under
	// `config_management:`, nil when none matches. Never log it.
	Auth map[string]any
	// Limiter paces the calls to each endpoint (the Manager's per-endpoint
	// rate limit, shared with the cloud backends); nil: no limit.
	Limiter Limiter
	Logger  *slog.Logger
}

// Limiter paces calls to an endpoint (a client-side rate limit); it has
// the shape of resource.Limiter.
type Limiter interface {
	// Wait blocks until one call to endpoint is allowed or ctx ends.
	Wait(ctx context.Context, endpoint string) error
}

// Ref names one node instance.
type Ref struct {
	InfraID string
	NodeID  string
	// Name is the node's name in the description (web, db, ...); it may
	// be "" for an instance found only by its id.
	Name string
}

// Node is one node instance as a config manager registers it.
type Node struct {
	Ref
	// Section is the instance's rendered config_management section; the
	// manager reads its per-node keys (chef's run_list) from it.
	Section map[string]any
	// Attributes are the node's attributes, rendered: those of the
	// implementation's contextualisation section, overridden key by key
	// by those of the node in the infrastructure description (as Occopus
	// merges them). Keys may be dotted ("wordpress.db.host").
	Attributes map[string]any
	// Inbound are the attribute mappings of the node's dependencies, by
	// the name of the node depended on.
	Inbound map[string][]descr.Mapping
}

// Status is what a Reporter says of one node.
type Status struct {
	// Converged: the node has been configured at least once.
	Converged bool
	// Detail says why not (or when it did), for the instance's report
	// and events; it names the server and the node, never a credential.
	Detail string
}

// InfraPreparer is implemented by managers that make something the
// nodes of an infrastructure share (chef: the environment). The engine
// calls it in every pass that registers nodes, before the first of them.
type InfraPreparer interface {
	PrepareInfra(ctx context.Context, infraID string) error
}

// Registrar is implemented by managers that must know a node before its
// VM boots (chef: the role and the node with its run list). Create or
// update: a second call with the same node changes nothing.
type Registrar interface {
	Register(ctx context.Context, n Node) error
}

// Reporter is implemented by managers that know whether a node has been
// configured. A node with such a manager is ready only when its resource
// is running, its health checks pass and the Reporter says it converged.
// An error is a failed question (the server did not answer), not a
// verdict on the node.
type Reporter interface {
	Converged(ctx context.Context, n Ref) (Status, error)
}

// NodeDropper is implemented by managers that keep state per node; the
// engine calls it after the node's VM is destroyed. A node already gone
// is success.
type NodeDropper interface {
	DropNode(ctx context.Context, n Ref) error
}

// InfraDropper is implemented by managers that keep state per
// infrastructure; the engine calls it when the infrastructure is
// destroyed, after its instances. It removes what the infrastructure has
// at the manager by name, also what a crash left unrecorded.
type InfraDropper interface {
	DropInfra(ctx context.Context, infraID string) error
}

// Plugin is a config manager: its `type`, the schema of its section, how
// to render the section and how to build its live Manager.
type Plugin struct {
	Type   string
	Schema *descr.Schema
	// Resolve renders the section of one instance; it must not contact
	// anything (`occopus render` calls it).
	Resolve ResolveFunc
	// New builds the Manager of one rendered section and its credentials.
	// It must not contact the server either: that happens in the
	// lifecycle calls. The engine keeps a bounded number of managers and
	// forgets the oldest without a word, so a Manager holds nothing that
	// needs closing (an HTTP client over a shared transport is fine).
	New func(cfg Config) (Manager, error)
}

// PluginID implements plugin.Plugin: "config_management.<type>".
func (p Plugin) PluginID() plugin.ID { return plugin.NewID(descr.SectionConfigManagement, p.Type) }

// Check implements plugin.Plugin: a plugin needs both halves.
func (p Plugin) Check() error {
	return plugin.Whole(descr.SectionConfigManagement, p.Type, p.Schema != nil, p.New != nil && p.Resolve != nil)
}

// SectionSchema implements descr.SectionPlugin.
func (p Plugin) SectionSchema() *descr.Schema { return p.Schema }

var _ descr.SectionPlugin = Plugin{}

// Register makes a manager available under its type. It panics on an
// empty or duplicate type, or a plugin without schema, Resolve or New.
func Register(p Plugin) { plugin.Register(p) }

func lookup(typ string) (Plugin, error) {
	p, ok := plugin.Get[Plugin](plugin.NewID(descr.SectionConfigManagement, typ))
	if !ok {
		return Plugin{}, descr.SupportedType(descr.SectionConfigManagement, typ)
	}
	return p, nil
}

// Get returns the Resolver of a type.
func Get(typ string) (Resolver, error) {
	p, err := lookup(typ)
	if err != nil {
		return nil, err
	}
	return p.Resolve, nil
}

// New builds the Manager of a rendered section by its `type`.
func New(cfg Config) (Manager, error) {
	typ, _ := cfg.Section["type"].(string)
	p, err := lookup(typ)
	if err != nil {
		return nil, err
	}
	return p.New(cfg)
}

// RenderSection renders every value of a section except its type.
func RenderSection(path string, section map[string]any, r Renderer) (map[string]any, error) {
	out := make(map[string]any, len(section))
	for k, v := range section {
		if k == "type" {
			out[k] = v
			continue
		}
		rv, err := r.Render(path+"."+k, v)
		if err != nil {
			return nil, err
		}
		out[k] = rv
	}
	return out, nil
}

// Nothing is the Manager of a config manager with nothing to do at run
// time (puppet_solo): it implements no lifecycle interface.
type Nothing struct{ Type string }

// String implements Manager.
func (n Nothing) String() string { return n.Type + " (nothing to do at run time)" }

var _ Manager = Nothing{}
