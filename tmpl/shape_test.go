package tmpl

import (
	"bufio"
	"os"
	"reflect"
	"runtime/debug"
	"strings"
	"testing"

	controlStructures "github.com/nikolalohinski/gonja/v2/builtins/control_structures"
	"github.com/nikolalohinski/gonja/v2/nodes"
	"github.com/nikolalohinski/gonja/v2/tokens"
)

// TestGonjaShape checks that the gonja linked into the tests still has the
// shape the rewriter relies on (init panics on the same check).
func TestGonjaShape(t *testing.T) {
	if err := checkGonjaShape(); err != nil {
		t.Fatal(err)
	}
}

// cloneShape deep-copies gonjaShape so a test can corrupt it.
func cloneShape() []shapeType {
	out := make([]shapeType, len(gonjaShape))
	for i, st := range gonjaShape {
		st.Fields = append([]shapeField(nil), st.Fields...)
		out[i] = st
	}
	return out
}

func entry(t *testing.T, table []shapeType, typ reflect.Type) *shapeType {
	t.Helper()
	for i := range table {
		if table[i].Type == typ {
			return &table[i]
		}
	}
	t.Fatalf("no entry for %s", typ)
	return nil
}

func fieldIndex(t *testing.T, st *shapeType, name string) int {
	t.Helper()
	for i, f := range st.Fields {
		if f.Name == name {
			return i
		}
	}
	t.Fatalf("%s has no listed field %s", st.Type, name)
	return -1
}

// TestGonjaShapeDetectsDrift proves the check fails, and names the right
// type and field, when the expectations differ from gonja.
func TestGonjaShapeDetectsDrift(t *testing.T) {
	forCS := typeOf[controlStructures.ForControlStructure]()
	setCS := typeOf[controlStructures.SetControlStructure]()
	withCS := typeOf[controlStructures.WithControlStructure]()
	doCS := typeOf[controlStructures.DoControlStructure]()
	blockCS := typeOf[controlStructures.BlockControlStructure]()
	cases := []struct {
		name             string
		corrupt          func(t *testing.T, table []shapeType) []shapeType
		typ, field, stmt string
		msg              string
	}{
		{
			name: "missing exported field",
			corrupt: func(t *testing.T, table []shapeType) []shapeType {
				st := entry(t, table, forCS)
				st.Fields = append(st.Fields, shapeField{"ElseWrapper", tWrapper, useWalk})
				return table
			},
			typ: "controlStructures.ForControlStructure", field: "ElseWrapper", msg: "field not found",
		},
		{
			name: "missing unexported field",
			corrupt: func(t *testing.T, table []shapeType) []shapeType {
				st := entry(t, table, withCS)
				st.Fields = append(st.Fields, shapeField{"pairsOrder", typeOf[[]string](), useKeep})
				return table
			},
			typ: "controlStructures.WithControlStructure", field: "pairsOrder", msg: "field not found",
		},
		{
			name: "wrong type of exported field",
			corrupt: func(t *testing.T, table []shapeType) []shapeType {
				st := entry(t, table, forCS)
				st.Fields[fieldIndex(t, st, "IfCondition")].Type = tExprs
				return table
			},
			typ: "controlStructures.ForControlStructure", field: "IfCondition",
			msg: "field has type nodes.Expression, expected []nodes.Expression",
		},
		{
			name: "wrong type of unexported field",
			corrupt: func(t *testing.T, table []shapeType) []shapeType {
				st := entry(t, table, setCS)
				st.Fields[fieldIndex(t, st, "body")].Type = tWrappers
				return table
			},
			typ: "controlStructures.SetControlStructure", field: "body",
			msg: "field has type *nodes.Wrapper, expected []*nodes.Wrapper",
		},
		{
			name: "unlisted expression field",
			corrupt: func(t *testing.T, table []shapeType) []shapeType {
				st := entry(t, table, setCS)
				i := fieldIndex(t, st, "condition")
				st.Fields = append(st.Fields[:i], st.Fields[i+1:]...)
				return table
			},
			typ: "controlStructures.SetControlStructure", field: "condition", msg: "not in the shape table",
		},
		{
			name: "unlisted node field of a walked node",
			corrupt: func(t *testing.T, table []shapeType) []shapeType {
				st := entry(t, table, typeOf[nodes.Output]())
				i := fieldIndex(t, st, "Alternative")
				st.Fields = append(st.Fields[:i], st.Fields[i+1:]...)
				return table
			},
			typ: "nodes.Output", field: "Alternative", msg: "not in the shape table",
		},
		{
			name: "registered statement missing from the table",
			corrupt: func(t *testing.T, table []shapeType) []shapeType {
				entry(t, table, doCS) // must exist before removal
				var out []shapeType
				for _, st := range table {
					if st.Type != doCS {
						out = append(out, st)
					}
				}
				return out
			},
			stmt: "do", msg: "the shape table does not list it",
		},
		{
			name: "statement parses to another type",
			corrupt: func(t *testing.T, table []shapeType) []shapeType {
				entry(t, table, doCS).Sample = "{% set x = 1 %}"
				return table
			},
			typ: "controlStructures.DoControlStructure", stmt: "do", msg: `parsed as statement "set"`,
		},
		{
			name: "statement no longer registered",
			corrupt: func(t *testing.T, table []shapeType) []shapeType {
				return append(table, shapeType{Type: blockCS, Statement: "switch", Sample: "{% switch %}"})
			},
			typ: "controlStructures.BlockControlStructure", stmt: "switch", msg: "no longer registers",
		},
		{
			name: "enabled statement marked never parsed",
			corrupt: func(t *testing.T, table []shapeType) []shapeType {
				st := entry(t, table, forCS)
				st.Fields[fieldIndex(t, st, "EmptyWrapper")].Use = useUnreached
				return table
			},
			typ: "controlStructures.ForControlStructure", field: "EmptyWrapper", stmt: "for", msg: "enabled=true",
		},
		{
			name: "not a struct",
			corrupt: func(t *testing.T, table []shapeType) []shapeType {
				return append(table, shapeType{Type: tWrapper})
			},
			typ: "*nodes.Wrapper", msg: "not a struct type",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			errs := checkShape(c.corrupt(t, cloneShape()))
			if len(errs) != 1 {
				t.Fatalf("want exactly one error, got %d: %v", len(errs), errs)
			}
			e := errs[0]
			if e.Type != c.typ || e.Field != c.field || e.Statement != c.stmt || !strings.Contains(e.Msg, c.msg) {
				t.Errorf("got type=%q field=%q statement=%q msg=%q\nwant type=%q field=%q statement=%q msg containing %q",
					e.Type, e.Field, e.Statement, e.Msg, c.typ, c.field, c.stmt, c.msg)
			}
			for _, want := range []string{gonjaShapeVersion, "must be updated"} {
				if !strings.Contains(e.Error(), want) {
					t.Errorf("message %q does not mention %q", e.Error(), want)
				}
			}
		})
	}
}

func TestCarriesNodes(t *testing.T) {
	for _, c := range []struct {
		typ  reflect.Type
		want bool
	}{
		{typeOf[bool](), false},
		{typeOf[string](), false},
		{typeOf[*tokens.Token](), false},
		{typeOf[map[string]string](), false},
		{typeOf[*nodes.Trim](), false},
		{typeOf[func()](), false},
		{tExpr, true},
		{tExprMap, true},
		{tWrapper, true},
		{typeOf[*nodes.Data](), true},
		{typeOf[[]*nodes.FilterCall](), true}, // FilterCall is no Node but holds expressions
		{typeOf[nodes.BlockSet](), true},
		{typeOf[any](), true},
		{typeOf[struct{ X [2]*nodes.Pair }](), true},
	} {
		if got := carriesNodes(c.typ, map[reflect.Type]bool{}); got != c.want {
			t.Errorf("carriesNodes(%s) = %v, want %v", c.typ, got, c.want)
		}
	}
}

// TestGonjaVersionPinned fails when gonja is upgraded (or replaced) without
// re-verifying gonjaShape, which was written for gonjaShapeVersion.
func TestGonjaVersionPinned(t *testing.T) {
	const advice = "re-verify the shape table gonjaShape in tmpl/rewrite.go against the new gonja sources " +
		"(nodes/, builtins/control_structures/, exec/environment.go), then update gonjaShapeVersion"
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, m := range bi.Deps {
			if m.Path == gonjaModule && (m.Version != gonjaShapeVersion || m.Replace != nil) {
				t.Fatalf("the test binary links %s %s (replace %v) but the shape table was written for %s: %s",
					gonjaModule, m.Version, m.Replace, gonjaShapeVersion, advice)
			}
		}
	}
	// go test binaries record no dependencies, so read go.mod as well.
	f, err := os.Open("../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var required []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		words := strings.Fields(strings.SplitN(sc.Text(), "//", 2)[0])
		if len(words) > 0 && words[0] == "require" {
			words = words[1:]
		}
		if len(words) > 0 && words[0] == "replace" {
			words = words[1:]
			if len(words) > 0 && words[0] == gonjaModule {
				t.Fatalf("go.mod replaces %s (%s): %s", gonjaModule, sc.Text(), advice)
			}
		}
		if len(words) >= 2 && words[0] == gonjaModule {
			required = append(required, words[1])
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(required) != 1 || required[0] != gonjaShapeVersion {
		t.Fatalf("go.mod requires %s %v but the shape table was written for %s: %s",
			gonjaModule, required, gonjaShapeVersion, advice)
	}
}

// TestRewriteStatements covers every statement field the rewriter rewrites,
// in particular those reached through unexported() (set, with, filter),
// which the golden cases barely use. The expected outputs are Jinja2
// 3.1.6's (with the loopcontrols extension); errors are Occopus'.
func TestRewriteStatements(t *testing.T) {
	data := Data{"variables": map[string]any{"a": 1, "s": "str", "n": nil, "l": []any{1, "a", true}}}
	for _, c := range []struct{ src, out, err string }{
		// set: expression (value), condition (bool), alternative (value), body
		{src: "{% set x = variables.a + 1 %}{{ x }}", out: "2"},
		{src: "{% set x = y %}{{ x is defined }}{{ x|default('d') }}", out: "Falsed"},
		{src: "{% set x = y %}{{ x }}", err: `line 1, column 12: "y" is undefined`},
		{src: "{% set x = 1 if variables.n else 2 %}{{ x }}", out: "2"},
		{src: "{% set x = 1 if nope else 2 %}{{ x }}", out: "2"},
		{src: "{% set x = 1 if variables.n else z %}{{ x|default('u') }}", out: "u"},
		{src: "{% set x %}a{{ variables.a }}b{% endset %}[{{ x }}]", out: "[a1b]"},
		{src: "{% set x %}a{{ nope }}b{% endset %}[{{ x }}]", err: `line 1, column 16: "nope" is undefined`},
		// with: pairs (value), wrapper
		{src: "{% with a = 1, b = variables.s %}{{ a }}{{ b }}{% endwith %}", out: "1str"},
		{src: "{% with a = nope %}{{ a is defined }}{{ a|default(3) }}{% endwith %}", out: "False3"},
		{src: "{% with a = 1 %}{{ nope }}{% endwith %}", err: `line 1, column 20: "nope" is undefined`},
		// filter: bodyWrapper, filterChain (strict args, known filters)
		{src: "{% filter upper %}abc{{ variables.s }}{% endfilter %}", out: "ABCSTR"},
		{src: "{% filter upper|lower %}AbC{% endfilter %}", out: "abc"},
		{src: "{% filter replace('a', nope) %}abc{% endfilter %}", err: `line 1, column 24: "nope" is undefined`},
		{src: "{% filter nofilter %}abc{% endfilter %}", err: `line 1, column 11: no filter named "nofilter"`},
		// for: ObjectEvaluator (iter), IfCondition (bool), BodyWrapper, EmptyWrapper; break, continue
		{src: "{% for x in [] %}{{ x }}{% else %}empty{{ variables.a }}{% endfor %}", out: "empty1"},
		{src: "{% for x in variables.l if x %}{{ x }}{% endfor %}", out: "1aTrue"},
		{src: "{% for x in variables.l if nope %}{{ x }}{% endfor %}", out: ""},
		{src: "{% for x in nope %}{{ x }}{% endfor %}", err: `line 1, column 13: "nope" is undefined`},
		{src: "{% for x in range(5) %}{% if x == 3 %}{% break %}{% endif %}{{ x }}{% endfor %}", out: "012"},
		{src: "{% for x in range(5) %}{% if x is even %}{% continue %}{% endif %}{{ x }}{% endfor %}", out: "13"},
		// if: Conditions (bool), Wrappers
		{src: "{% if nope %}a{% elif variables.a %}b{% else %}c{% endif %}", out: "b"},
		// macro: Kwargs defaults (value), Wrapper
		{src: "{% macro m(a, b=variables.a, c=nope) %}{{ a }}{{ b }}{{ c|default('C') }}{% endmacro %}{{ m(1) }}{{ m(1, 2, 3) }}", out: "11C123"},
		{src: "{% raw %}{{ x }}{% endraw %}", out: "{{ x }}"},
	} {
		out, err := Render(c.src, data, Options{})
		switch {
		case c.err != "" && (err == nil || err.Error() != c.err):
			t.Errorf("%s: got out=%q err=%v, want error %q", c.src, out, err, c.err)
		case c.err == "" && (err != nil || out != c.out):
			t.Errorf("%s: got out=%q err=%v, want %q", c.src, out, err, c.out)
		}
	}
}
