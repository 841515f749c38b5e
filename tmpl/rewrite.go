package tmpl

import (
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"unsafe"

	"github.com/nikolalohinski/gonja/v2/builtins"
	controlStructures "github.com/nikolalohinski/gonja/v2/builtins/control_structures"
	"github.com/nikolalohinski/gonja/v2/config"
	"github.com/nikolalohinski/gonja/v2/exec"
	"github.com/nikolalohinski/gonja/v2/loaders"
	"github.com/nikolalohinski/gonja/v2/nodes"
	"github.com/nikolalohinski/gonja/v2/parser"
	"github.com/nikolalohinski/gonja/v2/tokens"
)

// evalFn is a compiled expression. Expressions are compiled once at parse
// time into Go closures that implement Jinja2 semantics (undefined values,
// Python truthiness and arithmetic, error positions); gonja still evaluates
// the node kinds we do not handle ourselves.
type evalFn func(e *exec.Evaluator) *exec.Value

// rewriter replaces every expression slot of the gonja AST by a call to a
// hidden function (named with a NUL byte so templates cannot refer to it)
// that runs the compiled closure.
type rewriter struct {
	env          *exec.Context
	placeholders []nodes.Expression // what the placeholder names of parse.go stand for
	macros       map[string]bool    // names of the template's macros
	n            int
	err          error
}

type slotMode int

const (
	modeValue  slotMode = iota // may yield undefined (set, with, macro defaults)
	modeStrict                 // undefined is an error (for iterable, call args)
	modeBool                   // Python truthiness, undefined is false
	modePrint                  // str() of the value, undefined is an error
	modeIter                   // strict, and charges the loop length to the step budget
)

// The rewriter visits gonja's statement-level AST with ordinary Go code: a
// type switch over the control structures Occopus enables (enabledStatements
// in tmpl.go). Exported gonja fields are read and assigned directly. Three
// statements keep their expressions in unexported fields (set, with,
// filter), for which gonja offers no accessor; those, and only those, are
// reached through unexported(). gonjaShape below lists every field either
// way, and checkGonjaShape verifies it against the linked gonja at start-up
// (init) and in TestGonjaShape, so a change in gonja's internals stops the
// program instead of silently leaving expressions unrewritten.

func (rw *rewriter) template(t *nodes.Template) error {
	seen := map[any]bool{}
	rw.macros = map[string]bool{}
	for name := range t.Macros {
		rw.macros[name] = true
	}
	rw.nodeList(t.Nodes, seen)
	for _, m := range t.Macros {
		rw.macro(m, seen)
	}
	return rw.err
}

func (rw *rewriter) nodeList(list []nodes.Node, seen map[any]bool) {
	for _, n := range list {
		switch n := n.(type) {
		case *nodes.Output:
			if n.Condition != nil {
				n.Condition = rw.slot(n.Condition, modeBool)
			}
			if n.Alternative != nil {
				n.Alternative = rw.slot(n.Alternative, modePrint)
			}
			n.Expression = rw.slot(n.Expression, modePrint)
		case *nodes.ControlStructureBlock:
			if fcs, ok := n.ControlStructure.(*controlStructures.FilterControlStructure); ok && n.Name == "filter" {
				// The position goes as arguments: gonja calls the filter
				// without it.
				chain := unexported[[]*nodes.FilterCall](fcs, "filterChain")
				line, col := tokPos(n.Location)
				*chain = append(*chain, &nodes.FilterCall{Token: n.Location, Name: blockStrFilter, Kwargs: map[string]nodes.Expression{},
					Args: []nodes.Expression{&nodes.Integer{Location: n.Location, Val: line}, &nodes.Integer{Location: n.Location, Val: col}}})
			}
			rw.control(n.ControlStructure, seen)
		case *nodes.Wrapper:
			rw.wrapper(n, seen)
		}
	}
}

// first reports whether p (a non-nil pointer) is visited for the first time;
// a node reachable twice (a macro is both a statement and in
// Template.Macros) must be rewritten once.
func first(p any, seen map[any]bool) bool {
	if seen[p] {
		return false
	}
	seen[p] = true
	return true
}

func (rw *rewriter) wrapper(w *nodes.Wrapper, seen map[any]bool) {
	if w != nil && first(w, seen) {
		rw.nodeList(w.Nodes, seen)
	}
}

// macro rewrites parameter defaults (names are kept) and the body.
func (rw *rewriter) macro(m *nodes.Macro, seen map[any]bool) {
	if m == nil || !first(m, seen) {
		return
	}
	for _, p := range m.Kwargs {
		if p == nil || p.Value == nil {
			continue
		}
		if _, ok := p.Value.(*nodes.None); ok {
			// gonja's stand-in for a parameter without default (ours
			// are placeholders): Jinja2 makes it undefined when the
			// call omits it.
			name := ""
			if k, ok := p.Key.(*nodes.String); ok {
				name = k.Val
			}
			line, col := tokPos(p.Value.Position())
			msg := fmt.Sprintf("parameter %s was not provided", pyQuote(name))
			p.Value = rw.register(func(*exec.Evaluator) *exec.Value {
				return exec.AsValue(&undefinedBox{&undefined{name: name, msg: msg, line: line, col: col}})
			}, p.Value.Position())
			continue
		}
		p.Value = rw.slot(p.Value, modeValue)
	}
	rw.wrapper(m.Wrapper, seen)
}

// expr rewrites one optional expression slot.
func (rw *rewriter) expr(x nodes.Expression, mode slotMode) nodes.Expression {
	if x == nil {
		return nil
	}
	if !isExpression(x) {
		rw.internal(x, "a %T where gonja should hold an expression", x)
		return x
	}
	return rw.slot(x, mode)
}

func (rw *rewriter) exprs(list []nodes.Expression, mode slotMode) {
	for i, x := range list {
		if x != nil {
			list[i] = rw.slot(x, mode)
		}
	}
}

func (rw *rewriter) exprMap(m map[string]nodes.Expression, mode slotMode) {
	for k, x := range m {
		if x != nil {
			m[k] = rw.slot(x, mode)
		}
	}
}

// control rewrites the expressions of one statement. The field order of
// gonja's structs is kept so expressions are compiled in source order.
func (rw *rewriter) control(cs nodes.ControlStructure, seen map[any]bool) {
	if cs == nil || !first(cs, seen) {
		return
	}
	switch cs := cs.(type) {
	case *controlStructures.IfControlStructure:
		rw.exprs(cs.Conditions, modeBool)
		for _, w := range cs.Wrappers {
			rw.wrapper(w, seen)
		}
	case *controlStructures.ForControlStructure:
		if n, ok := cs.ObjectEvaluator.(*nodes.Name); ok && cs.IfCondition != nil {
			if i, ok := placeholderIndex(n); ok && i < len(rw.placeholders) {
				if u, ok := rw.placeholders[i].(*unpackIter); ok {
					u.filtered = true
				}
			}
		}
		cs.ObjectEvaluator = rw.expr(cs.ObjectEvaluator, modeIter)
		cs.IfCondition = rw.expr(cs.IfCondition, modeBool)
		rw.wrapper(cs.BodyWrapper, seen)
		rw.wrapper(cs.EmptyWrapper, seen)
	case *controlStructures.SetControlStructure:
		// target is the assignment target, evaluated by gonja's set itself.
		for _, f := range []struct {
			name string
			mode slotMode
		}{{"expression", modeValue}, {"condition", modeBool}, {"alternative", modeValue}} {
			p := unexported[nodes.Expression](cs, f.name)
			*p = rw.expr(*p, f.mode)
		}
		rw.wrapper(*unexported[*nodes.Wrapper](cs, "body"), seen)
	case *controlStructures.WithControlStructure:
		rw.exprMap(*unexported[map[string]nodes.Expression](cs, "pairs"), modeValue)
		rw.wrapper(*unexported[*nodes.Wrapper](cs, "wrapper"), seen)
	case *controlStructures.FilterControlStructure:
		rw.wrapper(*unexported[*nodes.Wrapper](cs, "bodyWrapper"), seen)
		for _, fc := range *unexported[[]*nodes.FilterCall](cs, "filterChain") {
			rw.checkFilter(fc)
			rw.exprs(fc.Args, modeStrict)
			rw.exprMap(fc.Kwargs, modeStrict)
		}
	case *controlStructures.MacroControlStructure:
		rw.macro(cs.Macro, seen)
	case *controlStructures.RawControlStructure, *controlStructures.BreakControlStructure, *controlStructures.ContinueControlStructure:
		// no expressions
	default:
		rw.internal(cs, "no rewrite rule for gonja's %T", cs)
	}
}

// internal records a rewriter bug (gonja produced something the rewriter
// does not know) as the template's error rather than rendering the template
// with gonja's own, non-Jinja2, semantics.
func (rw *rewriter) internal(n nodes.Node, format string, args ...any) {
	if rw.err == nil {
		l, c := tokPos(n.Position())
		rw.err = &SyntaxError{Line: max(l, 1), Col: max(c, 1), Msg: "internal error: " + fmt.Sprintf(format, args...)}
	}
}

// unexported returns a pointer to the unexported field name of the struct
// *p, which must have type T. gonja gives no other access to these fields;
// checkGonjaShape has verified at start-up that they exist with that type,
// so the panic here is only a second line of defence.
func unexported[T any](p any, name string) *T {
	v := reflect.ValueOf(p).Elem()
	sf, ok := v.Type().FieldByName(name)
	if !ok || len(sf.Index) != 1 || sf.Type != reflect.TypeFor[T]() {
		panic(fmt.Sprintf("tmpl: gonja %s: %s has no field %s of type %s; the AST rewriter (tmpl/rewrite.go) must be updated",
			gonjaVersion(), v.Type(), name, reflect.TypeFor[T]()))
	}
	return (*T)(unsafe.Pointer(v.Field(sf.Index[0]).UnsafeAddr()))
}

func isExpression(n nodes.Node) bool {
	switch n.(type) {
	case *nodes.Wrapper, *nodes.Data, *nodes.Comment, *nodes.Output, *nodes.ControlStructureBlock, *nodes.Template, *nodes.Macro:
		return false
	}
	return true
}

// slot compiles n and returns the gonja node that calls the result.
func (rw *rewriter) slot(n nodes.Node, mode slotMode) nodes.Expression {
	fn := rw.compile(n)
	pos := n.Position()
	switch mode {
	case modeValue:
		inner := fn
		fn = func(e *exec.Evaluator) *exec.Value {
			v := inner(e)
			if u := asUndefined(v); u != nil {
				// gonja statements (set, with) reject error values; a box
				// lets an undefined be stored like Jinja2 does.
				return exec.AsValue(&undefinedBox{u})
			}
			return v
		}
	case modeStrict:
		fn = strictFn(fn, "")
	case modeIter:
		inner := fn
		line, col := tokPos(pos)
		fn = func(e *exec.Evaluator) *exec.Value {
			v := inner(e)
			if u := asUndefined(v); u != nil {
				if u.lenient {
					return exec.AsValue([]any{})
				}
				return exec.AsValue(stateOf(e).failUndef(u, ""))
			}
			if v.IsError() {
				return v
			}
			// gonja iterates with its own rules (a dict as key/value
			// pairs, an int as nothing); hand it Python's items.
			items, err := pyIter(v)
			if err != nil {
				return exec.AsValue(stateOf(e).fail(line, col, "%s", err))
			}
			if st := stateOf(e); st != nil {
				st.steps += len(items)
				if st.steps > maxSteps {
					return exec.AsValue(st.fail(0, 0, "template evaluation exceeded %d steps", maxSteps))
				}
			}
			return exec.AsValue(items)
		}
	case modeBool:
		inner := fn
		fn = func(e *exec.Evaluator) *exec.Value {
			v := inner(e)
			if u := asUndefined(v); u != nil {
				return exec.AsValue(false)
			}
			if v.IsError() {
				return v
			}
			return exec.AsValue(truthy(v))
		}
	case modePrint:
		inner := fn
		fn = func(e *exec.Evaluator) *exec.Value {
			v := inner(e)
			if u := asUndefined(v); u != nil {
				if u.lenient {
					return exec.AsValue("")
				}
				return exec.AsValue(stateOf(e).failUndef(u, ""))
			}
			if v.IsError() {
				return v
			}
			s, err := pyStr(v)
			if err != nil {
				line, col := tokPos(pos)
				return exec.AsValue(stateOf(e).fail(line, col, "%s", err))
			}
			return exec.AsValue(s)
		}
	}
	return rw.register(fn, pos)
}

func (rw *rewriter) register(fn evalFn, pos *tokens.Token) nodes.Expression {
	rw.n++
	name := "\x00" + strconv.Itoa(rw.n)
	line, col := tokPos(pos)
	rw.env.Set(name, func(e *exec.Evaluator, _ *exec.VarArgs) *exec.Value {
		if st := stateOf(e); st != nil {
			st.steps++
			if st.steps > maxSteps {
				return exec.AsValue(st.fail(0, 0, "template evaluation exceeded %d steps", maxSteps))
			}
			// A macro calling itself would otherwise exhaust the Go stack
			// (Python stops at its recursion limit).
			st.depth++
			defer func() { st.depth-- }()
			if st.depth > maxDepth {
				return exec.AsValue(st.fail(line, col, "maximum recursion depth exceeded (a macro calling itself?)"))
			}
		}
		return fn(e)
	})
	tok := &tokens.Token{Type: tokens.Name, Val: name}
	if pos != nil {
		tok.Line, tok.Col, tok.Pos = pos.Line, pos.Col, pos.Pos
	}
	return &nodes.Call{Location: tok, Func: &nodes.Name{Name: tok}, Args: []nodes.Expression{}, Kwargs: map[string]nodes.Expression{}}
}

var invalidCallRE = regexp.MustCompile(`(invalid call to (function|filter|test|method) '[^']*'( of [^:]*)?: |unable to evaluate parameters: )`)

// cleanMsg drops gonja's generic wrappers, which name our hidden functions.
func cleanMsg(s string) string {
	return invalidCallRE.ReplaceAllString(s, "")
}

func tokPos(t *tokens.Token) (int, int) {
	if t == nil {
		return 0, 0
	}
	return t.Line, t.Col
}

// strictFn turns an undefined result into an error; where names the use
// (e.g. "in getip(master)") for the message.
func strictFn(fn evalFn, where string) evalFn {
	return func(e *exec.Evaluator) *exec.Value {
		v := fn(e)
		if u := asUndefined(v); u != nil {
			return exec.AsValue(stateOf(e).failUndef(u, where))
		}
		return v
	}
}

// --- undefined -----------------------------------------------------------

// undefined is the value of a missing name or attribute. It is an error
// value so that every gonja code path we do not intercept fails on it
// instead of printing an empty string, while our hooks let `default`,
// `is defined` and boolean tests treat it like Jinja2's Undefined.
type undefined struct {
	name      string
	msg       string // replaces the default message when set
	line, col int
	// lenient is Jinja2's plain Undefined, which an inline if without
	// else yields even under a strict undefined class: it prints as "",
	// iterates as empty and fails only in arithmetic and access.
	lenient bool
}

// undefinedBox carries an undefined value through gonja statements that
// refuse error values; reading it back yields the undefined again.
type undefinedBox struct{ u *undefined }

// maxSteps bounds the work of one render so a hostile or buggy template
// cannot loop for hours.
const maxSteps = 1_000_000

// maxDepth bounds the nesting of expression evaluations, far below what
// the Go stack holds; maxMacroDepth bounds macro recursion (Jinja2 stops
// at Python's recursion limit, about 200 levels).
const (
	maxDepth      = 400
	maxMacroDepth = 100
)

func (u *undefined) Error() string {
	if u.msg != "" {
		return u.msg
	}
	return fmt.Sprintf("%q is undefined", u.name)
}

func (u *undefined) renderError() *RenderError {
	return &RenderError{Line: u.line, Col: u.col, Msg: u.Error()}
}

func asUndefined(v *exec.Value) *undefined {
	if v == nil || !v.Val.IsValid() {
		return nil
	}
	if v.Val.Kind() == reflect.Pointer && v.Val.Type() == reflect.TypeFor[*undefined]() {
		return v.Val.Interface().(*undefined)
	}
	return nil
}

func stateOf(e *exec.Evaluator) *renderState {
	if v, ok := e.Environment.Context.Get(stateKey); ok {
		if s, ok := v.(*renderState); ok {
			return s
		}
	}
	return nil
}

func (s *renderState) failUndef(u *undefined, where string) *RenderError {
	if u.msg != "" {
		return s.fail(u.line, u.col, "%s", u.msg)
	}
	if where != "" {
		if strings.Contains(u.name, ".") || strings.Contains(u.name, "[") {
			return s.fail(u.line, u.col, "%q is undefined %s", u.name, where)
		}
		return s.fail(u.line, u.col, "undefined name %q %s", u.name, where)
	}
	return s.fail(u.line, u.col, "%q is undefined", u.name)
}

// foreign converts an error produced by gonja into a positioned RenderError
// the first time one of our closures sees it.
func foreign(e *exec.Evaluator, v *exec.Value, pos *tokens.Token, what string) *exec.Value {
	if findRenderError(v) != nil {
		return v
	}
	if u := asUndefined(v); u != nil {
		return v
	}
	if st := stateOf(e); st != nil && st.firstErr != nil {
		// gonja re-wrapped our error as text (a macro does): the first
		// error is the cause, and the render fails with it anyway.
		return exec.AsValue(st.firstErr)
	}
	line, col := tokPos(pos)
	msg := v.Error()
	if len(msg) > 2000 {
		msg = msg[:2000] + "…"
	}
	msg = cleanMsg(msg)
	if what != "" {
		msg = what + ": " + msg
	}
	return exec.AsValue(stateOf(e).fail(line, col, "%s", msg))
}

// --- gonja's shape ---------------------------------------------------------

// gonjaModule is the module whose internals gonjaShape describes, and
// gonjaShapeVersion the version the table was written for and checked
// against (TestGonjaVersionPinned). When upgrading gonja, re-read its
// nodes/, builtins/control_structures/ and exec/environment.go sources and
// re-verify every entry.
const (
	gonjaModule       = "github.com/nikolalohinski/gonja/v2"
	gonjaShapeVersion = "v2.9.1"
)

// fieldUse says what the rewriter does with a gonja field.
type fieldUse string

const (
	useSlot      fieldUse = "rewritten"       // expression(s) replaced by compiled closures
	useWalk      fieldUse = "walked"          // statements inside are rewritten
	useKeep      fieldUse = "left to gonja"   // deliberately not rewritten
	useEnumerate fieldUse = "read"            // read by checkGonjaShape only
	useUnreached fieldUse = "never parsed"    // statement not in enabledStatements
	useUnusedKey fieldUse = "never evaluated" // e.g. a macro parameter's name
)

type shapeField struct {
	Name string
	Type reflect.Type
	Use  fieldUse
}

// shapeType is one gonja struct type and, for control structures, the
// statement that produces it with a minimal template using it.
type shapeType struct {
	Type      reflect.Type
	Statement string
	Sample    string
	Fields    []shapeField
}

var (
	tExpr      = reflect.TypeFor[nodes.Expression]()
	tExprs     = reflect.TypeFor[[]nodes.Expression]()
	tExprMap   = reflect.TypeFor[map[string]nodes.Expression]()
	tNodes     = reflect.TypeFor[[]nodes.Node]()
	tWrapper   = reflect.TypeFor[*nodes.Wrapper]()
	tWrappers  = reflect.TypeFor[[]*nodes.Wrapper]()
	tMacro     = reflect.TypeFor[*nodes.Macro]()
	tMacroMap  = reflect.TypeFor[map[string]*nodes.Macro]()
	tPairs     = reflect.TypeFor[[]*nodes.Pair]()
	tFilters   = reflect.TypeFor[[]*nodes.FilterCall]()
	tNode      = reflect.TypeFor[nodes.Node]()
	tTemplate  = reflect.TypeFor[*nodes.Template]()
	tStatement = reflect.TypeFor[nodes.ControlStructure]()
)

func typeOf[T any]() reflect.Type { return reflect.TypeFor[T]() }

// gonjaShape lists every gonja type the rewriter walks, every control
// structure gonja's builtins register, and in each the fields that hold (or
// may lead to) AST nodes, with their Go types. Lower-case names are
// unexported in gonja and are accessed through unexported() (set, with,
// filter) or not at all; everything else is accessed as ordinary Go.
// checkGonjaShape fails when any of this stops being true or when gonja
// adds a node-carrying field or statement not listed here.
var gonjaShape = []shapeType{
	// Enabled statements (enabledStatements), rewritten by rewriter.control.
	{Type: typeOf[controlStructures.IfControlStructure](), Statement: "if", Sample: "{% if x %}{% endif %}", Fields: []shapeField{
		{"Conditions", tExprs, useSlot}, // modeBool
		{"Wrappers", tWrappers, useWalk},
	}},
	{Type: typeOf[controlStructures.ForControlStructure](), Statement: "for", Sample: "{% for x in y %}{% endfor %}", Fields: []shapeField{
		{"ObjectEvaluator", tExpr, useSlot}, // modeIter
		{"IfCondition", tExpr, useSlot},     // modeBool
		{"BodyWrapper", tWrapper, useWalk},
		{"EmptyWrapper", tWrapper, useWalk},
	}},
	{Type: typeOf[controlStructures.SetControlStructure](), Statement: "set", Sample: "{% set x = 1 %}", Fields: []shapeField{
		{"target", tExpr, useKeep},      // assignment target, evaluated by gonja's set
		{"expression", tExpr, useSlot},  // unsafe, modeValue
		{"condition", tExpr, useSlot},   // unsafe, modeBool
		{"alternative", tExpr, useSlot}, // unsafe, modeValue
		{"body", tWrapper, useWalk},     // unsafe (read)
	}},
	{Type: typeOf[controlStructures.WithControlStructure](), Statement: "with", Sample: "{% with %}{% endwith %}", Fields: []shapeField{
		{"pairs", tExprMap, useSlot},   // unsafe (map read, values replaced), modeValue
		{"wrapper", tWrapper, useWalk}, // unsafe (read)
	}},
	{Type: typeOf[controlStructures.FilterControlStructure](), Statement: "filter", Sample: "{% filter upper %}{% endfilter %}", Fields: []shapeField{
		{"bodyWrapper", tWrapper, useWalk}, // unsafe (read)
		{"filterChain", tFilters, useSlot}, // unsafe (read); FilterCall args modeStrict
	}},
	{Type: typeOf[controlStructures.MacroControlStructure](), Statement: "macro", Sample: "{% macro m() %}{% endmacro %}", Fields: []shapeField{
		{"Macro", tMacro, useWalk}, // embedded
	}},
	{Type: typeOf[controlStructures.RawControlStructure](), Statement: "raw", Sample: "{% raw %}x{% endraw %}" /* an empty raw body panics gonja */, Fields: []shapeField{
		// Our lexer (lex.go) turns raw blocks into template data, as
		// Jinja2's does, so gonja's raw statement is never parsed.
		{"data", typeOf[*nodes.Data](), useUnreached},
	}},
	{Type: typeOf[controlStructures.BreakControlStructure](), Statement: "break", Sample: "{% break %}"},
	{Type: typeOf[controlStructures.ContinueControlStructure](), Statement: "continue", Sample: "{% continue %}"},

	// Statements gonja registers that Occopus refuses (the parser reports an
	// unknown tag): listed so that their shape is known, never rewritten.
	{Type: typeOf[controlStructures.AutoescapeControlStructure](), Statement: "autoescape", Sample: "{% autoescape true %}{% endautoescape %}", Fields: []shapeField{
		{"Wrapper", tWrapper, useUnreached},
	}},
	{Type: typeOf[controlStructures.BlockControlStructure](), Statement: "block", Sample: "{% block b %}{% endblock %}"},
	{Type: typeOf[controlStructures.CallControlStructure](), Statement: "call", Sample: "{% call m() %}{% endcall %}", Fields: []shapeField{
		{"Call", typeOf[*nodes.Call](), useUnreached},
		{"Body", tWrapper, useUnreached},
	}},
	{Type: typeOf[controlStructures.DoControlStructure](), Statement: "do", Sample: "{% do x %}", Fields: []shapeField{
		{"Expression", tExpr, useUnreached},
	}},
	{Type: typeOf[controlStructures.ExtendsControlStructure](), Statement: "extends", Sample: `{% extends "base" %}`},
	{Type: typeOf[controlStructures.FromImportControlStructure](), Statement: "from", Sample: `{% from "lib" import m %}`, Fields: []shapeField{
		{"FilenameExpression", tExpr, useUnreached},
		{"Template", tTemplate, useUnreached},
		{"Macros", tMacroMap, useUnreached},
	}},
	{Type: typeOf[controlStructures.ImportControlStructure](), Statement: "import", Sample: `{% import "lib" as lib %}`, Fields: []shapeField{
		{"filenameExpression", tExpr, useUnreached},
	}},
	{Type: typeOf[controlStructures.IncludeControlStructure](), Statement: "include", Sample: `{% include "inc" %}`, Fields: []shapeField{
		{"filenameExpression", tExpr, useUnreached},
	}},
	{Type: typeOf[controlStructures.TransControlStructure](), Statement: "trans", Sample: "{% trans %}{% endtrans %}", Fields: []shapeField{
		{"Variables", tExprMap, useUnreached},
		{"SingularBody", tWrapper, useUnreached},
		{"PluralBody", tWrapper, useUnreached},
	}},

	// Non-statement nodes the rewriter walks (all exported).
	{Type: typeOf[nodes.Template](), Fields: []shapeField{
		{"Nodes", tNodes, useWalk},
		{"Blocks", typeOf[nodes.BlockSet](), useUnreached}, // block
		{"Macros", tMacroMap, useWalk},
		{"Parent", tTemplate, useUnreached}, // extends
	}},
	{Type: typeOf[nodes.Wrapper](), Fields: []shapeField{
		{"Nodes", tNodes, useWalk},
	}},
	{Type: typeOf[nodes.ControlStructureBlock](), Fields: []shapeField{
		{"ControlStructure", tStatement, useWalk},
	}},
	{Type: typeOf[nodes.Output](), Fields: []shapeField{
		{"Expression", tExpr, useSlot},  // modePrint
		{"Condition", tExpr, useSlot},   // modeBool
		{"Alternative", tExpr, useSlot}, // modePrint
	}},
	{Type: typeOf[nodes.Macro](), Fields: []shapeField{
		{"Kwargs", tPairs, useSlot}, // the defaults (Pair.Value), modeValue
		{"Wrapper", tWrapper, useWalk},
	}},
	{Type: typeOf[nodes.Pair](), Fields: []shapeField{
		{"Key", tExpr, useUnusedKey}, // the parameter name
		{"Value", tExpr, useSlot},
	}},
	{Type: typeOf[nodes.FilterCall](), Fields: []shapeField{
		{"Args", tExprs, useSlot},     // modeStrict
		{"Kwargs", tExprMap, useSlot}, // modeStrict
	}},

	// How checkGonjaShape enumerates the statements gonja registers.
	{Type: typeOf[exec.ControlStructureSet](), Fields: []shapeField{
		{"statements", typeOf[map[string]parser.ControlStructureParser](), useEnumerate},
	}},
}

// shapeError is one difference between gonjaShape and the linked gonja.
type shapeError struct {
	Type      string // e.g. "controlStructures.SetControlStructure"; empty for an unknown statement
	Field     string // empty for a type- or statement-level problem
	Statement string // the gonja statement concerned, if any
	Msg       string
}

func (e *shapeError) Error() string {
	where := e.Type
	if e.Field != "" {
		where += "." + e.Field
	}
	if e.Statement != "" {
		if where != "" {
			where += " "
		}
		where += fmt.Sprintf("(statement %q)", e.Statement)
	}
	version := gonjaVersion()
	if version != gonjaShapeVersion {
		version += " (shape table written for " + gonjaShapeVersion + ")"
	}
	return fmt.Sprintf("gonja %s: %s: %s; the AST rewriter in tmpl/rewrite.go must be updated", version, where, e.Msg)
}

// gonjaVersion is the version of gonja linked into this binary.
func gonjaVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, m := range bi.Deps {
			if m.Path == gonjaModule {
				if m.Replace != nil {
					return m.Replace.Path + "@" + m.Replace.Version
				}
				return m.Version
			}
		}
	}
	return "(version not recorded in this binary)"
}

func init() {
	if err := checkGonjaShape(); err != nil {
		panic("tmpl: " + err.Error())
	}
}

// checkGonjaShape verifies gonjaShape against the linked gonja; see
// checkShape.
func checkGonjaShape() error {
	var errs []error
	for _, e := range checkShape(gonjaShape) {
		errs = append(errs, e)
	}
	return errors.Join(errs...)
}

// checkShape reports every difference between table and the linked gonja:
//   - a listed field that is missing, or has another type;
//   - a field holding AST nodes that the table does not list;
//   - a statement registered by gonja's builtins that the table lacks, that
//     the table lists but gonja no longer registers, or whose sample parses
//     to another type;
//   - an enabled statement the rewriter cannot rewrite, or whose fields the
//     table marks as never parsed (and the converse).
func checkShape(table []shapeType) []*shapeError {
	var errs []*shapeError
	bad := func(t reflect.Type, field, statement, format string, args ...any) {
		name := ""
		if t != nil {
			name = t.String()
		}
		errs = append(errs, &shapeError{Type: name, Field: field, Statement: statement, Msg: fmt.Sprintf(format, args...)})
	}
	byStatement := map[string]*shapeType{}
	for i := range table {
		st := &table[i]
		if st.Type == nil || st.Type.Kind() != reflect.Struct {
			bad(st.Type, "", st.Statement, "not a struct type")
			continue
		}
		if st.Statement != "" {
			byStatement[st.Statement] = st
		}
		listed := map[string]bool{}
		for _, want := range st.Fields {
			listed[want.Name] = true
			sf, ok := directField(st.Type, want.Name)
			switch {
			case !ok:
				bad(st.Type, want.Name, "", "field not found (expected type %s)", want.Type)
			case sf.Type != want.Type:
				bad(st.Type, want.Name, "", "field has type %s, expected %s", sf.Type, want.Type)
			}
		}
		for i := 0; i < st.Type.NumField(); i++ {
			sf := st.Type.Field(i)
			if !listed[sf.Name] && carriesNodes(sf.Type, map[reflect.Type]bool{}) {
				bad(st.Type, sf.Name, "", "field of type %s holds AST nodes but is not in the shape table", sf.Type)
			}
		}
	}

	registered, err := registeredStatements(controlStructures.All)
	if err != nil {
		bad(typeOf[exec.ControlStructureSet](), "statements", "", "%s", err)
	}
	enabled := map[string]bool{}
	for _, name := range enabledStatements {
		enabled[name] = true
	}
	for _, name := range registered {
		st := byStatement[name]
		if st == nil {
			bad(nil, "", name, "gonja registers this statement but the shape table does not list it")
			continue
		}
		delete(byStatement, name)
		got, err := sampleStatementType(name, st.Sample)
		if err != nil {
			bad(st.Type, "", name, "sample %q: %s", st.Sample, err)
			continue
		}
		if got != reflect.PointerTo(st.Type) {
			bad(st.Type, "", name, "the statement parses to %s, the table expects *%s", got, st.Type)
			continue
		}
		for _, f := range st.Fields {
			if enabled[name] == (f.Use == useUnreached) {
				bad(st.Type, f.Name, name, "marked %q but the statement is enabled=%v (enabledStatements)", f.Use, enabled[name])
			}
		}
		if enabled[name] {
			// Inside a loop, so that break and continue are valid.
			if _, err := parse("{% for _ in [] %}" + st.Sample + "{% endfor %}"); err != nil {
				bad(st.Type, "", name, "the rewriter rejects sample %q: %s", st.Sample, err)
			}
		}
	}
	if err == nil {
		var stale []string
		for name := range byStatement {
			stale = append(stale, name)
		}
		sort.Strings(stale)
		for _, name := range stale {
			bad(byStatement[name].Type, "", name, "the table lists this statement but gonja no longer registers it")
		}
	}
	return errs
}

// directField finds a field declared in t itself (an embedded struct's
// field is listed under that struct's own entry).
func directField(t reflect.Type, name string) (reflect.StructField, bool) {
	for i := 0; i < t.NumField(); i++ {
		if f := t.Field(i); f.Name == name {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

// carriesNodes reports whether a value of type t may hold gonja AST nodes:
// t implements nodes.Node, is an interface (whose dynamic value may be a
// node), or contains such a type as a pointer, slice, array, map or channel
// element, map key or struct field. Functions are opaque and do not count.
func carriesNodes(t reflect.Type, visiting map[reflect.Type]bool) bool {
	if t.Implements(tNode) || t.Kind() == reflect.Interface {
		return true
	}
	if visiting[t] {
		return false
	}
	visiting[t] = true
	switch t.Kind() {
	case reflect.Pointer, reflect.Slice, reflect.Array, reflect.Chan:
		return carriesNodes(t.Elem(), visiting)
	case reflect.Map:
		return carriesNodes(t.Key(), visiting) || carriesNodes(t.Elem(), visiting)
	case reflect.Struct:
		for i := 0; i < t.NumField(); i++ {
			if carriesNodes(t.Field(i).Type, visiting) {
				return true
			}
		}
	}
	return false
}

// registeredStatements lists the statement names of set. gonja offers only
// Exists/Get by name, so the names are read from its unexported map (by
// reflection, read-only) and cross-checked with Exists.
func registeredStatements(set *exec.ControlStructureSet) ([]string, error) {
	v := reflect.ValueOf(set).Elem()
	sf, ok := directField(v.Type(), "statements")
	if !ok || sf.Type != typeOf[map[string]parser.ControlStructureParser]() {
		return nil, errors.New("cannot enumerate the registered statements")
	}
	var names []string
	for _, k := range v.FieldByIndex(sf.Index).MapKeys() {
		if !set.Exists(k.String()) {
			return nil, fmt.Errorf("statement %q read from the map is not registered", k.String())
		}
		names = append(names, k.String())
	}
	sort.Strings(names)
	return names, nil
}

// shapeLoader serves src as the root template and an empty template for
// any other name (extends loads its parent while parsing).
type shapeLoader struct{ src string }

func (l shapeLoader) Read(path string) (io.Reader, error) {
	if path == rootName {
		return strings.NewReader(l.src), nil
	}
	return strings.NewReader(""), nil
}
func (l shapeLoader) Resolve(path string) (string, error)    { return path, nil }
func (l shapeLoader) Inherit(string) (loaders.Loader, error) { return l, nil }

// sampleStatementType parses src with all of gonja's statements and
// returns the type of the first top-level statement, which must be name.
func sampleStatementType(name, src string) (t reflect.Type, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("gonja panicked: %v", r)
		}
	}()
	env := &exec.Environment{
		Context:           exec.EmptyContext(),
		Filters:           builtins.Filters,
		Tests:             builtins.Tests,
		ControlStructures: controlStructures.All,
		Methods:           builtins.Methods,
	}
	gt, err := exec.NewTemplate(rootName, config.New(), shapeLoader{src}, env)
	if err != nil {
		return nil, err
	}
	for _, n := range gt.Root().Nodes {
		if b, ok := n.(*nodes.ControlStructureBlock); ok {
			if b.Name != name || b.ControlStructure == nil {
				return nil, fmt.Errorf("parsed as statement %q", b.Name)
			}
			return reflect.TypeOf(b.ControlStructure), nil
		}
	}
	return nil, errors.New("no statement in the parsed template")
}
