package descr

import (
	"errors"

	"github.com/occopus-go/occopus/tmpl"
)

// checkTemplates checks the template syntax of every string below n, so a
// broken template is reported at validation time, at its place in the file.
func checkTemplates(n *Node, path string, c *checker) {
	switch n.Kind {
	case MapNode:
		n.Pairs(func(k, v *Node) { checkTemplates(v, join(path, k.Value), c) })
	case SeqNode:
		for i, it := range n.Content {
			checkTemplates(it, index(path, i), c)
		}
	case ScalarNode:
		if n.Tag != "!!str" || !tmpl.HasTemplate(n.Value) {
			return
		}
		err := tmpl.Check(n.Value)
		if err == nil {
			return
		}
		e := &Error{Pos: n.Pos, Path: path, Msg: "template: " + err.Error()}
		var se *tmpl.SyntaxError
		if errors.As(err, &se) {
			e.Pos = n.SourcePos(se.Line, se.Col)
			e.Msg = "template syntax error: " + se.Msg
		}
		c.errs = append(c.errs, e)
	}
}
