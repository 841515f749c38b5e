package descr

import (
	"encoding/json"
	"fmt"
	"strings"
)

const nodeDefPrefix = "node_def:"

// NodeDefs is the content of a node definition file: for each node type,
// its implementations in file order.
type NodeDefs struct {
	File  string
	Types []string // in file order
	Impls map[string][]*Impl
	// Warnings are problems that did not stop the file being read.
	Warnings Errors
}

// Impl is one implementation of a node type.
type Impl struct {
	Type  string // node type
	Index int    // position in the type's list
	// Data holds the sections (resource, contextualisation,
	// config_management, health_check) as plain values.
	Data map[string]any
	// Src is the parsed tree, for positions; nil when read from the store.
	Src *Node
}

// Path is the key path of the implementation, e.g. node_def:web[1].
func (im *Impl) Path() string { return fmt.Sprintf("%s%s[%d]", nodeDefPrefix, im.Type, im.Index) }

// Section returns a section as a mapping (nil when absent).
func (im *Impl) Section(name string) map[string]any {
	m, _ := im.Data[name].(map[string]any)
	return m
}

// PosOf returns the position of the value at a path below the
// implementation (e.g. "resource", "endpoint"), or the implementation's own
// position when unknown.
func (im *Impl) PosOf(keys ...any) Pos {
	n := im.Src
	if n == nil {
		return Pos{}
	}
	for _, k := range keys {
		var next *Node
		switch k := k.(type) {
		case string:
			next = n.Get(k)
		case int:
			if n.Kind == SeqNode && k >= 0 && k < len(n.Content) {
				next = n.Content[k]
			}
		}
		if next == nil {
			return n.Pos
		}
		n = next
	}
	return n.Pos
}

// implementationSchema is built from the plugin registry at each use:
// plugins register from init functions, which may run after this
// package's, and the schema is small.
func implementationSchema() *Schema {
	return &Schema{Fields: []Field{
		{Key: "resource", Required: true, Type: typedSection(SectionResource)},
		{Key: "contextualisation", Type: typedSection(SectionContextualise)},
		{Key: "config_management", Type: typedSection(SectionConfigManagement)},
		{Key: "health_check", Type: MapOf(healthSchema())},
		// create_timeout: seconds a new instance may take to become
		// ready, when the node description does not say.
		{Key: "create_timeout", Type: Number},
	}}
}

// LoadNodeDefs reads and checks a node definition file.
func LoadNodeDefs(path string, opts LoadOptions) (*NodeDefs, error) {
	root, err := ParseFile(path, opts)
	if err != nil {
		return nil, err
	}
	return DecodeNodeDefs(path, root)
}

// DecodeNodeDefs checks a parsed node definition file, reporting every error.
func DecodeNodeDefs(file string, root *Node) (*NodeDefs, error) {
	c := &checker{}
	if root.Kind != MapNode {
		c.add(root, "", "a node definition file must be a mapping of 'node_def:TYPE' keys, not %s", root.TypeName())
		return nil, c.errs.Err()
	}
	defs := &NodeDefs{File: file, Impls: map[string][]*Impl{}}
	schema := implementationSchema()
	if len(root.Content) == 0 {
		c.add(root, "", "no node definitions: expected 'node_def:TYPE' keys")
	}
	root.Pairs(func(k, v *Node) {
		if !strings.HasPrefix(k.Value, nodeDefPrefix) {
			want := nodeDefPrefix + k.Value
			if _, typ, ok := strings.Cut(k.Value, ":"); ok {
				want = nodeDefPrefix + typ
			}
			c.add(k, k.Value, "unknown key %q: node definitions are written 'node_def:TYPE' (did you mean %q?)", k.Value, want)
			return
		}
		typ := strings.TrimPrefix(k.Value, nodeDefPrefix)
		if typ == "" {
			c.add(k, k.Value, "node type name is empty")
			return
		}
		if v.Kind != SeqNode {
			c.add(v, k.Value, "must be a list of implementations, not %s", v.TypeName())
			return
		}
		if len(v.Content) == 0 {
			c.add(v, k.Value, "must list at least one implementation")
			return
		}
		defs.Types = append(defs.Types, typ)
		for i, in := range v.Content {
			path := index(k.Value, i)
			before := len(c.errs)
			c.checkMap(in, path, schema)
			checkTemplates(in, path, c)
			if len(c.errs) == before {
				defs.Impls[typ] = append(defs.Impls[typ], &Impl{Type: typ, Index: i, Data: in.Interface().(map[string]any), Src: in})
			}
		}
	})
	if err := c.result(); err != nil {
		return nil, err
	}
	defs.Warnings = c.warnings()
	return defs, nil
}

// JSON returns the implementations of a type as the JSON list the store keeps.
func (d *NodeDefs) JSON(typ string) (json.RawMessage, error) {
	list := make([]any, 0, len(d.Impls[typ])) // []any: MarshalJSON walks it
	for _, im := range d.Impls[typ] {
		list = append(list, im.Data)
	}
	return MarshalJSON(list)
}

// ImplsFromJSON turns a stored definition back into implementations.
func ImplsFromJSON(typ string, raw json.RawMessage) ([]*Impl, error) {
	v, err := DecodeJSON(raw)
	if err != nil {
		return nil, fmt.Errorf("stored definition of %s is not valid: %w", typ, err)
	}
	l, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("stored definition of %s is not valid: not a list of implementations", typ)
	}
	out := make([]*Impl, len(l))
	for i, x := range l {
		m, ok := x.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("stored definition of %s is not valid: implementation %d is not a mapping", typ, i)
		}
		out[i] = &Impl{Type: typ, Index: i, Data: m}
	}
	return out, nil
}
