package compile_test

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/occopus-go/occopus/compile"
	"github.com/occopus-go/occopus/descr"
)

// parse reads an infrastructure description named infra.yaml; the
// description must pass descr's schema checks.
func parse(t *testing.T, src string) *descr.Infra {
	t.Helper()
	in, err := descr.ParseInfra("infra.yaml", []byte(src), descr.LoadOptions{})
	if err != nil {
		t.Fatalf("ParseInfra:\n%v\nsource:\n%s", err, src)
	}
	return in
}

func compileSrc(t *testing.T, src string) (*compile.Static, error) {
	t.Helper()
	return compile.Compile(parse(t, src))
}

func mustCompile(t *testing.T, src string) *compile.Static {
	t.Helper()
	st, err := compileSrc(t, src)
	if err != nil {
		t.Fatalf("Compile:\n%v\nsource:\n%s", err, src)
	}
	return st
}

// indent prefixes every line of s with n spaces.
func indent(n int, s string) string {
	if s == "" {
		return ""
	}
	pad := strings.Repeat(" ", n)
	lines := strings.Split(strings.TrimSuffix(s, "\n"), "\n")
	for i, l := range lines {
		lines[i] = pad + l
	}
	return strings.Join(lines, "\n") + "\n"
}

// TestCompileStatic checks the fields copied from the description.
func TestCompileStatic(t *testing.T) {
	in := parse(t, `infra_name: demo
user_id: alice@example.com
variables:
  v: 1
nodes:
  - name: web
    type: web_t
    filter: {type: docker, image: nginx}
    attributes: {role: front, port: 80}
  - name: db
    type: db_t
`)
	st, err := compile.Compile(in)
	if err != nil {
		t.Fatal(err)
	}
	if st.Name != "demo" || st.UserID != "alice@example.com" {
		t.Errorf("Name, UserID = %q, %q", st.Name, st.UserID)
	}
	if !reflect.DeepEqual(st.Variables, map[string]any{"v": 1}) {
		t.Errorf("Variables = %#v", st.Variables)
	}
	if len(st.Nodes) != 2 || len(st.ByName) != 2 {
		t.Fatalf("%d nodes, %d by name", len(st.Nodes), len(st.ByName))
	}
	cases := []struct {
		name       string
		typ        string
		filter     map[string]any
		attributes map[string]any
	}{
		{"web", "web_t", map[string]any{"type": "docker", "image": "nginx"}, map[string]any{"role": "front", "port": 80}},
		{"db", "db_t", nil, map[string]any{}},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			n := st.Nodes[i]
			if n.Name != tc.name || st.ByName[tc.name] != n {
				t.Fatalf("Nodes[%d] = %q, ByName[%q] = %p, want the same node", i, n.Name, tc.name, st.ByName[tc.name])
			}
			if n.Type != tc.typ {
				t.Errorf("Type = %q, want %q", n.Type, tc.typ)
			}
			if !reflect.DeepEqual(n.Filter, tc.filter) {
				t.Errorf("Filter = %#v, want %#v", n.Filter, tc.filter)
			}
			if !reflect.DeepEqual(n.Attributes, tc.attributes) {
				t.Errorf("Attributes = %#v, want %#v", n.Attributes, tc.attributes)
			}
			if n.Desc != in.Nodes[i] {
				t.Errorf("Desc is not the description's node %d", i)
			}
			if n.DependsOn != nil || len(n.Inbound) != 0 || len(n.Outbound) != 0 || n.Level != 0 {
				t.Errorf("independent node has DependsOn %v, Inbound %v, Outbound %v, Level %d", n.DependsOn, n.Inbound, n.Outbound, n.Level)
			}
		})
	}
	if want := [][]string{{"web", "db"}}; !reflect.DeepEqual(st.Levels, want) {
		t.Errorf("Levels = %v, want %v", st.Levels, want)
	}
}

func TestCompileScaling(t *testing.T) {
	// The scaling lines start at line 6 of the description; their values
	// at column 12.
	cases := []struct {
		name     string
		scaling  string // lines below `scaling:`; "" leaves scaling out
		min, max int
		wantErr  string
	}{
		{name: "defaults", min: 1, max: 1},
		{name: "empty mapping", scaling: "{}", min: 1, max: 1},
		{name: "min only sets max", scaling: "min: 3", min: 3, max: 3},
		{name: "max only", scaling: "max: 4", min: 1, max: 4},
		{name: "min and max", scaling: "min: 2\nmax: 5", min: 2, max: 5},
		{name: "min equals max", scaling: "min: 2\nmax: 2", min: 2, max: 2},
		{name: "max written first", scaling: "max: 5\nmin: 2", min: 2, max: 5},
		{name: "max less than min", scaling: "min: 3\nmax: 2",
			wantErr: "infra.yaml:7:12: nodes[0].scaling.max: max (2) must not be less than min (3)"},
		{name: "max below default min", scaling: "max: 0",
			wantErr: "infra.yaml:6:12: nodes[0].scaling.max: max (0) must not be less than min (1)"},
		{name: "min zero", scaling: "min: 0",
			wantErr: "infra.yaml:6:12: nodes[0].scaling.min: min must be at least 1, not 0"},
		{name: "min zero max zero reports min only", scaling: "min: 0\nmax: 0",
			wantErr: "infra.yaml:6:12: nodes[0].scaling.min: min must be at least 1, not 0"},
		{name: "min zero with a max", scaling: "min: 0\nmax: 3",
			wantErr: "infra.yaml:6:12: nodes[0].scaling.min: min must be at least 1, not 0"},
		{name: "negative min and smaller max", scaling: "min: -1\nmax: -2",
			wantErr: "infra.yaml:6:12: nodes[0].scaling.min: min must be at least 1, not -1\n" +
				"infra.yaml:7:12: nodes[0].scaling.max: max (-2) must not be less than min (-1)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			src := "infra_name: demo\nnodes:\n  - name: a\n    type: t\n"
			switch {
			case tc.scaling == "{}":
				src += "    scaling: {}\n"
			case tc.scaling != "":
				src += "    scaling:\n" + indent(6, tc.scaling)
			}
			st, err := compileSrc(t, src)
			if tc.wantErr != "" {
				if err == nil {
					t.Fatalf("no error, want\n%s", tc.wantErr)
				}
				if err.Error() != tc.wantErr {
					t.Fatalf("error\n%v\nwant\n%s", err, tc.wantErr)
				}
				if st != nil {
					t.Errorf("Static %v returned with an error", st)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			n := st.ByName["a"]
			if n.Min != tc.min || n.Max != tc.max {
				t.Errorf("min, max = %d, %d, want %d, %d", n.Min, n.Max, tc.min, tc.max)
			}
		})
	}
}

func TestCompileCreateTimeout(t *testing.T) {
	cases := []struct {
		name string
		line string
		want time.Duration
	}{
		{"absent", "", 0},
		{"integer seconds", "create_timeout: 90", 90 * time.Second},
		{"fractional seconds", "create_timeout: 1.5", 1500 * time.Millisecond},
		{"zero", "create_timeout: 0", 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			src := "infra_name: demo\nnodes:\n  - name: a\n    type: t\n" + indent(4, tc.line)
			st := mustCompile(t, src)
			if got := st.ByName["a"].CreateTimeout; got != tc.want {
				t.Errorf("CreateTimeout = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestCompileVariables(t *testing.T) {
	cases := []struct {
		name        string
		infra, node string // variables sections, "" when absent
		want        map[string]any
	}{
		{name: "none", want: map[string]any{}},
		{name: "infra only", infra: "a: 1\nb: x",
			want: map[string]any{"a": 1, "b": "x"}},
		{name: "node only", node: "a: 1",
			want: map[string]any{"a": 1}},
		{name: "node overrides infra", infra: "a: 1\nb: keep", node: "a: 2\nc: new",
			want: map[string]any{"a": 2, "b": "keep", "c": "new"}},
		{name: "nested maps merged key by key",
			infra: "db:\n  host: h\n  port: 5432\n  opts: {ssl: true, pool: 5}",
			node:  "db:\n  port: 6000\n  opts: {pool: 10}\n  user: u",
			want: map[string]any{"db": map[string]any{
				"host": "h", "port": 6000, "user": "u",
				"opts": map[string]any{"ssl": true, "pool": 10},
			}}},
		{name: "scalar replaces map", infra: "db: {host: h}", node: "db: none",
			want: map[string]any{"db": "none"}},
		{name: "map replaces scalar", infra: "db: none", node: "db: {host: h}",
			want: map[string]any{"db": map[string]any{"host": "h"}}},
		{name: "lists are replaced, not joined", infra: "l: [1, 2]", node: "l: [3]",
			want: map[string]any{"l": []any{3}}},
		{name: "null overrides", infra: "a: 1", node: "a: ~",
			want: map[string]any{"a": nil}},
		{name: "empty node mapping overrides nothing", infra: "m: {k: v}", node: "m: {}",
			want: map[string]any{"m": map[string]any{"k": "v"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			src := "infra_name: demo\n"
			if tc.infra != "" {
				src += "variables:\n" + indent(2, tc.infra)
			}
			src += "nodes:\n  - name: a\n    type: t\n"
			if tc.node != "" {
				src += "    variables:\n" + indent(6, tc.node)
			}
			src += "  - name: plain\n    type: t\n"
			in := parse(t, src)
			infraBefore := in.Variables
			nodeBefore := in.Nodes[0].Variables
			// Fresh copies of the inputs, to see that Compile leaves them alone.
			wantInfra := parse(t, src).Variables
			wantNode := parse(t, src).Nodes[0].Variables
			st, err := compile.Compile(in)
			if err != nil {
				t.Fatal(err)
			}
			if got := st.ByName["a"].Variables; !reflect.DeepEqual(got, tc.want) {
				t.Errorf("variables\n%#v\nwant\n%#v", got, tc.want)
			}
			// A node without variables inherits the infra-level ones.
			if got := st.ByName["plain"].Variables; !reflect.DeepEqual(got, wantInfra) {
				t.Errorf("node without variables has\n%#v\nwant\n%#v", got, wantInfra)
			}
			if !reflect.DeepEqual(st.Variables, wantInfra) {
				t.Errorf("Static.Variables = %#v, want %#v", st.Variables, wantInfra)
			}
			if !reflect.DeepEqual(infraBefore, wantInfra) || !reflect.DeepEqual(nodeBefore, wantNode) {
				t.Errorf("Compile modified its input: infra %#v, node %#v", infraBefore, nodeBefore)
			}
		})
	}
}

func TestMergeVariables(t *testing.T) {
	cases := []struct {
		name       string
		base, over func() map[string]any // fresh inputs on each call
		want       map[string]any
	}{
		{name: "both nil",
			base: func() map[string]any { return nil }, over: func() map[string]any { return nil },
			want: map[string]any{}},
		{name: "nil over",
			base: func() map[string]any { return map[string]any{"a": 1} }, over: func() map[string]any { return nil },
			want: map[string]any{"a": 1}},
		{name: "nil base",
			base: func() map[string]any { return nil }, over: func() map[string]any { return map[string]any{"a": 1} },
			want: map[string]any{"a": 1}},
		{name: "override and add",
			base: func() map[string]any { return map[string]any{"a": 1, "b": 2} },
			over: func() map[string]any { return map[string]any{"b": 3, "c": 4} },
			want: map[string]any{"a": 1, "b": 3, "c": 4}},
		{name: "three levels deep",
			base: func() map[string]any {
				return map[string]any{"x": map[string]any{"y": map[string]any{"p": 1, "q": 2}, "k": "base"}}
			},
			over: func() map[string]any {
				return map[string]any{"x": map[string]any{"y": map[string]any{"q": 3}}}
			},
			want: map[string]any{"x": map[string]any{"y": map[string]any{"p": 1, "q": 3}, "k": "base"}}},
		{name: "map over scalar",
			base: func() map[string]any { return map[string]any{"x": 1} },
			over: func() map[string]any { return map[string]any{"x": map[string]any{"a": 1}} },
			want: map[string]any{"x": map[string]any{"a": 1}}},
		{name: "scalar over map",
			base: func() map[string]any { return map[string]any{"x": map[string]any{"a": 1}} },
			over: func() map[string]any { return map[string]any{"x": "s"} },
			want: map[string]any{"x": "s"}},
		{name: "nil over map",
			base: func() map[string]any { return map[string]any{"x": map[string]any{"a": 1}} },
			over: func() map[string]any { return map[string]any{"x": nil} },
			want: map[string]any{"x": nil}},
		{name: "list over list",
			base: func() map[string]any { return map[string]any{"x": []any{1, 2}} },
			over: func() map[string]any { return map[string]any{"x": []any{}} },
			want: map[string]any{"x": []any{}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			base, over := tc.base(), tc.over()
			got := compile.MergeVariables(base, over)
			if got == nil {
				t.Fatal("MergeVariables returned nil")
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("MergeVariables\n%#v\nwant\n%#v", got, tc.want)
			}
			if !reflect.DeepEqual(base, tc.base()) || !reflect.DeepEqual(over, tc.over()) {
				t.Errorf("inputs modified: base %#v, over %#v", base, over)
			}
		})
	}
}

// The result of a merge is a new top-level map: adding to it does not
// reach the inputs.
func TestMergeVariablesNewMap(t *testing.T) {
	base := map[string]any{"a": 1, "m": map[string]any{"k": "v"}}
	over := map[string]any{"b": 2, "m": map[string]any{"j": "w"}}
	got := compile.MergeVariables(base, over)
	got["c"] = 3
	got["m"].(map[string]any)["z"] = 0
	if _, ok := base["c"]; ok {
		t.Error("base gained a key")
	}
	if _, ok := over["c"]; ok {
		t.Error("over gained a key")
	}
	if len(base["m"].(map[string]any)) != 1 || len(over["m"].(map[string]any)) != 1 {
		t.Errorf("a merged nested map is shared with an input: base %v, over %v", base, over)
	}
}

type edges struct {
	dependsOn []string
	inbound   map[string][]descr.Mapping
	outbound  map[string][]descr.Mapping
}

func TestCompileDependencies(t *testing.T) {
	none := map[string][]descr.Mapping{}
	m := func(a, b string, synch bool) descr.Mapping {
		return descr.Mapping{Attributes: [2]string{a, b}, Synch: synch}
	}
	const nodes = "nodes:\n" +
		"  - &W {name: web, type: t}\n" +
		"  - &D {name: db, type: t}\n" +
		"  - &C {name: cache, type: t}\n"
	cases := []struct {
		name string
		deps string
		want map[string]edges
	}{
		{name: "plain pair",
			deps: "- [web, db]",
			want: map[string]edges{
				"web":   {[]string{"db"}, map[string][]descr.Mapping{"db": nil}, none},
				"db":    {nil, none, map[string][]descr.Mapping{"web": nil}},
				"cache": {nil, none, none},
			}},
		{name: "pair of aliases",
			deps: "- [*W, *D]\n- [*C, db]",
			want: map[string]edges{
				"web":   {[]string{"db"}, map[string][]descr.Mapping{"db": nil}, none},
				"db":    {nil, none, map[string][]descr.Mapping{"web": nil, "cache": nil}},
				"cache": {[]string{"db"}, map[string][]descr.Mapping{"db": nil}, none},
			}},
		{name: "connection without mappings",
			deps: "- connection: [web, db]",
			want: map[string]edges{
				"web":   {[]string{"db"}, map[string][]descr.Mapping{"db": nil}, none},
				"db":    {nil, none, map[string][]descr.Mapping{"web": nil}},
				"cache": {nil, none, none},
			}},
		{name: "connection with mappings",
			deps: "- connection: [web, db]\n" +
				"  mappings:\n" +
				"    - attributes: [db_host, host]\n" +
				"      synch: true\n" +
				"    - attributes: [db_port, port]\n",
			want: map[string]edges{
				"web":   {[]string{"db"}, map[string][]descr.Mapping{"db": {m("db_host", "host", true), m("db_port", "port", false)}}, none},
				"db":    {nil, none, map[string][]descr.Mapping{"web": {m("db_host", "host", true), m("db_port", "port", false)}}},
				"cache": {nil, none, none},
			}},
		{name: "repeated pair is one edge with every mapping",
			deps: "- [web, db]\n" +
				"- connection: [web, db]\n" +
				"  mappings: [{attributes: [a, b]}]\n" +
				"- connection: [*W, *D]\n" +
				"  mappings: [{attributes: [c, d], synch: false}]\n",
			want: map[string]edges{
				"web":   {[]string{"db"}, map[string][]descr.Mapping{"db": {m("a", "b", false), m("c", "d", false)}}, none},
				"db":    {nil, none, map[string][]descr.Mapping{"web": {m("a", "b", false), m("c", "d", false)}}},
				"cache": {nil, none, none},
			}},
		{name: "DependsOn in description order",
			deps: "- [web, db]\n- [web, cache]\n- [cache, db]\n",
			want: map[string]edges{
				"web":   {[]string{"db", "cache"}, map[string][]descr.Mapping{"db": nil, "cache": nil}, none},
				"db":    {nil, none, map[string][]descr.Mapping{"web": nil, "cache": nil}},
				"cache": {[]string{"db"}, map[string][]descr.Mapping{"db": nil}, map[string][]descr.Mapping{"web": nil}},
			}},
		{name: "DependsOn order is not node order",
			deps: "- [web, cache]\n- [web, db]\n",
			want: map[string]edges{
				"web":   {[]string{"cache", "db"}, map[string][]descr.Mapping{"db": nil, "cache": nil}, none},
				"db":    {nil, none, map[string][]descr.Mapping{"web": nil}},
				"cache": {nil, none, map[string][]descr.Mapping{"web": nil}},
			}},
		{name: "mappings stay on their own edge",
			deps: "- connection: [web, db]\n" +
				"  mappings: [{attributes: [w1, d1]}]\n" +
				"- connection: [web, cache]\n" +
				"  mappings: [{attributes: [w2, c2], synch: true}]\n" +
				"- connection: [cache, db]\n" +
				"  mappings: [{attributes: [c3, d3]}]\n",
			want: map[string]edges{
				"web": {[]string{"db", "cache"},
					map[string][]descr.Mapping{"db": {m("w1", "d1", false)}, "cache": {m("w2", "c2", true)}}, none},
				"db": {nil, none,
					map[string][]descr.Mapping{"web": {m("w1", "d1", false)}, "cache": {m("c3", "d3", false)}}},
				"cache": {[]string{"db"},
					map[string][]descr.Mapping{"db": {m("c3", "d3", false)}},
					map[string][]descr.Mapping{"web": {m("w2", "c2", true)}}},
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			st := mustCompile(t, "infra_name: demo\n"+nodes+"dependencies:\n"+indent(2, tc.deps))
			for name, want := range tc.want {
				n := st.ByName[name]
				got := edges{n.DependsOn, n.Inbound, n.Outbound}
				if !reflect.DeepEqual(got, want) {
					t.Errorf("%s:\n got DependsOn %v, Inbound %v, Outbound %v\nwant DependsOn %v, Inbound %v, Outbound %v",
						name, got.dependsOn, got.inbound, got.outbound, want.dependsOn, want.inbound, want.outbound)
				}
			}
		})
	}
}

// levelSrc writes a description of nodes (in the given order) and plain
// dependencies, each "from to".
func levelSrc(nodes []string, deps []string) string {
	var b strings.Builder
	b.WriteString("infra_name: demo\nnodes:\n")
	for _, n := range nodes {
		fmt.Fprintf(&b, "  - {name: %s, type: t}\n", n)
	}
	if len(deps) > 0 {
		b.WriteString("dependencies:\n")
		for _, d := range deps {
			f := strings.Fields(d)
			fmt.Fprintf(&b, "  - [%s, %s]\n", f[0], f[1])
		}
	}
	return b.String()
}

func TestCompileLevels(t *testing.T) {
	cases := []struct {
		name  string
		nodes []string
		deps  []string // "dependent dependency"
		want  [][]string
	}{
		{name: "single", nodes: []string{"a"}, want: [][]string{{"a"}}},
		{name: "independent nodes keep description order", nodes: []string{"c", "a", "b"},
			want: [][]string{{"c", "a", "b"}}},
		{name: "chain", nodes: []string{"app", "mid", "base"},
			deps: []string{"app mid", "mid base"},
			want: [][]string{{"base"}, {"mid"}, {"app"}}},
		{name: "chain listed bottom up", nodes: []string{"base", "mid", "app"},
			deps: []string{"mid base", "app mid"},
			want: [][]string{{"base"}, {"mid"}, {"app"}}},
		{name: "diamond", nodes: []string{"top", "left", "right", "bottom"},
			deps: []string{"top left", "top right", "left bottom", "right bottom"},
			want: [][]string{{"bottom"}, {"left", "right"}, {"top"}}},
		{name: "longest chain wins, deeper dependency last", nodes: []string{"a", "b", "c"},
			deps: []string{"a c", "a b", "b c"},
			want: [][]string{{"c"}, {"b"}, {"a"}}},
		{name: "longest chain wins, deeper dependency first", nodes: []string{"a", "b", "c"},
			deps: []string{"a b", "a c", "b c"},
			want: [][]string{{"c"}, {"b"}, {"a"}}},
		{name: "two components", nodes: []string{"x1", "y1", "x0", "y0", "z"},
			deps: []string{"x1 x0", "y1 y0"},
			want: [][]string{{"x0", "y0", "z"}, {"x1", "y1"}}},
		{name: "fan in", nodes: []string{"lb", "w1", "w2", "w3"},
			deps: []string{"lb w1", "lb w2", "lb w3"},
			want: [][]string{{"w1", "w2", "w3"}, {"lb"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			st := mustCompile(t, levelSrc(tc.nodes, tc.deps))
			if !reflect.DeepEqual(st.Levels, tc.want) {
				t.Fatalf("Levels = %v, want %v", st.Levels, tc.want)
			}
			for l, names := range tc.want {
				for _, name := range names {
					if got := st.ByName[name].Level; got != l {
						t.Errorf("%s.Level = %d, want %d", name, got, l)
					}
				}
			}
		})
	}
}

func TestCompileErrors(t *testing.T) {
	cases := []struct {
		name string
		src  string
		want string
	}{
		{name: "two-node cycle",
			src:  levelSrc([]string{"a", "b"}, []string{"a b", "b a"}),
			want: "infra.yaml:3:5: dependencies: dependency cycle: a -> b -> a"},
		{name: "three-node cycle names only its nodes",
			src: levelSrc([]string{"entry", "a", "b", "c"}, []string{"entry a", "a b", "b c", "c a"}),
			// placed at the first node on the cycle, nodes[1]
			want: "infra.yaml:4:5: dependencies: dependency cycle: a -> b -> c -> a"},
		{name: "cycle found from a later node",
			src:  levelSrc([]string{"free", "p", "q"}, []string{"q p", "p q"}),
			want: "infra.yaml:4:5: dependencies: dependency cycle: p -> q -> p"},
		{name: "self-dependency",
			src:  "infra_name: demo\nnodes:\n  - {name: a, type: t}\ndependencies:\n  - [a, a]\n",
			want: `infra.yaml:5:5: dependencies[0]: node "a" cannot depend on itself`},
		{name: "self-dependency as connection",
			src:  "infra_name: demo\nnodes:\n  - {name: a, type: t}\n  - {name: b, type: t}\ndependencies:\n  - [b, a]\n  - connection: [b, b]\n",
			want: `infra.yaml:7:5: dependencies[1]: node "b" cannot depend on itself`},
		{name: "unknown dependency with a close name",
			src:  "infra_name: demo\nnodes:\n  - {name: web, type: t}\n  - {name: db, type: t}\ndependencies:\n  - [web, dbb]\n",
			want: `infra.yaml:6:11: dependencies[0][1]: dependency names unknown node "dbb" (did you mean "db"?)`},
		{name: "unknown dependent with a close name",
			src:  "infra_name: demo\nnodes:\n  - {name: web, type: t}\n  - {name: db, type: t}\ndependencies:\n  - [wbe, db]\n",
			want: `infra.yaml:6:6: dependencies[0][0]: dependency names unknown node "wbe" (did you mean "web"?)`},
		{name: "unknown dependency lists the nodes",
			src:  "infra_name: demo\nnodes:\n  - {name: web, type: t}\n  - {name: db, type: t}\ndependencies:\n  - [web, storage]\n",
			want: `infra.yaml:6:11: dependencies[0][1]: dependency names unknown node "storage" (nodes: db, web)`},
		{name: "unknown end of a connection",
			src:  "infra_name: demo\nnodes:\n  - {name: web, type: t}\n  - {name: db, type: t}\ndependencies:\n  - connection: [web, dbs]\n    mappings: [{attributes: [a, b]}]\n",
			want: `infra.yaml:6:23: dependencies[0].connection[1]: dependency names unknown node "dbs" (did you mean "db"?)`},
		{name: "both ends unknown",
			src: "infra_name: demo\nnodes:\n  - {name: web, type: t}\ndependencies:\n  - [x, y]\n",
			want: `infra.yaml:5:6: dependencies[0][0]: dependency names unknown node "x" (nodes: web)` + "\n" +
				`infra.yaml:5:9: dependencies[0][1]: dependency names unknown node "y" (nodes: web)`},
		{name: "duplicate node name",
			src:  "infra_name: demo\nnodes:\n  - name: a\n    type: t\n  - name: b\n    type: t\n  - name: a\n    type: u\n",
			want: `infra.yaml:7:11: nodes[2].name: node name "a" is used twice (first by nodes[0] at line 3)`},
		{name: "errors of several kinds, in file order",
			src: "infra_name: demo\nnodes:\n" +
				"  - {name: a, type: t, scaling: {min: 0}}\n" +
				"  - {name: a, type: t}\n" +
				"dependencies:\n" +
				"  - [a, nobody]\n",
			want: `infra.yaml:3:39: nodes[0].scaling.min: min must be at least 1, not 0` + "\n" +
				`infra.yaml:4:12: nodes[1].name: node name "a" is used twice (first by nodes[0] at line 3)` + "\n" +
				`infra.yaml:6:9: dependencies[0][1]: dependency names unknown node "nobody" (nodes: a)`},
		{name: "cycle is not looked for while other errors stand",
			src:  levelSrc([]string{"a", "b"}, []string{"a b", "b a", "b nobody"}),
			want: `infra.yaml:8:9: dependencies[2][1]: dependency names unknown node "nobody" (nodes: a, b)`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			st, err := compileSrc(t, tc.src)
			if err == nil {
				t.Fatalf("no error (levels %v), want\n%s", st.Levels, tc.want)
			}
			if st != nil {
				t.Errorf("Static returned with an error")
			}
			if err.Error() != tc.want {
				t.Fatalf("error\n%v\nwant\n%s", err, tc.want)
			}
			var es descr.Errors
			if !errors.As(err, &es) {
				t.Fatalf("error is %T, want descr.Errors", err)
			}
			if len(es) != strings.Count(tc.want, "\n")+1 {
				t.Errorf("%d errors, want one per line", len(es))
			}
			for _, e := range es {
				if e.Pos.File != "infra.yaml" || e.Pos.Line == 0 || e.Pos.Col == 0 || e.Path == "" {
					t.Errorf("error without a full place: %#v", e)
				}
			}
		})
	}
}

// Compile promises every problem, each with its place; a node whose name is
// a duplicate still has its own scaling checked.
func TestCompileDuplicateNodeScalingChecked(t *testing.T) {
	_, err := compileSrc(t, "infra_name: demo\nnodes:\n  - {name: a, type: t}\n  - {name: a, type: t, scaling: {min: 0}}\n")
	want := `infra.yaml:4:12: nodes[1].name: node name "a" is used twice (first by nodes[0] at line 3)` + "\n" +
		`infra.yaml:4:39: nodes[1].scaling.min: min must be at least 1, not 0`
	if err == nil || err.Error() != want {
		t.Errorf("error\n%v\nwant\n%s", err, want)
	}
}
