// Package resolve turns a compiled node and one implementation of its type
// into everything needed to create an instance: the rendered resource,
// contextualisation and config_management sections, the backend context,
// and the template data (kept for health checks). It touches no backend
// and no store; `occopus render` and the engine both use it.
package resolve

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/occopus-go/occopus/compile"
	"github.com/occopus-go/occopus/configmgr"
	"github.com/occopus-go/occopus/contextualise"
	"github.com/occopus-go/occopus/descr"
	"github.com/occopus-go/occopus/resource"
	"github.com/occopus-go/occopus/tmpl"
)

// Input identifies the node instance being resolved.
type Input struct {
	InfraID   string
	InfraName string
	UserID    string
	NodeID    string
	Node      *compile.Node
	// Addresses answers getip & co. with the addresses of ready nodes.
	Addresses tmpl.Addresses
	// AllowCmd lets templates run programs with cmd().
	AllowCmd bool
	// FromNetwork: the description arrived over the network (see
	// tmpl.Options.FromNetwork).
	FromNetwork bool
}

// Resolved is one implementation, resolved for one instance.
type Resolved struct {
	Impl              *descr.Impl
	Resource          map[string]any
	Contextualisation map[string]any
	ConfigManagement  map[string]any
	// HealthCheck is left unrendered: its templates need the instance's own
	// address (`ip`), known only after creation.
	HealthCheck map[string]any
	Context     resource.Context
	// Data is the template namespace of the instance.
	Data tmpl.Data
}

// Candidates returns the implementations that pass the node's filter, in
// definition order. A filter's key/value pairs must all equal the
// implementation's resource keys (`type` included).
func Candidates(node *compile.Node, impls []*descr.Impl) []*descr.Impl {
	var out []*descr.Impl
	for _, im := range impls {
		if matches(node.Filter, im.Section("resource")) {
			out = append(out, im)
		}
	}
	return out
}

func matches(filter, res map[string]any) bool {
	for k, want := range filter {
		got, ok := res[k]
		if !ok || filterText(got) != filterText(want) {
			return false
		}
	}
	return true
}

// filterText is a value as the files and templates show it: a decimal
// number keeps its point (3.0, as {{ resource.tag }} prints it), where
// fmt.Sprint would print 3.
func filterText(v any) string {
	if f, ok := v.(float64); ok {
		return tmpl.Python(f)
	}
	return fmt.Sprint(v)
}

// Data builds the template namespace of an instance as Occopus does: the
// node description's keys, then the implementation's sections, plus the
// ids and names.
func Data(in Input, im *descr.Impl) tmpl.Data {
	n := in.Node
	d := tmpl.Data{
		"infra_id":   in.InfraID,
		"infra_name": in.InfraName,
		"user_id":    in.UserID,
		"node_id":    in.NodeID,
		"name":       n.Name,
		"type":       n.Type,
		"variables":  n.Variables,
		"attributes": n.Attributes,
		"scaling":    map[string]any{"min": n.Min, "max": n.Max},
		"mappings":   map[string]any{"inbound": mappings(n.Inbound), "outbound": mappings(n.Outbound)},
	}
	if n.Filter != nil {
		d["filter"] = n.Filter
	}
	for k, v := range im.Data {
		d[k] = v
	}
	return d
}

func mappings(m map[string][]descr.Mapping) map[string]any {
	out := make(map[string]any, len(m))
	for k, ms := range m {
		l := make([]any, len(ms))
		for i, x := range ms {
			l[i] = map[string]any{"attributes": []any{x.Attributes[0], x.Attributes[1]}, "synch": x.Synch}
		}
		out[k] = l
	}
	return out
}

// Resolve renders one implementation for one instance.
func Resolve(in Input, im *descr.Impl) (*Resolved, error) {
	data := Data(in, im)
	r := &renderer{impl: im, data: data, opt: tmpl.Options{AllowCmd: in.AllowCmd, FromNetwork: in.FromNetwork, Addresses: in.Addresses}}
	out := &Resolved{Impl: im, Data: data}
	if hc := im.Section("health_check"); hc != nil {
		out.HealthCheck = hc
	}
	// The config manager goes first: it may add names (puppet.*) that the
	// contextualisation template uses.
	if cm := im.Section("config_management"); cm != nil {
		typ, _ := cm["type"].(string)
		m, err := configmgr.Get(typ)
		if err != nil {
			return nil, r.wrap("config_management", err)
		}
		rendered, extra, err := m.Resolve("config_management", cm, r)
		if err != nil {
			return nil, err
		}
		out.ConfigManagement = rendered
		for k, v := range extra {
			data[k] = v
		}
	}
	res, err := r.Render("resource", im.Section("resource"))
	if err != nil {
		return nil, err
	}
	out.Resource, _ = res.(map[string]any)
	if cs := im.Section("contextualisation"); cs != nil {
		typ, _ := cs["type"].(string)
		c, err := contextualise.Get(typ)
		if err != nil {
			return nil, r.wrap("contextualisation", err)
		}
		rendered, ctx, err := c.Resolve("contextualisation", cs, r)
		if err != nil {
			// The contextualiser's own errors already name the key below
			// the implementation; point at the template (for an imported
			// one, its file) when there is one.
			return nil, r.wrapAt("contextualisation.context_template", err)
		}
		out.Contextualisation, out.Context = rendered, ctx
	}
	return out, nil
}

// Error is a resolution error: where in the definition, and what.
type Error struct {
	Pos  descr.Pos
	Path string
	Err  error
}

func (e *Error) Error() string {
	var b strings.Builder
	if s := e.Pos.String(); s != "" {
		b.WriteString(s + ": ")
	}
	b.WriteString(e.Path + ": ")
	b.WriteString(e.Err.Error())
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

type renderer struct {
	impl *descr.Impl
	data tmpl.Data
	opt  tmpl.Options
}

// Render implements contextualise.Renderer and configmgr.Renderer.
func (r *renderer) Render(path string, v any) (any, error) {
	return r.walk(path, v)
}

func (r *renderer) walk(path string, v any) (any, error) {
	switch v := v.(type) {
	case string:
		if !tmpl.HasTemplate(v) {
			return plainText(v), nil
		}
		s, err := tmpl.Render(v, r.data, r.opt)
		if err != nil {
			return nil, r.templateError(path, err)
		}
		return s, nil
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, x := range v {
			rx, err := r.walk(path+"."+k, x)
			if err != nil {
				return nil, err
			}
			out[k] = rx
		}
		return out, nil
	case []any:
		out := make([]any, len(v))
		for i, x := range v {
			rx, err := r.walk(fmt.Sprintf("%s[%d]", path, i), x)
			if err != nil {
				return nil, err
			}
			out[i] = rx
		}
		return out, nil
	}
	return v, nil
}

// plainText applies to a string without template syntax what Jinja2 does
// to every template, since Occopus renders every string: newlines become
// \n and one trailing newline is dropped.
func plainText(s string) string {
	if strings.ContainsRune(s, '\r') {
		s = strings.ReplaceAll(s, "\r\n", "\n")
		s = strings.ReplaceAll(s, "\r", "\n")
	}
	return strings.TrimSuffix(s, "\n")
}

func (r *renderer) templateError(path string, err error) error {
	e := &Error{Path: r.impl.Path() + "." + path, Err: err}
	n := r.node(path)
	if n == nil {
		return e
	}
	var re *tmpl.RenderError
	if errors.As(err, &re) && re.Line > 0 {
		e.Pos = n.SourcePos(re.Line, re.Col)
	} else {
		e.Pos = n.Pos
	}
	return e
}

func (r *renderer) wrap(path string, err error) error {
	var e *Error
	if errors.As(err, &e) {
		return err
	}
	out := &Error{Path: r.impl.Path() + "." + path, Err: err}
	if n := r.node(path); n != nil {
		out.Pos = n.Pos
	}
	return out
}

// wrapAt wraps an error that names its own key, placing it at the source
// of posPath when known.
func (r *renderer) wrapAt(posPath string, err error) error {
	var e *Error
	if errors.As(err, &e) {
		return err
	}
	out := &Error{Path: r.impl.Path(), Err: err}
	if n := r.node(posPath); n != nil {
		out.Pos = n.Pos
	} else if n := r.node("contextualisation"); n != nil {
		out.Pos = n.Pos
	}
	return out
}

var pathPart = regexp.MustCompile(`[^.\[\]]+|\[\d+\]`)

// node finds the source node of a path below the implementation.
func (r *renderer) node(path string) *descr.Node {
	n := r.impl.Src
	for _, part := range pathPart.FindAllString(path, -1) {
		if n == nil {
			return nil
		}
		if strings.HasPrefix(part, "[") {
			i, _ := strconv.Atoi(part[1 : len(part)-1])
			if n.Kind != descr.SeqNode || i >= len(n.Content) {
				return nil
			}
			n = n.Content[i]
			continue
		}
		n = n.Get(part)
	}
	return n
}

var (
	_ contextualise.Renderer = (*renderer)(nil)
	_ configmgr.Renderer     = (*renderer)(nil)
)
