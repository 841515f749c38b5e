package health

import (
	"fmt"
	"regexp"
	"strings"
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

// render renders a setting (url, mysql credentials) at check time.
//
// TODO(tmpl): switch to tmpl.Render(src, templateData(t), tmpl.Options{})
// once github.com/occopus-go/occopus/tmpl compiles; the package was still an
// empty folder when this was written. Until then this is a minimal local
// stand-in: it substitutes `{{ name }}` / `{{ a.b }}` expressions (no
// filters, no blocks) from the data and errors on anything it can't resolve
// rather than leaving a half-rendered string.
func render(src string, t Target) (string, error) {
	if !strings.Contains(src, "{{") && !strings.Contains(src, "{%") {
		return src, nil // fast path; also keeps literal strings untouched
	}
	return renderLocal(src, templateData(t))
}

var exprRe = regexp.MustCompile(`\{\{\s*([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)\s*\}\}`)

func renderLocal(src string, data map[string]any) (string, error) {
	var firstErr error
	out := exprRe.ReplaceAllStringFunc(src, func(m string) string {
		path := exprRe.FindStringSubmatch(m)[1]
		v, ok := lookup(data, strings.Split(path, "."))
		if !ok {
			if firstErr == nil {
				firstErr = fmt.Errorf("template %q: %q is undefined", src, path)
			}
			return m
		}
		return fmt.Sprint(v)
	})
	if firstErr != nil {
		return "", firstErr
	}
	if strings.Contains(out, "{{") || strings.Contains(out, "{%") {
		return "", fmt.Errorf("template %q: unsupported syntax (only {{ name }} is rendered)", src)
	}
	return out, nil
}

func lookup(data map[string]any, path []string) (any, bool) {
	var cur any = data
	for _, p := range path {
		switch m := cur.(type) {
		case map[string]any:
			v, ok := m[p]
			if !ok {
				return nil, false
			}
			cur = v
		case map[any]any: // yaml.v2-style maps
			v, ok := m[p]
			if !ok {
				return nil, false
			}
			cur = v
		default:
			return nil, false
		}
	}
	return cur, true
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
