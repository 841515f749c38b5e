package tmpl

import (
	"fmt"
	"testing"
	"time"
	"unicode/utf8"
)

// FuzzRender checks that no template source makes Parse or Render panic,
// and that errors keep their documented types.
func FuzzRender(f *testing.F) {
	for _, s := range []string{
		"plain", "{{ name }}", "{{ nope }}", "{% raw %}{{{% endraw %}",
		"{% for i in variables.l %}{{ loop.index }}{% else %}e{% endfor %}",
		"{{ variables.nope | default('x') | upper }}", "{{ getip(master) }}",
		"{{ cut(name, -2, 9) }}", "{{ {'a': [1, 2.5, None]} | tojson }}",
		"{%- if x is defined -%}{{ x }}{%- endif -%}\n", "{{ '%s' % (1,) }}",
		"{# c #}{{ '{{' }}", "{% set a = [1] + [2] %}{{ a[1:] }}",
		"{{ item.in }}{{ x.not | default(x.is) }}{% for a, b in d.items() if a %}{{ loop.previtem }}{% endfor %}",
		"{{ 'a\\' ~ \"\\x41\" }}{{ 1 < 2 < 3 }}{{ 2 ** 3 ** 2 }}{{ (1, 2)[::-1] }}{% set y | upper %}x{% endset %}",
		"{% macro m(a, b=1) %}{{ m(a) if a else b }}{% endmacro %}{{ m(0) }}{{ 'x' if false }}{{ nope in [] }}",
	} {
		f.Add(s)
	}
	data := Data{"name": "worker", "x": nil, "variables": map[string]any{"l": []any{int64(1), "a", true}, "f": 1.5}}
	f.Fuzz(func(t *testing.T, src string) {
		if !utf8.ValidString(src) {
			return
		}
		// A hang is a bug too: crash so the fuzzer records the input.
		done := make(chan struct{})
		defer close(done)
		go func() {
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				panic(fmt.Sprintf("render hung on %q", src))
			}
		}()
		err := Check(src)
		if err != nil {
			if _, ok := err.(*SyntaxError); !ok {
				t.Fatalf("Check error %T %v", err, err)
			}
		}
		_, rerr := Render(src, data, Options{Addresses: testAddrs})
		if rerr != nil {
			switch rerr.(type) {
			case *SyntaxError, *RenderError:
			default:
				t.Fatalf("Render error %T %v", rerr, rerr)
			}
		}
		if (err == nil) != (rerr == nil || isRenderErr(rerr)) {
			t.Fatalf("Check=%v but Render=%v", err, rerr)
		}
	})
}

func isRenderErr(err error) bool { _, ok := err.(*RenderError); return ok }
