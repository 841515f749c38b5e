// Package contextualise turns the contextualisation section of a node
// definition into what a backend needs: cloud-init user data, or a
// container's environment and command. Each kind is a Plugin, registered
// once by its YAML `type`.
package contextualise

import (
	"github.com/occopus-go/occopus/descr"
	"github.com/occopus-go/occopus/plugin"
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

// Plugin is a contextualiser: its `type`, the schema of its section and
// its constructor.
type Plugin struct {
	Type   string
	Schema *descr.Schema
	New    func() Contextualiser
}

// PluginID implements plugin.Plugin: "contextualisation.<type>".
func (p Plugin) PluginID() plugin.ID { return plugin.NewID(descr.SectionContextualise, p.Type) }

// Check implements plugin.Plugin.
func (p Plugin) Check() error {
	return plugin.Whole(descr.SectionContextualise, p.Type, p.Schema != nil, p.New != nil)
}

// SectionSchema implements descr.SectionPlugin.
func (p Plugin) SectionSchema() *descr.Schema { return p.Schema }

var _ descr.SectionPlugin = Plugin{}

// Register makes a contextualiser available under its type. It panics on
// an empty or duplicate type, or a plugin without schema or constructor.
func Register(p Plugin) { plugin.Register(p) }

// Get returns a contextualiser of a type.
func Get(typ string) (Contextualiser, error) {
	p, ok := plugin.Get[Plugin](plugin.NewID(descr.SectionContextualise, typ))
	if !ok {
		return nil, descr.SupportedType(descr.SectionContextualise, typ)
	}
	return p.New(), nil
}
