package tmpl

import (
	"math"
	"math/big"

	"github.com/nikolalohinski/gonja/v2/exec"
	"github.com/nikolalohinski/gonja/v2/nodes"
	"github.com/nikolalohinski/gonja/v2/tokens"
)

// Jinja2's optimizer folds constant expressions into Const nodes, and its
// code generator writes a Const as Python's repr and a power as
// "(left ** right)". A negative constant on the left of ** whose right is
// not constant therefore becomes the Python source (-15 ** x), which
// Python reads as -(15 ** x): in Jinja2 {{ -0o17 ** x }} with x = 0 is -1,
// while {{ -0o17 ** 0 }} (all folded) is 1. powNegConst reproduces that.

// contextFilters are Jinja2's builtin filters that take the template
// context (pass_context): the optimizer never folds them.
var contextFilters = map[string]bool{"map": true, "random": true, "reject": true, "rejectattr": true, "select": true, "selectattr": true}

// isConstExpr reports whether Jinja2's optimizer would try to fold e:
// literals, and operators, subscripts, attributes, filters (but those of
// contextFilters) and tests whose operands are all constant. Names and
// calls are never constant.
func isConstExpr(e nodes.Expression) bool {
	all := func(es ...nodes.Expression) bool {
		for _, x := range es {
			if x != nil && !isConstExpr(x) {
				return false
			}
		}
		return true
	}
	allMap := func(m map[string]nodes.Expression) bool {
		for _, x := range m {
			if !isConstExpr(x) {
				return false
			}
		}
		return true
	}
	switch n := e.(type) {
	case *nodes.Integer, *nodes.Float, *nodes.String, *nodes.Bool, *nodes.None, *bigLit:
		return true
	case *nodes.UnaryExpression:
		return isConstExpr(n.Term)
	case *nodes.Negation:
		return isConstExpr(n.Term)
	case *nodes.BinaryExpression:
		return all(n.Left, n.Right)
	case *nodes.List:
		return all(n.Val...)
	case *nodes.Tuple:
		return all(n.Val...)
	case *nodes.Dict:
		for _, p := range n.Pairs {
			if !all(p.Key, p.Value) {
				return false
			}
		}
		return true
	case *nodes.GetItem:
		return all(n.Node, n.Arg)
	case *nodes.GetAttribute:
		return isConstExpr(n.Node)
	case *sliceExpr:
		return all(n.node, n.start, n.stop, n.step)
	case *compareExpr:
		if !isConstExpr(n.first) {
			return false
		}
		for _, op := range n.ops {
			if !isConstExpr(op.expr) {
				return false
			}
		}
		return true
	case *condExpr:
		// CondExpr.as_const without else is Impossible; with one it folds
		// the branch taken, which needs the test's value: both branches
		// constant is the case that surely folds.
		return n.els != nil && all(n.test, n.then, n.els)
	case *nodes.FilteredExpression:
		for _, f := range n.Filters {
			if contextFilters[f.Name] || !all(f.Args...) || !allMap(f.Kwargs) {
				return false
			}
		}
		return isConstExpr(n.Expression)
	case *nodes.TestExpression:
		return isConstExpr(n.Expression) && all(n.Test.Args...) && allMap(n.Test.Kwargs)
	}
	return false
}

// powNegConst is left ** right where left is constant and right is not
// (see above): a negative left gives -(|left| ** right).
func powNegConst(op *tokens.Token, l, r *exec.Value) (any, error) {
	abs, ok := negatedNumber(plain(l))
	if !ok {
		return binop(op, l, r)
	}
	res, err := binop(op, exec.AsValue(abs), r)
	if err != nil {
		return nil, err
	}
	neg, _ := negatedNumber(res)
	return neg, nil
}

// negatedNumber returns -x for a number x (int64, *big.Int or float64,
// not bool); ok reports whether x was negative (always false for others).
func negatedNumber(x any) (neg any, ok bool) {
	switch t := x.(type) {
	case int64:
		return bigOp(0, t, (*big.Int).Sub), t < 0
	case *big.Int:
		return normBig(new(big.Int).Neg(t)), t.Sign() < 0
	case float64:
		return -t, math.Signbit(t) // repr(-0.0) is "-0.0" too
	}
	return x, false
}
