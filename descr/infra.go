package descr

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/agnivade/levenshtein"
)

// Infra is an infrastructure description.
type Infra struct {
	File         string
	Name         string
	UserID       string
	Nodes        []*NodeDesc
	Dependencies []*Dependency
	// Variables are the infra-level variables, inherited by every node.
	Variables map[string]any
	// Root is the parsed tree, for positions.
	Root *Node
	// Warnings are problems that did not stop the file being read (an
	// optional key left empty), in file order.
	Warnings Errors
}

// NodeDesc is one node of an infrastructure description.
type NodeDesc struct {
	Name   string
	Type   string
	Filter map[string]any
	// Scaling as written; nil fields were not given.
	Min, Max   *int
	Variables  map[string]any
	Attributes map[string]any
	// CreateTimeout in seconds, 0 when not given.
	CreateTimeout float64
	Path          string // key path, e.g. nodes[0]
	Src           *Node
}

// Dependency says From depends on To: To is built (and ready) first.
type Dependency struct {
	From, To string
	Mappings []Mapping
	Path     string
	Src      *Node
	// FromSrc and ToSrc are the nodes naming each end, for positions.
	FromSrc, ToSrc *Node
}

// Mapping is an attribute mapping of a dependency (Occopus chef `connect`).
type Mapping struct {
	Attributes [2]string `json:"attributes"`
	Synch      bool      `json:"synch"`
}

var (
	scalingSchema = &Schema{Fields: []Field{
		{Key: "min", Type: Int},
		{Key: "max", Type: Int},
	}}
	nodeSchema = &Schema{Fields: []Field{
		{Key: "name", Required: true, Type: nameType("node")},
		{Key: "type", Required: true, Type: String},
		{Key: "filter", Type: AnyMap},
		{Key: "scaling", Type: MapOf(scalingSchema)},
		{Key: "variables", Type: AnyMap},
		{Key: "attributes", Type: AnyMap},
		// create_timeout: seconds a new instance may take to become ready.
		{Key: "create_timeout", Type: Number},
	}}
	mappingSchema = &Schema{Fields: []Field{
		{Key: "attributes", Required: true, Type: ListOf(String)},
		{Key: "synch", Type: Bool},
	}}
	connectionType = Type{Name: "a list of two nodes", shape: SeqNode, check: func(n *Node, path string, c *checker) {
		if n.Kind != SeqNode || len(n.Content) != 2 {
			c.add(n, path, "must be a list of two nodes [dependent, dependency], not %s", describeLen(n))
			return
		}
		for i, it := range n.Content {
			checkNodeRef(it, index(path, i), c)
		}
	}}
	dependencySchema = &Schema{Fields: []Field{
		{Key: "connection", Required: true, Type: connectionType},
		{Key: "mappings", Type: ListOf(MapOf(mappingSchema))},
	}}
	infraSchema = &Schema{Fields: []Field{
		{Key: "infra_name", Required: true, Type: nameType("infrastructure")},
		{Key: "user_id", Type: String},
		{Key: "nodes", Required: true, Type: Type{Name: "a list of nodes", check: checkNodes}},
		{Key: "dependencies", Type: ListOf(OneOf(connectionType, MapOf(dependencySchema)))},
		{Key: "variables", Type: AnyMap},
	}}
)

// MaxNameLen is the longest node or infrastructure name.
const MaxNameLen = 63

// validName is Occopus's rule for node and infrastructure names,
// [a-z0-9-]{1,63} in any case, widened by "_": names become container,
// VM and DNS names, file names and log fields, so they must not carry
// control characters, spaces or megabytes.
var validName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,63}$`)

// nameType checks a node or infrastructure name.
func nameType(what string) Type {
	return Type{Name: "a " + what + " name", shape: ScalarNode, check: func(n *Node, path string, c *checker) {
		switch {
		case n.Kind != ScalarNode || n.Tag == "!!null":
			c.add(n, path, "must be a string, not %s", n.TypeName())
		case len(n.Value) > MaxNameLen:
			c.add(n, path, "%s name is %d characters long; at most %d (letters, digits, - and _)", what, len(n.Value), MaxNameLen)
		case !validName.MatchString(n.Value):
			c.add(n, path, "%s name %s may hold only letters, digits, - and _ (at most %d)", what, strconv.QuoteToASCII(n.Value), MaxNameLen)
		}
	}}
}

func describeLen(n *Node) string {
	if n.Kind == SeqNode {
		return fmt.Sprintf("a list of %d", len(n.Content))
	}
	return n.TypeName()
}

func checkNodes(n *Node, path string, c *checker) {
	if n.Kind != SeqNode {
		c.add(n, path, "must be a list of nodes, not %s", n.TypeName())
		return
	}
	if len(n.Content) == 0 {
		c.add(n, path, "must list at least one node")
	}
	for i, it := range n.Content {
		c.checkMap(it, index(path, i), nodeSchema)
	}
}

// checkNodeRef accepts a node name or a node mapping (an alias of one).
func checkNodeRef(n *Node, path string, c *checker) {
	switch {
	case n.Kind == ScalarNode && n.Tag == "!!str":
	case n.Kind == MapNode && n.Get("name") != nil:
	default:
		c.add(n, path, "must name a node (a node name or an alias such as *A), not %s", n.TypeName())
	}
}

// refName is the node name a dependency end refers to.
func refName(n *Node) string {
	if n.Kind == MapNode {
		return n.Get("name").Value
	}
	return n.Value
}

// LoadInfra reads and checks an infrastructure description file.
func LoadInfra(path string, opts LoadOptions) (*Infra, error) {
	root, err := ParseFile(path, opts)
	if err != nil {
		return nil, err
	}
	return DecodeInfra(path, root)
}

// ParseInfra reads an infrastructure description from memory.
func ParseInfra(name string, src []byte, opts LoadOptions) (*Infra, error) {
	root, err := Parse(name, src, opts)
	if err != nil {
		return nil, err
	}
	return DecodeInfra(name, root)
}

// DecodeInfra checks a parsed tree and turns it into an Infra. All schema
// errors are reported together.
func DecodeInfra(file string, root *Node) (*Infra, error) {
	c := &checker{}
	if root.Kind != MapNode {
		c.add(root, "", "an infrastructure description must be a mapping with infra_name and nodes, not %s", root.TypeName())
		return nil, c.errs.Err()
	}
	c.checkMap(root, "", infraSchema)
	if err := c.result(); err != nil {
		return nil, err
	}
	in := &Infra{File: file, Root: root, Name: root.Get("infra_name").Value, Warnings: c.warnings()}
	if u := root.Get("user_id"); u != nil {
		in.UserID = u.Value
	}
	in.Variables = mapOrEmpty(root.Get("variables"))
	for i, nn := range root.Get("nodes").Content {
		nd := &NodeDesc{
			Name:       nn.Get("name").Value,
			Type:       nn.Get("type").Value,
			Path:       index("nodes", i),
			Src:        nn,
			Variables:  mapOrEmpty(nn.Get("variables")),
			Attributes: mapOrEmpty(nn.Get("attributes")),
		}
		if ct := nn.Get("create_timeout"); ct != nil {
			nd.CreateTimeout = toFloat(scalarValue(ct))
		}
		if f := nn.Get("filter"); f != nil {
			nd.Filter, _ = f.Interface().(map[string]any)
		}
		if s := nn.Get("scaling"); s != nil {
			if v := s.Get("min"); v != nil {
				m := scalarValue(v).(int)
				nd.Min = &m
			}
			if v := s.Get("max"); v != nil {
				m := scalarValue(v).(int)
				nd.Max = &m
			}
		}
		in.Nodes = append(in.Nodes, nd)
	}
	if deps := root.Get("dependencies"); deps != nil {
		for i, dn := range deps.Content {
			d := &Dependency{Path: index("dependencies", i), Src: dn}
			conn := dn
			if dn.Kind == MapNode {
				conn = dn.Get("connection")
				if ms := dn.Get("mappings"); ms != nil {
					for _, mn := range ms.Content {
						m := Mapping{}
						attrs := mn.Get("attributes").Content
						for j := 0; j < len(attrs) && j < 2; j++ {
							m.Attributes[j] = attrs[j].Value
						}
						if s := mn.Get("synch"); s != nil {
							m.Synch, _ = scalarValue(s).(bool)
						}
						d.Mappings = append(d.Mappings, m)
					}
				}
			}
			d.FromSrc, d.ToSrc = conn.Content[0], conn.Content[1]
			d.From, d.To = refName(d.FromSrc), refName(d.ToSrc)
			in.Dependencies = append(in.Dependencies, d)
		}
	}
	return in, nil
}

func toFloat(v any) float64 {
	switch v := v.(type) {
	case int:
		return float64(v)
	case float64:
		return v
	}
	return 0
}

func mapOrEmpty(n *Node) map[string]any {
	if n == nil || n.Kind != MapNode {
		return map[string]any{}
	}
	return n.Interface().(map[string]any)
}

// looksLikeNodeDef spots a misspelt 'node_def:' prefix ('nodedef:web'), so
// the file is checked as node definitions and the key reported.
func looksLikeNodeDef(key string) bool {
	prefix, _, ok := strings.Cut(key, ":")
	return ok && levenshtein.ComputeDistance(strings.ToLower(prefix), "node_def") <= 2
}

// Kind of a description file.
type FileKind int

const (
	UnknownFile FileKind = iota
	InfraFile
	NodeDefFile
)

// Detect tells an infrastructure description from a node definition file
// by its top-level keys.
func Detect(root *Node) FileKind {
	if root == nil || root.Kind != MapNode {
		return UnknownFile
	}
	kind := UnknownFile
	root.Pairs(func(k, _ *Node) {
		switch {
		case strings.HasPrefix(k.Value, nodeDefPrefix) || looksLikeNodeDef(k.Value):
			if kind == UnknownFile {
				kind = NodeDefFile
			}
		case k.Value == "nodes" || k.Value == "infra_name":
			kind = InfraFile
		}
	})
	return kind
}
