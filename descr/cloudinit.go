package descr

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"

	"github.com/occopus-go/occopus/tmpl"
)

// IsCloudInit tells a cloud-init file (a contextualisation template read
// with !text_import) by its first line.
func IsCloudInit(src []byte) bool {
	first, _, _ := strings.Cut(string(src), "\n")
	return strings.HasPrefix(strings.TrimSpace(first), "#cloud-config")
}

// templateTag matches {{ ... }}, {% ... %} and {# ... #}, across lines.
var templateTag = regexp.MustCompile(`(?s)\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}`)

// CheckCloudInit checks a cloud-init template file as Occopus uses it:
// the whole text is a Jinja2 template, and what it renders must be YAML.
// Template errors are placed in the file; the YAML is checked with each
// template tag blanked out (an expression counts as a word), so its
// errors keep their columns. It returns the number of template tags.
func CheckCloudInit(path string) (int, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return 0, &Error{Pos: Pos{File: path}, Msg: fmt.Sprintf("cannot read: %v", unwrapPathErr(err))}
	}
	if err := tmpl.Check(string(src)); err != nil {
		e := &Error{Pos: Pos{File: path, Line: 1, Col: 1}, Msg: "template: " + err.Error()}
		var se *tmpl.SyntaxError
		if errors.As(err, &se) {
			e.Pos.Line, e.Pos.Col = max(se.Line, 1), se.Col
			e.Msg = "template syntax error: " + se.Msg
		}
		return 0, e
	}
	tags := templateTag.FindAllIndex(src, -1)
	blank := []byte(string(src))
	for _, t := range tags {
		for i := t[0]; i < t[1]; i++ {
			switch {
			case blank[i] == '\n':
			case src[t[0]+1] == '{':
				blank[i] = 'x' // an expression stands for a value
			default:
				blank[i] = ' ' // a statement or comment renders nothing here
			}
		}
	}
	root, err := Parse(path, blank, LoadOptions{NoImports: true})
	if err != nil {
		return 0, err
	}
	if root.Kind != MapNode {
		return 0, &Error{Pos: root.Pos, Msg: fmt.Sprintf("a cloud-config must be a mapping (runcmd:, write_files:, ...), not %s", root.TypeName())}
	}
	return len(tags), nil
}
