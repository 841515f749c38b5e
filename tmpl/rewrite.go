package tmpl

import (
	"fmt"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"unsafe"

	"github.com/nikolalohinski/gonja/v2/exec"
	"github.com/nikolalohinski/gonja/v2/nodes"
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
	env *exec.Context
	n   int
	err error
}

type slotMode int

const (
	modeValue  slotMode = iota // may yield undefined (set, with, macro defaults)
	modeStrict                 // undefined is an error (for iterable, call args)
	modeBool                   // Python truthiness, undefined is false
	modePrint                  // str() of the value, undefined is an error
	modeIter                   // strict, and charges the loop length to the step budget
)

func (rw *rewriter) template(t *nodes.Template) error {
	seen := map[uintptr]bool{}
	rw.nodeList(t.Nodes, seen)
	for _, m := range t.Macros {
		rw.walkPtr(reflect.ValueOf(m), seen)
	}
	return rw.err
}

func (rw *rewriter) nodeList(list []nodes.Node, seen map[uintptr]bool) {
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
			rw.walkPtr(reflect.ValueOf(n.ControlStructure), seen)
		case *nodes.Wrapper:
			rw.walkPtr(reflect.ValueOf(n), seen)
		}
	}
}

var (
	typeExpr      = reflect.TypeFor[nodes.Expression]()
	typeNode      = reflect.TypeFor[nodes.Node]()
	typeExprList  = reflect.TypeFor[[]nodes.Expression]()
	typeExprMap   = reflect.TypeFor[map[string]nodes.Expression]()
	typeWrapper   = reflect.TypeFor[*nodes.Wrapper]()
	typeWrappers  = reflect.TypeFor[[]*nodes.Wrapper]()
	typeFilters   = reflect.TypeFor[[]*nodes.FilterCall]()
	typeMacro     = reflect.TypeFor[*nodes.Macro]()
	typePairs     = reflect.TypeFor[[]*nodes.Pair]()
	typeNodeSlice = reflect.TypeFor[[]nodes.Node]()
)

// field returns a settable view of a struct field; gonja keeps the
// expressions of several statements (set, with, filter) in unexported fields
// and we must rewrite them without patching gonja.
func field(f reflect.Value) reflect.Value {
	if f.CanSet() {
		return f
	}
	return reflect.NewAt(f.Type(), unsafe.Pointer(f.UnsafeAddr())).Elem()
}

// walkPtr rewrites the expression slots of a control structure (or wrapper,
// macro) of any type by reflection, so every gonja statement is covered.
func (rw *rewriter) walkPtr(p reflect.Value, seen map[uintptr]bool) {
	if p.Kind() != reflect.Pointer || p.IsNil() || p.Elem().Kind() != reflect.Struct {
		return
	}
	if seen[p.Pointer()] {
		return
	}
	seen[p.Pointer()] = true
	s := p.Elem()
	if w, ok := p.Interface().(*nodes.Wrapper); ok {
		rw.nodeList(w.Nodes, seen)
		return
	}
	typeName := s.Type().Name()
	for i := 0; i < s.NumField(); i++ {
		sf := s.Type().Field(i)
		f := field(s.Field(i))
		mode := modeValue
		switch {
		case typeName == "SetControlStructure" && sf.Name == "target":
			continue // assignment target, evaluated by gonja's set itself
		case typeName == "ForControlStructure" && sf.Name == "ObjectEvaluator":
			mode = modeIter
		case sf.Name == "IfCondition" || sf.Name == "condition" || sf.Name == "Conditions":
			mode = modeBool
		}
		switch f.Type() {
		case typeExpr, typeNode:
			if !f.IsNil() {
				if isExpression(f.Interface().(nodes.Node)) {
					f.Set(reflect.ValueOf(rw.slot(f.Interface().(nodes.Node), mode)))
				} else {
					rw.walkPtr(reflect.ValueOf(f.Interface()), seen)
				}
			}
		case typeExprList:
			for j := 0; j < f.Len(); j++ {
				if x := f.Index(j); !x.IsNil() {
					x.Set(reflect.ValueOf(rw.slot(x.Interface().(nodes.Node), mode)))
				}
			}
		case typeExprMap:
			for _, k := range f.MapKeys() {
				if x := f.MapIndex(k); !x.IsNil() {
					f.SetMapIndex(k, reflect.ValueOf(rw.slot(x.Interface().(nodes.Node), mode)))
				}
			}
		case typeWrapper, typeMacro:
			rw.walkPtr(f, seen)
		case typeWrappers:
			for j := 0; j < f.Len(); j++ {
				rw.walkPtr(f.Index(j), seen)
			}
		case typeNodeSlice:
			rw.nodeList(f.Interface().([]nodes.Node), seen)
		case typePairs: // macro parameters: keep names, rewrite defaults
			for _, p := range f.Interface().([]*nodes.Pair) {
				if p != nil && p.Value != nil {
					p.Value = rw.slot(p.Value, modeValue)
				}
			}
		case typeFilters: // {% filter %} block
			for _, fc := range f.Interface().([]*nodes.FilterCall) {
				rw.checkFilter(fc)
				for j, a := range fc.Args {
					fc.Args[j] = rw.slot(a, modeStrict)
				}
				for k, a := range fc.Kwargs {
					fc.Kwargs[k] = rw.slot(a, modeStrict)
				}
			}
		}
	}
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
		inner := strictFn(fn, "")
		fn = func(e *exec.Evaluator) *exec.Value {
			v := inner(e)
			if st := stateOf(e); st != nil && !v.IsError() && (v.IsList() || v.IsDict() || v.IsString()) {
				st.steps += v.Len()
				if st.steps > maxSteps {
					return exec.AsValue(st.fail(0, 0, "template evaluation exceeded %d steps", maxSteps))
				}
			}
			return v
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
	rw.env.Set(name, func(e *exec.Evaluator, _ *exec.VarArgs) *exec.Value {
		if st := stateOf(e); st != nil {
			st.steps++
			if st.steps > maxSteps {
				return exec.AsValue(st.fail(0, 0, "template evaluation exceeded %d steps", maxSteps))
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
}

// undefinedBox carries an undefined value through gonja statements that
// refuse error values; reading it back yields the undefined again.
type undefinedBox struct{ u *undefined }

// maxSteps bounds the work of one render so a hostile or buggy template
// cannot loop for hours.
const maxSteps = 1_000_000

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
	line, col := tokPos(pos)
	msg := cleanMsg(v.Error())
	if what != "" {
		msg = what + ": " + msg
	}
	return exec.AsValue(stateOf(e).fail(line, col, "%s", msg))
}
