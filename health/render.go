package health

import (
	"fmt"

	"github.com/occopus-go/occopus/tmpl"
)

// templateData is the data settings are rendered with: the node's Data plus
// `ip` = Target.Addr. It is a copy so probes never mutate shared node data.
func templateData(t Target) map[string]any {
	d := make(map[string]any, len(t.Data)+1)
	for k, v := range t.Data {
		d[k] = v
	}
	d["ip"] = t.Addr
	return d
}

// render renders a setting (url, mysql credentials) at check time with the
// shared Jinja2-compatible renderer, so health checks accept the same
// templates as the rest of the node definition. Plain strings are returned
// untouched: tmpl.Render would drop a trailing newline, which must not
// happen to e.g. a password.
func render(src string, t Target) (string, error) {
	if !tmpl.HasTemplate(src) {
		return src, nil
	}
	// Options{}: no cmd(), no getip: a health check needs neither and must
	// not run programs on the orchestrator host.
	return tmpl.Render(src, tmpl.Data(templateData(t)), tmpl.Options{})
}

// asList accepts the list shapes decoders produce ([]any, []string, []int)
// and, leniently, a single scalar.
func asList(v any) ([]any, error) {
	switch l := v.(type) {
	case nil:
		return nil, fmt.Errorf("want a list, got nothing")
	case []any:
		return l, nil
	case []string:
		out := make([]any, len(l))
		for i, s := range l {
			out[i] = s
		}
		return out, nil
	case []int:
		out := make([]any, len(l))
		for i, s := range l {
			out[i] = s
		}
		return out, nil
	case []map[string]any:
		out := make([]any, len(l))
		for i, s := range l {
			out[i] = s
		}
		return out, nil
	case string, int, int64, float64, map[string]any:
		return []any{l}, nil
	default:
		return nil, fmt.Errorf("want a list, got %T", v)
	}
}
