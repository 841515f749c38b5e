// Package plugin is the one registry of the orchestrator's plugins:
// resource backends, contextualisers, config managers and health-check
// primitives. Each plugin is one value, registered once from its package's
// init() under a namespaced id ("resource.docker", "health_check.ports");
// the kind packages (resource, contextualise, configmgr, health) give it
// its typed shape, and package descr reads the same registry to check the
// sections the plugins configure. A plugin that cannot run (no
// constructor, no schema) cannot be registered.
package plugin

import (
	"fmt"
	"sort"
	"strings"
	"sync"
)

// ID names a plugin: its kind (the YAML section that configures it:
// resource, contextualisation, config_management, health_check), a dot,
// and its name within the kind (the section's `type`, or the key of a
// health_check primitive).
type ID string

// NewID joins a kind and a name.
func NewID(kind, name string) ID { return ID(kind + "." + name) }

// Kind is the part before the first dot.
func (id ID) Kind() string { k, _, _ := strings.Cut(string(id), "."); return k }

// Name is the part after the first dot.
func (id ID) Name() string { _, n, _ := strings.Cut(string(id), "."); return n }

// Plugin is what every registered value provides.
type Plugin interface {
	// PluginID is the plugin's namespaced id.
	PluginID() ID
	// Check reports what the plugin lacks to be usable (its constructor,
	// its schema); Register refuses a plugin for which it is not nil.
	Check() error
}

// Whole is the Check of a kind's plugin value: it reports the first part
// missing of its name, its schema and its constructor.
func Whole(kind, name string, hasSchema, hasNew bool) error {
	switch {
	case name == "":
		return fmt.Errorf("%s plugin without a Type", kind)
	case !hasSchema:
		return fmt.Errorf("%s plugin without a Schema", kind)
	case !hasNew:
		return fmt.Errorf("%s plugin without a constructor (New)", kind)
	}
	return nil
}

var (
	mu  sync.RWMutex
	reg = map[ID]Plugin{}
)

// Register adds a plugin. It panics on a nil plugin, a malformed or
// duplicate id, or a plugin whose Check fails, so that a broken build
// fails at start, not when a description first uses the plugin.
func Register(p Plugin) {
	if p == nil {
		panic("plugin: Register(nil)")
	}
	id := p.PluginID()
	if id.Kind() == "" || id.Name() == "" || !strings.Contains(string(id), ".") {
		panic(fmt.Sprintf("plugin: Register: id %q is not KIND.NAME", id))
	}
	if err := p.Check(); err != nil {
		panic(fmt.Sprintf("plugin: Register %s: %v", id, err))
	}
	mu.Lock()
	defer mu.Unlock()
	if _, dup := reg[id]; dup {
		panic(fmt.Sprintf("plugin: duplicate registration of %s", id))
	}
	reg[id] = p
}

// Lookup returns the plugin registered under id.
func Lookup(id ID) (Plugin, bool) {
	mu.RLock()
	defer mu.RUnlock()
	p, ok := reg[id]
	return p, ok
}

// Get returns the plugin registered under id if it has the type T.
func Get[T Plugin](id ID) (T, bool) {
	p, ok := Lookup(id)
	if !ok {
		var zero T
		return zero, false
	}
	t, ok := p.(T)
	return t, ok
}

// Names lists the names registered in a kind, sorted.
func Names(kind string) []string {
	mu.RLock()
	defer mu.RUnlock()
	var out []string
	for id := range reg {
		if id.Kind() == kind {
			out = append(out, id.Name())
		}
	}
	sort.Strings(out)
	return out
}

// All lists every registered plugin, sorted by id.
func All() []Plugin {
	mu.RLock()
	defer mu.RUnlock()
	out := make([]Plugin, 0, len(reg))
	for _, p := range reg {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].PluginID() < out[j].PluginID() })
	return out
}
