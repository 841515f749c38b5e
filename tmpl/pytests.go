package tmpl

import (
	"fmt"
	"math/big"
	"strings"
	"unicode"

	"github.com/nikolalohinski/gonja/v2/exec"
	"github.com/nikolalohinski/gonja/v2/tokens"
)

// Jinja2's tests (jinja2/tests.py) with Python semantics; gonja's answer
// differently for bools, tuples, mixed types and non-strings, or fail
// where Python does not (found by TestJinja2Differential).

type testFn = func(*exec.Evaluator, *exec.Value, *exec.VarArgs) (bool, error)

func noArgs(name string, f func(*exec.Value) (bool, error)) testFn {
	return func(_ *exec.Evaluator, in *exec.Value, p *exec.VarArgs) (bool, error) {
		if len(p.Args)+len(p.KwArgs) > 0 {
			return false, fmt.Errorf("%s() takes 1 positional argument but %d were given", name, 1+len(p.Args)+len(p.KwArgs))
		}
		return f(in)
	}
}

func oneArg(name string, f func(in, arg *exec.Value) (bool, error)) testFn {
	return func(_ *exec.Evaluator, in *exec.Value, p *exec.VarArgs) (bool, error) {
		a, err := bind(name, p, []string{"other"}, 1)
		if err != nil {
			return false, err
		}
		return f(in, a[0])
	}
}

func compareTest(name string, typ tokens.Type, op string) testFn {
	tok := &tokens.Token{Type: typ, Val: op}
	return oneArg(name, func(in, arg *exec.Value) (bool, error) { return compare(tok, in, arg) })
}

// isInt is Python's isinstance(v, int) without bool: int64 or beyond.
func isInt(v any) bool {
	switch v.(type) {
	case int64, *big.Int:
		return true
	}
	return false
}

// modTest is value % n == r, with Python's % (str % n formats and fails).
func modTest(in *exec.Value, n int64, r int64) (bool, error) {
	res, err := binop(&tokens.Token{Type: tokens.Modulo, Val: "%"}, in, exec.AsValue(n))
	if err != nil {
		return false, err
	}
	return pyEqual(res, r), nil
}

func strOf(v *exec.Value) (string, error) { return pyStr(v) }

var pyTests = map[string]testFn{
	"odd":  noArgs("test_odd", func(in *exec.Value) (bool, error) { return modTest(in, 2, 1) }),
	"even": noArgs("test_even", func(in *exec.Value) (bool, error) { return modTest(in, 2, 0) }),
	"divisibleby": oneArg("test_divisibleby", func(in, n *exec.Value) (bool, error) {
		res, err := binop(&tokens.Token{Type: tokens.Modulo, Val: "%"}, in, n)
		if err != nil {
			return false, err
		}
		return pyEqual(res, int64(0)), nil
	}),
	"number": noArgs("test_number", func(in *exec.Value) (bool, error) {
		_, _, _, ok := number(plain(in))
		return ok || isInt(plain(in)), nil
	}),
	"integer": noArgs("test_integer", func(in *exec.Value) (bool, error) { return isInt(plain(in)), nil }),
	"float": noArgs("test_float", func(in *exec.Value) (bool, error) {
		_, ok := plain(in).(float64)
		return ok, nil
	}),
	"boolean": noArgs("test_boolean", func(in *exec.Value) (bool, error) {
		_, ok := plain(in).(bool)
		return ok, nil
	}),
	"true":  noArgs("test_true", func(in *exec.Value) (bool, error) { return plain(in) == true, nil }),
	"false": noArgs("test_false", func(in *exec.Value) (bool, error) { return plain(in) == false, nil }),
	"none":  noArgs("test_none", func(in *exec.Value) (bool, error) { return plain(in) == nil, nil }),
	"string": noArgs("test_string", func(in *exec.Value) (bool, error) {
		_, ok := plain(in).(string)
		return ok, nil
	}),
	"mapping": noArgs("test_mapping", func(in *exec.Value) (bool, error) {
		_, ok := dictPairs(in)
		return ok, nil
	}),
	"iterable": noArgs("test_iterable", func(in *exec.Value) (bool, error) {
		_, err := pyIter(in)
		return err == nil, nil
	}),
	// A sequence has len() and [] (a dict counts, as in Python).
	"sequence": noArgs("test_sequence", func(in *exec.Value) (bool, error) {
		_, err := pyLen(in)
		return err == nil, nil
	}),
	"callable": noArgs("test_callable", func(in *exec.Value) (bool, error) { return in.IsCallable(), nil }),
	"escaped":  noArgs("test_escaped", func(in *exec.Value) (bool, error) { return isMarkup(in), nil }),
	"lower": noArgs("test_lower", func(in *exec.Value) (bool, error) {
		s, err := strOf(in)
		return pyIsCase(s, unicode.IsLower, unicode.IsUpper), err
	}),
	"upper": noArgs("test_upper", func(in *exec.Value) (bool, error) {
		s, err := strOf(in)
		return pyIsCase(s, unicode.IsUpper, unicode.IsLower), err
	}),
	"in": oneArg("test_in", func(in, seq *exec.Value) (bool, error) { return pyContains(seq, in) }),
	"sameas": oneArg("test_sameas", func(in, other *exec.Value) (bool, error) {
		return pySame(plain(in), plain(other)), nil
	}),
	"eq": compareTest("test_eq", tokens.Equals, "=="), "equalto": compareTest("test_eq", tokens.Equals, "=="), "==": compareTest("test_eq", tokens.Equals, "=="),
	"ne": compareTest("test_ne", tokens.Ne, "!="), "!=": compareTest("test_ne", tokens.Ne, "!="),
	"lt": compareTest("test_lt", tokens.LowerThan, "<"), "lessthan": compareTest("test_lt", tokens.LowerThan, "<"), "<": compareTest("test_lt", tokens.LowerThan, "<"),
	"le": compareTest("test_le", tokens.LowerThanOrEqual, "<="), "<=": compareTest("test_le", tokens.LowerThanOrEqual, "<="),
	"gt": compareTest("test_gt", tokens.GreaterThan, ">"), "greaterthan": compareTest("test_gt", tokens.GreaterThan, ">"), ">": compareTest("test_gt", tokens.GreaterThan, ">"),
	"ge": compareTest("test_ge", tokens.GreaterThanOrEqual, ">="), ">=": compareTest("test_ge", tokens.GreaterThanOrEqual, ">="),
}

// pyIsCase is str.islower()/isupper(): at least one cased character and
// none of the other case.
func pyIsCase(s string, want, other func(rune) bool) bool {
	cased := false
	for _, r := range s {
		if other(r) || unicode.IsTitle(r) {
			return false
		}
		cased = cased || want(r)
	}
	return cased
}

// pySame approximates Python's `is` for template values: None, booleans,
// small integers and equal strings are the same object (CPython caches
// and interns them); containers never are.
func pySame(a, b any) bool {
	switch x := a.(type) {
	case nil:
		return b == nil
	case bool:
		y, ok := b.(bool)
		return ok && x == y
	case int64:
		y, ok := b.(int64)
		return ok && x == y && x >= -5 && x <= 256
	case string:
		y, ok := b.(string)
		return ok && x == y && isIdentifierLike(x)
	}
	return false
}

func isIdentifierLike(s string) bool {
	return strings.IndexFunc(s, func(r rune) bool { return !(r == '_' || r < 0x80 && (unicode.IsLetter(r) || unicode.IsDigit(r))) }) < 0
}

// undefinedIsFalse are the tests Jinja2 answers False for an undefined
// value instead of failing (they only look at its type).
var undefinedIsFalse = map[string]bool{"none": true, "number": true, "string": true, "mapping": true,
	"boolean": true, "true": true, "false": true, "integer": true, "float": true, "sameas": true, "escaped": true,
	"sequence": true} // test_sequence catches the error of len()
