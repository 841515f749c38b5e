// Package chef is the chef config manager (`config_management: {type: chef}`).
// The node itself runs chef-client from its cloud-init; the orchestrator
// renders the section and passes it on.
package chef

import (
	"github.com/occopus-go/occopus/configmgr"
	"github.com/occopus-go/occopus/descr"
)

func init() {
	configmgr.Register(configmgr.Plugin{Type: "chef", New: func() configmgr.Manager { return Manager{} },
		Schema: &descr.Schema{Fields: []descr.Field{
			{Key: "endpoint", Required: true, Type: descr.String},
			{Key: "run_list", Required: true, Type: descr.ListOf(descr.String)},
			{Key: "environment", Type: descr.String},
		}}})
}

// Manager renders the chef section; it offers no template names.
type Manager struct{}

// Resolve implements configmgr.Manager.
func (Manager) Resolve(path string, section map[string]any, r configmgr.Renderer) (map[string]any, map[string]any, error) {
	out, err := configmgr.RenderSection(path, section, r)
	return out, nil, err
}

var _ configmgr.Manager = Manager{}
