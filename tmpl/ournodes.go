package tmpl

import (
	"errors"
	"fmt"
	"math"
	"math/big"
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
	return func(e *exec.Evaluator) *exec.Value {
		left := operand(e, first)
		if left.IsError() && !isLenient(left) {
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
func compare(op *tokens.Token, l, r *exec.Value) (bool, error) {
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
// tuples; anything else gives an undefined value, as Jinja2's getitem does.
func (rw *rewriter) compileSlice(n *sliceExpr) evalFn {
	obj := rw.compile(n.node)
	var parts [3]evalFn
	for i, x := range []nodes.Expression{n.start, n.stop, n.step} {
		if x != nil {
			parts[i] = strictFn(rw.compile(x), "")
		}
	}
	text := exprString(n)
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
				return exec.AsValue(&undefined{name: text, line: line, col: col})
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
			return exec.AsValue(&undefined{name: text, line: line, col: col})
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

// loopItem makes loop.previtem on the first iteration and loop.nextitem on
// the last undefined, as in Jinja2 (gonja gives None).
func loopItem(o *exec.Value, attr string) (*exec.Value, bool) {
	li, ok := o.Interface().(*controlStructures.LoopInfos)
	if !ok || (attr != "previtem" && attr != "nextitem") {
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
	return nil, false
}
