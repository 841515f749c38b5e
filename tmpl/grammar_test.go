package tmpl

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nikolalohinski/gonja/v2/tokens"
)

// specialWords are the names Jinja2's parser or gonja's lexer and parser
// treat specially somewhere: keywords, literals, statement and end-tag
// names, and gonja's own (nil, and in/is/and/or/not as lexer keywords).
var specialWords = []string{
	"and", "or", "not", "in", "is", "if", "else", "elif", "recursive",
	"true", "false", "none", "True", "False", "None", "nil",
	"for", "endfor", "set", "endset", "with", "endwith", "macro", "endmacro", "filter", "endfilter",
	"raw", "endraw", "block", "endblock", "extends", "include", "import", "from", "as", "call", "endcall",
	"autoescape", "print", "break", "continue", "do", "loop", "scoped", "required", "ignore", "missing", "context",
}

// TestKeywordAttributes: an attribute or key named like any of them is an
// ordinary attribute, in every place an expression goes, while the word
// keeps its meaning where Jinja2's grammar gives it one.
func TestKeywordAttributes(t *testing.T) {
	for _, w := range specialWords {
		item := map[string]any{w: int64(7)}
		data := Data{"item": item, "items": []any{item}}
		for _, src := range []string{
			"{{ item.KW }}",
			"{{item.KW}}",
			"{{ item . KW }}",
			"{{ item['KW'] }}",
			"{{ items[0].KW + 0 }}",
			"{% for x in [item.KW] %}{{ x }}{% endfor %}",
			"{% set y = item.KW %}{{ y }}",
			"{% if item.KW is defined and item.KW == 7 %}7{% endif %}",
			"{{ [item.KW] | join }}",
			"{{ item.KW if true else 0 }}",
			"{{ dict(KW=7)['KW'] }}",
			"{% with z = item.KW %}{{ z }}{% endwith %}",
			"{% macro m(a=item.KW) %}{{ a }}{% endmacro %}{{ m() }}",
			"{{ item.KW\n }}",
		} {
			src := strings.ReplaceAll(src, "KW", w)
			got, err := Render(src, data, Options{})
			if err != nil || got != "7" {
				t.Errorf("%q: got %q, %v; want 7", src, got, err)
			}
		}
	}
	// ... and the keywords still work as keywords, with or without spaces.
	for src, want := range map[string]string{
		"{{ 1 in [1] }}{{ 1 in(1, 2) }}{{ 2 not in[1] }}":                "TrueTrueTrue",
		"{{ not(0) }}{{ not 0 }}{{ not\n0 }}":                            "TrueTrueTrue",
		"{{ 1 is odd }}{{ 2 is not odd }}{{ 1 if true else 2 }}":         "TrueTrue1",
		"{{ [1]and[2] }}{{ 0 or[3] }}{{ true and\nfalse }}":              "[2][3]False",
		"{% for in_ in [1] if in_ %}{{ in_ }}{% endfor %}":               "1",
		"{% set in = 1 %}{{ in }}":                                       "1",
		"{{ none is none }}{{ nil is defined }}{{ True and not False }}": "TrueFalseTrue",
	} {
		if got, err := Render(src, nil, Options{}); err != nil || got != want {
			t.Errorf("%q: got %q, %v; want %q", src, got, err, want)
		}
	}
}

// TestLexer checks token kinds, values and positions against what
// jinja2/lexer.py produces for the same source.
func TestLexer(t *testing.T) {
	tests := []struct {
		src  string
		want string // kind:value@line:col, space separated
	}{
		{"a{{ x.in }}b", "data:a@1:1 {{:{{@1:2 name:x@1:5 op:.@1:6 name:in@1:7 }}:}}@1:10 data:b@1:12 eof:@1:13"},
		{"{{ 1.5 1e3 0x1F 1_0 'a\\'b' }}", "{{:{{@1:1 float:1.5@1:4 float:1e3@1:8 int:0x1F@1:12 int:1_0@1:17 string:'a\\'b'@1:21 }}:}}@1:28 eof:@1:30"},
		{"{% if a\n and b -%}\n  x", "{%:{%@1:1 name:if@1:4 name:a@1:7 name:and@2:2 name:b@2:6 %}:-%}@2:8 data:x@3:3 eof:@3:4"},
		{"  {%- raw %}{{ x }}{% endraw %}", "data:{{ x }}@1:13 eof:@1:32"},
		{"x {#- c -#}  y", "data:x@1:1 data:y@1:14 eof:@1:15"},
		{"{{ a.0.1 }}", "{{:{{@1:1 name:a@1:4 op:.@1:5 int:0@1:6 op:.@1:7 int:1@1:8 }}:}}@1:10 eof:@1:12"},
		{"{{ {'a': {'b': 1}} }}", "{{:{{@1:1 op:{@1:4 string:'a'@1:5 op::@1:8 op:{@1:10 string:'b'@1:11 op::@1:14 int:1@1:16 op:}@1:17 op:}@1:18 }}:}}@1:20 eof:@1:22"},
		{"a\n", "data:a@1:1 eof:@1:2"},
	}
	kinds := map[jtokKind]string{jtEOF: "eof", jtData: "data", jtVarBegin: "{{", jtVarEnd: "}}", jtBlockBegin: "{%", jtBlockEnd: "%}",
		jtName: "name", jtString: "string", jtInteger: "int", jtFloat: "float", jtOp: "op"}
	for _, tt := range tests {
		toks, err := lexJinja(tt.src)
		if err != nil {
			t.Errorf("%q: %v", tt.src, err)
			continue
		}
		var got []string
		for _, k := range toks {
			got = append(got, fmt.Sprintf("%s:%s@%d:%d", kinds[k.kind], k.val, k.line, k.col))
		}
		if g := strings.Join(got, " "); g != tt.want {
			t.Errorf("%q:\n got %s\nwant %s", tt.src, g, tt.want)
		}
	}
}

func TestStringEscapes(t *testing.T) {
	tests := []struct{ body, want string }{
		{`a\\`, `a\`},
		{`\'\"`, `'"`},
		{`\n\t\r\a\b\f\v`, "\n\t\r\a\b\f\v"},
		{`\x41\u00e9\U0001F600\101\7`, "Aé😀A\a"},
		{`\q\d`, `\q\d`},
		{"line\\\nnext", "linenext"},
		{`\é`, `\xe9`}, // Python: the backslash escapes the \xe9 its encoding made
		{"é", "é"},
	}
	for _, tt := range tests {
		got, err := pyUnescape(tt.body)
		if err != nil || got != tt.want {
			t.Errorf("pyUnescape(%q) = %q, %v; want %q", tt.body, got, err, tt.want)
		}
	}
	for _, bad := range []string{`\x4`, `\u12`, `\U0011ffff`, `\N{BULLET}`, `\ud800`} {
		if _, err := pyUnescape(bad); err == nil {
			t.Errorf("pyUnescape(%q) succeeded", bad)
		}
	}
}

// TestCanonicalStream checks what parse.go hands to gonja's parser for
// each statement: gonja tokens, one placeholder per expression.
func TestCanonicalStream(t *testing.T) {
	tests := []struct{ src, want string }{
		{"{{ a.in + 1 }}", "{{ $0 }}"},
		{"{% for k, v in d.items() if k %}x{% else %}y{% endfor %}", "{% for k , v in $0 if $1 %} x {% else %} y {% endfor %}"},
		{"{% if a %}1{% elif b: %}2{% else %}3{% endif %}", "{% if $0 %} 1 {% elif $1 %} 2 {% else %} 3 {% endif %}"},
		{"{% set x = 1, 2 %}{% set ns.a = 3 %}", "{% set x = $0 %} {% set ns . a = $1 %}"},
		{"{% set x | upper %}b{% endset %}", "{% set x %} b {% endset %} {% set x = $0 %}"},
		{"{% macro m(a, b=1) %}{{ a }}{% endmacro %}", "{% macro m ( a , b = $0 ) %} {{ $1 }} {% endmacro %}"},
		{"{% filter indent(2, first=true) | upper %}x{% endfilter %}", "{% filter indent ( $0 , first = $1 ) | upper %} x {% endfilter %}"},
		{"{% with a = 1, b = 2 %}{% endwith %}", "{% with a = $0 , b = $1 %} {% endwith %}"},
		{"{% print a, b %}", "{{ $0 }} {{ $1 }}"},
		{"{% for x in y %}{% break %}{% endfor %}", "{% for x in $0 %} {% break %} {% endfor %}"},
	}
	for _, tt := range tests {
		p, err := parseJinja(tt.src)
		if err != nil {
			t.Errorf("%q: %v", tt.src, err)
			continue
		}
		var got []string
		for _, tok := range p.stream {
			switch {
			case tok.Type == tokens.EOF:
			case strings.HasPrefix(tok.Val, placeholderPrefix):
				got = append(got, "$"+strings.TrimPrefix(tok.Val, placeholderPrefix))
			default:
				got = append(got, tok.Val)
			}
		}
		if g := strings.Join(got, " "); g != tt.want {
			t.Errorf("%q:\n got %s\nwant %s", tt.src, g, tt.want)
		}
	}
}

// TestDocumentedDifferences pins each difference from Jinja2 that the
// package comment lists; the comment on each case is Jinja2's result.
func TestDocumentedDifferences(t *testing.T) {
	data := Data{"d": map[string]any{"b": int64(1), "a": int64(2)}, "e": map[string]any{}, "n": int64(1)}
	tests := []struct {
		name, src, want string // want "ERR" for an error
	}{
		{"data dicts sorted", "{{ d }} {% for k in d %}{{ k }}{% endfor %}", "{'a': 2, 'b': 1} ab"}, // data order
		{"literal dict order kept", "{{ {'b': 1, 'a': 2} }}", "{'b': 1, 'a': 2}"},
		{"include refused", "{% include 'x' %}", "ERR"},
		{"recursive loop refused", "{% for x in [] recursive %}{% endfor %}", "ERR"},
		{"three for targets refused", "{% for a, b, c in [] %}{% endfor %}", "ERR"},                                    // Jinja2 unpacks three
		{"set unpacking refused", "{% set a, b = 1, 2 %}", "ERR"},                                                      // Jinja2 unpacks
		{"no python methods as attributes", "{{ e.items is defined }}", "False"},                                       // True: dict.items
		{"a key named like a method", "{{ {'items': 1}.items }}", "1"},                                                 // <built-in method ...>
		{"range is a list", "{{ range(3) }} {{ [0] + range(1, 2) }}", "[0, 1, 2] [0, 1]"},                              // range(0, 3), TypeError
		{"reverse iterator not used up", "{% set r = [1, 2] | reverse %}{{ r | list }}{{ r | list }}", "[2, 1][2, 1]"}, // [2, 1][]
		{"reverse of map is an iterator", "{{ [1, 2] | map('abs') | reverse * 2 }}", "ERR"},                            // [2, 1, 2, 1]
		{"keys is a list", "{{ d.keys() }}", "['a', 'b']"},                                                             // dict_keys(['b', 'a'])
		{"complex power", "{{ (-8) ** 0.5 }}", "ERR"},                                                                  // (1.7e-16+2.83j)
		{"N escapes", "{{ '\\N{BULLET}' }}", "ERR"},                                                                    // •
		{"markup percent", "{{ ('<%s>' | safe) % '&' }}", "<&>"},                                                       // <&amp;>
		{"unknown filter in untaken branch", "{% if false %}{{ x | nope }}{% endif %}", "ERR"},                         // ""
		{"macro default names a parameter", "{% macro m(a, b=a) %}{{ b }}{% endmacro %}{{ m(1) }}", "ERR"},             // 1
		{"later top-level name in a nested block", "{% for i in [1] %}{{ n }}{% endfor %}{% set n = 2 %}", "1"},        // UndefinedError
		{"else after break", "{% for x in [1] %}{% break %}{% else %}E{% endfor %}", ""},                               // E
		{"loop filter before break", "{% for x in [1, 'a'] if x + 1 %}{% break %}{% endfor %}", "ERR"},                 // ""
		{"macro recursion limit", "{% macro f(n) %}{{ f(n - 1) if n else 0 }}{% endmacro %}{{ f(150) }}", "ERR"},       // 0
		{"constant folding", "{% if false %}{{ none[1:] ~ 'x' }}{% endif %}", ""},                                      // UndefinedError
		{"pprint does not wrap", "{{ range(40) | list | pprint | length }}", "150"},                                    // 169 (wrapped)
	}
	for _, tt := range tests {
		got, err := Render(tt.src, data, Options{})
		switch {
		case tt.want == "ERR" && err == nil:
			t.Errorf("%s: %q rendered %q, want an error", tt.name, tt.src, got)
		case tt.want != "ERR" && (err != nil || got != tt.want):
			t.Errorf("%s: %q = %q, %v; want %q", tt.name, tt.src, got, err, tt.want)
		}
	}
}

// TestMethodReceiverEvaluatedOnce: gonja evaluated the receiver of a
// method call twice, so cmd('...').strip() ran the program twice.
func TestMethodReceiverEvaluatedOnce(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "count")
	src := fmt.Sprintf("{{ cmd('echo x >> %s; wc -l < %s').strip() }}", f, f)
	got, err := Render(src, nil, Options{AllowCmd: true})
	if err != nil || got != "1" {
		t.Fatalf("got %q, %v; want 1", got, err)
	}
	b, _ := os.ReadFile(f)
	if n := strings.Count(string(b), "x"); n != 1 {
		t.Errorf("the program ran %d times", n)
	}
}

// TestSyntaxErrorPositions: every syntax error is a *SyntaxError at the
// offending token, never at line 1 when the fault is later.
func TestSyntaxErrorPositions(t *testing.T) {
	tests := []struct {
		src       string
		line, col int
	}{
		{"a\nb {{ x.in. }}", 2, 12},
		{"a\n\n  {{ 1 +  }}", 3, 11},
		{"{% for x in y %}\n{% endif %}", 2, 4},
		{"{% set x = [1, 2 %}", 1, 19},
		{"x\n{{ 'abc }}", 2, 4},
		{"{{ a |\n 3 }}", 2, 2},
		{"{{ f(a=1, 2) }}", 1, 5},
		{"\n\n{% macro m(a=1, b) %}{% endmacro %}", 3, 18},
	}
	for _, tt := range tests {
		err := Check(tt.src)
		var se *SyntaxError
		if !errors.As(err, &se) {
			t.Errorf("%q: want *SyntaxError, got %T %v", tt.src, err, err)
			continue
		}
		if se.Line != tt.line || se.Col != tt.col {
			t.Errorf("%q: at %d:%d (%s), want %d:%d", tt.src, se.Line, se.Col, se.Msg, tt.line, tt.col)
		}
	}
}
