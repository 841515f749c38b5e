// Package compile turns a checked infrastructure description into a static
// description: nodes with their inherited variables and scaling limits, the
// dependency graph with its attribute mappings, and the topological levels
// in which nodes are built.
package compile

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/agnivade/levenshtein"

	"github.com/occopus-go/occopus/descr"
)

// Static is a compiled infrastructure description.
type Static struct {
	Name      string
	UserID    string
	Variables map[string]any
	// Nodes in description order.
	Nodes  []*Node
	ByName map[string]*Node
	// Levels lists node names level by level: level 0 depends on nothing,
	// level k only on levels below k.
	Levels [][]string
}

// Node is one compiled node.
type Node struct {
	Name   string
	Type   string
	Filter map[string]any
	// Min and Max are the scaling limits after defaults (min 1, max = min).
	Min, Max int
	// Variables are the infra-level variables overridden by the node's.
	Variables  map[string]any
	Attributes map[string]any
	// DependsOn names the nodes this one needs, in description order.
	DependsOn []string
	// Inbound maps each dependency's name to the attribute mappings from it;
	// Outbound maps each dependent's name to the mappings towards it.
	Inbound  map[string][]descr.Mapping
	Outbound map[string][]descr.Mapping
	Level    int
	// CreateTimeout is the node's create_timeout, 0 when not given.
	CreateTimeout time.Duration
	Desc          *descr.NodeDesc
}

// Compile checks the semantics of a description (unique names, known
// dependency ends, no cycles, sane scaling) and compiles it. Every problem
// is reported, each with its place.
func Compile(in *descr.Infra) (*Static, error) {
	var errs descr.Errors
	st := &Static{Name: in.Name, UserID: in.UserID, Variables: in.Variables, ByName: map[string]*Node{}}
	for _, nd := range in.Nodes {
		prev, dup := st.ByName[nd.Name]
		if dup {
			// Reported, and its scaling still checked below, so that one
			// round of fixes mends the description; the node is not kept.
			errs = append(errs, &descr.Error{Pos: posOf(nd.Src.Get("name")), Path: nd.Path + ".name",
				Msg: fmt.Sprintf("node name %q is used twice (first by %s at line %d)", nd.Name, prev.Desc.Path, prev.Desc.Src.Pos.Line)})
		}
		n := &Node{
			Name:          nd.Name,
			Type:          nd.Type,
			Filter:        nd.Filter,
			Variables:     MergeVariables(in.Variables, nd.Variables),
			Attributes:    nd.Attributes,
			Inbound:       map[string][]descr.Mapping{},
			Outbound:      map[string][]descr.Mapping{},
			Desc:          nd,
			CreateTimeout: time.Duration(nd.CreateTimeout * float64(time.Second)),
		}
		n.Min, n.Max = 1, 0
		if nd.Min != nil {
			n.Min = *nd.Min
		}
		if nd.Max != nil {
			n.Max = *nd.Max
		} else {
			n.Max = n.Min
		}
		if nd.Min != nil && n.Min < 1 {
			errs = append(errs, &descr.Error{Pos: posOf(nd.Src.Get("scaling").Get("min")), Path: nd.Path + ".scaling.min",
				Msg: fmt.Sprintf("min must be at least 1, not %d", n.Min)})
		}
		if nd.Max != nil && n.Max < n.Min {
			errs = append(errs, &descr.Error{Pos: posOf(nd.Src.Get("scaling").Get("max")), Path: nd.Path + ".scaling.max",
				Msg: fmt.Sprintf("max (%d) must not be less than min (%d)", n.Max, n.Min)})
		}
		if dup {
			continue
		}
		st.Nodes = append(st.Nodes, n)
		st.ByName[n.Name] = n
	}
	names := make([]string, 0, len(st.Nodes))
	for _, n := range st.Nodes {
		names = append(names, n.Name)
	}
	for _, d := range in.Dependencies {
		ok := true
		for i, end := range []struct {
			name string
			src  *descr.Node
		}{{d.From, d.FromSrc}, {d.To, d.ToSrc}} {
			if _, known := st.ByName[end.name]; !known {
				ok = false
				errs = append(errs, &descr.Error{Pos: posOf(end.src), Path: fmt.Sprintf("%s[%d]", depPath(d), i),
					Msg: fmt.Sprintf("dependency names unknown node %q%s", end.name, didYouMean(end.name, names))})
			}
		}
		if !ok {
			continue
		}
		if d.From == d.To {
			errs = append(errs, &descr.Error{Pos: posOf(d.Src), Path: d.Path, Msg: fmt.Sprintf("node %q cannot depend on itself", d.From)})
			continue
		}
		from, to := st.ByName[d.From], st.ByName[d.To]
		if !contains(from.DependsOn, to.Name) {
			from.DependsOn = append(from.DependsOn, to.Name)
		}
		from.Inbound[to.Name] = append(from.Inbound[to.Name], d.Mappings...)
		to.Outbound[from.Name] = append(to.Outbound[from.Name], d.Mappings...)
	}
	if len(errs) == 0 {
		if cyc := findCycle(st); cyc != nil {
			first := st.ByName[cyc[0]]
			errs = append(errs, &descr.Error{Pos: posOf(first.Desc.Src), Path: "dependencies",
				Msg: "dependency cycle: " + strings.Join(cyc, " -> ")})
		}
	}
	if err := errs.Err(); err != nil {
		return nil, err
	}
	st.Levels = levels(st)
	return st, nil
}

func depPath(d *descr.Dependency) string {
	if d.Src != nil && d.Src.Kind == descr.MapNode {
		return d.Path + ".connection"
	}
	return d.Path
}

func posOf(n *descr.Node) descr.Pos {
	if n == nil {
		return descr.Pos{}
	}
	return n.Pos
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

func didYouMean(got string, names []string) string {
	best, bestD := "", 1<<30
	for _, n := range names {
		if d := levenshtein.ComputeDistance(got, n); d < bestD {
			best, bestD = n, d
		}
	}
	if best != "" && bestD <= max(2, len(got)/3) {
		return fmt.Sprintf(" (did you mean %q?)", best)
	}
	sorted := append([]string(nil), names...)
	sort.Strings(sorted)
	return fmt.Sprintf(" (nodes: %s)", strings.Join(sorted, ", "))
}

// findCycle returns the names on one dependency cycle, first name repeated
// at the end, or nil.
func findCycle(st *Static) []string {
	const (
		white = iota
		grey
		black
	)
	color := map[string]int{}
	var stack []string
	var found []string
	var visit func(name string) bool
	visit = func(name string) bool {
		color[name] = grey
		stack = append(stack, name)
		for _, dep := range st.ByName[name].DependsOn {
			switch color[dep] {
			case grey:
				i := len(stack) - 1
				for stack[i] != dep {
					i--
				}
				found = append(append([]string{}, stack[i:]...), dep)
				return true
			case white:
				if visit(dep) {
					return true
				}
			}
		}
		stack = stack[:len(stack)-1]
		color[name] = black
		return false
	}
	for _, n := range st.Nodes {
		if color[n.Name] == white && visit(n.Name) {
			return found
		}
	}
	return nil
}

// levels assigns each node the length of its longest dependency chain.
func levels(st *Static) [][]string {
	memo := map[string]int{}
	var level func(n *Node) int
	level = func(n *Node) int {
		if l, ok := memo[n.Name]; ok {
			return l
		}
		l := 0
		for _, d := range n.DependsOn {
			l = max(l, level(st.ByName[d])+1)
		}
		memo[n.Name] = l
		return l
	}
	var out [][]string
	for _, n := range st.Nodes {
		n.Level = level(n)
		for len(out) <= n.Level {
			out = append(out, nil)
		}
		out[n.Level] = append(out[n.Level], n.Name)
	}
	return out
}

// MergeVariables returns base overridden by over; nested mappings are
// merged key by key, as Occopus does. Neither input is modified.
func MergeVariables(base, over map[string]any) map[string]any {
	out := make(map[string]any, len(base)+len(over))
	for k, v := range base {
		out[k] = v
	}
	for k, v := range over {
		if bm, ok := out[k].(map[string]any); ok {
			if om, ok := v.(map[string]any); ok {
				out[k] = MergeVariables(bm, om)
				continue
			}
		}
		out[k] = v
	}
	return out
}
