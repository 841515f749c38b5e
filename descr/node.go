package descr

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Kind of a YAML node.
type Kind int

const (
	ScalarNode Kind = iota
	MapNode
	SeqNode
)

// Node is a YAML node with its source position, after aliases, merge keys
// and imports have been resolved. Descriptions are checked on this tree (so
// every error has a place) and then turned into plain values.
type Node struct {
	Kind  Kind
	Tag   string // !!str, !!int, !!float, !!bool, !!null for scalars
	Value string // scalar text
	// Content holds key, value, key, value... for maps and the items of a
	// sequence.
	Content []*Node
	Pos     Pos
	// Block is true for literal/folded block scalars, Quoted for quoted
	// ones; used to place template errors inside the scalar.
	Block  bool
	Quoted bool
	// Verbatim is true for imported text: the value starts exactly at Pos.
	Verbatim bool
	// src is the file's lines, to find a place of the value in them: the
	// value's lines are not the file's in folded, multi-line plain and
	// escaped quoted scalars.
	src []string
}

// findInSource finds where the text at line:col of the value is written:
// the first place, from the scalar's start, of the value's text from that
// column on (a short stretch of it, which escapes and folding leave alone
// far more often than not).
func (n *Node) findInSource(line, col int) (Pos, bool) {
	lines := strings.Split(n.Value, "\n")
	if line > len(lines) || col < 1 || col > len(lines[line-1])+1 {
		return Pos{}, false
	}
	snip := lines[line-1][col-1:]
	if len(snip) > 24 {
		snip = snip[:24]
	}
	if strings.TrimSpace(snip) == "" {
		return Pos{}, false
	}
	// A stretch of the value seen more than once cannot be placed so.
	if strings.Count(n.Value, snip) != 1 {
		return Pos{}, false
	}
	for i := n.Pos.Line - 1; i >= 0 && i < len(n.src) && i < n.Pos.Line-1+len(lines)*4+64; i++ {
		from := 0
		if i == n.Pos.Line-1 {
			from = min(max(n.Pos.Col-1, 0), len(n.src[i]))
		}
		if j := strings.Index(n.src[i][from:], snip); j >= 0 {
			return Pos{File: n.Pos.File, Line: i + 1, Col: from + j + 1}, true
		}
	}
	return Pos{}, false
}

// SourcePos maps a 1-based line and column inside a scalar's value to the
// place in the file, as closely as the scalar's style allows.
func (n *Node) SourcePos(line, col int) Pos {
	p := n.Pos
	if line < 1 {
		return p
	}
	if !n.Verbatim && n.src != nil {
		if q, ok := n.findInSource(line, col); ok {
			return q
		}
	}
	switch {
	case n.Verbatim:
		p.Line += line - 1
		if line == 1 {
			p.Col += col - 1
		} else {
			p.Col = col
		}
	case n.Block:
		// Block content starts on the line after the | or > indicator.
		p.Line += line
		p.Col = 0
	default:
		if n.Quoted {
			p.Col++
		}
		if line == 1 {
			p.Col += col - 1
		} else {
			p.Line += line - 1
			p.Col = 0
		}
	}
	if p.Col < 1 {
		p.Col = 1
	}
	return p
}

// Get returns the value of key in a map node, or nil.
func (n *Node) Get(key string) *Node {
	if n == nil || n.Kind != MapNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

// Pairs calls f for each key/value of a map node, in file order.
func (n *Node) Pairs(f func(k, v *Node)) {
	if n == nil || n.Kind != MapNode {
		return
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		f(n.Content[i], n.Content[i+1])
	}
}

// drop removes the pairs whose keys are given from a map node.
func (n *Node) drop(keys []*Node) {
	out := n.Content[:0]
	for i := 0; i+1 < len(n.Content); i += 2 {
		if !slices.Contains(keys, n.Content[i]) {
			out = append(out, n.Content[i], n.Content[i+1])
		}
	}
	clear(n.Content[len(out):])
	n.Content = out
}

// IsNull reports whether n is absent or a YAML null.
func (n *Node) IsNull() bool { return n == nil || (n.Kind == ScalarNode && n.Tag == "!!null") }

// TypeName names the node's type for error messages.
func (n *Node) TypeName() string {
	switch {
	case n == nil:
		return "nothing"
	case n.Kind == MapNode:
		return "a mapping"
	case n.Kind == SeqNode:
		return "a list"
	}
	switch n.Tag {
	case "!!str":
		return "a string"
	case "!!int":
		return "an integer"
	case "!!float":
		return "a number"
	case "!!bool":
		return "a boolean"
	case "!!null":
		return "null"
	}
	return n.Tag
}

// Interface turns the tree into plain Go values: map[string]any, []any,
// string, int, float64, bool and nil.
func (n *Node) Interface() any {
	if n == nil {
		return nil
	}
	switch n.Kind {
	case MapNode:
		m := make(map[string]any, len(n.Content)/2)
		n.Pairs(func(k, v *Node) { m[k.Value] = v.Interface() })
		return m
	case SeqNode:
		l := make([]any, len(n.Content))
		for i, c := range n.Content {
			l[i] = c.Interface()
		}
		return l
	}
	return scalarValue(n)
}

func scalarValue(n *Node) any {
	switch n.Tag {
	case "!!null":
		return nil
	case "!!bool":
		b, _ := parseBool(n.Value)
		return b
	case "!!int":
		if i, err := parseInt(n.Value); err == nil {
			return i
		}
		return n.Value
	case "!!float":
		if f, err := parseFloat(n.Value); err == nil {
			return f
		}
		return n.Value
	}
	return n.Value
}

// Occopus reads YAML with PyYAML, i.e. YAML 1.1: yes/no/on/off are booleans
// there, and users write them (`public_ip_needed: yes`). yaml.v3 follows
// YAML 1.2, so plain scalars are re-resolved here.
var (
	yaml11Bool  = regexp.MustCompile(`^(y|Y|yes|Yes|YES|n|N|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF)$`)
	yaml11Null  = regexp.MustCompile(`^(~|null|Null|NULL|)$`)
	yaml11Int   = regexp.MustCompile(`^[-+]?(0|[1-9][0-9_]*|0x[0-9a-fA-F_]+|0o?[0-7_]+|0b[01_]+)$`)
	yaml11Float = regexp.MustCompile(`^([-+]?([0-9][0-9_]*)?\.[0-9_]*([eE][-+]?[0-9]+)?|[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+|[-+]?\.(inf|Inf|INF)|\.(nan|NaN|NAN))$`)
)

func resolvePlain(v string) string {
	switch {
	case yaml11Null.MatchString(v):
		return "!!null"
	case v != "y" && v != "Y" && v != "n" && v != "N" && yaml11Bool.MatchString(v):
		// PyYAML does not treat single y/n as booleans.
		return "!!bool"
	case yaml11Int.MatchString(v):
		return "!!int"
	case yaml11Float.MatchString(v) && v != "." && v != "-." && v != "+.":
		return "!!float"
	}
	return "!!str"
}

func parseBool(s string) (bool, error) {
	switch s {
	case "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON":
		return true, nil
	case "no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF":
		return false, nil
	}
	return false, fmt.Errorf("not a boolean: %q", s)
}

func parseInt(s string) (int, error) {
	s = strings.ReplaceAll(s, "_", "")
	neg := false
	if strings.HasPrefix(s, "-") || strings.HasPrefix(s, "+") {
		neg = s[0] == '-'
		s = s[1:]
	}
	base := 10
	switch {
	case strings.HasPrefix(s, "0x"):
		base, s = 16, s[2:]
	case strings.HasPrefix(s, "0b"):
		base, s = 2, s[2:]
	case strings.HasPrefix(s, "0o"):
		base, s = 8, s[2:]
	case len(s) > 1 && s[0] == '0':
		base, s = 8, s[1:] // YAML 1.1 octal, as PyYAML reads 0644
	}
	u, err := strconv.ParseInt(s, base, 64)
	if err != nil {
		return 0, err
	}
	if neg {
		u = -u
	}
	if u > math.MaxInt || u < math.MinInt {
		return 0, fmt.Errorf("integer out of range: %s", s)
	}
	return int(u), nil
}

func parseFloat(s string) (float64, error) {
	s = strings.ReplaceAll(s, "_", "")
	switch strings.ToLower(strings.TrimLeft(s, "+-")) {
	case ".inf":
		if strings.HasPrefix(s, "-") {
			return math.Inf(-1), nil
		}
		return math.Inf(1), nil
	case ".nan":
		return math.NaN(), nil
	}
	return strconv.ParseFloat(s, 64)
}

// maxImportDepth bounds nested imports; a cycle is reported before this.
const maxImportDepth = 32

// loader turns yaml.v3 nodes of one file into Nodes, following imports.
type loader struct {
	file    string
	stack   []string // files being imported, to report cycles
	aliases map[*yaml.Node]*Node
	// building holds anchored nodes being converted: an alias to one of
	// them would make the tree cyclic.
	building map[*yaml.Node]bool
	errs     Errors
	// src is the file's lines, kept by scalars for SourcePos.
	src []string
	// readFile is os.ReadFile; imports can be refused (descriptions that
	// arrive over the network) by replacing it.
	opts LoadOptions
}

// LoadOptions control how files are read.
type LoadOptions struct {
	// NoImports refuses !yaml_import and !text_import (descriptions from
	// the network must not read the server's files unless allowed).
	NoImports bool
	// MaxBytes bounds the document with every alias expanded and every
	// import read (default DefaultMaxBytes): a few kilobytes of nested
	// aliases can stand for gigabytes once expanded and stored.
	MaxBytes int
}

// DefaultMaxBytes is LoadOptions.MaxBytes's default.
const DefaultMaxBytes = 4 << 20

func (o LoadOptions) maxBytes() int {
	if o.MaxBytes > 0 {
		return o.MaxBytes
	}
	return DefaultMaxBytes
}

// Parse reads YAML source. name is used in positions and as the base of
// relative imports.
func Parse(name string, src []byte, opts LoadOptions) (*Node, error) {
	l := &loader{file: name, stack: []string{name}, aliases: map[*yaml.Node]*Node{}, building: map[*yaml.Node]bool{}, opts: opts}
	n := l.parse(src)
	if err := l.errs.Err(); err != nil {
		return nil, err
	}
	return n, nil
}

// ParseFile reads and parses a YAML file.
func ParseFile(path string, opts LoadOptions) (*Node, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, &Error{Pos: Pos{File: path}, Msg: fmt.Sprintf("cannot read: %v", unwrapPathErr(err))}
	}
	return Parse(path, src, opts)
}

func unwrapPathErr(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}

var yamlErrLine = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)

func (l *loader) parse(src []byte) *Node {
	l.src = strings.Split(string(src), "\n")
	var doc yaml.Node
	if err := yaml.Unmarshal(src, &doc); err != nil {
		if e := diagnoseYAML(l.file, src); e != nil {
			l.errs = append(l.errs, e)
			return nil
		}
		l.errs = append(l.errs, yamlError(l.file, err)...)
		return nil
	}
	if doc.Kind == 0 {
		return &Node{Kind: ScalarNode, Tag: "!!null", Pos: Pos{File: l.file, Line: 1, Col: 1}}
	}
	n := l.convert(&doc, 0)
	if n == nil {
		return nil
	}
	size := expandedSize(n, map[*Node]expanded{})
	switch {
	case size.nodes > maxExpandedNodes:
		l.errs = append(l.errs, &Error{Pos: n.Pos, Msg: fmt.Sprintf("document expands to more than %d values through aliases", maxExpandedNodes)})
		return nil
	case size.bytes > l.opts.maxBytes():
		l.errs = append(l.errs, &Error{Pos: n.Pos, Msg: fmt.Sprintf("document expands to more than %d bytes through aliases and imports (%d bytes as written); the limit is max_description_bytes in occopus_config.yaml", l.opts.maxBytes(), len(src))})
		return nil
	}
	return n
}

// maxExpandedNodes bounds a document's size with every alias expanded, so
// a "billion laughs" file is refused instead of exhausting memory.
const maxExpandedNodes = 1_000_000

// expanded is the size of a tree with every alias expanded: values, and
// bytes as stored (the text of scalars and keys, plus a little per value).
type expanded struct{ nodes, bytes int }

func expandedSize(n *Node, memo map[*Node]expanded) expanded {
	if v, ok := memo[n]; ok {
		return v
	}
	size := expanded{nodes: 1, bytes: len(n.Value) + 4}
	for _, c := range n.Content {
		cs := expandedSize(c, memo)
		size.nodes += cs.nodes
		size.bytes += cs.bytes
		if size.nodes > maxExpandedNodes || size.bytes > 1<<40 {
			break // large enough to refuse; stop before overflowing
		}
	}
	memo[n] = size
	return size
}

func yamlError(file string, err error) Errors {
	var out Errors
	msg := err.Error()
	if te, ok := err.(*yaml.TypeError); ok {
		for _, m := range te.Errors {
			out = append(out, yamlMsg(file, m))
		}
		return out
	}
	for _, m := range strings.Split(strings.TrimPrefix(msg, "yaml: "), "\n") {
		out = append(out, yamlMsg(file, strings.TrimSpace(m)))
	}
	return out
}

func yamlMsg(file, m string) *Error {
	if g := yamlErrLine.FindStringSubmatch(m); g != nil {
		line, _ := strconv.Atoi(g[1])
		// The parser names no column: none is shown rather than a wrong one.
		return &Error{Pos: Pos{File: file, Line: line}, Msg: "invalid YAML: " + g[2]}
	}
	return &Error{Pos: Pos{File: file}, Msg: "invalid YAML: " + m}
}

func (l *loader) pos(y *yaml.Node) Pos { return Pos{File: l.file, Line: y.Line, Col: y.Column} }

func (l *loader) convert(y *yaml.Node, depth int) *Node {
	if depth > 1000 {
		l.errs = append(l.errs, &Error{Pos: l.pos(y), Msg: "YAML nested too deeply"})
		return nil
	}
	switch y.Kind {
	case yaml.DocumentNode:
		if len(y.Content) == 0 {
			return &Node{Kind: ScalarNode, Tag: "!!null", Pos: l.pos(y)}
		}
		return l.convert(y.Content[0], depth+1)
	case yaml.AliasNode:
		if l.building[y.Alias] {
			l.errs = append(l.errs, &Error{Pos: l.pos(y), Msg: fmt.Sprintf("alias *%s refers to a node that contains it (recursive alias)", y.Value)})
			return nil
		}
		if n, ok := l.aliases[y.Alias]; ok {
			return n
		}
		n := l.convert(y.Alias, depth+1)
		l.aliases[y.Alias] = n
		return n
	}
	if n, ok := l.aliases[y]; ok && y.Anchor != "" {
		return n
	}
	switch y.Tag {
	case "!yaml_import", "!text_import":
		return l.importNode(y, depth)
	}
	if strings.HasPrefix(y.Tag, "!") && !strings.HasPrefix(y.Tag, "!!") && y.Tag != "!" {
		l.errs = append(l.errs, &Error{Pos: l.pos(y), Msg: fmt.Sprintf("unknown tag %s (known: !yaml_import, !text_import)", y.Tag)})
		return nil
	}
	n := &Node{Pos: l.pos(y)}
	if y.Anchor != "" {
		l.aliases[y] = n
		l.building[y] = true
		defer delete(l.building, y)
	}
	switch y.Kind {
	case yaml.MappingNode:
		n.Kind = MapNode
		seen := map[string]*Node{}
		add := func(k, v *Node) {
			if prev, dup := seen[k.Value]; dup {
				l.errs = append(l.errs, &Error{Pos: k.Pos, Path: k.Value, Msg: fmt.Sprintf("duplicate key (first at line %d)", prev.Pos.Line)})
				return
			}
			seen[k.Value] = k
			n.Content = append(n.Content, k, v)
		}
		var merges []*Node
		for i := 0; i+1 < len(y.Content); i += 2 {
			ky, vy := y.Content[i], y.Content[i+1]
			if ky.Kind == yaml.ScalarNode && ky.Tag == "!!merge" {
				merges = append(merges, l.convert(vy, depth+1))
				continue
			}
			k := l.convert(ky, depth+1)
			v := l.convert(vy, depth+1)
			if k == nil || v == nil {
				continue
			}
			if k.Kind != ScalarNode {
				l.errs = append(l.errs, &Error{Pos: k.Pos, Msg: "a mapping key must be a plain value, not " + k.TypeName()})
				continue
			}
			add(k, v)
		}
		// Merge keys (<<) as PyYAML does: explicit keys win, earlier merges
		// win over later ones.
		for _, m := range merges {
			var srcs []*Node
			if m != nil && m.Kind == SeqNode {
				srcs = m.Content
			} else {
				srcs = []*Node{m}
			}
			for _, s := range srcs {
				if s == nil || s.Kind != MapNode {
					l.errs = append(l.errs, &Error{Pos: n.Pos, Msg: "<< merge needs a mapping or a list of mappings"})
					continue
				}
				s.Pairs(func(k, v *Node) {
					if _, ok := seen[k.Value]; !ok {
						seen[k.Value] = k
						n.Content = append(n.Content, k, v)
					}
				})
			}
		}
	case yaml.SequenceNode:
		n.Kind = SeqNode
		for _, c := range y.Content {
			if cn := l.convert(c, depth+1); cn != nil {
				n.Content = append(n.Content, cn)
			}
		}
	case yaml.ScalarNode:
		n.Kind = ScalarNode
		n.Value = y.Value
		n.src = l.src
		n.Block = y.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0
		n.Quoted = y.Style&(yaml.SingleQuotedStyle|yaml.DoubleQuotedStyle) != 0
		switch {
		case y.Tag == "!" || n.Quoted || n.Block:
			n.Tag = "!!str"
		case y.Style&yaml.TaggedStyle != 0 && strings.HasPrefix(y.Tag, "!!"):
			n.Tag = y.Tag
		default:
			n.Tag = resolvePlain(y.Value)
		}
	}
	return n
}

// importNode reads the file named by `url: file://...` of an import tag.
func (l *loader) importNode(y *yaml.Node, depth int) *Node {
	p := l.pos(y)
	if l.opts.NoImports {
		l.errs = append(l.errs, &Error{Pos: p, Msg: y.Tag + " is not allowed for descriptions received over the network (set allow_file_imports in occopus_config.yaml to permit it)"})
		return nil
	}
	if y.Kind != yaml.MappingNode {
		l.errs = append(l.errs, &Error{Pos: p, Msg: y.Tag + " needs a mapping with a `url: file://...` key"})
		return nil
	}
	var raw string
	var urlPos Pos
	for i := 0; i+1 < len(y.Content); i += 2 {
		k, v := y.Content[i], y.Content[i+1]
		switch k.Value {
		case "url":
			raw, urlPos = v.Value, l.pos(v)
		default:
			l.errs = append(l.errs, &Error{Pos: l.pos(k), Path: k.Value, Msg: "unknown key in " + y.Tag + " (allowed: url)"})
		}
	}
	if urlPos.Line == 0 {
		l.errs = append(l.errs, &Error{Pos: p, Msg: y.Tag + " needs a `url: file://...` key"})
		return nil
	}
	target, err := importPath(l.file, raw)
	if err != nil {
		l.errs = append(l.errs, &Error{Pos: urlPos, Path: "url", Msg: err.Error()})
		return nil
	}
	for _, f := range l.stack {
		if f == target {
			l.errs = append(l.errs, &Error{Pos: urlPos, Path: "url", Msg: fmt.Sprintf("import cycle: %s imports itself (via %s)", target, strings.Join(l.stack, " -> "))})
			return nil
		}
	}
	if len(l.stack) >= maxImportDepth {
		l.errs = append(l.errs, &Error{Pos: urlPos, Path: "url", Msg: "imports nested too deeply"})
		return nil
	}
	src, err := os.ReadFile(target)
	if err != nil {
		l.errs = append(l.errs, &Error{Pos: urlPos, Path: "url", Msg: fmt.Sprintf("cannot import %s: %v", target, unwrapPathErr(err))})
		return nil
	}
	if y.Tag == "!text_import" {
		return &Node{Kind: ScalarNode, Tag: "!!str", Value: string(src), Pos: Pos{File: target, Line: 1, Col: 1}, Verbatim: true}
	}
	sub := &loader{file: target, stack: append(append([]string{}, l.stack...), target), aliases: map[*yaml.Node]*Node{}, building: map[*yaml.Node]bool{}, opts: l.opts}
	n := sub.parse(src)
	l.errs = append(l.errs, sub.errs...)
	return n
}

// importPath resolves an import URL relative to the including file.
// Occopus accepts `file://name` (relative), `file:///abs` and surrounding
// whitespace.
func importPath(including, raw string) (string, error) {
	u := strings.TrimSpace(raw)
	if u == "" {
		return "", fmt.Errorf("empty import url")
	}
	if i := strings.Index(u, "://"); i >= 0 {
		scheme := u[:i]
		if scheme != "file" {
			return "", fmt.Errorf("import url %q: only file:// urls can be imported", u)
		}
		u = u[i+3:]
	}
	if u == "" {
		return "", fmt.Errorf("import url %q names no file", raw)
	}
	if !filepath.IsAbs(u) {
		u = filepath.Join(filepath.Dir(including), u)
	}
	return filepath.Clean(u), nil
}

// FromValue builds a tree, without positions, from plain values such as a
// description read back from the store.
func FromValue(v any) *Node {
	switch v := v.(type) {
	case map[string]any:
		n := &Node{Kind: MapNode}
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			n.Content = append(n.Content, &Node{Kind: ScalarNode, Tag: "!!str", Value: k}, FromValue(v[k]))
		}
		return n
	case []any:
		n := &Node{Kind: SeqNode}
		for _, x := range v {
			n.Content = append(n.Content, FromValue(x))
		}
		return n
	case nil:
		return &Node{Kind: ScalarNode, Tag: "!!null"}
	case bool:
		return &Node{Kind: ScalarNode, Tag: "!!bool", Value: strconv.FormatBool(v)}
	case int:
		return &Node{Kind: ScalarNode, Tag: "!!int", Value: strconv.Itoa(v)}
	case int64:
		return &Node{Kind: ScalarNode, Tag: "!!int", Value: strconv.FormatInt(v, 10)}
	case float64:
		// A float stays a float (3.0): stored JSON is read with
		// DecodeJSON, which gives whole numbers written without a point
		// as int.
		f := strconv.FormatFloat(v, 'g', -1, 64)
		if !strings.ContainsAny(f, ".eEIN") {
			f += ".0"
		}
		return &Node{Kind: ScalarNode, Tag: "!!float", Value: f}
	case string:
		return &Node{Kind: ScalarNode, Tag: "!!str", Value: v, Quoted: true}
	}
	return &Node{Kind: ScalarNode, Tag: "!!str", Value: fmt.Sprint(v)}
}
