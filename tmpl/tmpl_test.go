package tmpl

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

var errData = Data{
	"name":      "worker",
	"variables": map[string]any{"a": int64(1), "l": []any{int64(1)}},
}

// TestRenderErrors checks that errors name the failing expression and carry
// the position of the offending name or call (Jinja2 raises for all of these,
// see the err_* cases in testdata/golden.json).
func TestRenderErrors(t *testing.T) {
	tests := []struct {
		src       string
		line, col int
		msg       string
	}{
		{"{{ nope }}", 1, 4, `"nope" is undefined`},
		{"line1\n  {{ variables.nope }}", 2, 6, `"variables.nope" is undefined`},
		{"{{ getip(master) }}", 1, 10, `undefined name "master" in getip(master)`},
		{"{{ getip('nosuch') }}", 1, 4, `getip('nosuch'): unknown node`},
		{"{{ getprivip('nosuch') }}", 1, 4, `getprivip('nosuch'): unknown node`},
		{"{{ getipall(nope) }}", 1, 13, `undefined name "nope" in getipall(nope)`},
		{"{{ nope.x }}", 1, 4, `"nope" is undefined`},
		{"{{ nope.x | default('d') }}", 1, 4, `"nope" is undefined`},
		{"a\n{% for x in nope %}{% endfor %}", 2, 13, `"nope" is undefined`},
		{"{{ nope | upper }}", 1, 4, `"nope" is undefined`},
		{"{{ 'a' ~ nope }}", 1, 10, `"nope" is undefined`},
		{"{{ 1 / 0 }}", 1, 6, "division by zero"},
		{"{{ 1 + 'a' }}", 1, 6, "unsupported operand type(s) for +: 'int' and 'str'"},
		{"{% if nope == 1 %}{% endif %}", 1, 7, `"nope" is undefined`},
		{"{{ nofunc(1) }}", 1, 4, `"nofunc" is undefined`},
		{"{{ variables.a.b.c }}", 1, 4, `"variables.a.b" is undefined`},
		{"{{ variables['x'] }}", 1, 4, `"variables['x']" is undefined`},
		{"{{ variables.l[5] }}", 1, 4, `"variables.l[5]" is undefined`},
		{"{% set y = nope %}{{ y }}", 1, 12, `"nope" is undefined`},
		{"{{ [1, 2] | join(nope) }}", 1, 18, `undefined name "nope" in filter join`},
		{"{{ 'x' | b64decode }}", 1, 10, "filter b64decode: invalid base64"},
		{"{{ cmd('true') }}", 1, 4, "cmd() is disabled: set `allow_cmd: true`"},
		{"{{ cut(1, 2) }}", 1, 4, "cut() takes exactly 3 arguments"},
		{"{% macro m() %}{{ getip('x') }}{% endmacro %}{{ m() }}", 1, 19, "getip('x'): unknown node"},
		{"{{ range(1000000) | length }}", 1, 4, "range() is limited"},
	}
	for _, tt := range tests {
		t.Run(tt.src, func(t *testing.T) {
			out, err := Render(tt.src, errData, Options{Addresses: testAddrs})
			var re *RenderError
			if !errors.As(err, &re) {
				t.Fatalf("want *RenderError, got %T %v (out %q)", err, err, out)
			}
			if re.Line != tt.line || re.Col != tt.col || !strings.Contains(re.Msg, tt.msg) {
				t.Errorf("got line %d col %d %q, want line %d col %d containing %q", re.Line, re.Col, re.Msg, tt.line, tt.col, tt.msg)
			}
			if want := fmt.Sprintf("line %d, column %d: ", tt.line, tt.col); !strings.HasPrefix(err.Error(), want) {
				t.Errorf("Error() = %q, want prefix %q", err.Error(), want)
			}
		})
	}
}

func TestSyntaxErrors(t *testing.T) {
	tests := []struct {
		src       string
		line, col int
		msg       string
	}{
		{"{{ x", 1, 5, "expected"},
		{"a\n{% if x %}", 2, 11, "endif"},
		{"a\nb {{ x | nofilter }}", 2, 10, `no filter named "nofilter"`},
		{"{{ x is nosuchtest }}", 1, 9, `no test named "nosuchtest"`},
		{"{% include 'x' %}", 1, 4, `unknown tag "include"`},
		{"{% extends 'x' %}", 1, 4, `unknown tag "extends"`},
		{"{# abc", 1, 1, "Missing end of comment tag"},
		{"x\n{% raw %}abc", 2, 10, "raw"},
		{"line1\n  {{ (1 }}", 2, 9, "unexpected '}', expected ')' (to close the '(' at line 2, column 6)"},
		{"{{ 'abc }}", 1, 4, "unterminated string"},
		{"{{ x.in. }}", 1, 10, "expected name or number"},
		{"{{ x is }}", 1, 9, "expected token 'name', got 'end of print statement'"},
		{"a\n{% for x in y %}\n{% endif %}", 3, 4, "Encountered unknown tag 'endif'. Jinja was looking for the following tags: 'endfor' or 'else'. The innermost block that needs to be closed is 'for'."},
		{"{% if x %}a", 1, 12, "Unexpected end of template. Jinja was looking for the following tags: 'elif' or 'else' or 'endif'. The innermost block that needs to be closed is 'if'."},
		{"{% break %}", 1, 4, `"break" outside loop`},
		{"{{ a if }}", 1, 9, "unexpected 'end of print statement'"},
		{"{{ 'a' 1 }}", 1, 8, "expected token 'end of print statement', got 'integer'"},
		{"{{ 'a\\x4' }}", 1, 4, `truncated \xXX escape`},
		{"{% set true = 1 %}", 1, 8, "can't assign to 'const'"},
	}
	for _, tt := range tests {
		t.Run(tt.src, func(t *testing.T) {
			err := Check(tt.src)
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("want *SyntaxError, got %T %v", err, err)
			}
			if se.Line != tt.line || se.Col != tt.col || !strings.Contains(se.Msg, tt.msg) {
				t.Errorf("got %d:%d %q, want %d:%d containing %q", se.Line, se.Col, se.Msg, tt.line, tt.col, tt.msg)
			}
			if _, rerr := Render(tt.src, nil, Options{}); !errors.As(rerr, &se) {
				t.Errorf("Render: want *SyntaxError, got %T", rerr)
			}
		})
	}
	if err := Check("{% if a %}{{ b | default('x') }}{% endif %}"); err != nil {
		t.Errorf("valid template: %v", err)
	}
}

func TestCmd(t *testing.T) {
	tests := []struct{ src, want string }{
		{"{{ cmd('echo hi') }}", "hi"},
		{"{{ cmd('printf \"a\\n\\n\"') }}", "a\n"},
		{"{{ cmd('printf', '%s|', 'a b', 'c') }}", "a b|c|"},
		{"{{ cmd(['echo', 'x y']) }}", "x y"},
	}
	for _, tt := range tests {
		got, err := Render(tt.src, nil, Options{AllowCmd: true})
		if err != nil || got != tt.want {
			t.Errorf("%s = %q, %v; want %q", tt.src, got, err, tt.want)
		}
	}
	_, err := Render("{{ cmd('exit 3') }}", nil, Options{AllowCmd: true})
	if err == nil || !strings.Contains(err.Error(), "exit status 3") {
		t.Errorf("failing command: %v", err)
	}
	_, err = Render("{{ cmd('echo hi') }}", nil, Options{})
	if err == nil || !strings.Contains(err.Error(), "allow_cmd") {
		t.Errorf("disabled cmd: %v", err)
	}
}

func TestAddressesNil(t *testing.T) {
	_, err := Render("{{ getip('master') }}", nil, Options{})
	if err == nil || !strings.Contains(err.Error(), `"master"`) || !strings.Contains(err.Error(), "getip") {
		t.Errorf("got %v", err)
	}
}

func TestHasTemplate(t *testing.T) {
	for s, want := range map[string]bool{
		"": false, "plain {x} }}": false, "{{": true, "a {% b": true, "{#": true, "{": false, "x{": false,
	} {
		if got := HasTemplate(s); got != want {
			t.Errorf("HasTemplate(%q) = %v", s, got)
		}
	}
}

// TestPlainFastPath: strings without template syntax are not parsed (so
// they are not cached either) and follow Jinja2's newline handling.
func TestPlainFastPath(t *testing.T) {
	src := "plain text {x} 100%\n"
	got, err := Render(src, nil, Options{})
	if err != nil || got != "plain text {x} 100%" {
		t.Fatalf("got %q %v", got, err)
	}
	if _, _, ok := cache.get(src); ok {
		t.Error("plain string was parsed and cached")
	}
	if got, _ := Render("a\r\nb\r\n", nil, Options{}); got != "a\nb" {
		t.Errorf("CRLF: %q", got)
	}
	tp, err := Parse(src)
	if err != nil || tp.gt != nil {
		t.Fatal("Parse of plain text built a gonja template")
	}
}

func TestCacheBounded(t *testing.T) {
	for i := 0; i < maxCached+50; i++ {
		if _, err := Parse(fmt.Sprintf("{{ %d }}", i)); err != nil {
			t.Fatal(err)
		}
	}
	cache.mu.Lock()
	n := cache.ll.Len()
	cache.mu.Unlock()
	if n > maxCached {
		t.Errorf("cache holds %d > %d", n, maxCached)
	}
	a, _ := Parse("{{ name }}")
	b, _ := Parse("{{ name }}")
	if a != b {
		t.Error("same source parsed twice")
	}
}

var point1 = 0.1 // a variable, so 0.1+0.2 is computed in float64

// TestPython compares with Python's str() (values checked with python3).
func TestPython(t *testing.T) {
	tests := []struct {
		v    any
		want string
	}{
		{nil, "None"},
		{true, "True"},
		{false, "False"},
		{"x", "x"},
		{3, "3"},
		{int64(-7), "-7"},
		{1.0, "1.0"},
		{point1 + 0.2, "0.30000000000000004"},
		{1e16, "1e+16"},
		{1e-5, "1e-05"},
		{123456789.0, "123456789.0"},
		{[]any{1, "a", true, nil, 1.5}, "[1, 'a', True, None, 1.5]"},
		{[]string{"it's", `a"b`}, `["it's", 'a"b']`},
		{map[string]any{"k": "v", "a": []any{1}}, "{'a': [1], 'k': 'v'}"},
		{map[string]any{}, "{}"},
		{[]any{}, "[]"},
		{[]any{"a\nb\\"}, `['a\nb\\']`},
	}
	for _, tt := range tests {
		if got := Python(tt.v); got != tt.want {
			t.Errorf("Python(%#v) = %q, want %q", tt.v, got, tt.want)
		}
	}
}

// TestConcurrentRender renders one compiled template from many goroutines
// with different data and options; run with -race.
func TestConcurrentRender(t *testing.T) {
	tp, err := Parse("{% for i in variables.l %}{{ name }}-{{ i }}-{{ getip('master') }}{% set x = i %}{% endfor %}{{ nope | default(name) }}")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			name := fmt.Sprintf("n%d", g)
			addrs := fakeAddrs{"master": {fmt.Sprintf("10.0.0.%d", g), "", nil}}
			want := fmt.Sprintf("%[1]s-1-10.0.0.%[2]d%[1]s-2-10.0.0.%[2]d%[1]s", name, g)
			for i := 0; i < 50; i++ {
				got, err := tp.Render(Data{"name": name, "variables": map[string]any{"l": []any{1, 2}}}, Options{Addresses: addrs})
				if err != nil || got != want {
					errs <- fmt.Errorf("goroutine %d: got %q %v, want %q", g, got, err, want)
					return
				}
				if _, err := Render("{{ nope }}", nil, Options{}); err == nil {
					errs <- errors.New("undefined not reported")
					return
				}
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestRenderNeverPanics(t *testing.T) {
	for _, src := range []string{
		"{{ x.y.z }}", "{% for %}", "{{ [] | first }}", "{{ {} | last }}", "{{ 'a' | indent(-5) }}",
		"{{ ''[0] }}", "{{ [1][1:0:-1] }}", "{{ range(0) | max }}", "{% for k, v in 1 %}{% endfor %}",
		"{{ (1, 2) | map('upper') | list }}", "{{ none.x }}", "{{ loop.index }}", "{{ 2 ** -1 }}",
		"{{ 'x' * -1 }}", "{{ '%(a)s' | format(a=1) }}", "{{ '%' | format() }}", "{% set x.y = 1 %}",
		"{{ [] * 9223372036854775807 }}", "{{ [1, 2] * 9223372036854775807 }}", "{{ 'ab' * 9223372036854775807 }}",
		"{{ '' * 9223372036854775807 }}", "{{ 9223372036854775807 * [1] }}", "{{ range(100000) | unique | list | length }}",
	} {
		func() {
			defer func() {
				if r := recover(); r != nil {
					t.Errorf("%q panicked: %v", src, r)
				}
			}()
			start := time.Now()
			_, _ = Render(src, Data{"x": nil}, Options{})
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("%q took %s", src, d) // huge counts must fail fast
			}
		}()
	}
}

func BenchmarkRender(b *testing.B) {
	src := "#!/bin/bash\n{% for ip in getipall('master') %}echo {{ ip }} {{ name }}-{{ loop.index }}\n{% endfor %}{{ variables.s | default('x') | upper }}\n"
	data := Data{"name": "worker", "variables": map[string]any{"s": "abc"}}
	opt := Options{Addresses: testAddrs}
	b.Run("cached", func(b *testing.B) {
		for b.Loop() {
			if _, err := Render(src, data, opt); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("plain", func(b *testing.B) {
		for b.Loop() {
			_, _ = Render("no template syntax here, just text\n", data, opt)
		}
	})
	b.Run("parse", func(b *testing.B) {
		for b.Loop() {
			if _, err := parse(src); err != nil {
				b.Fatal(err)
			}
		}
	})
}
