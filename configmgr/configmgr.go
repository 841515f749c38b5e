// Package configmgr handles the config_management section of a node
// definition (chef, puppet_solo, ...). Each manager registers itself by its
// YAML `type`; it renders its section and may offer names to the node's
// templates (puppet_solo offers `puppet.modules` etc.).
package configmgr

import (
	"fmt"
	"sort"
	"sync"
)

// Renderer renders the templates of one node instance.
type Renderer interface {
	// Render returns v with every string inside it rendered as a template.
	Render(path string, v any) (any, error)
}

// Manager resolves one kind of config_management section.
type Manager interface {
	// Resolve renders section and returns it with the names the manager
	// adds to the template data of the node.
	Resolve(path string, section map[string]any, r Renderer) (rendered map[string]any, data map[string]any, err error)
}

var (
	mu   sync.RWMutex
	regs = map[string]Manager{}
)

// Register makes a manager available under its YAML type. It panics on an
// empty or duplicate name.
func Register(typ string, m Manager) {
	mu.Lock()
	defer mu.Unlock()
	if typ == "" || m == nil {
		panic("configmgr: Register with empty type or nil manager")
	}
	if _, dup := regs[typ]; dup {
		panic("configmgr: duplicate registration of " + typ)
	}
	regs[typ] = m
}

// Get returns the manager of a type.
func Get(typ string) (Manager, error) {
	mu.RLock()
	defer mu.RUnlock()
	m, ok := regs[typ]
	if !ok {
		names := make([]string, 0, len(regs))
		for k := range regs {
			names = append(names, k)
		}
		sort.Strings(names)
		return nil, fmt.Errorf("config_management type %q is not known (have: %v)", typ, names)
	}
	return m, nil
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
