// Package configmgr handles the config_management section of a node
// definition (chef, puppet_solo, ...). Each manager is a Plugin, registered
// once by its YAML `type`; it renders its section and may offer names to the node's
// templates (puppet_solo offers `puppet.modules` etc.).
package configmgr

import (
	"github.com/occopus-go/occopus/descr"
	"github.com/occopus-go/occopus/plugin"
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

// Plugin is a config manager: its `type`, the schema of its section and
// its constructor.
type Plugin struct {
	Type   string
	Schema *descr.Schema
	New    func() Manager
}

// PluginID implements plugin.Plugin: "config_management.<type>".
func (p Plugin) PluginID() plugin.ID { return plugin.NewID(descr.SectionConfigManagement, p.Type) }

// Check implements plugin.Plugin.
func (p Plugin) Check() error {
	return plugin.Whole(descr.SectionConfigManagement, p.Type, p.Schema != nil, p.New != nil)
}

// SectionSchema implements descr.SectionPlugin.
func (p Plugin) SectionSchema() *descr.Schema { return p.Schema }

var _ descr.SectionPlugin = Plugin{}

// Register makes a manager available under its type. It panics on an
// empty or duplicate type, or a plugin without schema or constructor.
func Register(p Plugin) { plugin.Register(p) }

// Get returns a manager of a type.
func Get(typ string) (Manager, error) {
	p, ok := plugin.Get[Plugin](plugin.NewID(descr.SectionConfigManagement, typ))
	if !ok {
		return nil, descr.SupportedType(descr.SectionConfigManagement, typ)
	}
	return p.New(), nil
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
