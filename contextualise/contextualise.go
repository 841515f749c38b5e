// Package contextualise turns the contextualisation section of a node
// definition into what a backend needs: cloud-init user data, or a
// container's environment and command. Each kind registers itself by its
// YAML `type`.
package contextualise

import (
	"fmt"
	"sort"
	"sync"

	"github.com/occopus-go/occopus/resource"
)

// Renderer renders the templates of one node instance.
type Renderer interface {
	// Render returns v with every string inside it (walking mappings and
	// lists) rendered as a template. path names v in errors.
	Render(path string, v any) (any, error)
}

// Contextualiser resolves one kind of contextualisation section.
type Contextualiser interface {
	// Resolve renders section and returns it as it should be shown to the
	// user (e.g. with the rendered cloud-init under `context`) together with
	// what the backend needs. path names the section in errors.
	Resolve(path string, section map[string]any, r Renderer) (map[string]any, resource.Context, error)
}

var (
	mu   sync.RWMutex
	regs = map[string]Contextualiser{}
)

// Register makes a contextualiser available under its YAML type. It panics
// on an empty or duplicate name.
func Register(typ string, c Contextualiser) {
	mu.Lock()
	defer mu.Unlock()
	if typ == "" || c == nil {
		panic("contextualise: Register with empty type or nil contextualiser")
	}
	if _, dup := regs[typ]; dup {
		panic("contextualise: duplicate registration of " + typ)
	}
	regs[typ] = c
}

// Get returns the contextualiser of a type.
func Get(typ string) (Contextualiser, error) {
	mu.RLock()
	defer mu.RUnlock()
	c, ok := regs[typ]
	if !ok {
		names := make([]string, 0, len(regs))
		for k := range regs {
			names = append(names, k)
		}
		sort.Strings(names)
		return nil, fmt.Errorf("contextualisation type %q is not known (have: %v)", typ, names)
	}
	return c, nil
}
