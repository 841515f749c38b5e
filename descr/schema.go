package descr

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"

	"github.com/agnivade/levenshtein"

	"github.com/occopus-go/occopus/plugin"
)

// Type describes the values a key accepts.
type Type struct {
	// Name is how the type reads in messages ("a string", "a list of ports").
	Name  string
	check func(n *Node, path string, c *checker)
	// shape is the node kind the type wants, or -1 for any; OneOf uses it
	// to explain the alternative the value was evidently meant to be.
	shape Kind
}

// Field is one key of a mapping.
type Field struct {
	Key      string
	Required bool
	Type     Type
}

// Schema describes a mapping: its keys and, for open mappings, that other
// keys are allowed too.
type Schema struct {
	Fields []Field
	// Open accepts keys not listed (free-form sections such as variables).
	Open bool
	// Check runs after the keys are checked, for rules across keys.
	Check func(n *Node, path string) []*Error
}

func (s *Schema) field(key string) *Field {
	for i := range s.Fields {
		if s.Fields[i].Key == key {
			return &s.Fields[i]
		}
	}
	return nil
}

func (s *Schema) keys() []string {
	out := make([]string, len(s.Fields))
	for i, f := range s.Fields {
		out[i] = f.Key
	}
	return out
}

type checker struct {
	errs Errors
	// warns are problems that do not stop the file being used, such as
	// an optional key left empty.
	warns Errors
}

// result is nil when no error was found; else every error, with the
// warnings among them in file order, so a reader sees the whole picture.
func (c *checker) result() error {
	if len(c.errs) == 0 {
		return nil
	}
	return append(c.errs, c.warns...).Err()
}

// warnings are the warnings in file order.
func (c *checker) warnings() Errors {
	c.warns.Sort()
	return c.warns
}

func (c *checker) warn(n *Node, path, format string, args ...any) {
	e := errorf(n, path, format, args...)
	e.Warning = true
	c.warns = append(c.warns, e)
}

func (c *checker) add(n *Node, path, format string, args ...any) {
	c.errs = append(c.errs, errorf(n, path, format, args...))
}

// checkMap checks n against s, reporting every problem.
func (c *checker) checkMap(n *Node, path string, s *Schema) {
	if n.Kind != MapNode {
		c.add(n, path, "must be a mapping, not %s", n.TypeName())
		return
	}
	var empty []*Node
	n.Pairs(func(k, v *Node) {
		f := s.field(k.Value)
		kp := join(path, k.Value)
		if f == nil {
			if !s.Open {
				c.add(k, kp, "unknown key %q%s", k.Value, suggest(k.Value, s.keys()))
			}
			return
		}
		if v.IsNull() && !v.Quoted {
			// Occopus's tutorials leave optional keys empty (key_name:) and
			// Occopus takes that as not given; so do we, aloud.
			if f.Required {
				c.add(k, kp, "required key %q has no value (%s)", k.Value, f.Type.Name)
			} else {
				c.warn(k, kp, "key %q has no value; treated as absent", k.Value)
				empty = append(empty, k)
			}
			return
		}
		if f.Type.check != nil {
			f.Type.check(v, kp, c)
		}
	})
	if len(empty) > 0 {
		n.drop(empty)
	}
	for _, f := range s.Fields {
		if f.Required && n.Get(f.Key) == nil {
			c.add(n, path, "missing required key %q (%s)", f.Key, f.Type.Name)
		}
	}
	if s.Check != nil {
		c.errs = append(c.errs, s.Check(n, path)...)
	}
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func index(path string, i int) string { return fmt.Sprintf("%s[%d]", path, i) }

// suggest returns ` (did you mean "x"?)` for the closest valid key, or the
// list of valid keys when none is close.
func suggest(got string, valid []string) string {
	best, bestD := "", 1<<30
	for _, v := range valid {
		d := levenshtein.ComputeDistance(strings.ToLower(got), strings.ToLower(v))
		if d < bestD {
			best, bestD = v, d
		}
	}
	limit := max(2, len(got)/3)
	if best != "" && bestD <= limit {
		return fmt.Sprintf(" (did you mean %q?)", best)
	}
	if len(valid) == 0 {
		return ""
	}
	sorted := append([]string(nil), valid...)
	sort.Strings(sorted)
	return fmt.Sprintf(" (valid keys: %s)", strings.Join(sorted, ", "))
}

// Types used by schemas.

func scalar(name string, ok func(n *Node) bool) Type {
	return Type{Name: name, shape: ScalarNode, check: func(n *Node, path string, c *checker) {
		if n.Kind != ScalarNode || !ok(n) {
			c.add(n, path, "must be %s, not %s", name, n.TypeName())
		}
	}}
}

var (
	// String accepts a string, and numbers or booleans written plainly
	// (Occopus passes them on as text where a string is expected, e.g. an
	// image tag 20.04).
	String = scalar("a string", func(n *Node) bool { return n.Tag != "!!null" })
	// Int accepts an integer that fits in 64 bits (larger ones are
	// reported as out of range, not rounded).
	Int = Type{Name: "an integer", shape: ScalarNode, check: func(n *Node, path string, c *checker) {
		if n.Kind != ScalarNode || n.Tag != "!!int" {
			c.add(n, path, "must be an integer, not %s", n.TypeName())
			return
		}
		if _, err := parseInt(n.Value); err != nil {
			c.add(n, path, "integer %s is out of range (%d to %d)", n.Value, math.MinInt64, math.MaxInt64)
		}
	}}
	// Number accepts an integer or a decimal number.
	Number = scalar("a number", func(n *Node) bool { return n.Tag == "!!int" || n.Tag == "!!float" })
	// Bool accepts true/false (and YAML 1.1 yes/no/on/off).
	Bool = scalar("a boolean (true or false)", func(n *Node) bool { return n.Tag == "!!bool" })
	// Scalar accepts any single value.
	Scalar = scalar("a single value", func(n *Node) bool { return true })
	// Any accepts anything.
	Any = Type{Name: "any value", shape: -1}
	// AnyMap accepts any mapping.
	AnyMap = Type{Name: "a mapping", shape: MapNode, check: func(n *Node, path string, c *checker) {
		if n.Kind != MapNode {
			c.add(n, path, "must be a mapping, not %s", n.TypeName())
		}
	}}
)

// ListOf accepts a list whose items are of type t.
func ListOf(t Type) Type {
	return Type{Name: "a list of " + strings.TrimPrefix(strings.TrimPrefix(t.Name, "a "), "an "), shape: SeqNode, check: func(n *Node, path string, c *checker) {
		if n.Kind != SeqNode {
			c.add(n, path, "must be a list, not %s", n.TypeName())
			return
		}
		for i, it := range n.Content {
			if t.check != nil {
				t.check(it, index(path, i), c)
			}
		}
	}}
}

// MapOf accepts a mapping following s.
func MapOf(s *Schema) Type {
	return Type{Name: "a mapping", shape: MapNode, check: func(n *Node, path string, c *checker) { c.checkMap(n, path, s) }}
}

// OneOf accepts a value of any of the types.
func OneOf(ts ...Type) Type {
	names := make([]string, len(ts))
	for i, t := range ts {
		names[i] = t.Name
	}
	name := strings.Join(names, " or ")
	return Type{Name: name, shape: -1, check: func(n *Node, path string, c *checker) {
		var fits []Errors
		for _, t := range ts {
			sub := &checker{}
			if t.check != nil {
				t.check(n, path, sub)
			}
			if len(sub.errs) == 0 {
				c.warns = append(c.warns, sub.warns...)
				return
			}
			if t.shape == n.Kind {
				fits = append(fits, sub.errs)
			}
		}
		if len(fits) == 1 {
			// Only one alternative has the value's shape: its complaint is
			// the useful one (e.g. an unknown key inside the mapping).
			c.errs = append(c.errs, fits[0]...)
			return
		}
		c.add(n, path, "must be %s, not %s", name, n.TypeName())
	}}
}

// Plugin sections. The schemas come from the plugin registry (package
// plugin): a plugin configured by a whole section implements
// SectionPlugin, a health_check primitive implements KeyPlugin.

// Section kinds that select their schema by `type`; they are also the
// kinds (id prefixes) of the plugins that serve them.
const (
	SectionResource         = "resource"
	SectionContextualise    = "contextualisation"
	SectionConfigManagement = "config_management"
	SectionHealthCheck      = "health_check"
)

// SectionPlugin is a registered plugin configured by a section chosen by
// its `type` (a resource backend, a contextualiser, a config manager).
type SectionPlugin interface {
	plugin.Plugin
	// SectionSchema is the schema of the section, without `type`.
	SectionSchema() *Schema
}

// KeyPlugin is a registered plugin configured by one key of a section (a
// health_check primitive: ping, ports, ...).
type KeyPlugin interface {
	plugin.Plugin
	// KeyType is the type of the key's value.
	KeyType() Type
}

// IsZero reports a Type that checks nothing and has no name: a plugin
// must not register one.
func (t Type) IsZero() bool { return t.Name == "" && t.check == nil }

// occopusTypes are the section types Occopus itself knows. One of them
// that this build has no plugin for is "not supported by this build",
// which tells a user of Occopus's files more than "unknown".
var occopusTypes = map[string][]string{
	SectionResource:         {"azure_aci", "azure_vm", "cloudbroker", "cloudsigma", "docker", "ec2", "nova"},
	SectionContextualise:    {"cloudinit", "docker"},
	SectionConfigManagement: {"chef", "puppet_solo"},
}

// SectionTypes lists the types of a section kind this build supports, sorted.
func SectionTypes(kind string) []string { return plugin.Names(kind) }

func sectionSchema(kind, typ string) *Schema {
	p, ok := plugin.Get[SectionPlugin](plugin.NewID(kind, typ))
	if !ok {
		return nil
	}
	s := p.SectionSchema()
	withType := *s
	withType.Fields = append([]Field{{Key: "type", Required: true, Type: String}}, s.Fields...)
	return &withType
}

// healthSchema is the health_check section: Occopus's `type` (it writes
// `basic`), `timeout`, and one key per registered primitive.
func healthSchema() *Schema {
	s := &Schema{Fields: []Field{
		{Key: "type", Type: String},
		// timeout: seconds a ready node may fail its checks before it is failed.
		{Key: "timeout", Type: Number},
	}}
	for _, name := range plugin.Names(SectionHealthCheck) {
		if p, ok := plugin.Get[KeyPlugin](plugin.NewID(SectionHealthCheck, name)); ok {
			s.Fields = append(s.Fields, Field{Key: name, Type: p.KeyType()})
		}
	}
	sort.Slice(s.Fields, func(i, j int) bool { return s.Fields[i].Key < s.Fields[j].Key })
	return s
}

// typedSection checks a section whose schema is chosen by its `type` key.
func typedSection(kind string) Type {
	return Type{Name: "a " + kind + " mapping with a type", check: func(n *Node, path string, c *checker) {
		if n.Kind != MapNode {
			c.add(n, path, "must be a mapping, not %s", n.TypeName())
			return
		}
		tn := n.Get("type")
		if tn == nil {
			c.add(n, path, "missing required key \"type\" (one of: %s)", strings.Join(SectionTypes(kind), ", "))
			return
		}
		if tn.Kind != ScalarNode {
			c.add(tn, join(path, "type"), "must be a string, not %s", tn.TypeName())
			return
		}
		s := sectionSchema(kind, tn.Value)
		if s == nil {
			types := SectionTypes(kind)
			if slices.Contains(occopusTypes[kind], tn.Value) {
				c.add(tn, join(path, "type"), "%s type %s is not supported by this build (supported: %s)", kind, tn.Value, strings.Join(types, ", "))
				return
			}
			c.add(tn, join(path, "type"), "unknown %s type %q%s", kind, tn.Value, suggestTypes(tn.Value, types))
			return
		}
		c.checkMap(n, path, s)
	}}
}

// SupportedType reports whether this build has a plugin for a type of a
// section kind, and when not, the error to show (as validate words it).
func SupportedType(kind, typ string) error {
	if _, ok := plugin.Get[SectionPlugin](plugin.NewID(kind, typ)); ok {
		return nil
	}
	types := strings.Join(SectionTypes(kind), ", ")
	if slices.Contains(occopusTypes[kind], typ) {
		return fmt.Errorf("%s type %s is not supported by this build (supported: %s)", kind, typ, types)
	}
	return fmt.Errorf("unknown %s type %q (supported: %s)", kind, typ, types)
}

func suggestTypes(got string, valid []string) string {
	s := suggest(got, valid)
	return strings.Replace(s, "valid keys", "known types", 1)
}
