package tmpl

import (
	"errors"
	"fmt"
	"math"
	"math/big"
	"reflect"
	"sort"
	"strconv"
	"strings"

	controlStructures "github.com/nikolalohinski/gonja/v2/builtins/control_structures"
	"github.com/nikolalohinski/gonja/v2/exec"
	"github.com/nikolalohinski/gonja/v2/nodes"
	"github.com/nikolalohinski/gonja/v2/tokens"
)

// Compilation of the expression kinds gonja's AST does not have (see the
// node types in parse.go) and of those whose gonja evaluation differs from
// Python's.

// placeholderIndex reports which expression a placeholder name of the
// canonical stream stands for.
func placeholderIndex(n *nodes.Name) (int, bool) {
	if n.Name == nil || !strings.HasPrefix(n.Name.Val, placeholderPrefix) {
		return 0, false
	}
	i, err := strconv.Atoi(n.Name.Val[len(placeholderPrefix):])
	return i, err == nil
}

func (rw *rewriter) compileCondExpr(n *condExpr) evalFn {
	test, then := rw.compile(n.test), rw.compile(n.then)
	var els evalFn
	if n.els != nil {
		els = rw.compile(n.els)
	}
	line, col := tokPos(n.tok)
	return func(e *exec.Evaluator) *exec.Value {
		t := test(e)
		if t.IsError() && asUndefined(t) == nil {
			return t
		}
		if truthy(t) {
			return then(e)
		}
		if els == nil {
			// Jinja2 uses its plain Undefined here, whatever the
			// environment's undefined class is.
			return exec.AsValue(&undefined{lenient: true, line: line, col: col,
				msg: fmt.Sprintf("the inline if-expression on line %d evaluated to false and no else section was defined", line)})
		}
		return els(e)
	}
}

// operand evaluates one side of an operator: a strict undefined is an
// error, a lenient one (inline if without else) is returned as is.
func operand(e *exec.Evaluator, fn evalFn) *exec.Value {
	v := fn(e)
	if u := asUndefined(v); u != nil && !u.lenient {
		return exec.AsValue(stateOf(e).failUndef(u, ""))
	}
	return v
}

func isLenient(v *exec.Value) bool {
	u := asUndefined(v)
	return u != nil && u.lenient
}

func (rw *rewriter) compileCompare(n *compareExpr) evalFn {
	first := rw.compile(n.first)
	type op struct {
		tok       *tokens.Token
		fn        evalFn
		line, col int
	}
	var ops []op
	for _, o := range n.ops {
		l, c := tokPos(o.tok)
		ops = append(ops, op{o.tok, rw.compile(o.expr), l, c})
	}
	firstIn := len(ops) > 0 && ops[0].tok.Type == tokens.In
	return func(e *exec.Evaluator) *exec.Value {
		left := first(e)
		if u := asUndefined(left); u != nil && !u.lenient && !firstIn {
			return exec.AsValue(stateOf(e).failUndef(u, ""))
		} else if left.IsError() && u == nil {
			return left
		}
		for _, o := range ops {
			right := operand(e, o.fn)
			if right.IsError() && !isLenient(right) {
				return right
			}
			ok, err := compare(o.tok, left, right)
			if err != nil {
				return exec.AsValue(stateOf(e).fail(o.line, o.col, "%s", err))
			}
			if !ok {
				return exec.AsValue(false)
			}
			left = right
		}
		return exec.AsValue(true)
	}
}

// compare is one Python comparison. A lenient undefined equals only
// another undefined, is in nothing and contains nothing; ordering it fails.
// A strict undefined can only be looked for in an empty list (any
// comparison with it fails).
func compare(op *tokens.Token, l, r *exec.Value) (bool, error) {
	if u := asUndefined(l); u != nil && !u.lenient {
		// Looked for in an empty list or tuple, or in a plain Undefined
		// (which iterates as empty), it is compared with nothing.
		if items, ok := plain(r).([]any); ok && op.Type == tokens.In && len(items) == 0 {
			return op.Val == "not in", nil
		}
		if op.Type == tokens.In && isLenient(r) {
			return op.Val == "not in", nil
		}
		return false, hardError(u)
	}
	lu, ru := isLenient(l), isLenient(r)
	if lu || ru {
		switch op.Type {
		case tokens.Equals:
			return lu && ru, nil
		case tokens.Ne:
			return !(lu && ru), nil
		case tokens.In:
			if ru {
				return op.Val == "not in", nil
			}
			found := false
			if items, err := pyIter(r); err == nil {
				for _, x := range items {
					found = found || isLenient(exec.ToValue(x))
				}
			}
			return found != (op.Val == "not in"), nil
		}
		return false, errors.New("undefined value cannot be compared")
	}
	switch op.Type {
	case tokens.LowerThan, tokens.LowerThanOrEqual, tokens.GreaterThan, tokens.GreaterThanOrEqual:
		if lk, rk := seqKind(l), seqKind(r); lk != "" && rk != "" && lk != rk {
			return false, fmt.Errorf("'%s' not supported between instances of '%s' and '%s'", op.Val, lk, rk)
		}
	}
	res, err := binop(op, l, r)
	if err != nil {
		return false, err
	}
	b, _ := res.(bool)
	if op.Type == tokens.In && op.Val == "not in" {
		b = !b
	}
	return b, nil
}

// pyIter lists what Python's iter() yields: a dict's keys, a string's
// characters, a sequence's items.
func pyIter(v *exec.Value) ([]any, error) {
	switch t := plain(v).(type) {
	case []any:
		return t, nil
	case *pyIterator:
		return t.items, nil
	case string:
		out := make([]any, 0, len(t))
		for _, r := range t {
			out = append(out, string(r))
		}
		return out, nil
	case map[string]any:
		keys := make([]string, 0, len(t))
		for k := range t {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		out := make([]any, len(keys))
		for i, k := range keys {
			out[i] = k
		}
		return out, nil
	case *exec.Dict:
		out := make([]any, len(t.Pairs))
		for i, p := range t.Pairs {
			out[i] = p.Key
		}
		return out, nil
	case *undefined:
		if t.lenient {
			return nil, nil
		}
		return nil, t
	}
	if v.IsDict() || v.IsList() {
		var out []any
		v.Iterate(func(_, _ int, key, _ *exec.Value) bool {
			out = append(out, key.Interface())
			return true
		}, func() {})
		return out, nil
	}
	return nil, fmt.Errorf("'%s' object is not iterable", pyTypeName(v))
}

// compileUnpack prepares the iterable of `for k, v in ...`: each item is
// unpacked into exactly two values, as Python's assignment does, and
// handed to gonja as a two-element list (which it unpacks itself).
func (rw *rewriter) compileUnpack(n *unpackIter) evalFn {
	iter := rw.compile(n.iter)
	line, col := tokPos(n.iter.Position())
	return func(e *exec.Evaluator) *exec.Value {
		v := iter(e)
		if u := asUndefined(v); u != nil {
			if u.lenient {
				return exec.AsValue([]any{})
			}
			return exec.AsValue(stateOf(e).failUndef(u, ""))
		}
		if v.IsError() {
			return v
		}
		items, err := pyIter(v)
		if err != nil {
			return exec.AsValue(stateOf(e).fail(line, col, "%s", err))
		}
		out := make([]any, len(items))
		for i, it := range items {
			parts, err := pyIter(exec.ToValue(it))
			if err != nil {
				return exec.AsValue(stateOf(e).fail(line, col, "cannot unpack non-iterable %s object", pyTypeName(it)))
			}
			switch {
			case len(parts) < 2:
				return exec.AsValue(stateOf(e).fail(line, col, "not enough values to unpack (expected 2, got %d)", len(parts)))
			case len(parts) > 2:
				return exec.AsValue(stateOf(e).fail(line, col, "too many values to unpack (expected 2)"))
			}
			out[i] = []any{parts[0], parts[1]}
		}
		if st := stateOf(e); st != nil {
			if st.pairItems == nil {
				st.pairItems = map[int][]any{}
			}
			// With an if filter Jinja2 loops over a generator of the
			// unpacked pairs, so previtem is the pair, not the item.
			st.pairItems[loopDepth(e)+1] = items
			if n.filtered {
				st.pairItems[loopDepth(e)+1] = nil
			}
		}
		return exec.AsValue(out)
	}
}

func (rw *rewriter) compileUnary(n *nodes.UnaryExpression) evalFn {
	term := rw.compile(n.Term)
	line, col := tokPos(n.Operator)
	neg := n.Negative
	return func(e *exec.Evaluator) *exec.Value {
		v := term(e)
		if u := asUndefined(v); u != nil {
			return exec.AsValue(stateOf(e).failUndef(u, ""))
		}
		if v.IsError() {
			return v
		}
		if z, ok := plain(v).(*big.Int); ok {
			if neg {
				return exec.AsValue(normBig(new(big.Int).Neg(z)))
			}
			return exec.AsValue(z)
		}
		i, f, isFloat, ok := number(plain(v))
		if !ok {
			return exec.AsValue(stateOf(e).fail(line, col, "bad operand type for unary %s: '%s'", n.Operator.Val, pyTypeName(v)))
		}
		switch {
		case isFloat && neg:
			return exec.AsValue(-f)
		case isFloat:
			return exec.AsValue(f)
		case neg:
			return exec.AsValue(bigOp(0, i, (*big.Int).Sub))
		}
		return exec.AsValue(i)
	}
}

// compileSlice is Python's seq[start:stop:step] on strings, lists and
// tuples; anything else fails, as in Jinja2 (which compiles slices to
// Python's subscript rather than to its getitem).
func (rw *rewriter) compileSlice(n *sliceExpr) evalFn {
	obj := rw.compile(n.node)
	var parts [3]evalFn
	for i, x := range []nodes.Expression{n.start, n.stop, n.step} {
		if x != nil {
			parts[i] = strictFn(rw.compile(x), "")
		}
	}
	line, col := tokPos(exprStart(n))
	return func(e *exec.Evaluator) *exec.Value {
		o := receiver(e, obj)
		if o.IsError() {
			return o
		}
		var bounds [3]*int64
		for i, p := range parts {
			if p == nil {
				continue
			}
			v := p(e)
			if v.IsError() {
				return v
			}
			switch x := plain(v).(type) {
			case nil:
			case bool, int64:
				b, _, _, _ := number(x)
				bounds[i] = &b
			default:
				return exec.AsValue(stateOf(e).fail(line, col, "slice indices must be integers or None, not %s", pyTypeName(v)))
			}
		}
		step := int64(1)
		if bounds[2] != nil {
			step = *bounds[2]
		}
		if step == 0 {
			return exec.AsValue(stateOf(e).fail(line, col, "slice step cannot be zero"))
		}
		var items []any
		isStr := false
		raw := o.Interface()
		switch t := plain(o).(type) {
		case string:
			isStr = true
			for _, r := range t {
				items = append(items, string(r))
			}
		case []any:
			items = t
		default:
			// Jinja2 compiles a slice to Python's own subscript, so this
			// fails rather than giving an undefined value.
			return exec.AsValue(stateOf(e).fail(line, col, "'%s' object is not subscriptable", pyTypeName(o)))
		}
		idx := sliceIndices(int64(len(items)), bounds[0], bounds[1], step)
		out := make([]any, 0, len(idx))
		for _, i := range idx {
			out = append(out, items[i])
		}
		if isStr {
			var b strings.Builder
			for _, x := range out {
				b.WriteString(x.(string))
			}
			if _, ok := raw.(pyMarkup); ok {
				return exec.AsValue(pyMarkup(b.String()))
			}
			return exec.AsValue(b.String())
		}
		if _, ok := raw.(pyTuple); ok {
			return exec.AsValue(pyTuple(out))
		}
		return exec.AsValue(out)
	}
}

// sliceIndices is Python's slice.indices followed by range().
func sliceIndices(n int64, start, stop *int64, step int64) []int64 {
	clamp := func(p *int64, def, lo, hi int64) int64 {
		if p == nil {
			return def
		}
		x := *p
		if x < 0 {
			x += n
			if x < lo {
				x = lo
			}
		} else if x > hi {
			x = hi
		}
		return x
	}
	var a, b int64
	if step > 0 {
		a, b = clamp(start, 0, 0, n), clamp(stop, n, 0, n)
	} else {
		a, b = clamp(start, n-1, -1, n-1), clamp(stop, -1, -1, n-1)
	}
	var out []int64
	for i := a; (step > 0 && i < b) || (step < 0 && i > b); i += step {
		out = append(out, i)
		if (step > 0 && i > math.MaxInt64-step) || (step < 0 && i < math.MinInt64-step) {
			break
		}
	}
	return out
}

// loopDepth is the depth of the loop whose body is running (0 outside any),
// as gonja counts it.
func loopDepth(e *exec.Evaluator) int {
	if v, ok := e.Environment.Context.Get("loop"); ok {
		if li, ok := v.(*controlStructures.LoopInfos); ok {
			d, _ := li.GetAttribute("depth")
			return d.Integer()
		}
	}
	return 0
}

// loopItem makes loop.previtem on the first iteration and loop.nextitem on
// the last undefined, as in Jinja2 (gonja gives None).
func loopItem(e *exec.Evaluator, o *exec.Value, attr string) (*exec.Value, bool) {
	li, ok := o.Interface().(*controlStructures.LoopInfos)
	if !ok {
		return nil, false
	}
	switch attr {
	case "depth", "depth0":
		// Jinja2 counts the depth of a recursive loop, not nesting, and
		// recursive loops are refused here.
		return exec.AsValue(map[string]int{"depth": 1, "depth0": 0}[attr]), true
	case "previtem", "nextitem":
	default:
		return nil, false
	}
	edge := "first"
	if attr == "nextitem" {
		edge = "last"
	}
	if at, _ := li.GetAttribute(edge); at != nil && at.IsTrue() {
		msg := "there is no previous item"
		if attr == "nextitem" {
			msg = "there is no next item"
		}
		return exec.AsValue(&undefined{name: "loop." + attr, msg: msg}), true
	}
	// In a loop over pairs (for k, v in ...) gonja keeps the item as an
	// array of the two values; Jinja2's is the item itself.
	if v, _ := li.GetAttribute(attr); v != nil {
		if _, ok := v.Interface().([2]*exec.Value); ok {
			d, _ := li.GetAttribute("depth")
			i, _ := li.GetAttribute("index0")
			j := i.Integer() - 1
			if attr == "nextitem" {
				j = i.Integer() + 1
			}
			if st := stateOf(e); st != nil && j >= 0 && j < len(st.pairItems[d.Integer()]) {
				return exec.ToValue(st.pairItems[d.Integer()][j]), true
			}
			if pair, ok := v.Interface().([2]*exec.Value); ok {
				return exec.AsValue(pyTuple{raw(pair[0]), raw(pair[1])}), true
			}
		}
	}
	return nil, false
}

// sortStable sorts idx with less, keeping the order of equal elements.
func sortStable(idx []int, less func(a, b int) bool) {
	sort.SliceStable(idx, less)
}

// dictFunc is dict() when it is not called directly by name (see
// compileDictCall): keyword arguments come in a map, so they are sorted.
func dictFunc(_ *exec.Evaluator, va *exec.VarArgs) *exec.Value {
	var keys []string
	for k := range va.KwArgs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return buildDict(va.Args, keys, func(k string) *exec.Value { return va.KwArgs[k] })
}

// buildDict is Python's dict(arg, **kwargs): arg is a mapping or an
// iterable of pairs.
func buildDict(args []*exec.Value, keys []string, kw func(string) *exec.Value) *exec.Value {
	if len(args) > 1 {
		return errValue("dict expected at most 1 argument, got %d", len(args))
	}
	d := exec.NewDict()
	set := func(k, v *exec.Value) {
		for _, p := range d.Pairs {
			if pyEqual(plain(p.Key), plain(k)) {
				p.Value = v
				return
			}
		}
		d.Pairs = append(d.Pairs, &exec.Pair{Key: k, Value: v})
	}
	if len(args) == 1 {
		if pairs, ok := dictPairs(args[0]); ok {
			for _, p := range pairs {
				t := p.(pyTuple)
				set(exec.ToValue(t[0]), exec.ToValue(t[1]))
			}
		} else {
			items, err := pyIter(args[0])
			if err != nil {
				return exec.AsValue(err)
			}
			for i, it := range items {
				kv, err := pyIter(exec.ToValue(it))
				if err != nil || len(kv) != 2 {
					return errValue("dictionary update sequence element #%d has the wrong length", i)
				}
				if err := hashable(kv[0]); err != nil {
					return exec.AsValue(err)
				}
				set(exec.ToValue(kv[0]), exec.ToValue(kv[1]))
			}
		}
	}
	for _, k := range keys {
		set(exec.AsValue(k), kw(k))
	}
	return exec.AsValue(d)
}

var dictFuncPtr = reflect.ValueOf(dictFunc).Pointer()

func (rw *rewriter) compileDictCall(n *dictCall) evalFn {
	var arg evalFn
	if len(n.call.Args) == 1 {
		arg = strictFn(rw.compile(n.call.Args[0]), "in dict()")
	}
	kw := map[string]evalFn{}
	for k, x := range n.call.Kwargs {
		kw[k] = rw.compile(x) // values may be undefined, as in Jinja2
	}
	fallback := rw.compileCall(n.call)
	return func(e *exec.Evaluator) *exec.Value {
		if f, ok := e.Environment.Context.Get("dict"); !ok || reflect.ValueOf(f).Kind() != reflect.Func || reflect.ValueOf(f).Pointer() != dictFuncPtr {
			return fallback(e) // dict was redefined by the template
		}
		var args []*exec.Value
		if arg != nil {
			v := arg(e)
			if v.IsError() {
				return v
			}
			args = append(args, v)
		}
		vals := map[string]*exec.Value{}
		for _, k := range n.keys {
			v := kw[k](e)
			if v.IsError() && asUndefined(v) == nil {
				return v
			}
			vals[k] = v
		}
		return buildDict(args, n.keys, func(k string) *exec.Value { return vals[k] })
	}
}
