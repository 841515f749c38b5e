package yamldiag

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// TestDiagnoseValidYAML: on YAML the parser accepts, the diagnosis finds
// nothing; it is only asked after a refusal, but a rule that fires on good
// YAML would blame the wrong line when it is.
func TestDiagnoseValidYAML(t *testing.T) {
	var files []string
	for _, pat := range []string{"../../examples/*/*.yaml", "../../*/testdata/*/*.yaml", "../../*/testdata/*/*/*.yaml", "../../*/*/testdata/*/*.yaml", "../../../shared/occopus-tutorials/*/*.yaml", "../../../shared/occopus-tutorials/*/*/*.yaml"} {
		m, _ := filepath.Glob(pat)
		files = append(files, m...)
	}
	if len(files) < 50 {
		t.Fatalf("only %d YAML files found", len(files))
	}
	n := 0
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var doc yaml.Node
		if yaml.Unmarshal(src, &doc) != nil {
			continue
		}
		n++
		if e := diagnose(f, src); e != nil {
			t.Errorf("valid YAML diagnosed: %v", e)
		}
	}
	t.Logf("%d valid files", n)
}

// TestDiagnose: each fault is found at its line and column.
func TestDiagnose(t *testing.T) {
	cases := []struct{ name, src, want string }{
		{"tab", "a: 1\nb:\n\t- x\n", "f:3:1: invalid YAML: tabs are not allowed"},
		{"tab after spaces", "a:\n  b: 1\n  \tc: 2\n", "f:3:3: invalid YAML: tabs are not allowed"},
		{"more indented", "a:\n  b: 1\n   c: 2\n", "f:3:4: invalid YAML: this line is indented 3 spaces, more than the line above it (line 2, indented 2)"},
		{"less indented", "a:\n  - b: 1\n    c: 2\n   d: 3\n", "f:4:4: invalid YAML: this line is indented 3 spaces, but the lines beside it are indented 4 (line 3) and the level around them 2 (line 2)"},
		{"missing colon", "a: 1\nb 2\nc: 3\n", `f:2:2: invalid YAML: missing ':' in "b 2"`},
		{"missing colon first", "a:\n  b 2\n  c: 3\n", `f:2:3: invalid YAML: missing ':' on this line; the keys beside it (line 3)`},
		{"unclosed bracket eof", "a: [1, 2\n", "f:1:4: invalid YAML: the '[' opened here is not closed (with ']') before the end of the file"},
		{"unclosed brace next key", "a: {x: 1\nb: 2\n", "f:1:4: invalid YAML: the '{' opened here is not closed (with '}') before line 2"},
		{"wrong closer", "a: [1, {b: 2]\n", "f:1:13: invalid YAML: ']' does not close the '{' opened at line 1 column 8"},
		{"unclosed quote", "a: \"x\nb: 2\n", "f:1:4: invalid YAML: the double-quoted string opened here is not closed (with \") before line 2"},
		{"unclosed single quote", "- 'x\n- y\n", "f:1:3: invalid YAML: the single-quoted string opened here is not closed (with ') before line 2"},
		{"key at list indentation", "a:\n  - b: 1\n  c: 2\n", "f:3:3: invalid YAML: this line is indented 2 spaces like the list items above it (line 2) but is not a list item"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var doc yaml.Node
			if yaml.Unmarshal([]byte(tc.src), &doc) == nil {
				t.Fatalf("the parser accepts %q; the case tests nothing", tc.src)
			}
			e := diagnose("f", []byte(tc.src))
			if e == nil {
				t.Fatalf("no diagnosis, want %q", tc.want)
			}
			if !strings.HasPrefix(e.Error(), tc.want) {
				t.Errorf("got  %q\nwant %q...", e.Error(), tc.want)
			}
		})
	}
}
