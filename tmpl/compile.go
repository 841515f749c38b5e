package tmpl

import (
	"math/big"
	"reflect"
	"strconv"
	"strings"

	"github.com/nikolalohinski/gonja/v2/exec"
	"github.com/nikolalohinski/gonja/v2/nodes"
	"github.com/nikolalohinski/gonja/v2/tokens"
)

// compile turns an expression node into a closure. Node kinds whose gonja
// semantics differ from Jinja2 in ways Occopus templates notice are
// implemented here; the rest are delegated to gonja after their children
// have been rewritten.
func (rw *rewriter) compile(n nodes.Node) evalFn {
	switch n := n.(type) {
	case *nodes.None:
		return func(*exec.Evaluator) *exec.Value { return exec.AsValue(nil) }
	case *nodes.String:
		s := n.Val
		return func(*exec.Evaluator) *exec.Value { return exec.AsValue(s) }
	case *nodes.Integer:
		i := n.Val
		return func(*exec.Evaluator) *exec.Value { return exec.AsValue(i) }
	case *nodes.Float:
		f := n.Val
		return func(*exec.Evaluator) *exec.Value { return exec.AsValue(f) }
	case *nodes.Bool:
		b := n.Val
		return func(*exec.Evaluator) *exec.Value { return exec.AsValue(b) }
	case *nodes.Name:
		if i, ok := placeholderIndex(n); ok && i < len(rw.placeholders) {
			return rw.compile(rw.placeholders[i])
		}
		return compileName(n)
	case *condExpr:
		return rw.compileCondExpr(n)
	case *compareExpr:
		return rw.compileCompare(n)
	case *sliceExpr:
		return rw.compileSlice(n)
	case *unpackIter:
		return rw.compileUnpack(n)
	case *dictCall:
		return rw.compileDictCall(n)
	case *bigLit:
		v := n.v
		return func(*exec.Evaluator) *exec.Value { return exec.AsValue(new(big.Int).Set(v)) }
	case *nodes.GetAttribute:
		return rw.compileGetAttr(n)
	case *nodes.GetItem:
		return rw.compileGetItem(n)
	case *nodes.Call:
		return rw.compileCall(n)
	case *nodes.FilteredExpression:
		return rw.compileFiltered(n)
	case *nodes.TestExpression:
		return rw.compileTest(n)
	case *nodes.BinaryExpression:
		return rw.compileBinary(n)
	case *nodes.Negation:
		term := rw.compile(n.Term)
		return func(e *exec.Evaluator) *exec.Value {
			v := term(e)
			if asUndefined(v) != nil {
				return exec.AsValue(true)
			}
			if v.IsError() {
				return v
			}
			return exec.AsValue(!truthy(v))
		}
	case *nodes.List:
		return rw.compileList(n.Val)
	case *nodes.Tuple:
		list := rw.compileList(n.Val)
		return func(e *exec.Evaluator) *exec.Value {
			v := list(e)
			if l, ok := v.Interface().([]any); ok {
				return exec.AsValue(pyTuple(l))
			}
			return v
		}
	case *nodes.Dict:
		return rw.compileDict(n)
	case *nodes.GetSlice:
		n.Node = rw.slot(n.Node, modeStrict)
		for _, p := range []*nodes.Node{&n.Start, &n.End, &n.Step} {
			if *p != nil {
				*p = rw.slot(*p, modeStrict)
			}
		}
		return delegate(n)
	case *nodes.UnaryExpression:
		return rw.compileUnary(n)
	}
	return delegate(n)
}

// unbox turns a stored undefined back into an undefined value.
func unbox(v *exec.Value) *exec.Value {
	if v.Val.IsValid() && v.Val.Type() == reflect.TypeFor[*undefinedBox]() {
		return exec.AsValue(v.Val.Interface().(*undefinedBox).u)
	}
	return v
}

// delegate evaluates n with gonja, positioning its errors.
func delegate(n nodes.Node) evalFn {
	pos := n.Position()
	return func(e *exec.Evaluator) *exec.Value {
		v := e.Eval(n)
		if v.IsError() {
			return foreign(e, v, pos, "")
		}
		return v
	}
}

func compileName(n *nodes.Name) evalFn {
	name := n.Name.Val
	line, col := tokPos(n.Name)
	return func(e *exec.Evaluator) *exec.Value {
		v, ok := e.Environment.Context.Get(name)
		if !ok {
			return exec.AsValue(&undefined{name: name, line: line, col: col})
		}
		return unbox(exec.ToValue(v))
	}
}

// attrLookup implements Jinja2's getattr (attribute first, then item) and
// getitem (item first, then attribute) on gonja values.
func attrLookup(obj *exec.Value, key any, itemFirst bool) (*exec.Value, bool) {
	if obj.IsNil() {
		return nil, false
	}
	if i, ok := key.(int); ok {
		if obj.IsList() || obj.IsString() {
			n := obj.Len()
			if i < 0 {
				i += n
			}
			if i < 0 || i >= n {
				return nil, false
			}
			return obj.Index(i), true
		}
		v, found := obj.GetItem(i)
		if found && !v.IsError() {
			return v, true
		}
		return nil, false
	}
	s, _ := key.(string)
	if g, ok := obj.Interface().(groupTuple); ok && len(g) == 2 && (s == "grouper" || s == "list") {
		return exec.ToValue(g[map[string]int{"grouper": 0, "list": 1}[s]]), true
	}
	tryAttr := func() (*exec.Value, bool) {
		if obj.IsDict() || obj.IsString() || obj.IsList() {
			return nil, false // Python dicts have no data attributes
		}
		v, found := obj.GetAttribute(s)
		if found && !v.IsError() {
			return v, true
		}
		return nil, false
	}
	tryItem := func() (*exec.Value, bool) {
		if obj.IsString() || obj.IsList() {
			return nil, false
		}
		v, found := obj.GetItem(s)
		if found && !v.IsError() {
			return v, true
		}
		return nil, false
	}
	if itemFirst {
		if v, ok := tryItem(); ok {
			return v, true
		}
		return tryAttr()
	}
	if v, ok := tryAttr(); ok {
		return v, true
	}
	return tryItem()
}

// receiver evaluates the object of an attribute/item access: an undefined
// object is an error (as in Jinja2), the value is returned otherwise.
func receiver(e *exec.Evaluator, fn evalFn) *exec.Value {
	v := fn(e)
	if u := asUndefined(v); u != nil {
		return exec.AsValue(stateOf(e).failUndef(u, ""))
	}
	return v
}

func (rw *rewriter) compileGetAttr(n *nodes.GetAttribute) evalFn {
	obj := rw.compile(n.Node)
	text := exprString(n)
	line, col := tokPos(exprStart(n))
	var key any = n.Attribute
	if n.Attribute == "" {
		key = n.Index
	}
	return func(e *exec.Evaluator) *exec.Value {
		o := receiver(e, obj)
		if o.IsError() {
			return o
		}
		if s, ok := key.(string); ok {
			if v, ok := loopItem(e, o, s); ok {
				if u := asUndefined(v); u != nil {
					u.line, u.col = line, col
				}
				return v
			}
		}
		if v, ok := attrLookup(o, key, false); ok {
			return v
		}
		return exec.AsValue(&undefined{name: text, line: line, col: col})
	}
}

func (rw *rewriter) compileGetItem(n *nodes.GetItem) evalFn {
	obj := rw.compile(n.Node)
	text := exprString(n)
	line, col := tokPos(exprStart(n))
	var arg evalFn
	if n.Arg != nil {
		arg = strictFn(rw.compile(n.Arg), "")
	}
	return func(e *exec.Evaluator) *exec.Value {
		o := receiver(e, obj)
		if o.IsError() {
			return o
		}
		if arg == nil {
			return exec.AsValue(&undefined{name: text, line: line, col: col})
		}
		k := arg(e)
		if k.IsError() {
			return k
		}
		var key any
		switch x := plain(k).(type) {
		case string:
			key = x
		case int64:
			key = int(x)
		case bool:
			key = map[bool]int{false: 0, true: 1}[x]
		default:
			key = nil
		}
		if key != nil {
			if v, ok := attrLookup(o, key, true); ok {
				return v
			}
		}
		return exec.AsValue(&undefined{name: text, line: line, col: col})
	}
}

func (rw *rewriter) compileCall(n *nodes.Call) evalFn {
	where := "in " + exprString(n)
	arg := func(a nodes.Expression) evalFn { return strictFn(rw.compile(a), where) }
	isMacro := false
	if f, ok := n.Func.(*nodes.Name); ok && rw.macros[f.Name.Val] {
		isMacro = true
		// A macro gets undefined arguments as they are (Jinja2 passes
		// Undefined); a box gets them through gonja's call.
		arg = func(a nodes.Expression) evalFn {
			fn := rw.compile(a)
			return func(e *exec.Evaluator) *exec.Value {
				v := fn(e)
				if u := asUndefined(v); u != nil {
					return exec.AsValue(&undefinedBox{u})
				}
				return v
			}
		}
	}
	for i, a := range n.Args {
		n.Args[i] = rw.register(arg(a), a.Position())
	}
	for k, a := range n.Kwargs {
		n.Kwargs[k] = rw.register(arg(a), a.Position())
	}
	var (
		fnName    string // function called by name: must be defined
		recvName  string // method receiver kept as a plain name
		recvToken *tokens.Token
	)
	switch f := n.Func.(type) {
	case *nodes.Name:
		fnName = f.Name.Val
	case *nodes.GetAttribute:
		if nm, ok := f.Node.(*nodes.Name); ok {
			// Keep the name so gonja can write back list.append() & co.
			recvName, recvToken = nm.Name.Val, nm.Name
		} else {
			f.Node = rw.slot(f.Node, modeStrict)
			if n.Parent != nil {
				n.Parent = f.Node
			}
		}
	case *nodes.GetItem:
		f.Node = rw.slot(f.Node, modeStrict)
		if f.Arg != nil {
			f.Arg = rw.slot(f.Arg, modeStrict)
		}
		if n.Parent != nil {
			n.Parent = f.Node
		}
	default:
		n.Func = rw.slot(n.Func, modeStrict)
	}
	pos := n.Func.Position()
	line, col := tokPos(pos)
	// dict.items() & co. are called here: gonja first converts the dict
	// to a Go map, which loses a literal's order and fails on undefined
	// values inside.
	var dictMeth exec.Method[map[string]any]
	var recvNode nodes.Node
	method := ""
	if f, ok := n.Func.(*nodes.GetAttribute); ok {
		recvNode, method = f.Node, f.Attribute
		if dictReadMethods[f.Attribute] {
			dictMeth, _ = methodSet.Dict.Get(f.Attribute)
		}
	}
	return func(e *exec.Evaluator) *exec.Value {
		if fnName != "" && !e.Environment.Context.Has(fnName) {
			return exec.AsValue(stateOf(e).fail(line, col, "%q is undefined", fnName))
		}
		if recvName != "" && !e.Environment.Context.Has(recvName) {
			l, c := tokPos(recvToken)
			return exec.AsValue(stateOf(e).fail(l, c, "%q is undefined", recvName))
		}
		if st := stateOf(e); isMacro && st != nil {
			st.macros++
			defer func() { st.macros-- }()
			if st.macros > maxMacroDepth {
				return exec.AsValue(st.fail(line, col, "macro calls nested more than %d deep (a macro calling itself?)", maxMacroDepth))
			}
		}
		if method != "" && (dictMeth != nil || recvName == "") {
			// Evaluated once: gonja's call evaluates the receiver of a
			// method twice (its attribute, then the method's object).
			recv := e.Eval(recvNode)
			if recv.IsError() {
				return foreign(e, recv, pos, "")
			}
			if _, ok := dictPairs(recv); ok && dictMeth != nil {
				return callDictMethod(e, dictMeth, recv, n, pos)
			}
			if recvName == "" {
				if a, found := recv.GetAttribute(method); !found || !a.IsCallable() {
					return callMethod(e, recv, method, n, pos)
				}
			}
		}
		if method != "" && recvName != "" {
			// A name holding Markup: its string methods return Markup
			// (none of them changes the receiver, so nothing is written back).
			if m, ok := e.Environment.Context.Get(recvName); ok {
				if mv := exec.ToValue(m); isMarkupValue(mv) {
					return callMethod(e, mv, method, n, pos)
				}
			}
		}
		v := e.Eval(n)
		if v.IsError() {
			return foreign(e, v, pos, "")
		}
		return v
	}
}

func isMarkupValue(v *exec.Value) bool {
	_, ok := v.Interface().(pyMarkup)
	return ok
}

type compiledFilter struct {
	name   string
	pos    *tokens.Token
	args   []evalFn
	kwargs map[string]evalFn
}

func (rw *rewriter) checkFilter(fc *nodes.FilterCall) {
	if rw.err == nil && !filterSet.Exists(fc.Name) {
		l, c := tokPos(fc.Token)
		rw.err = &SyntaxError{Line: l, Col: c, Msg: "no filter named " + strconv.Quote(fc.Name)}
	}
}

// argMode says which undefined arguments a filter or test accepts.
type argMode int

const (
	argsStrict     argMode = iota // none: an undefined argument is an error
	argsAny                       // all: default's fallback only matters when used
	argsPlainUndef                // Jinja2's plain Undefined (inline if without else)
)

// filterArgMode is default's argsAny, and argsPlainUndef for format, whose
// %-formatting gives the plain Undefined's str() ("") and repr()
// ("Undefined") as the % operator does.
func filterArgMode(name string) argMode {
	switch name {
	case "default", "d":
		return argsAny
	case "format":
		return argsPlainUndef
	}
	return argsStrict
}

// compileArgs compiles the arguments of a filter or test, refusing the
// undefined values mode does not accept.
func (rw *rewriter) compileArgs(args []nodes.Expression, kwargs map[string]nodes.Expression, where string, mode argMode) ([]evalFn, map[string]evalFn) {
	wrap := func(fn evalFn) evalFn {
		switch mode {
		case argsAny:
			return fn
		case argsPlainUndef:
			return func(e *exec.Evaluator) *exec.Value {
				v := fn(e)
				if u := asUndefined(v); u != nil && !u.lenient {
					return exec.AsValue(stateOf(e).failUndef(u, where))
				}
				return v
			}
		}
		return strictFn(fn, where)
	}
	var a []evalFn
	for _, x := range args {
		a = append(a, wrap(rw.compile(x)))
	}
	k := map[string]evalFn{}
	for name, x := range kwargs {
		k[name] = wrap(rw.compile(x))
	}
	return a, k
}

func evalArgs(e *exec.Evaluator, args []evalFn, kwargs map[string]evalFn) (*exec.VarArgs, *exec.Value) {
	// Arguments compiled lenient (default's) may be undefined values;
	// every other error stops the call.
	params := exec.NewVarArgs()
	for _, a := range args {
		v := a(e)
		if v.IsError() && asUndefined(v) == nil {
			return nil, v
		}
		params.Args = append(params.Args, v)
	}
	for k, a := range kwargs {
		v := a(e)
		if v.IsError() && asUndefined(v) == nil {
			return nil, v
		}
		params.KwArgs[k] = v
	}
	return params, nil
}

func (rw *rewriter) compileFiltered(n *nodes.FilteredExpression) evalFn {
	in := rw.compile(n.Expression)
	var filters []compiledFilter
	for _, fc := range n.Filters {
		rw.checkFilter(fc)
		a, k := rw.compileArgs(fc.Args, fc.Kwargs, "in filter "+fc.Name, filterArgMode(fc.Name))
		filters = append(filters, compiledFilter{name: fc.Name, pos: fc.Token, args: a, kwargs: k})
	}
	return func(e *exec.Evaluator) *exec.Value {
		v := in(e)
		for _, f := range filters {
			isDefault := f.name == "default" || f.name == "d"
			if u := asUndefined(v); u != nil && !isDefault && !takesUndefined[f.name] {
				if !u.lenient || lenientFails[f.name] {
					return exec.AsValue(stateOf(e).failUndef(u, ""))
				}
				if f.name == "truncate" {
					continue // len(Undefined) is 0: truncate returns it as is
				}
				v = exec.AsValue("") // what Jinja2's filters make of Undefined
			}
			if v.IsError() && asUndefined(v) == nil {
				return v
			}
			params, errv := evalArgs(e, f.args, f.kwargs)
			if errv != nil {
				return errv
			}
			if isDefault {
				v = applyDefault(v, params)
				if v.IsError() {
					return foreign(e, v, f.pos, "filter "+f.name)
				}
				continue
			}
			// Called directly: ExecuteFilterByName flattens every error
			// (and so our undefined values) into a string.
			fn, ok := e.Environment.Filters.Get(f.name)
			if !ok {
				l, c := tokPos(f.pos)
				return exec.AsValue(stateOf(e).fail(l, c, "no filter named %q", f.name))
			}
			res := fn(e, v, params)
			if u := asUndefined(res); u != nil && u.line == 0 {
				u.line, u.col = tokPos(f.pos)
			}
			if res.IsError() && asUndefined(res) == nil {
				return foreign(e, res, f.pos, "filter "+f.name)
			}
			v = res
		}
		return v
	}
}

// applyDefault is Jinja2's default(value=”, boolean=False): only undefined
// (not None) is replaced unless boolean is true.
func applyDefault(v *exec.Value, params *exec.VarArgs) *exec.Value {
	def := exec.AsValue("")
	boolean := false
	if len(params.Args) > 0 {
		def = params.Args[0]
	}
	if len(params.Args) > 1 {
		boolean = truthy(params.Args[1])
	}
	if len(params.Args) > 2 {
		return exec.AsValue(errorf("default() takes at most 2 arguments"))
	}
	for k, x := range params.KwArgs {
		switch k {
		case "default_value", "value":
			def = x
		case "boolean":
			boolean = truthy(x)
		default:
			return exec.AsValue(errorf("default() got an unexpected keyword argument %q", k))
		}
	}
	if asUndefined(v) != nil || (boolean && !truthy(v)) {
		return def
	}
	return v
}

func (rw *rewriter) compileTest(n *nodes.TestExpression) evalFn {
	in := rw.compile(n.Expression)
	tc := n.Test
	if rw.err == nil && !testSet.Exists(tc.Name) {
		l, c := tokPos(tc.Token)
		rw.err = &SyntaxError{Line: l, Col: c, Msg: "no test named " + strconv.Quote(tc.Name)}
	}
	args, kwargs := rw.compileArgs(tc.Args, tc.Kwargs, "in test "+tc.Name, argsStrict)
	name := tc.Name
	return func(e *exec.Evaluator) *exec.Value {
		v := in(e)
		u := asUndefined(v)
		if u == nil && v.IsError() {
			return v
		}
		// Jinja2 evaluates the arguments before the test looks at the value.
		params, errv := evalArgs(e, args, kwargs)
		if errv != nil {
			return errv
		}
		switch name {
		case "defined", "undefined":
			if len(args)+len(kwargs) > 0 {
				l, c := tokPos(tc.Token)
				return exec.AsValue(stateOf(e).fail(l, c, "test_%s() takes 1 positional argument but %d were given", name, 1+len(args)+len(kwargs)))
			}
			return exec.AsValue((u == nil) == (name == "defined"))
		case "callable":
			if u != nil {
				return exec.AsValue(true) // Jinja2's Undefined defines __call__
			}
		}
		if u != nil && undefinedIsFalse[name] {
			return exec.AsValue(false)
		}
		if u != nil {
			return exec.AsValue(stateOf(e).failUndef(u, ""))
		}
		res := e.ExecuteTestByName(name, v, params)
		if res.IsError() {
			return foreign(e, res, tc.Token, "test "+name)
		}
		return res
	}
}

func (rw *rewriter) compileBinary(n *nodes.BinaryExpression) evalFn {
	left, right := rw.compile(n.Left), rw.compile(n.Right)
	op := n.Operator.Token
	line, col := tokPos(op)
	switch op.Type {
	case tokens.And, tokens.Or:
		isAnd := op.Type == tokens.And
		return func(e *exec.Evaluator) *exec.Value {
			l := left(e)
			if l.IsError() && asUndefined(l) == nil {
				return l
			}
			if truthy(l) != isAnd {
				return l
			}
			return right(e)
		}
	case tokens.Tilde:
		// str() of each side; a lenient undefined is "".
		return func(e *exec.Evaluator) *exec.Value {
			l := operand(e, left)
			if isLenient(l) {
				l = exec.AsValue("")
			} else if l.IsError() {
				return l
			}
			r := operand(e, right)
			if isLenient(r) {
				r = exec.AsValue("")
			} else if r.IsError() {
				return r
			}
			res, err := binop(op, l, r)
			if err != nil {
				return exec.AsValue(stateOf(e).fail(line, col, "%s", err))
			}
			return exec.AsValue(res)
		}
	}
	lenientRight := op.Type == tokens.Modulo // "%r" % undefined is "Undefined"
	left = strictFn(left, "")
	if !lenientRight {
		right = strictFn(right, "")
	}
	if op.Type == tokens.Power && isConstExpr(n.Left) && !isConstExpr(n.Right) {
		return func(e *exec.Evaluator) *exec.Value {
			l := left(e)
			if l.IsError() {
				return l
			}
			r := right(e)
			if r.IsError() {
				return r
			}
			res, err := powNegConst(op, l, r)
			if err != nil {
				return exec.AsValue(stateOf(e).fail(line, col, "%s", err))
			}
			return exec.AsValue(res)
		}
	}
	return func(e *exec.Evaluator) *exec.Value {
		l := left(e)
		if l.IsError() {
			return l
		}
		if lenientRight {
			r := right(e)
			if u := asUndefined(r); u != nil {
				if _, isStr := plain(l).(string); !isStr {
					return exec.AsValue(stateOf(e).failUndef(u, ""))
				}
			} else if r.IsError() {
				return r
			}
			res, err := binop(op, l, r)
			if err != nil {
				return exec.AsValue(stateOf(e).fail(line, col, "%s", err))
			}
			return exec.AsValue(res)
		}
		if l.IsError() {
			return l
		}
		r := right(e)
		if r.IsError() {
			return r
		}
		res, err := binop(op, l, r)
		if err != nil {
			return exec.AsValue(stateOf(e).fail(line, col, "%s", err))
		}
		return exec.AsValue(res)
	}
}

func (rw *rewriter) compileList(items []nodes.Expression) evalFn {
	var fns []evalFn
	for _, x := range items {
		fns = append(fns, rw.compile(x)) // Jinja2 keeps undefined in literals
	}
	return func(e *exec.Evaluator) *exec.Value {
		out := make([]any, 0, len(fns))
		for _, f := range fns {
			v := f(e)
			if v.IsError() && asUndefined(v) == nil {
				return v
			}
			out = append(out, v.Interface())
		}
		return exec.AsValue(out)
	}
}

func (rw *rewriter) compileDict(n *nodes.Dict) evalFn {
	type kv struct{ k, v evalFn }
	var pairs []kv
	for _, p := range n.Pairs {
		// Values may be undefined (Jinja2 keeps them); keys are hashed.
		pairs = append(pairs, kv{strictFn(rw.compile(p.Key), ""), rw.compile(p.Value)})
	}
	return func(e *exec.Evaluator) *exec.Value {
		d := exec.NewDict()
		for _, p := range pairs {
			k := p.k(e)
			if k.IsError() {
				return k
			}
			v := p.v(e)
			if v.IsError() && asUndefined(v) == nil {
				return v
			}
			replaced := false
			for _, old := range d.Pairs {
				if pyEqual(plain(old.Key), plain(k)) {
					old.Value, replaced = v, true
				}
			}
			if !replaced {
				d.Pairs = append(d.Pairs, &exec.Pair{Key: k, Value: v})
			}
		}
		return exec.AsValue(d)
	}
}

// exprStart is the first token of an access chain, where messages point.
func exprStart(n nodes.Node) *tokens.Token {
	for {
		switch x := n.(type) {
		case *nodes.GetAttribute:
			n = x.Node
		case *nodes.GetItem:
			n = x.Node
		case *nodes.GetSlice:
			n = x.Node
		case *sliceExpr:
			n = x.node
		case *nodes.Call:
			n = x.Func
		default:
			return n.Position()
		}
	}
}

// exprString renders an expression back to source-like text for messages.
func exprString(n nodes.Node) string {
	switch n := n.(type) {
	case *nodes.Name:
		return n.Name.Val
	case *nodes.GetAttribute:
		if n.Attribute == "" {
			return exprString(n.Node) + "." + strconv.Itoa(n.Index)
		}
		return exprString(n.Node) + "." + n.Attribute
	case *nodes.GetItem:
		if n.Arg == nil {
			return exprString(n.Node) + "[]"
		}
		return exprString(n.Node) + "[" + exprString(n.Arg) + "]"
	case *nodes.String:
		return pyQuote(n.Val)
	case *nodes.Integer:
		return strconv.Itoa(n.Val)
	case *nodes.Float:
		return pyFloat(n.Val)
	case *nodes.Bool:
		return Python(n.Val)
	case *nodes.None:
		return "None"
	case *nodes.Call:
		var args []string
		for _, a := range n.Args {
			args = append(args, exprString(a))
		}
		for k, a := range n.Kwargs {
			args = append(args, k+"="+exprString(a))
		}
		return exprString(n.Func) + "(" + strings.Join(args, ", ") + ")"
	case *nodes.FilteredExpression:
		s := exprString(n.Expression)
		for _, f := range n.Filters {
			s += "|" + f.Name
		}
		return s
	case *bigLit:
		return n.v.String()
	case *nodes.UnaryExpression:
		return n.Operator.Val + exprString(n.Term)
	case *sliceExpr:
		part := func(x nodes.Expression) string {
			if x == nil {
				return ""
			}
			return exprString(x)
		}
		s := exprString(n.node) + "[" + part(n.start) + ":" + part(n.stop)
		if n.step != nil {
			s += ":" + part(n.step)
		}
		return s + "]"
	}
	return "…"
}

var dictReadMethods = map[string]bool{"items": true, "keys": true, "values": true, "get": true}

func callArgs(e *exec.Evaluator, n *nodes.Call) (*exec.VarArgs, *exec.Value) {
	va := exec.NewVarArgs()
	for _, a := range n.Args {
		v := e.Eval(a)
		if v.IsError() {
			return nil, v
		}
		va.Args = append(va.Args, v)
	}
	for k, a := range n.Kwargs {
		v := e.Eval(a)
		if v.IsError() {
			return nil, v
		}
		va.KwArgs[k] = v
	}
	return va, nil
}

// callMethod calls a Python method of a value (str.upper, list.index, ...)
// from methodSet, as gonja's evalMethod does but without evaluating the
// receiver again.
func callMethod(e *exec.Evaluator, recv *exec.Value, name string, n *nodes.Call, pos *tokens.Token) *exec.Value {
	va, errv := callArgs(e, n)
	if errv != nil {
		return errv
	}
	var res any
	var err error
	found := false
	switch {
	case recv.IsString():
		if m, ok := methodSet.Str.Get(name); ok {
			found = true
			res, err = m(recv.String(), recv, va)
		}
	case recv.IsBool():
		if m, ok := methodSet.Bool.Get(name); ok {
			found = true
			res, err = m(recv.Bool(), recv, va)
		}
	case recv.IsFloat():
		if m, ok := methodSet.Float.Get(name); ok {
			found = true
			res, err = m(recv.Float(), recv, va)
		}
	case recv.IsInteger():
		if m, ok := methodSet.Int.Get(name); ok {
			found = true
			res, err = m(recv.Integer(), recv, va)
		}
	case recv.IsDict():
		if m, ok := methodSet.Dict.Get(name); ok {
			found = true
			d, _ := recv.ToGoSimpleType(false).(map[string]any)
			res, err = m(d, recv, va)
		}
	case recv.IsList():
		if m, ok := methodSet.List.Get(name); ok {
			found = true
			l, _ := recv.ToGoSimpleType(false).([]any)
			res, err = m(l, recv, va)
		}
	}
	line, col := tokPos(pos)
	if !found {
		return exec.AsValue(stateOf(e).fail(line, col, "'%s' object has no attribute %s", pyTypeName(recv), pyQuote(name)))
	}
	if err != nil {
		return exec.AsValue(stateOf(e).fail(line, col, "%s", cleanMsg(err.Error())))
	}
	if _, ok := recv.Interface().(pyMarkup); ok {
		// Markup's string methods return Markup (and lists of it).
		switch t := raw(res).(type) {
		case string:
			return exec.AsValue(pyMarkup(t))
		case []any:
			out := make([]any, len(t))
			for i, x := range t {
				if s, ok := x.(string); ok {
					x = pyMarkup(s)
				}
				out[i] = x
			}
			return exec.AsValue(out)
		}
	}
	return exec.ToValue(raw(res))
}

func callDictMethod(e *exec.Evaluator, m exec.Method[map[string]any], recv *exec.Value, n *nodes.Call, pos *tokens.Token) *exec.Value {
	va, errv := callArgs(e, n)
	if errv != nil {
		return errv
	}
	res, err := m(nil, recv, va)
	if err != nil {
		line, col := tokPos(pos)
		return exec.AsValue(stateOf(e).fail(line, col, "%s", err))
	}
	return exec.ToValue(res)
}

// takesUndefined are the filters Jinja2 gives an undefined value to
// without failing: items and the select/map family yield nothing, pprint
// prints "Undefined".
var takesUndefined = map[string]bool{"pprint": true, "items": true, "map": true, "select": true, "reject": true, "selectattr": true, "rejectattr": true}

// lenientFails are the filters that fail even on Jinja2's plain Undefined
// (an inline if without else): they add to it, encode or serialise it.
var lenientFails = map[string]bool{"indent": true, "tojson": true, "b64encode": true, "b64decode": true,
	"int": true, "float": true, "round": true, "abs": true, "filesizeformat": true}
