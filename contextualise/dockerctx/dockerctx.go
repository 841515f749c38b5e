// Package dockerctx handles `contextualisation: {type: docker}`: the
// environment and command of a container (also used by the local backend
// for processes).
package dockerctx

import (
	"fmt"
	"sort"

	"github.com/occopus-go/occopus/contextualise"
	"github.com/occopus-go/occopus/descr"
	"github.com/occopus-go/occopus/resource"
)

func init() {
	contextualise.Register(contextualise.Plugin{Type: "docker", New: func() contextualise.Contextualiser { return Contextualiser{} },
		Schema: &descr.Schema{Fields: []descr.Field{
			{Key: "env", Type: descr.OneOf(descr.ListOf(descr.String), descr.AnyMap)},
			{Key: "command", Type: descr.OneOf(descr.String, descr.ListOf(descr.String))},
			{Key: "attributes", Type: descr.AnyMap},
			{Key: "context_variables", Type: descr.Any},
		}}})
}

// Contextualiser renders env and command.
type Contextualiser struct{}

// Resolve implements contextualise.Contextualiser.
func (Contextualiser) Resolve(path string, section map[string]any, r contextualise.Renderer) (map[string]any, resource.Context, error) {
	out := map[string]any{}
	for k, v := range section {
		out[k] = v
	}
	var ctx resource.Context
	for _, key := range []string{"env", "command", "attributes"} {
		v, ok := section[key]
		if !ok {
			continue
		}
		rv, err := r.Render(path+"."+key, v)
		if err != nil {
			return nil, ctx, err
		}
		out[key] = rv
	}
	switch env := out["env"].(type) {
	case []any:
		for _, e := range env {
			ctx.Env = append(ctx.Env, fmt.Sprint(e))
		}
	case map[string]any:
		// A mapping is accepted as a kindness; Occopus wants a list of K=V.
		keys := make([]string, 0, len(env))
		for k := range env {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			ctx.Env = append(ctx.Env, fmt.Sprintf("%s=%v", k, env[k]))
		}
	}
	switch cmd := out["command"].(type) {
	case string:
		ctx.Command = []string{cmd}
	case []any:
		for _, c := range cmd {
			ctx.Command = append(ctx.Command, fmt.Sprint(c))
		}
	}
	return out, ctx, nil
}

var _ contextualise.Contextualiser = Contextualiser{}
