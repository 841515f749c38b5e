package tmpl

import (
	"fmt"
	"math/big"
	"strconv"
	"strings"

	"github.com/nikolalohinski/gonja/v2/nodes"
	"github.com/nikolalohinski/gonja/v2/tokens"
)

// This file is Jinja2's parser (jinja2/parser.py, 3.1), ported for the
// statements Occopus templates may use and for the whole expression
// grammar. It produces two things:
//
//   - every expression, as a tree of gonja nodes plus a few node types of
//     our own for what gonja's AST cannot say (conditional expressions,
//     chained comparisons with in/not in, Python slices), which the
//     rewriter compiles;
//   - the template's statement structure as a canonical gonja token stream
//     in which each expression is replaced by one placeholder name. gonja's
//     own parser (public API: parser.NewParser on a tokens.Stream) builds its
//     statement nodes from that stream, so gonja's control structures still
//     run the template, while no expression is ever parsed by gonja.
//
// This is where Jinja2's grammar is enforced: a word after a dot is always
// an attribute (item.in, x.not, loop.if), and/or/not/in/is/if/else are
// keywords only where Jinja2's parser looks for them, `is` binds tighter
// than arithmetic, comparisons chain, and string literals use Python's
// escapes. Errors are *SyntaxError with the position of the offending
// token; messages follow Jinja2's where it has one.

// placeholderPrefix starts the names that stand for expressions in the
// canonical stream; the NUL byte makes them impossible to write in a
// template.
const placeholderPrefix = "\x00expr"

// maxNesting bounds the recursion of the expression parser.
const maxNesting = 200

type parseError struct{ err *SyntaxError }

type jparser struct {
	toks     []jtok
	i        int
	out      []*tokens.Token
	exprs    []nodes.Expression
	tagStack []string
	endStack [][]string
	loops    int // enclosing for loops in the current macro (break/continue)
	depth    int
}

// parsed is the result of parsing a template: the canonical stream for
// gonja's parser and the expressions its placeholders stand for.
type parsed struct {
	stream []*tokens.Token
	exprs  []nodes.Expression
}

func parseJinja(src string) (res *parsed, err error) {
	toks, err := lexJinja(src)
	if err != nil {
		return nil, err
	}
	p := &jparser{toks: toks}
	defer func() {
		if r := recover(); r != nil {
			pe, ok := r.(parseError)
			if !ok {
				panic(r)
			}
			res, err = nil, pe.err
		}
	}()
	p.subparse(nil)
	p.out = append(p.out, &tokens.Token{Type: tokens.EOF, Pos: len(src)})
	return &parsed{stream: p.out, exprs: p.exprs}, nil
}

func (p *jparser) cur() *jtok { return &p.toks[p.i] }

func (p *jparser) look() *jtok {
	if p.i+1 < len(p.toks) {
		return &p.toks[p.i+1]
	}
	return &p.toks[len(p.toks)-1]
}

func (p *jparser) next() *jtok {
	t := &p.toks[p.i]
	if t.kind != jtEOF {
		p.i++
	}
	return t
}

func (p *jparser) failAt(t *jtok, format string, args ...any) {
	panic(parseError{&SyntaxError{Line: max(t.line, 1), Col: max(t.col, 1), Msg: fmt.Sprintf(format, args...)}})
}

func (p *jparser) fail(format string, args ...any) { p.failAt(p.cur(), format, args...) }

func (p *jparser) skipOp(op string) bool {
	if p.cur().is(jtOp, op) {
		p.next()
		return true
	}
	return false
}

func (p *jparser) skipName(name string) bool {
	if p.cur().isName(name) {
		p.next()
		return true
	}
	return false
}

// expect consumes a token of the kind (and, when val is not empty, value)
// or fails as Jinja2's TokenStream.expect does.
func (p *jparser) expect(kind jtokKind, val string) *jtok {
	t := p.cur()
	if t.kind == kind && (val == "" || t.val == val) {
		return p.next()
	}
	want := val
	if want == "" {
		want = (&jtok{kind: kind}).describe()
		if kind == jtName {
			want = "name"
		}
	}
	if t.kind == jtEOF {
		p.failAt(t, "unexpected end of template, expected %s.", pyQuote(want))
	}
	p.failAt(t, "expected token %s, got %s", pyQuote(want), pyQuote(t.describe()))
	return nil
}

func gtok(typ tokens.Type, val string, at *jtok) *tokens.Token {
	return &tokens.Token{Type: typ, Val: val, Pos: at.pos, Line: at.line, Col: at.col}
}

func (p *jparser) emit(typ tokens.Type, val string, at *jtok) {
	p.out = append(p.out, gtok(typ, val, at))
}

// placeholder emits a name standing for expression e, positioned at at.
func (p *jparser) placeholder(e nodes.Expression, at *jtok) {
	p.exprs = append(p.exprs, e)
	p.emit(tokens.Name, placeholderPrefix+strconv.Itoa(len(p.exprs)-1), at)
}

// --- template structure ----------------------------------------------------

// subparse is Jinja2's Parser.subparse: template data, print statements
// and statements until one of endTokens (tag names) opens a block. It
// returns with the stream at that name (the block_begin consumed).
func (p *jparser) subparse(endTokens []string) {
	if endTokens != nil {
		p.endStack = append(p.endStack, endTokens)
		defer func() { p.endStack = p.endStack[:len(p.endStack)-1] }()
	}
	for {
		t := p.cur()
		switch t.kind {
		case jtEOF:
			return
		case jtData:
			p.emit(tokens.Data, t.val, t)
			p.next()
		case jtVarBegin:
			begin := p.next()
			at := p.cur()
			e := p.parseTuple(false, true, nil, false)
			end := p.expect(jtVarEnd, "")
			p.emit(tokens.VariableBegin, "{{", begin)
			p.placeholder(e, at)
			p.emit(tokens.VariableEnd, "}}", end)
		case jtBlockBegin:
			begin := p.next()
			for _, name := range endTokens {
				if p.cur().isName(name) {
					return
				}
			}
			p.statement(begin)
		default:
			p.failAt(t, "unexpected %s", pyQuote(t.describe()))
		}
	}
}

// refused are Jinja2 statements Occopus templates may not use: they read
// other files from the orchestrator host or need template inheritance.
var refused = map[string]bool{"include": true, "import": true, "from": true, "extends": true, "block": true, "call": true, "autoescape": true}

func (p *jparser) statement(begin *jtok) {
	t := p.cur()
	if t.kind != jtName {
		p.fail("tag name expected")
	}
	if !knownTags[t.val] {
		if refused[t.val] {
			p.failAt(t, "unknown tag %q (include, import, from, extends, block, call and autoescape are not supported)", t.val)
		}
		p.failUnknownTag(t)
	}
	p.tagStack = append(p.tagStack, t.val)
	defer func() { p.tagStack = p.tagStack[:len(p.tagStack)-1] }()
	switch t.val {
	case "for":
		p.parseFor(begin)
	case "if":
		p.parseIf(begin)
	case "set":
		p.parseSet(begin)
	case "with":
		p.parseWith(begin)
	case "macro":
		p.parseMacro(begin)
	case "filter":
		p.parseFilterBlock(begin)
	case "print":
		p.parsePrint()
	case "break", "continue":
		// Jinja2's loopcontrols extension, which gonja always has.
		p.next()
		if p.loops == 0 {
			p.failAt(t, "%q outside loop", t.val)
		}
		end := p.expect(jtBlockEnd, "")
		p.emit(tokens.BlockBegin, "{%", begin)
		p.emit(tokens.Name, t.val, t)
		p.emit(tokens.BlockEnd, "%}", end)
	}
}

var knownTags = map[string]bool{"for": true, "if": true, "set": true, "with": true, "macro": true, "filter": true, "print": true, "break": true, "continue": true}

// failUnknownTag builds Jinja2's message for a tag that is not expected.
func (p *jparser) failUnknownTag(t *jtok) {
	msg := fmt.Sprintf("Encountered unknown tag %s.", pyQuote(t.val))
	if t.kind == jtEOF {
		msg = "Unexpected end of template."
	}
	if n := len(p.endStack); n > 0 {
		var looking []string
		for _, name := range p.endStack[n-1] {
			looking = append(looking, pyQuote(name))
		}
		expected := false
		for _, ends := range p.endStack {
			for _, name := range ends {
				expected = expected || (t.kind == jtName && name == t.val)
			}
		}
		if expected {
			msg += " You probably made a nesting mistake. Jinja is expecting this tag, but currently looking for " + strings.Join(looking, " or ") + "."
		} else {
			msg += " Jinja was looking for the following tags: " + strings.Join(looking, " or ") + "."
		}
	}
	if n := len(p.tagStack); n > 0 {
		msg += fmt.Sprintf(" The innermost block that needs to be closed is %s.", pyQuote(p.tagStack[n-1]))
	}
	p.failAt(t, "%s", msg)
}

// statements is Jinja2's parse_statements: an optional colon, the end of
// the opening tag, then the body up to one of ends. It returns the tag name
// that ended the body (consumed) and leaves the stream after it.
func (p *jparser) statements(ends ...string) *jtok {
	p.skipOp(":")
	p.expect(jtBlockEnd, "")
	p.subparse(ends)
	if p.cur().kind == jtEOF {
		p.endStack = append(p.endStack, ends)
		p.failUnknownTag(p.cur())
	}
	return p.next()
}

// endTag emits a closing tag (endfor, endif, ...) whose name was just
// consumed by statements; the tag must end right there.
func (p *jparser) endTag(begin, name *jtok) {
	end := p.expect(jtBlockEnd, "")
	p.emit(tokens.BlockBegin, "{%", begin)
	p.emit(tokens.Name, name.val, name)
	p.emit(tokens.BlockEnd, "%}", end)
}

// blockBeginOf returns the block_begin token right before the name at t.
func (p *jparser) blockBeginOf(name *jtok) *jtok {
	for i := p.i - 1; i >= 0; i-- {
		if &p.toks[i] == name && i > 0 {
			return &p.toks[i-1]
		}
	}
	return name
}

// openTag emits the canonical opening of a statement; args emits its
// arguments. The end of the tag is emitted by closeOpen.
func (p *jparser) openTag(begin, name *jtok) {
	p.emit(tokens.BlockBegin, "{%", begin)
	p.emit(tokens.Name, name.val, name)
}

func (p *jparser) closeOpen() {
	p.skipOp(":")
	end := p.cur()
	if end.kind != jtBlockEnd {
		p.expect(jtBlockEnd, "")
	}
	p.emit(tokens.BlockEnd, "%}", end)
}

// nameTarget is an assignment target that is a plain name.
func (p *jparser) checkAssignable(e nodes.Expression, at *jtok) {
	switch n := e.(type) {
	case *nodes.Name:
		switch n.Name.Val {
		case "true", "false", "none", "True", "False", "None":
			p.failAt(at, "can't assign to 'name'")
		}
		if n.Name.Val == "nil" {
			// gonja's parser reads this name as None even in our
			// canonical stream, so it cannot be assigned here.
			p.failAt(at, "assigning to a variable named \"nil\" is not supported")
		}
		return
	case *nodes.Tuple:
		for _, x := range n.Val {
			p.checkAssignable(x, at)
		}
		return
	}
	p.failAt(at, "can't assign to %s", pyQuote(nodeKind(e)))
}

func nodeKind(e nodes.Expression) string {
	switch e.(type) {
	case *nodes.Bool, *nodes.None, *nodes.String, *nodes.Integer, *nodes.Float, *bigLit:
		return "const"
	case *nodes.List:
		return "list"
	case *nodes.Dict:
		return "dict"
	case *nodes.Tuple:
		return "tuple"
	case *nodes.GetAttribute:
		return "getattr"
	case *nodes.GetItem, *sliceExpr:
		return "getitem"
	case *nodes.Call:
		return "call"
	}
	return "expression"
}

// targetNames returns the names of a for/set target of at most two plain
// names, which is what gonja's statements can assign.
func (p *jparser) targetNames(e nodes.Expression, at *jtok, what string) []*tokens.Token {
	p.checkAssignable(e, at)
	if n, ok := e.(*nodes.Name); ok {
		return []*tokens.Token{n.Name}
	}
	tup := e.(*nodes.Tuple)
	var names []*tokens.Token
	for _, x := range tup.Val {
		n, ok := x.(*nodes.Name)
		if !ok {
			p.failAt(at, "nested tuples as %s targets are not supported", what)
		}
		names = append(names, n.Name)
	}
	if len(names) != 2 {
		p.failAt(at, "%s can assign one name or two (k, v), not %d", what, len(names))
	}
	return names
}

func (p *jparser) parseFor(begin *jtok) {
	name := p.next()
	at := p.cur()
	target := p.parseTuple(true, true, []string{"in"}, false)
	names := p.targetNames(target, at, "for")
	in := p.expect(jtName, "in")
	iterAt := p.cur()
	iter := p.parseTuple(false, false, []string{"recursive"}, false)
	p.openTag(begin, name)
	p.out = append(p.out, names[0])
	if len(names) == 2 {
		p.emit(tokens.Comma, ",", at)
		p.out = append(p.out, names[1])
	}
	p.emit(tokens.In, "in", in)
	if len(names) == 2 {
		iter = &unpackIter{iter: iter}
	}
	p.placeholder(iter, iterAt)
	if kw := p.cur(); p.skipName("if") {
		testAt := p.cur()
		test := p.parseExpression(true)
		p.emit(tokens.Name, "if", kw)
		p.placeholder(test, testAt)
	}
	if kw := p.cur(); p.skipName("recursive") {
		p.failAt(kw, "recursive loops are not supported")
	}
	p.closeOpen()
	p.loops++
	end := p.statements("endfor", "else")
	p.loops--
	if end.val == "else" {
		p.openTag(p.blockBeginOf(end), end)
		p.closeOpen()
		end = p.statements("endfor")
	}
	p.endTag(p.blockBeginOf(end), end)
}

func (p *jparser) parseIf(begin *jtok) {
	name := p.next()
	for {
		at := p.cur()
		test := p.parseTuple(false, false, nil, false)
		p.openTag(begin, name)
		p.placeholder(test, at)
		p.closeOpen()
		tag := p.statements("elif", "else", "endif")
		begin, name = p.blockBeginOf(tag), tag
		if tag.val == "elif" {
			continue
		}
		if tag.val == "else" {
			p.openTag(begin, tag)
			p.closeOpen()
			tag = p.statements("endif")
			begin = p.blockBeginOf(tag)
		}
		p.endTag(begin, tag)
		return
	}
}

func (p *jparser) parseSet(begin *jtok) {
	name := p.next()
	at := p.cur()
	var target []*tokens.Token
	var targetExpr nodes.Expression // the target read back, for block set filters
	if p.cur().kind == jtName && p.look().is(jtOp, ".") {
		ns := p.next()
		dot := p.next()
		attr := p.expect(jtName, "")
		if ns.val == "nil" {
			p.failAt(ns, "assigning to a variable named \"nil\" is not supported")
		}
		target = []*tokens.Token{gtok(tokens.Name, ns.val, ns), gtok(tokens.Dot, ".", dot), gtok(tokens.Name, attr.val, attr)}
		targetExpr = &nodes.GetAttribute{Location: target[1], Node: &nodes.Name{Name: target[0]}, Attribute: attr.val}
	} else {
		e := p.parseTuple(true, true, nil, false)
		p.checkAssignable(e, at)
		n, ok := e.(*nodes.Name)
		if !ok {
			p.failAt(at, "unpacking a tuple in set is not supported")
		}
		target = []*tokens.Token{n.Name}
		targetExpr = n
	}
	p.openTag(begin, name)
	p.out = append(p.out, target...)
	if eq := p.cur(); p.skipOp("=") {
		exprAt := p.cur()
		e := p.parseTuple(false, true, nil, false)
		p.emit(tokens.Assign, "=", eq)
		p.placeholder(e, exprAt)
		end := p.expect(jtBlockEnd, "")
		p.emit(tokens.BlockEnd, "%}", end)
		return
	}
	// Block set, {% set x | filters %}...{% endset %}: Jinja2 stores the
	// filters' result on the rendered body, which is what
	// {% set x %}...{% endset %}{% set x = x | filters %} computes.
	filtered := targetExpr
	for p.cur().is(jtOp, "|") {
		p.next()
		filtered = p.parseFilter(filtered)
	}
	filterAt := p.cur()
	p.closeOpen()
	end := p.statements("endset")
	p.endTag(p.blockBeginOf(end), end)
	if filtered != targetExpr {
		p.emit(tokens.BlockBegin, "{%", filterAt)
		p.emit(tokens.Name, "set", filterAt)
		p.out = append(p.out, target...)
		p.emit(tokens.Assign, "=", filterAt)
		p.placeholder(filtered, filterAt)
		p.emit(tokens.BlockEnd, "%}", filterAt)
	}
}

func (p *jparser) parseWith(begin *jtok) {
	name := p.next()
	p.openTag(begin, name)
	first := true
	for p.cur().kind != jtBlockEnd {
		if !first {
			p.emit(tokens.Comma, ",", p.expect(jtOp, ","))
		}
		first = false
		at := p.cur()
		target := p.parseTuple(true, true, nil, false)
		p.checkAssignable(target, at)
		n, ok := target.(*nodes.Name)
		if !ok {
			p.failAt(at, "unpacking a tuple in with is not supported")
		}
		p.out = append(p.out, n.Name)
		p.emit(tokens.Assign, "=", p.expect(jtOp, "="))
		exprAt := p.cur()
		p.placeholder(p.parseExpression(true), exprAt)
	}
	p.closeOpen()
	end := p.statements("endwith")
	p.endTag(p.blockBeginOf(end), end)
}

func (p *jparser) parseMacro(begin *jtok) {
	name := p.next()
	mname := p.expect(jtName, "")
	p.checkAssignable(&nodes.Name{Name: gtok(tokens.Name, mname.val, mname)}, mname)
	p.openTag(begin, name)
	p.emit(tokens.Name, mname.val, mname)
	p.emit(tokens.LeftParenthesis, "(", p.expect(jtOp, "("))
	defaults := false
	first := true
	for !p.cur().is(jtOp, ")") {
		if !first {
			p.emit(tokens.Comma, ",", p.expect(jtOp, ","))
		}
		first = false
		arg := p.expect(jtName, "")
		p.checkAssignable(&nodes.Name{Name: gtok(tokens.Name, arg.val, arg)}, arg)
		p.emit(tokens.Name, arg.val, arg)
		if eq := p.cur(); p.skipOp("=") {
			at := p.cur()
			e := p.parseExpression(true)
			p.emit(tokens.Assign, "=", eq)
			p.placeholder(e, at)
			defaults = true
		} else if defaults {
			p.fail("non-default argument follows default argument")
		}
	}
	p.emit(tokens.RightParenthesis, ")", p.expect(jtOp, ")"))
	p.closeOpen()
	saved := p.loops
	p.loops = 0 // a macro body is a function: break cannot leave it
	end := p.statements("endmacro")
	p.loops = saved
	p.endTag(p.blockBeginOf(end), end)
}

func (p *jparser) parsePrint() {
	name := p.next()
	first := true
	for p.cur().kind != jtBlockEnd {
		if !first {
			p.expect(jtOp, ",")
		}
		first = false
		at := p.cur()
		e := p.parseExpression(true)
		p.emit(tokens.VariableBegin, "{{", name)
		p.placeholder(e, at)
		p.emit(tokens.VariableEnd, "}}", name)
	}
	p.expect(jtBlockEnd, "")
}

func (p *jparser) parseFilterBlock(begin *jtok) {
	name := p.next()
	chain := p.filterChain()
	p.openTag(begin, name)
	p.out = append(p.out, chain...)
	p.closeOpen()
	end := p.statements("endfilter")
	p.endTag(p.blockBeginOf(end), end)
}

// filterChain parses "name(args) | name ..." (Jinja2's parse_filter with
// start_inline) into canonical tokens for gonja's ParseFilter.
func (p *jparser) filterChain() []*tokens.Token {
	var out []*tokens.Token
	for {
		t := p.expect(jtName, "")
		fname := t.val
		for p.cur().is(jtOp, ".") {
			p.next()
			fname += "." + p.expect(jtName, "").val
		}
		out = append(out, gtok(tokens.Name, fname, t))
		if p.cur().is(jtOp, "(") {
			lp := p.cur()
			args, kwargs, order := p.callArgs()
			out = append(out, gtok(tokens.LeftParenthesis, "(", lp))
			for i, a := range order {
				if i > 0 {
					out = append(out, gtok(tokens.Comma, ",", lp))
				}
				p.exprs = append(p.exprs, nil)
				if a.kw != "" {
					out = append(out, gtok(tokens.Name, a.kw, a.at), gtok(tokens.Assign, "=", a.at))
					p.exprs[len(p.exprs)-1] = kwargs[a.kw]
				} else {
					p.exprs[len(p.exprs)-1] = args[a.i]
				}
				out = append(out, gtok(tokens.Name, placeholderPrefix+strconv.Itoa(len(p.exprs)-1), a.at))
			}
			out = append(out, gtok(tokens.RightParenthesis, ")", lp))
		}
		if !p.cur().is(jtOp, "|") {
			return out
		}
		out = append(out, gtok(tokens.Pipe, "|", p.next()))
	}
}

// --- expressions -------------------------------------------------------------

// Custom expression nodes, compiled by the rewriter; gonja never sees them.
type (
	// condExpr is `then if test else els`; els is nil without else.
	condExpr struct {
		tok             *tokens.Token
		test, then, els nodes.Expression
	}
	// compareExpr is a chain of comparisons, Python style: a < b < c.
	compareExpr struct {
		first nodes.Expression
		ops   []compareOp
	}
	compareOp struct {
		tok  *tokens.Token // Type is the comparison; "not in" is In with Val "not in"
		expr nodes.Expression
	}
	// sliceExpr is node[start:stop:step]; absent parts are nil.
	sliceExpr struct {
		tok                     *tokens.Token
		node, start, stop, step nodes.Expression
	}
	// bigLit is an integer literal beyond int64.
	bigLit struct {
		tok *tokens.Token
		v   *big.Int
	}
	// unpackIter is the iterable of a for loop with two targets: it
	// unpacks each item into exactly two values, as Python does.
	unpackIter struct {
		iter     nodes.Expression
		filtered bool // the loop has an if filter (set by the rewriter)
	}
	// dictCall is dict(...): Python keeps the keyword arguments' order,
	// which a gonja call (a map of them) loses.
	dictCall struct {
		call *nodes.Call
		keys []string
	}
)

func (n *condExpr) Position() *tokens.Token    { return n.tok }
func (n *condExpr) String() string             { return "condexpr" }
func (n *compareExpr) Position() *tokens.Token { return n.first.Position() }
func (n *compareExpr) String() string          { return "compare" }
func (n *sliceExpr) Position() *tokens.Token   { return n.tok }
func (n *sliceExpr) String() string            { return "slice" }
func (n *bigLit) Position() *tokens.Token      { return n.tok }
func (n *bigLit) String() string               { return n.v.String() }
func (n *unpackIter) Position() *tokens.Token  { return n.iter.Position() }
func (n *unpackIter) String() string           { return "unpack" }
func (n *dictCall) Position() *tokens.Token    { return n.call.Position() }
func (n *dictCall) String() string             { return "dict" }

func (p *jparser) enter() {
	p.depth++
	if p.depth > maxNesting {
		p.fail("expression nested too deeply")
	}
}

func (p *jparser) leave() { p.depth-- }

func (p *jparser) isTupleEnd(extra []string) bool {
	t := p.cur()
	if t.kind == jtVarEnd || t.kind == jtBlockEnd || t.is(jtOp, ")") {
		return true
	}
	for _, name := range extra {
		if t.isName(name) {
			return true
		}
	}
	return false
}

// parseTuple is Jinja2's parse_tuple: expressions separated by commas make
// a tuple; simplified parses primaries only (assignment targets).
func (p *jparser) parseTuple(simplified, withCondexpr bool, extra []string, explicitParens bool) nodes.Expression {
	at := p.cur()
	var items []nodes.Expression
	isTuple := false
	for {
		if len(items) > 0 {
			p.expect(jtOp, ",")
		}
		if p.isTupleEnd(extra) {
			break
		}
		switch {
		case simplified:
			items = append(items, p.parsePrimary())
		default:
			items = append(items, p.parseExpression(withCondexpr))
		}
		if p.cur().is(jtOp, ",") {
			isTuple = true
		} else {
			break
		}
	}
	if !isTuple {
		if len(items) > 0 {
			return items[0]
		}
		if !explicitParens {
			p.fail("Expected an expression, got %s", pyQuote(p.cur().describe()))
		}
	}
	return &nodes.Tuple{Location: gtok(tokens.LeftParenthesis, "(", at), Val: items}
}

func (p *jparser) parseExpression(withCondexpr bool) nodes.Expression {
	if withCondexpr {
		return p.parseCondexpr()
	}
	return p.parseOr()
}

func (p *jparser) parseCondexpr() nodes.Expression {
	p.enter()
	defer p.leave()
	e := p.parseOr()
	for {
		kw := p.cur()
		if !p.skipName("if") {
			return e
		}
		test := p.parseOr()
		var els nodes.Expression
		if p.skipName("else") {
			els = p.parseCondexpr()
		}
		e = &condExpr{tok: gtok(tokens.Name, "if", kw), test: test, then: e, els: els}
	}
}

func (p *jparser) binary(left nodes.Expression, op *jtok, typ tokens.Type, right nodes.Expression) nodes.Expression {
	return &nodes.BinaryExpression{Left: left, Right: right, Operator: &nodes.BinOperator{Token: gtok(typ, op.val, op)}}
}

func (p *jparser) parseOr() nodes.Expression {
	e := p.parseAnd()
	for p.cur().isName("or") {
		op := p.next()
		e = p.binary(e, op, tokens.Or, p.parseAnd())
	}
	return e
}

func (p *jparser) parseAnd() nodes.Expression {
	e := p.parseNot()
	for p.cur().isName("and") {
		op := p.next()
		e = p.binary(e, op, tokens.And, p.parseNot())
	}
	return e
}

func (p *jparser) parseNot() nodes.Expression {
	if p.cur().isName("not") {
		op := p.next()
		p.enter()
		defer p.leave()
		return &nodes.Negation{Operator: gtok(tokens.Not, "not", op), Term: p.parseNot()}
	}
	return p.parseCompare()
}

var compareTypes = map[string]tokens.Type{
	"==": tokens.Equals, "!=": tokens.Ne, "<": tokens.LowerThan, "<=": tokens.LowerThanOrEqual,
	">": tokens.GreaterThan, ">=": tokens.GreaterThanOrEqual,
}

func (p *jparser) parseCompare() nodes.Expression {
	e := p.parseMath1()
	var ops []compareOp
	for {
		t := p.cur()
		switch {
		case t.kind == jtOp && compareTypes[t.val] != 0:
			p.next()
			ops = append(ops, compareOp{gtok(compareTypes[t.val], t.val, t), p.parseMath1()})
		case t.isName("in"):
			p.next()
			ops = append(ops, compareOp{gtok(tokens.In, "in", t), p.parseMath1()})
		case t.isName("not") && p.look().isName("in"):
			p.next()
			p.next()
			ops = append(ops, compareOp{gtok(tokens.In, "not in", t), p.parseMath1()})
		default:
			if len(ops) == 0 {
				return e
			}
			return &compareExpr{first: e, ops: ops}
		}
	}
}

func (p *jparser) parseMath1() nodes.Expression {
	e := p.parseConcat()
	for {
		t := p.cur()
		switch {
		case t.is(jtOp, "+"):
			p.next()
			e = p.binary(e, t, tokens.Addition, p.parseConcat())
		case t.is(jtOp, "-"):
			p.next()
			e = p.binary(e, t, tokens.Subtraction, p.parseConcat())
		default:
			return e
		}
	}
}

func (p *jparser) parseConcat() nodes.Expression {
	e := p.parseMath2()
	for p.cur().is(jtOp, "~") {
		t := p.next()
		e = p.binary(e, t, tokens.Tilde, p.parseMath2())
	}
	return e
}

var math2Types = map[string]tokens.Type{"*": tokens.Multiply, "/": tokens.Division, "//": tokens.FloorDivision, "%": tokens.Modulo}

func (p *jparser) parseMath2() nodes.Expression {
	e := p.parsePow()
	for {
		t := p.cur()
		typ, ok := math2Types[t.val]
		if t.kind != jtOp || !ok {
			return e
		}
		p.next()
		e = p.binary(e, t, typ, p.parsePow())
	}
}

// parsePow is left-associative, as in Jinja2 (2 ** 3 ** 2 is 64).
func (p *jparser) parsePow() nodes.Expression {
	e := p.parseUnary(true)
	for p.cur().is(jtOp, "**") {
		t := p.next()
		e = p.binary(e, t, tokens.Power, p.parseUnary(true))
	}
	return e
}

func (p *jparser) parseUnary(withFilter bool) nodes.Expression {
	p.enter()
	defer p.leave()
	t := p.cur()
	var e nodes.Expression
	switch {
	case t.is(jtOp, "-"), t.is(jtOp, "+"):
		p.next()
		typ := tokens.Subtraction
		if t.val == "+" {
			typ = tokens.Addition
		}
		e = &nodes.UnaryExpression{Negative: t.val == "-", Operator: gtok(typ, t.val, t), Term: p.parseUnary(false)}
	default:
		e = p.parsePrimary()
	}
	e = p.parsePostfix(e)
	if withFilter {
		e = p.parseFilterExpr(e)
	}
	return e
}

func (p *jparser) parsePrimary() nodes.Expression {
	t := p.cur()
	loc := gtok(tokens.Name, t.val, t)
	switch t.kind {
	case jtName:
		p.next()
		switch t.val {
		case "true", "True":
			return &nodes.Bool{Location: loc, Val: true}
		case "false", "False":
			return &nodes.Bool{Location: loc, Val: false}
		case "none", "None":
			return &nodes.None{Location: loc}
		}
		return &nodes.Name{Name: loc}
	case jtString:
		p.next()
		s := t.str
		for p.cur().kind == jtString { // adjacent literals concatenate
			s += p.next().str
		}
		loc.Type = tokens.String
		return &nodes.String{Location: loc, Val: s}
	case jtInteger:
		p.next()
		loc.Type = tokens.Integer
		if t.big != nil {
			return &bigLit{tok: loc, v: t.big}
		}
		return &nodes.Integer{Location: loc, Val: int(t.num)}
	case jtFloat:
		p.next()
		loc.Type = tokens.Float
		return &nodes.Float{Location: loc, Val: t.flt}
	case jtOp:
		switch t.val {
		case "(":
			p.next()
			e := p.parseTuple(false, true, nil, true)
			p.expect(jtOp, ")")
			return e
		case "[":
			return p.parseList()
		case "{":
			return p.parseDict()
		}
	}
	p.failAt(t, "unexpected %s", pyQuote(t.describe()))
	return nil
}

func (p *jparser) parseList() nodes.Expression {
	t := p.expect(jtOp, "[")
	items := []nodes.Expression{}
	for !p.cur().is(jtOp, "]") {
		if len(items) > 0 {
			p.expect(jtOp, ",")
		}
		if p.cur().is(jtOp, "]") {
			break
		}
		items = append(items, p.parseExpression(true))
	}
	p.expect(jtOp, "]")
	return &nodes.List{Location: gtok(tokens.LeftBracket, "[", t), Val: items}
}

func (p *jparser) parseDict() nodes.Expression {
	t := p.expect(jtOp, "{")
	d := &nodes.Dict{Token: gtok(tokens.LeftBrace, "{", t), Pairs: []*nodes.Pair{}}
	for !p.cur().is(jtOp, "}") {
		if len(d.Pairs) > 0 {
			p.expect(jtOp, ",")
		}
		if p.cur().is(jtOp, "}") {
			break
		}
		k := p.parseExpression(true)
		p.expect(jtOp, ":")
		v := p.parseExpression(true)
		d.Pairs = append(d.Pairs, &nodes.Pair{Key: k, Value: v})
	}
	p.expect(jtOp, "}")
	return d
}

func (p *jparser) parsePostfix(e nodes.Expression) nodes.Expression {
	for {
		t := p.cur()
		switch {
		case t.is(jtOp, "."), t.is(jtOp, "["):
			e = p.parseSubscript(e)
		case t.is(jtOp, "("):
			e = p.parseCall(e)
		default:
			return e
		}
	}
}

func (p *jparser) parseFilterExpr(e nodes.Expression) nodes.Expression {
	for {
		t := p.cur()
		switch {
		case t.is(jtOp, "|"):
			p.next()
			e = p.parseFilter(e)
		case t.isName("is"):
			e = p.parseTest(e)
		case t.is(jtOp, "("):
			e = p.parseCall(e)
		default:
			return e
		}
	}
}

func (p *jparser) parseSubscript(e nodes.Expression) nodes.Expression {
	t := p.next()
	if t.val == "." {
		attr := p.next()
		switch attr.kind {
		case jtName:
			// Any name: item.in, x.if and loop.not are attributes.
			return &nodes.GetAttribute{Location: gtok(tokens.Dot, ".", t), Node: e, Attribute: attr.val}
		case jtInteger:
			var key nodes.Expression = &nodes.Integer{Location: gtok(tokens.Integer, attr.val, attr), Val: int(attr.num)}
			if attr.big != nil {
				key = &bigLit{tok: gtok(tokens.Integer, attr.val, attr), v: attr.big}
			}
			return &nodes.GetItem{Location: gtok(tokens.Dot, ".", t), Node: e, Arg: key}
		}
		p.failAt(attr, "expected name or number")
	}
	var args []nodes.Expression
	for !p.cur().is(jtOp, "]") {
		if len(args) > 0 {
			p.expect(jtOp, ",")
		}
		args = append(args, p.parseSubscribed(t, e))
	}
	p.expect(jtOp, "]")
	loc := gtok(tokens.LeftBracket, "[", t)
	if len(args) == 1 {
		if s, ok := args[0].(*sliceExpr); ok {
			s.node = e
			return s
		}
		return &nodes.GetItem{Location: loc, Node: e, Arg: args[0]}
	}
	for _, a := range args {
		if _, ok := a.(*sliceExpr); ok {
			p.failAt(t, "slices inside a tuple subscript are not supported")
		}
	}
	return &nodes.GetItem{Location: loc, Node: e, Arg: &nodes.Tuple{Location: loc, Val: args}}
}

func (p *jparser) parseSubscribed(lb *jtok, obj nodes.Expression) nodes.Expression {
	s := &sliceExpr{tok: gtok(tokens.LeftBracket, "[", lb)}
	if p.cur().is(jtOp, ":") {
		p.next()
	} else {
		e := p.parseExpression(true)
		if !p.cur().is(jtOp, ":") {
			return e
		}
		p.next()
		s.start = e
	}
	endOfPart := func() bool { t := p.cur(); return t.is(jtOp, "]") || t.is(jtOp, ",") }
	if !p.cur().is(jtOp, ":") && !endOfPart() {
		s.stop = p.parseExpression(true)
	}
	if p.skipOp(":") && !endOfPart() {
		s.step = p.parseExpression(true)
	}
	return s
}

type callArg struct {
	kw string // keyword, or "" for a positional argument
	i  int    // index among the positional arguments
	at *jtok
}

// callArgs is Jinja2's parse_call_args; *args and **kwargs are refused.
func (p *jparser) callArgs() ([]nodes.Expression, map[string]nodes.Expression, []callArg) {
	lp := p.expect(jtOp, "(")
	args := []nodes.Expression{}
	kwargs := map[string]nodes.Expression{}
	var order []callArg
	requireComma := false
	for !p.cur().is(jtOp, ")") {
		if requireComma {
			p.expect(jtOp, ",")
			if p.cur().is(jtOp, ")") {
				break
			}
		}
		t := p.cur()
		switch {
		case t.is(jtOp, "*"), t.is(jtOp, "**"):
			p.failAt(t, "*args and **kwargs in calls are not supported")
		case t.kind == jtName && p.look().is(jtOp, "="):
			p.next()
			p.next()
			if _, dup := kwargs[t.val]; dup {
				p.failAt(t, "keyword argument repeated: %s", t.val)
			}
			kwargs[t.val] = p.parseExpression(true)
			order = append(order, callArg{kw: t.val, at: t})
		default:
			if len(kwargs) > 0 {
				p.failAt(lp, "invalid syntax for function call expression")
			}
			args = append(args, p.parseExpression(true))
			order = append(order, callArg{i: len(args) - 1, at: t})
		}
		requireComma = true
	}
	p.expect(jtOp, ")")
	return args, kwargs, order
}

func (p *jparser) parseCall(fn nodes.Expression) nodes.Expression {
	lp := p.cur()
	args, kwargs, order := p.callArgs()
	c := &nodes.Call{Location: gtok(tokens.LeftParenthesis, "(", lp), Func: fn, Args: args, Kwargs: kwargs}
	switch f := fn.(type) {
	case *nodes.GetAttribute:
		c.Parent = f.Node
	case *nodes.GetItem:
		c.Parent = f.Node
	case *nodes.Name:
		if f.Name.Val == "dict" && len(args) <= 1 {
			d := &dictCall{call: c}
			for _, a := range order {
				if a.kw != "" {
					d.keys = append(d.keys, a.kw)
				}
			}
			return d
		}
	}
	return c
}

func (p *jparser) parseFilter(e nodes.Expression) nodes.Expression {
	t := p.expect(jtName, "")
	name := t.val
	for p.cur().is(jtOp, ".") {
		p.next()
		name += "." + p.expect(jtName, "").val
	}
	fc := &nodes.FilterCall{Token: gtok(tokens.Name, t.val, t), Name: name, Args: []nodes.Expression{}, Kwargs: map[string]nodes.Expression{}}
	if p.cur().is(jtOp, "(") {
		fc.Args, fc.Kwargs, _ = p.callArgs()
	}
	return &nodes.FilteredExpression{Expression: e, Filters: []*nodes.FilterCall{fc}}
}

var testArgStart = map[jtokKind]bool{jtName: true, jtString: true, jtInteger: true, jtFloat: true}

func (p *jparser) parseTest(e nodes.Expression) nodes.Expression {
	is := p.next()
	var not *jtok
	if p.cur().isName("not") {
		not = p.next()
	}
	t := p.expect(jtName, "")
	name := t.val
	for p.cur().is(jtOp, ".") {
		p.next()
		name += "." + p.expect(jtName, "").val
	}
	tc := &nodes.TestCall{Token: gtok(tokens.Name, t.val, t), Name: name, Args: []nodes.Expression{}, Kwargs: map[string]nodes.Expression{}}
	c := p.cur()
	switch {
	case c.is(jtOp, "("):
		tc.Args, tc.Kwargs, _ = p.callArgs()
	case (testArgStart[c.kind] || c.is(jtOp, "[") || c.is(jtOp, "{")) && !c.isName("else") && !c.isName("or") && !c.isName("and"):
		if c.isName("is") {
			p.fail("You cannot chain multiple tests with is")
		}
		tc.Args = []nodes.Expression{p.parsePostfix(p.parsePrimary())}
	}
	var res nodes.Expression = &nodes.TestExpression{Expression: e, Test: tc}
	if not != nil {
		res = &nodes.Negation{Operator: gtok(tokens.Not, "not", is), Term: res}
	}
	return res
}
