// Package yamldiag finds, in YAML a parser refused, the fault a person
// would point at, at its line and column.
package yamldiag

import (
	"fmt"
	"strings"
)

// Pos is a place in a file; Line and Col are 1-based.
type Pos struct {
	File      string
	Line, Col int
}

// Error is the fault found.
type Error struct {
	Pos Pos
	Msg string
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s:%d:%d: %s", e.Pos.File, e.Pos.Line, e.Pos.Col, e.Msg)
}

// Diagnose is diagnose, for other packages.
func Diagnose(file string, src []byte) *Error { return diagnose(file, src) }

// diagnose finds, in YAML that the parser refused, the fault a person
// would point at: a tab in the indentation, a quote or bracket never
// closed (named where it opened), a bracket closed by the wrong one, a line
// indented more or less than its siblings, a key without its ':'. The
// parser's own messages name a line near the fault (often the line of the
// enclosing construct) and no column. It returns nil when it cannot tell,
// and the parser's message is shown instead.
func diagnose(file string, src []byte) *Error {
	d := &diag{file: file, bsIndent: -1}
	for i, raw := range strings.Split(string(src), "\n") {
		if e := d.line(i+1, strings.TrimSuffix(raw, "\r")); e != nil {
			return e
		}
	}
	if e := d.eof(); e != nil {
		return e
	}
	return d.indentation()
}

// opener is an open quote or flow bracket.
type opener struct {
	ch     byte
	pos    Pos
	indent int // indentation of the line it opened on
}

// blockLine is a line of block structure: its indentation, where its
// sequence dashes and its key are, and whether it leaves its value to the
// lines below.
type blockLine struct {
	line, indent int
	dashes       []int // 0-based columns of leading "- "
	keyCol       int   // 0-based column of the key, -1 when none
	colonAfter   int   // 0-based column where a missing ':' would go
	open         bool  // the value is on the lines below (key: / - alone)
	text         string
}

type diag struct {
	file     string
	quote    *opener
	flow     []opener
	bsIndent int // indentation above which lines belong to a block scalar; -1 none
	lines    []blockLine
}

func (d *diag) pos(line, col int) Pos { return Pos{File: d.file, Line: line, Col: col} }

func indentOf(s string) int { return len(s) - len(strings.TrimLeft(s, " ")) }

func isBlank(s string) bool {
	t := strings.TrimLeft(s, " \t")
	return t == "" || t[0] == '#'
}

func quoteName(ch byte) string {
	if ch == '"' {
		return "double-quoted string"
	}
	return "single-quoted string"
}

func closerOf(ch byte) byte {
	if ch == '[' {
		return ']'
	}
	return '}'
}

// line scans one line; it returns the first lexical fault.
func (d *diag) line(ln int, s string) *Error {
	ind := indentOf(s)
	if d.bsIndent >= 0 {
		if strings.TrimSpace(s) == "" || ind > d.bsIndent {
			return nil
		}
		d.bsIndent = -1
	}
	continued := d.quote != nil || len(d.flow) > 0
	if continued {
		// A quoted string or flow collection runs on; a line that is back
		// at (or left of) the indentation it opened at and reads as block
		// structure shows that it was never closed.
		o := d.quote
		if o == nil {
			o = &d.flow[0]
		}
		if !isBlank(s) && ind <= o.indent && looksLikeBlock(s[ind:]) {
			return d.unclosed(o, fmt.Sprintf("before line %d", ln))
		}
	} else {
		if isBlank(s) {
			return nil
		}
		for i := 0; i < len(s) && (s[i] == ' ' || s[i] == '\t'); i++ {
			if s[i] == '\t' {
				return &Error{Pos: d.pos(ln, i+1), Msg: "invalid YAML: tabs are not allowed in YAML indentation; use spaces"}
			}
		}
		if strings.HasPrefix(s, "---") || strings.HasPrefix(s, "...") || strings.HasPrefix(s, "%") {
			d.lines = append(d.lines, blockLine{line: ln, indent: -1})
			return nil
		}
	}
	bl := blockLine{line: ln, indent: ind, keyCol: -1, colonAfter: -1, text: strings.TrimSpace(s)}
	start := 0
	if !continued {
		start = ind
	}
	tokenStart, plain, sawValue := true, false, false
	plainStart := -1
	for i := start; i < len(s); i++ {
		c := s[i]
		next := byte(' ')
		if i+1 < len(s) {
			next = s[i+1]
		}
		if q := d.quote; q != nil {
			switch {
			case q.ch == '"' && c == '\\':
				i++
			case c == q.ch && q.ch == '\'' && next == '\'':
				i++
			case c == q.ch:
				d.quote = nil
				tokenStart = false
			}
			continue
		}
		inFlow := len(d.flow) > 0
		if c == '#' && (i == 0 || s[i-1] == ' ' || s[i-1] == '\t') {
			break
		}
		if plain {
			switch {
			case c == ':' && (next == ' ' || i+1 == len(s) || (inFlow && strings.IndexByte(",]}", next) >= 0)):
				plain = false
				if !inFlow && !continued && bl.keyCol < 0 {
					bl.keyCol = plainStart
					sawValue = false
				}
				tokenStart = true
			case inFlow && c == ',':
				plain, tokenStart = false, true
			case inFlow && (c == ']' || c == '}'):
				plain = false
				i--
				tokenStart = false
			}
			continue
		}
		switch {
		case c == ' ' || c == '\t':
			tokenStart = true
		case c == ']' || c == '}':
			if !inFlow {
				if tokenStart {
					return &Error{Pos: d.pos(ln, i+1), Msg: fmt.Sprintf("invalid YAML: '%c' closes nothing (no '%c' is open)", c, map[byte]byte{']': '[', '}': '{'}[c])}
				}
				continue
			}
			top := d.flow[len(d.flow)-1]
			if closerOf(top.ch) != c {
				return &Error{Pos: d.pos(ln, i+1), Msg: fmt.Sprintf("invalid YAML: '%c' does not close the '%c' opened at line %d column %d (close that with '%c' first)", c, top.ch, top.pos.Line, top.pos.Col, closerOf(top.ch))}
			}
			d.flow = d.flow[:len(d.flow)-1]
			tokenStart = false
		case inFlow && c == ',':
			tokenStart = true
		case c == ':' && (next == ' ' || i+1 == len(s)):
			// After a quoted key or a closed collection.
			if !inFlow && !continued && bl.keyCol < 0 {
				bl.keyCol = plainStart
				sawValue = false
			}
			tokenStart = true
		case !tokenStart:
		case c == '"' || c == '\'':
			d.quote = &opener{ch: c, pos: d.pos(ln, i+1), indent: max(ind, bl.keyCol)}
			if plainStart < 0 || !inFlow {
				plainStart = i
			}
			sawValue = true
		case c == '[' || c == '{':
			o := opener{ch: c, pos: d.pos(ln, i+1), indent: max(ind, bl.keyCol)}
			if inFlow {
				o.indent = d.flow[0].indent
			}
			d.flow = append(d.flow, o)
			sawValue = true
		case c == '-' && next == ' ' || c == '-' && i+1 == len(s):
			if !inFlow && !continued && bl.keyCol < 0 && !sawValue {
				bl.dashes = append(bl.dashes, i)
			}
		case (c == '|' || c == '>') && !inFlow:
			d.bsIndent = ind
			sawValue = true
			i = len(s)
		case c == '&' || c == '!' || c == '*':
			// An anchor, tag or alias runs to a space (or, in a flow
			// collection, to its punctuation).
			for i+1 < len(s) && s[i+1] != ' ' && !(inFlow && strings.IndexByte(",[]{}", s[i+1]) >= 0) {
				i++
			}
			sawValue = sawValue || c == '*'
			tokenStart = false
		case c == '?' && next == ' ':
		default:
			plain, plainStart, sawValue = true, i, true
			if bl.colonAfter < 0 {
				if sp := strings.IndexByte(s[i:], ' '); sp >= 0 {
					bl.colonAfter = i + sp
				} else {
					bl.colonAfter = len(strings.TrimRight(s, " "))
				}
			}
		}
	}
	if continued {
		return nil
	}
	if bl.keyCol >= 0 || len(bl.dashes) > 0 {
		bl.open = !sawValue && d.quote == nil && len(d.flow) == 0 && d.bsIndent < 0
	}
	d.lines = append(d.lines, bl)
	return nil
}

// looksLikeBlock tells a line of block structure ("key:", "- ") from the
// continuation of a flow collection or quoted string.
func looksLikeBlock(t string) bool {
	if strings.HasPrefix(t, "- ") || t == "-" {
		return true
	}
	k, _, ok := strings.Cut(t, ":")
	return ok && k != "" && !strings.ContainsAny(k, " ,[]{}\"'")
}

func (d *diag) unclosed(o *opener, where string) *Error {
	if o.ch == '"' || o.ch == '\'' {
		return &Error{Pos: o.pos, Msg: fmt.Sprintf("invalid YAML: the %s opened here is not closed (with %c) %s", quoteName(o.ch), o.ch, where)}
	}
	return &Error{Pos: o.pos, Msg: fmt.Sprintf("invalid YAML: the '%c' opened here is not closed (with '%c') %s", o.ch, closerOf(o.ch), where)}
}

func (d *diag) eof() *Error {
	if d.quote != nil {
		return d.unclosed(d.quote, "before the end of the file")
	}
	if len(d.flow) > 0 {
		return d.unclosed(&d.flow[len(d.flow)-1], "before the end of the file")
	}
	return nil
}

// level is one open block collection: a mapping's keys or a list's dashes
// at an indentation.
type level struct {
	indent int
	kind   byte // 'm' mapping, 's' list, 'v' a plain value
	line   int
}

// indentation checks that every line lines up with its siblings.
func (d *diag) indentation() *Error {
	var stack []level
	prevOpen := false
	for _, bl := range d.lines {
		if bl.indent < 0 { // document marker
			stack, prevOpen = nil, false
			continue
		}
		var mine []level
		for _, c := range bl.dashes {
			mine = append(mine, level{indent: c, kind: 's', line: bl.line})
		}
		switch {
		case bl.keyCol >= 0:
			mine = append(mine, level{indent: bl.keyCol, kind: 'm', line: bl.line})
		case len(bl.dashes) == 0:
			mine = append(mine, level{indent: bl.indent, kind: 'v', line: bl.line})
		}
		first := mine[0]
		popped := []level(nil)
		for len(stack) > 0 && stack[len(stack)-1].indent > bl.indent {
			popped = append(popped, stack[len(stack)-1])
			stack = stack[:len(stack)-1]
		}
		if len(stack) > 0 {
			top := stack[len(stack)-1]
			switch {
			case top.indent < bl.indent && len(popped) > 0:
				sib := popped[len(popped)-1]
				return &Error{Pos: d.pos(bl.line, bl.indent+1), Msg: fmt.Sprintf("invalid YAML: this line is indented %d spaces, but the lines beside it are indented %d (line %d) and the level around them %d (line %d); line it up with one of them", bl.indent, sib.indent, sib.line, top.indent, top.line)}
			case top.indent < bl.indent && !prevOpen:
				if first.kind == 'v' {
					continue // the value of the line above, run on
				}
				return &Error{Pos: d.pos(bl.line, bl.indent+1), Msg: fmt.Sprintf("invalid YAML: this line is indented %d spaces, more than the line above it (line %d, indented %d), which already has its value; line it up with its siblings", bl.indent, top.line, top.indent)}
			case top.indent == bl.indent:
				if top.kind == 's' && first.kind != 's' && len(stack) > 1 && stack[len(stack)-2].indent == top.indent {
					// The end of a list written at its key's indentation.
					stack = stack[:len(stack)-1]
					top = stack[len(stack)-1]
				}
				if e := d.sibling(top, first, bl, prevOpen); e != nil {
					return e
				}
				if top.kind == 'm' && first.kind == 's' && prevOpen {
					// A list at its key's indentation (key:\n- item).
					break
				}
				stack = stack[:len(stack)-1]
			}
		}
		stack = append(stack, mine...)
		prevOpen = bl.open
	}
	return nil
}

// sibling checks a line against the collection at its indentation.
func (d *diag) sibling(top, first level, bl blockLine, prevOpen bool) *Error {
	at := d.pos(bl.line, bl.indent+1)
	switch {
	case top.kind == first.kind:
		return nil
	case top.kind == 'm' && first.kind == 'v':
		col := bl.colonAfter
		if col < 0 {
			col = bl.indent
		}
		return &Error{Pos: d.pos(bl.line, col+1), Msg: fmt.Sprintf("invalid YAML: missing ':' in %q; the keys beside it (line %d) are written KEY: VALUE", bl.text, top.line)}
	case top.kind == 'v' && first.kind == 'm':
		return &Error{Pos: d.pos(top.line, top.indent+1), Msg: fmt.Sprintf("invalid YAML: missing ':' on this line; the keys beside it (line %d) are written KEY: VALUE", bl.line)}
	case top.kind == 'm' && first.kind == 's' && prevOpen:
		return nil
	case top.kind == 's':
		return &Error{Pos: at, Msg: fmt.Sprintf("invalid YAML: this line is indented %d spaces like the list items above it (line %d) but is not a list item (- ); indent it as the keys it belongs with", bl.indent, top.line)}
	case top.kind == 'm':
		return &Error{Pos: at, Msg: fmt.Sprintf("invalid YAML: a list item (- ) at the indentation of the keys above it (line %d); indent it under the key it belongs to", top.line)}
	}
	return nil
}
