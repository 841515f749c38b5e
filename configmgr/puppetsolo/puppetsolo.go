// Package puppetsolo is the puppet_solo config manager: the node runs
// `puppet apply` itself; the orchestrator offers the modules, manifests and
// attributes to the cloud-init template as `puppet.modules`,
// `puppet.manifests` and `puppet.attributes`.
package puppetsolo

import (
	"sort"
	"strings"

	"github.com/occopus-go/occopus/configmgr"
	"github.com/occopus-go/occopus/descr"
	"github.com/occopus-go/occopus/tmpl"
)

func init() {
	configmgr.Register(configmgr.Plugin{Type: "puppet_solo", Resolve: Resolve, New: New,
		Schema: &descr.Schema{Fields: []descr.Field{
			{Key: "manifests", Required: true, Type: descr.ListOf(descr.String)},
			{Key: "modules", Type: descr.ListOf(descr.String)},
			{Key: "attributes", Type: descr.OneOf(descr.ListOf(descr.Any), descr.AnyMap)},
		}}})
}

// New returns the live side of puppet_solo: nothing. There is no server;
// the VM runs `puppet apply` from its cloud-init, so a node is ready when
// its resource and health checks are (as in Occopus, whose puppet_solo
// state is always ready).
func New(configmgr.Config) (configmgr.Manager, error) {
	return configmgr.Nothing{Type: "puppet_solo"}, nil
}

// Resolve renders the section and offers the `puppet` names. Each is the
// items joined by spaces, each item written as Python's str() writes it
// (attribute entries become {'key': 'value'}), exactly as Occopus does:
// the tutorials' cloud-init turns that text back into hiera YAML with sed.
func Resolve(path string, section map[string]any, r configmgr.Renderer) (map[string]any, map[string]any, error) {
	out, err := configmgr.RenderSection(path, section, r)
	if err != nil {
		return nil, nil, err
	}
	puppet := map[string]any{}
	for _, k := range []string{"modules", "manifests", "attributes"} {
		puppet[k] = join(out[k])
	}
	return out, map[string]any{"puppet": puppet}, nil
}

func join(v any) string {
	var parts []string
	switch v := v.(type) {
	case []any:
		for _, x := range v {
			parts = append(parts, tmpl.Python(x))
		}
	case map[string]any:
		// Python iterates a dict's keys; Occopus joins those.
		for k := range v {
			parts = append(parts, k)
		}
		sort.Strings(parts)
	}
	return strings.Join(parts, " ")
}

var _ configmgr.ResolveFunc = Resolve
