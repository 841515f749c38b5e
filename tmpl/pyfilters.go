package tmpl

import (
	"errors"
	"fmt"
	"html"
	"math"
	"math/big"
	"regexp"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/nikolalohinski/gonja/v2/exec"
	"github.com/nikolalohinski/gonja/v2/tokens"
)

// Filters, tests and methods whose gonja versions differ from Jinja2's
// (found by TestJinja2Differential), written from jinja2/filters.py and
// Python's built-ins.

// bind matches a call's arguments to a Python signature: names in order,
// the first required ones without default. It fails as Python does on a
// missing, repeated or unknown argument.
func bind(fn string, p *exec.VarArgs, names []string, required int, defaults ...*exec.Value) ([]*exec.Value, error) {
	if len(p.Args) > len(names) {
		return nil, fmt.Errorf("%s() takes at most %d arguments (%d given)", fn, len(names), len(p.Args))
	}
	out := make([]*exec.Value, len(names))
	copy(out, p.Args)
	for k, v := range p.KwArgs {
		i := indexOf(names, k)
		if i < 0 {
			return nil, fmt.Errorf("%s() got an unexpected keyword argument %s", fn, pyQuote(k))
		}
		if out[i] != nil {
			return nil, fmt.Errorf("%s() got multiple values for argument %s", fn, pyQuote(k))
		}
		out[i] = v
	}
	for i := range out {
		if out[i] != nil {
			continue
		}
		if i < required {
			return nil, fmt.Errorf("%s() missing required argument %s", fn, pyQuote(names[i]))
		}
		if j := i - required; j < len(defaults) {
			out[i] = defaults[j]
		}
	}
	return out, nil
}

func indexOf(xs []string, x string) int {
	for i, y := range xs {
		if x == y {
			return i
		}
	}
	return -1
}

// opToken is the + of sum().
var opToken = tokens.Token{Type: tokens.Addition, Val: "+"}

func errValue(format string, args ...any) *exec.Value {
	return exec.AsValue(fmt.Errorf(format, args...))
}

// pyLen is Python's len().
func pyLen(v *exec.Value) (int, error) {
	switch t := plain(v).(type) {
	case string:
		return utf8.RuneCountInString(t), nil
	case []any:
		return len(t), nil
	case map[string]any:
		return len(t), nil
	case *exec.Dict:
		return len(t.Pairs), nil
	}
	return 0, fmt.Errorf("object of type '%s' has no len()", pyTypeName(v))
}

func filterLength(_ *exec.Evaluator, in *exec.Value, p *exec.VarArgs) *exec.Value {
	if len(p.Args)+len(p.KwArgs) > 0 {
		return errValue("length() takes no arguments")
	}
	n, err := pyLen(in)
	if err != nil {
		return exec.AsValue(err)
	}
	return exec.AsValue(n)
}

// pyRound is Python's round(x, n) for a float: the exact binary value
// rounded half to even at n decimals, which is how strconv formats.
func pyRound(x float64, n int64) float64 {
	if math.IsInf(x, 0) || math.IsNaN(x) {
		return x
	}
	if n >= 0 {
		if n > 330 {
			return x
		}
		r, _ := strconv.ParseFloat(strconv.FormatFloat(x, 'f', int(n), 64), 64)
		return r
	}
	if n < -330 {
		return math.Copysign(0, x)
	}
	p := math.Pow(10, float64(-n))
	return math.RoundToEven(x/p) * p
}

// roundInt is Python's round(i, n) for an int: i itself for n >= 0, else
// rounded half to even at 10**-n.
func roundInt(i, n int64) int64 {
	if n >= 0 {
		return i
	}
	if n < -18 {
		return 0
	}
	p := int64(math.Pow10(int(-n)))
	q, r := i/p, i%p
	if r < 0 {
		q, r = q-1, r+p
	}
	if 2*r > p || (2*r == p && q%2 != 0) {
		q++
	}
	return q * p
}

func filterRound(_ *exec.Evaluator, in *exec.Value, p *exec.VarArgs) *exec.Value {
	a, err := bind("round", p, []string{"precision", "method"}, 0, exec.AsValue(0), exec.AsValue("common"))
	if err != nil {
		return exec.AsValue(err)
	}
	method, _ := plain(a[1]).(string)
	if method != "common" && method != "ceil" && method != "floor" {
		return errValue("method must be common, ceil or floor")
	}
	prec, _, pf, ok := number(plain(a[0]))
	if !ok || pf {
		return errValue("'%s' object cannot be interpreted as an integer", pyTypeName(a[0]))
	}
	if z, isBig := plain(in).(*big.Int); isBig {
		return roundBig(z, prec, method)
	}
	i, f, isFloat, ok := number(plain(in))
	if !ok {
		return errValue("type %s doesn't define __round__ method", pyTypeName(in))
	}
	if method == "common" {
		if isFloat {
			return exec.AsValue(pyRound(f, prec))
		}
		return exec.AsValue(roundInt(i, prec))
	}
	scale := floatPow(10, float64(prec))
	g := math.Floor
	if method == "ceil" {
		g = math.Ceil
	}
	// Python's math.floor/ceil return ints, so there is no -0.0.
	return exec.AsValue((g(f*scale) + 0) / scale)
}

// roundBig is the round filter on an int beyond int64: round(z, prec)
// (half to even) for common; floor and ceil divide by 10**prec, a float.
func roundBig(z *big.Int, prec int64, method string) *exec.Value {
	if method != "common" {
		if prec >= 0 {
			return exec.AsValue(bigFloat(z)) // z * 10**p / 10**p, rounded once
		}
		scale := floatPow(10, float64(prec))
		g := math.Floor
		if method == "ceil" {
			g = math.Ceil
		}
		return exec.AsValue((g(bigFloat(z)*scale) + 0) / scale)
	}
	if prec >= 0 {
		return exec.AsValue(z)
	}
	if -prec > 4096 {
		return exec.AsValue(int64(0))
	}
	m := new(big.Int).Exp(big.NewInt(10), big.NewInt(-prec), nil)
	q, r := new(big.Int).DivMod(z, m, new(big.Int)) // 0 <= r < m
	switch c := new(big.Int).Lsh(r, 1).Cmp(m); {
	case c > 0, c == 0 && q.Bit(0) == 1:
		q.Add(q, big.NewInt(1))
	}
	return exec.AsValue(normBig(q.Mul(q, m)))
}

// attrGetter is Jinja2's make_attrgetter: "a.b.0" looks up each part with
// getitem semantics, integers as indexes; a missing part is undefined.
func attrGetter(attribute *exec.Value) (func(*exec.Value) *exec.Value, error) {
	if attribute == nil || plain(attribute) == nil {
		return func(v *exec.Value) *exec.Value { return v }, nil
	}
	var parts []any
	switch a := plain(attribute).(type) {
	case string:
		for _, s := range strings.Split(a, ".") {
			if i, err := strconv.Atoi(s); err == nil {
				parts = append(parts, i)
			} else {
				parts = append(parts, s)
			}
		}
	case int64:
		parts = []any{int(a)}
	default:
		return nil, fmt.Errorf("attribute must be a string or an integer, not %s", pyTypeName(attribute))
	}
	name := fmt.Sprint(plain(attribute))
	return func(v *exec.Value) *exec.Value {
		for _, k := range parts {
			next, ok := attrLookup(v, k, true)
			if !ok {
				return exec.AsValue(&undefined{name: name, msg: fmt.Sprintf("%s object has no attribute %s", pyQuote(pyTypeName(v)+" object"), pyQuote(name))})
			}
			v = next
		}
		return v
	}, nil
}

func filterSum(_ *exec.Evaluator, in *exec.Value, p *exec.VarArgs) *exec.Value {
	a, err := bind("sum", p, []string{"attribute", "start"}, 0, exec.AsValue(nil), exec.AsValue(0))
	if err != nil {
		return exec.AsValue(err)
	}
	get, err := attrGetter(a[0])
	if err != nil {
		return exec.AsValue(err)
	}
	if _, ok := plain(a[1]).(string); ok {
		return errValue("sum() can't sum strings [use ''.join(seq) instead]")
	}
	items, err := pyIter(in)
	if err != nil {
		return exec.AsValue(err)
	}
	acc := a[1]
	plus := &opToken
	for _, it := range items {
		v := get(exec.ToValue(it))
		if u := asUndefined(v); u != nil {
			return exec.AsValue(hardError(u))
		}
		res, err := binop(plus, acc, v)
		if err != nil {
			return exec.AsValue(err)
		}
		acc = exec.AsValue(res)
	}
	return acc
}

func filterJoin(_ *exec.Evaluator, in *exec.Value, p *exec.VarArgs) *exec.Value {
	a, err := bind("join", p, []string{"d", "attribute"}, 0, exec.AsValue(""), exec.AsValue(nil))
	if err != nil {
		return exec.AsValue(err)
	}
	sep, err := pyStr(a[0])
	if err != nil {
		return exec.AsValue(err)
	}
	get, err := attrGetter(a[1])
	if err != nil {
		return exec.AsValue(err)
	}
	items, err := pyIter(in)
	if err != nil {
		return exec.AsValue(err)
	}
	parts := make([]string, len(items))
	for i, it := range items {
		s, err := pyStr(get(exec.ToValue(it)))
		if err != nil {
			return exec.AsValue(err)
		}
		parts[i] = s
	}
	return exec.AsValue(strings.Join(parts, sep))
}

// testIsFilter and testIsTest are Jinja2's `filter` and `test` tests: is
// the string the name of one. A non-string is not (a list is unhashable,
// which Python reports).
func nameTest(exists func(string) bool) exec.TestFunction {
	return func(_ *exec.Evaluator, in *exec.Value, _ *exec.VarArgs) (bool, error) {
		if s, ok := plain(in).(string); ok {
			return exists(s), nil
		}
		return false, hashable(in)
	}
}

// strSplit is Python's str.split(sep=None, maxsplit=-1).
func strSplit(self string, _ *exec.Value, p *exec.VarArgs) (any, error) {
	a, err := bind("split", p, []string{"sep", "maxsplit"}, 0, exec.AsValue(nil), exec.AsValue(-1))
	if err != nil {
		return nil, err
	}
	maxsplit, _, isF, ok := number(plain(a[1]))
	if !ok || isF {
		return nil, fmt.Errorf("'%s' object cannot be interpreted as an integer", pyTypeName(a[1]))
	}
	var parts []string
	switch sep := plain(a[0]).(type) {
	case nil:
		rest := strings.TrimLeftFunc(self, pyIsSpace)
		for rest != "" {
			if maxsplit >= 0 && int64(len(parts)) == maxsplit {
				parts = append(parts, strings.TrimRightFunc(rest, pyIsSpace))
				break
			}
			i := strings.IndexFunc(rest, pyIsSpace)
			if i < 0 {
				parts = append(parts, rest)
				break
			}
			parts = append(parts, rest[:i])
			rest = strings.TrimLeftFunc(rest[i:], pyIsSpace)
		}
	case string:
		if sep == "" {
			return nil, errors.New("empty separator")
		}
		n := -1
		if maxsplit >= 0 {
			n = int(min(maxsplit, math.MaxInt32)) + 1
		}
		parts = strings.SplitN(self, sep, n)
	default:
		return nil, fmt.Errorf("must be str or None, not %s", pyTypeName(a[0]))
	}
	out := make([]any, len(parts))
	for i, s := range parts {
		out[i] = s
	}
	return out, nil
}

// blockStrFilter ends the filter chain of every {% filter %} block (the
// rewriter appends it): Jinja2 joins a block's output as strings, so a
// chain that ends in, say, length fails there.
const blockStrFilter = "\x00blockstr"

func filterBlockStr(e *exec.Evaluator, in *exec.Value, p *exec.VarArgs) *exec.Value {
	if _, ok := plain(in).(string); !ok {
		line, col := 0, 0
		if len(p.Args) == 2 {
			line, col = p.Args[0].Integer(), p.Args[1].Integer()
		}
		return exec.AsValue(stateOf(e).fail(line, col, "the filters of a filter block must produce a string, not %s (Jinja2 joins the output as strings)", pyTypeName(in)))
	}
	return in
}

// dictPairs returns a mapping's items as Python tuples, in its order (a Go
// map's keys sorted).
func dictPairs(v *exec.Value) ([]any, bool) {
	switch t := plain(v).(type) {
	case map[string]any:
		keys, _ := pyIter(v)
		out := make([]any, len(keys))
		for i, k := range keys {
			out[i] = pyTuple{k, t[k.(string)]}
		}
		return out, true
	case *exec.Dict:
		out := make([]any, len(t.Pairs))
		for i, p := range t.Pairs {
			out[i] = pyTuple{raw(p.Key), raw(p.Value)}
		}
		return out, true
	}
	return nil, false
}

func filterItems(_ *exec.Evaluator, in *exec.Value, p *exec.VarArgs) *exec.Value {
	if len(p.Args)+len(p.KwArgs) > 0 {
		return errValue("items() takes no arguments")
	}
	if asUndefined(in) != nil {
		return exec.AsValue([]any{})
	}
	pairs, ok := dictPairs(in)
	if !ok {
		return errValue("Can only get item pairs from a mapping.")
	}
	return exec.AsValue(pairs)
}

func filterList(_ *exec.Evaluator, in *exec.Value, p *exec.VarArgs) *exec.Value {
	if len(p.Args)+len(p.KwArgs) > 0 {
		return errValue("list() takes no arguments")
	}
	items, err := pyIter(in)
	if err != nil {
		return exec.AsValue(err)
	}
	return exec.AsValue(append([]any{}, items...))
}

// ignoreCase is Jinja2's ignore_case: strings compare lower-cased.
func ignoreCase(v any) any {
	if s, ok := plain(v).(string); ok {
		return strings.ToLower(s)
	}
	return v
}

// pySorted is Python's sorted(items, key=key, reverse=reverse): stable,
// and failing on values that do not compare.
func pySorted(items []any, key func(any) any, reverse bool) ([]any, error) {
	out := append([]any{}, items...)
	keys := make([]any, len(out))
	for i, x := range out {
		keys[i] = key(x)
	}
	idx := make([]int, len(out))
	for i := range idx {
		idx[i] = i
	}
	var err error
	less := func(a, b int) bool {
		x, y := keys[idx[a]], keys[idx[b]]
		if reverse {
			x, y = y, x
		}
		c, e := pyCompare(x, y)
		if e != nil && err == nil {
			err = fmt.Errorf("'<' not supported between instances of '%s' and '%s'", pyTypeName(x), pyTypeName(y))
		}
		return c < 0
	}
	sortStable(idx, less)
	if err != nil {
		return nil, err
	}
	res := make([]any, len(out))
	for i, j := range idx {
		res[i] = out[j]
	}
	return res, nil
}

func filterDictsort(_ *exec.Evaluator, in *exec.Value, p *exec.VarArgs) *exec.Value {
	a, err := bind("dictsort", p, []string{"case_sensitive", "by", "reverse"}, 0, exec.AsValue(false), exec.AsValue("key"), exec.AsValue(false))
	if err != nil {
		return exec.AsValue(err)
	}
	pos := 0
	switch plain(a[1]) {
	case "key":
	case "value":
		pos = 1
	default:
		return errValue(`You can only sort by either "key" or "value"`)
	}
	pairs, ok := dictPairs(in)
	if !ok {
		return errValue("'%s' object has no attribute 'items'", pyTypeName(in))
	}
	cs := truthy(a[0])
	out, err := pySorted(pairs, func(x any) any {
		v := x.(pyTuple)[pos]
		if !cs {
			return ignoreCase(v)
		}
		return v
	}, truthy(a[2]))
	if err != nil {
		return exec.AsValue(err)
	}
	return exec.AsValue(out)
}

// softStr is Jinja2's soft_str: the filters that take a string convert
// whatever they get with str().
func softStr(v *exec.Value) (string, error) {
	if s, ok := plain(v).(string); ok {
		return s, nil
	}
	return pyStr(v)
}

// strFilter makes a filter on str(input) with no arguments.
func strFilter(name string, f func(string) any) exec.FilterFunction {
	return func(_ *exec.Evaluator, in *exec.Value, p *exec.VarArgs) *exec.Value {
		if len(p.Args)+len(p.KwArgs) > 0 {
			return errValue("%s() takes no arguments", name)
		}
		s, err := softStr(in)
		if err != nil {
			return exec.AsValue(err)
		}
		return keepMarkup(in, f(s))
	}
}

// keepMarkup makes the result of a string filter a Markup when its input
// was one and the filter is a Markup method in Python (upper, strip, ...).
func keepMarkup(in *exec.Value, res any) *exec.Value {
	if s, ok := res.(string); ok {
		if _, m := in.Interface().(pyMarkup); m {
			return exec.AsValue(pyMarkup(s))
		}
	}
	return exec.AsValue(res)
}

// pyCapitalize is str.capitalize(): the first character title-cased, the
// rest lower-cased.
func pyCapitalize(s string) string {
	for i, r := range s {
		return string(unicode.ToTitle(r)) + strings.ToLower(s[i+utf8.RuneLen(r):])
	}
	return s
}

// pyTitle is Jinja2's title filter: every word that starts after
// whitespace, "-", "(", "{", "[" or "<" is capitalised.
func pyTitle(s string) string {
	var b strings.Builder
	start := true
	for _, r := range s {
		sep := pyIsSpace(r) || strings.ContainsRune("-({[<", r)
		switch {
		case sep:
			b.WriteRune(r)
		case start:
			b.WriteRune(unicode.ToUpper(r))
		default:
			b.WriteRune(unicode.ToLower(r))
		}
		start = sep
	}
	return b.String()
}

// pyCenter is str.center(width) with CPython's placement of the odd space.
func pyCenter(s string, width int) string {
	n := utf8.RuneCountInString(s)
	if width <= n {
		return s
	}
	marg := width - n
	left := marg/2 + (marg & width & 1)
	return strings.Repeat(" ", left) + s + strings.Repeat(" ", marg-left)
}

func intArg(v *exec.Value) (int64, error) {
	i, _, isF, ok := number(plain(v))
	if !ok || isF {
		return 0, fmt.Errorf("'%s' object cannot be interpreted as an integer", pyTypeName(v))
	}
	return i, nil
}

func filterCenter(_ *exec.Evaluator, in *exec.Value, p *exec.VarArgs) *exec.Value {
	a, err := bind("center", p, []string{"width"}, 0, exec.AsValue(80))
	if err != nil {
		return exec.AsValue(err)
	}
	w, err := intArg(a[0])
	if err != nil {
		return exec.AsValue(err)
	}
	s, err := softStr(in)
	if err != nil {
		return exec.AsValue(err)
	}
	return keepMarkup(in, pyCenter(s, int(min(w, maxRange))))
}

func filterTrim(_ *exec.Evaluator, in *exec.Value, p *exec.VarArgs) *exec.Value {
	a, err := bind("trim", p, []string{"chars"}, 0, exec.AsValue(nil))
	if err != nil {
		return exec.AsValue(err)
	}
	s, err := softStr(in)
	if err != nil {
		return exec.AsValue(err)
	}
	switch c := plain(a[0]).(type) {
	case nil:
		return keepMarkup(in, strings.TrimFunc(s, pyIsSpace))
	case string:
		return keepMarkup(in, strings.Trim(s, c))
	}
	return errValue("strip arg must be None or str")
}

func isWordRune(r rune) bool { return r == '_' || unicode.IsLetter(r) || unicode.IsNumber(r) }

func pyWordcount(s string) any {
	n, in := 0, false
	for _, r := range s {
		w := isWordRune(r)
		if w && !in {
			n++
		}
		in = w
	}
	return n
}

// pyFloatOf is Python's float(v) for template values.
func pyFloatOf(v *exec.Value) (float64, bool) {
	switch t := plain(v).(type) {
	case bool, int64, float64:
		_, f, _, _ := number(t)
		return f, true
	case *big.Int:
		return bigFloat(t), true // callers check the overflow (Inf)
	case string:
		s := strings.TrimFunc(t, pyIsSpace)
		switch strings.ToLower(strings.TrimLeft(s, "+-")) {
		case "inf", "infinity":
			return math.Copysign(math.Inf(1), signOf(s)), true
		case "nan":
			return math.NaN(), true
		}
		if s == "" || strings.ContainsAny(s, "xXpP") || strings.Contains(s, "__") || strings.HasPrefix(strings.TrimLeft(s, "+-"), "_") || strings.HasSuffix(s, "_") {
			return 0, false
		}
		f, err := strconv.ParseFloat(strings.ReplaceAll(s, "_", ""), 64)
		if err != nil && !math.IsInf(f, 0) {
			return 0, false
		}
		return f, true
	}
	return 0, false
}

func signOf(s string) float64 {
	if strings.HasPrefix(s, "-") {
		return -1
	}
	return 1
}

func filterFloat(_ *exec.Evaluator, in *exec.Value, p *exec.VarArgs) *exec.Value {
	a, err := bind("float", p, []string{"default"}, 0, exec.AsValue(0.0))
	if err != nil {
		return exec.AsValue(err)
	}
	if f, ok := pyFloatOf(in); ok {
		if _, isBig := plain(in).(*big.Int); isBig && math.IsInf(f, 0) {
			// OverflowError, which do_float does not catch.
			return errValue("int too large to convert to float")
		}
		return exec.AsValue(f)
	}
	return a[0]
}

// pyIntOf is Python's int(s, base) for a string.
func pyIntOf(s string, base int64) (int64, bool) {
	s = strings.TrimFunc(s, pyIsSpace)
	neg := false
	if strings.HasPrefix(s, "-") || strings.HasPrefix(s, "+") {
		neg = s[0] == '-'
		s = s[1:]
	}
	low := strings.ToLower(s)
	prefix := map[string]int64{"0x": 16, "0o": 8, "0b": 2}
	if len(low) > 2 {
		if b, ok := prefix[low[:2]]; ok && (base == b || base == 0) {
			s, base = s[2:], b
			s = strings.TrimPrefix(s, "_")
		}
	}
	if base == 0 {
		base = 10
		if len(s) > 1 && s[0] == '0' && strings.Trim(s, "0_") != "" {
			return 0, false // int('012', 0) is an error
		}
	}
	if s == "" || strings.HasPrefix(s, "_") || strings.HasSuffix(s, "_") || strings.Contains(s, "__") || base < 2 || base > 36 {
		return 0, false
	}
	n, err := strconv.ParseInt(strings.ReplaceAll(s, "_", ""), int(base), 64)
	if err != nil {
		return 0, false
	}
	if neg {
		n = -n
	}
	return n, true
}

func filterInt(_ *exec.Evaluator, in *exec.Value, p *exec.VarArgs) *exec.Value {
	a, err := bind("int", p, []string{"default", "base"}, 0, exec.AsValue(0), exec.AsValue(10))
	if err != nil {
		return exec.AsValue(err)
	}
	base, err := intArg(a[1])
	if err != nil {
		return exec.AsValue(err)
	}
	switch t := plain(in).(type) {
	case *big.Int:
		return exec.AsValue(t)
	case string:
		if n, ok := pyIntOf(t, base); ok {
			return exec.AsValue(n)
		}
	case bool, int64:
		n, _, _, _ := number(t)
		return exec.AsValue(n)
	case float64:
		if math.IsInf(t, 0) || math.IsNaN(t) {
			return errValue("cannot convert float %s to integer", pyFloat(t))
		}
		return exec.AsValue(floatToInt(t))
	}
	// Jinja2 then tries int(float(value)), so "42.23" gives 42.
	if f, ok := pyFloatOf(in); ok {
		if math.IsInf(f, 0) || math.IsNaN(f) {
			return errValue("cannot convert float %s to integer", pyFloat(f))
		}
		return exec.AsValue(floatToInt(f))
	}
	return a[0]
}

func filterAbs(_ *exec.Evaluator, in *exec.Value, p *exec.VarArgs) *exec.Value {
	if len(p.Args)+len(p.KwArgs) > 0 {
		return errValue("abs() takes exactly one argument")
	}
	if z, isBig := plain(in).(*big.Int); isBig {
		return exec.AsValue(new(big.Int).Abs(z))
	}
	i, f, isF, ok := number(plain(in))
	switch {
	case !ok:
		return errValue("bad operand type for abs(): '%s'", pyTypeName(in))
	case isF:
		return exec.AsValue(math.Abs(f))
	case i < 0:
		return exec.AsValue(bigOp(0, i, func(z, x, y *big.Int) *big.Int { return z.Sub(x, y) }))
	}
	return exec.AsValue(i)
}

func filterFilesize(_ *exec.Evaluator, in *exec.Value, p *exec.VarArgs) *exec.Value {
	a, err := bind("filesizeformat", p, []string{"binary"}, 0, exec.AsValue(false))
	if err != nil {
		return exec.AsValue(err)
	}
	v, ok := pyFloatOf(in)
	if !ok {
		return errValue("could not convert %s to float", pyTypeName(in))
	}
	if _, isBig := plain(in).(*big.Int); isBig && math.IsInf(v, 0) {
		return errValue("int too large to convert to float")
	}
	base := 1000.0
	prefixes := []string{"kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"}
	if truthy(a[0]) {
		base = 1024
		prefixes = []string{"KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"}
	}
	switch {
	case v == 1:
		return exec.AsValue("1 Byte")
	case v < base:
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return errValue("cannot convert float %s to integer", pyFloat(v))
		}
		return exec.AsValue(fmt.Sprintf("%d Bytes", floatToInt(v)))
	}
	unit := 0.0
	for i, prefix := range prefixes {
		unit = math.Pow(base, float64(i+2))
		if v < unit || i == len(prefixes)-1 {
			return exec.AsValue(strconv.FormatFloat(base*v/unit, 'f', 1, 64) + " " + prefix)
		}
	}
	return exec.AsValue("")
}

func filterBatch(_ *exec.Evaluator, in *exec.Value, p *exec.VarArgs) *exec.Value {
	a, err := bind("batch", p, []string{"linecount", "fill_with"}, 1, exec.AsValue(nil))
	if err != nil {
		return exec.AsValue(err)
	}
	n, err := intArg(a[0])
	if err != nil {
		return exec.AsValue(err)
	}
	items, err := pyIter(in)
	if err != nil {
		return exec.AsValue(err)
	}
	if n <= 0 && len(items) > 1 {
		n = 1 // Python yields one-item lists after the first, as n never matches
	}
	var out []any
	tmp := []any{}
	for _, it := range items {
		if int64(len(tmp)) == n && n > 0 {
			out = append(out, tmp)
			tmp = []any{}
		}
		tmp = append(tmp, it)
	}
	if len(tmp) > 0 {
		if fill := a[1]; plain(fill) != nil {
			for int64(len(tmp)) < n {
				tmp = append(tmp, fill.Interface())
			}
		}
		out = append(out, tmp)
	}
	return exec.AsValue(append([]any{}, out...))
}

// keyGetter is make_attrgetter (or, with commas, make_multi_attrgetter)
// with Jinja2's ignore_case unless caseSensitive.
func keyGetter(attribute *exec.Value, caseSensitive, multi bool) (func(any) (any, error), error) {
	var getters []func(*exec.Value) *exec.Value
	if s, ok := plain(attribute).(string); ok && multi && strings.Contains(s, ",") {
		for _, part := range strings.Split(s, ",") {
			g, err := attrGetter(exec.AsValue(part))
			if err != nil {
				return nil, err
			}
			getters = append(getters, g)
		}
	} else {
		g, err := attrGetter(attribute)
		if err != nil {
			return nil, err
		}
		getters = append(getters, g)
	}
	one := func(g func(*exec.Value) *exec.Value, x any) (any, error) {
		v := g(exec.ToValue(x))
		if u := asUndefined(v); u != nil {
			return nil, hardError(u)
		}
		if !caseSensitive {
			return ignoreCase(v), nil
		}
		return v, nil
	}
	return func(x any) (any, error) {
		if len(getters) == 1 {
			return one(getters[0], x)
		}
		var key []any
		for _, g := range getters {
			k, err := one(g, x)
			if err != nil {
				return nil, err
			}
			key = append(key, k)
		}
		return key, nil
	}, nil
}

// sortBy is pySorted with a key function that may fail.
func sortBy(items []any, key func(any) (any, error), reverse bool) ([]any, error) {
	var kerr error
	keys := map[int]any{}
	for i, x := range items {
		k, err := key(x)
		if err != nil {
			return nil, err
		}
		keys[i] = k
	}
	idx := make([]any, len(items))
	for i := range items {
		idx[i] = i
	}
	sorted, err := pySorted(idx, func(x any) any { return keys[x.(int)] }, reverse)
	if err != nil {
		return nil, err
	}
	out := make([]any, len(items))
	for i, j := range sorted {
		out[i] = items[j.(int)]
	}
	return out, kerr
}

func filterSort(_ *exec.Evaluator, in *exec.Value, p *exec.VarArgs) *exec.Value {
	a, err := bind("sort", p, []string{"reverse", "case_sensitive", "attribute"}, 0, exec.AsValue(false), exec.AsValue(false), exec.AsValue(nil))
	if err != nil {
		return exec.AsValue(err)
	}
	key, err := keyGetter(a[2], truthy(a[1]), true)
	if err != nil {
		return exec.AsValue(err)
	}
	items, err := pyIter(in)
	if err != nil {
		return exec.AsValue(err)
	}
	// Jinja2's sort key is a list ([value]): Python compares lists item by
	// item after an equality check, so equal values that do not order
	// (two equal dicts) are no error there.
	listKey := func(x any) (any, error) {
		k, err := key(x)
		return eqKey{k}, err
	}
	out, err := sortBy(items, listKey, truthy(a[0]))
	if err != nil {
		return exec.AsValue(err)
	}
	return exec.AsValue(out)
}

// eqKey is a sort key compared as a one-item Python list: equal values are
// equal even when they cannot be ordered.
type eqKey struct{ v any }

func filterUnique(_ *exec.Evaluator, in *exec.Value, p *exec.VarArgs) *exec.Value {
	a, err := bind("unique", p, []string{"case_sensitive", "attribute"}, 0, exec.AsValue(false), exec.AsValue(nil))
	if err != nil {
		return exec.AsValue(err)
	}
	key, err := keyGetter(a[1], truthy(a[0]), false)
	if err != nil {
		return exec.AsValue(err)
	}
	items, err := pyIter(in)
	if err != nil {
		return exec.AsValue(err)
	}
	seen := map[string]bool{} // Python's set: by hash key, so 1, 1.0 and True are one
	var others []any          // values without a simple key, compared one by one
	out := []any{}
	for _, it := range items {
		k, err := key(it)
		if err != nil {
			return exec.AsValue(err)
		}
		if err := hashable(k); err != nil {
			return exec.AsValue(err)
		}
		dup := false
		if hk, ok := hashKey(k); ok {
			dup = seen[hk]
			seen[hk] = true
		} else {
			for _, o := range others {
				dup = dup || pyEqual(o, k)
			}
			if !dup {
				others = append(others, k)
			}
		}
		if !dup {
			out = append(out, it)
		}
	}
	return exec.AsValue(out)
}

// hashable fails for the values Python cannot put in a set or dict key.
func hashable(v any) error {
	switch t := plain(v).(type) {
	case []any:
		r := raw(v)
		_, tup := r.(pyTuple)
		_, grp := r.(groupTuple)
		if !tup && !grp {
			return errors.New("unhashable type: 'list'")
		}
		for _, x := range t {
			if err := hashable(x); err != nil {
				return err
			}
		}
		return nil
	case *undefined:
		if !t.lenient {
			return hardError(t) // StrictUndefined's __hash__ fails
		}
	case map[string]any, *exec.Dict:
		return errors.New("unhashable type: 'dict'")
	}
	return nil
}

func minMax(name string, max bool) exec.FilterFunction {
	return func(_ *exec.Evaluator, in *exec.Value, p *exec.VarArgs) *exec.Value {
		a, err := bind(name, p, []string{"case_sensitive", "attribute"}, 0, exec.AsValue(false), exec.AsValue(nil))
		if err != nil {
			return exec.AsValue(err)
		}
		items, err := pyIter(in)
		if err != nil {
			return exec.AsValue(err)
		}
		if len(items) == 0 {
			return exec.AsValue(&undefined{name: name, msg: "No aggregated item, sequence was empty."})
		}
		key, err := keyGetter(a[1], truthy(a[0]), false)
		if err != nil {
			return exec.AsValue(err)
		}
		best, bk := items[0], any(nil)
		if bk, err = key(best); err != nil {
			return exec.AsValue(err)
		}
		for _, it := range items[1:] {
			k, err := key(it)
			if err != nil {
				return exec.AsValue(err)
			}
			c, err := pyCompare(k, bk)
			if err != nil {
				return errValue("'%s' not supported between instances of '%s' and '%s'", map[bool]string{true: ">", false: "<"}[max], pyTypeName(k), pyTypeName(bk))
			}
			if (max && c > 0) || (!max && c < 0) {
				best, bk = it, k
			}
		}
		return exec.ToValue(best)
	}
}

// hardError turns an undefined value used as a string into an error that
// is no longer an undefined value (default cannot replace it).
func hardError(u *undefined) error { return &usedUndefined{u} }

// usedUndefined is an undefined value that was printed, iterated or
// otherwise used; it keeps the undefined's position and message.
type usedUndefined struct{ u *undefined }

func (e *usedUndefined) Error() string { return e.u.Error() }
func (e *usedUndefined) Unwrap() error { return e.u }

// pyPformat is pprint.pformat for values that fit on one line: repr with
// the keys of dicts sorted.
func filterPprint(_ *exec.Evaluator, in *exec.Value, p *exec.VarArgs) *exec.Value {
	if len(p.Args)+len(p.KwArgs) > 0 {
		return errValue("pprint() takes no arguments")
	}
	s, err := pyFormat(sortedDicts(in.Interface()), true, 0)
	if err != nil {
		return exec.AsValue(err)
	}
	return exec.AsValue(s)
}

func sortedDicts(v any) any {
	switch t := plain(v).(type) {
	case *exec.Dict:
		m := map[string]any{}
		for _, p := range t.Pairs {
			k, ok := plain(p.Key).(string)
			if !ok {
				return v
			}
			m[k] = sortedDicts(p.Value)
		}
		return m
	case []any:
		out := make([]any, len(t))
		for i, x := range t {
			out[i] = sortedDicts(x)
		}
		if _, ok := v.(pyTuple); ok {
			return pyTuple(out)
		}
		return out
	}
	return v
}

func filterReplace(_ *exec.Evaluator, in *exec.Value, p *exec.VarArgs) *exec.Value {
	a, err := bind("replace", p, []string{"old", "new", "count"}, 2, exec.AsValue(nil))
	if err != nil {
		return exec.AsValue(err)
	}
	var s [3]string
	for i, v := range []*exec.Value{in, a[0], a[1]} {
		if s[i], err = pyStr(v); err != nil {
			return exec.AsValue(err)
		}
	}
	n := int64(-1)
	if plain(a[2]) != nil {
		if n, err = intArg(a[2]); err != nil {
			return exec.AsValue(err)
		}
	}
	return exec.AsValue(strings.Replace(s[0], s[1], s[2], int(max(min(n, math.MaxInt32), -1))))
}

// htmlEscape is markupsafe's escape.
var htmlEscape = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", "'", "&#39;", `"`, "&#34;")

func filterEscape(_ *exec.Evaluator, in *exec.Value, p *exec.VarArgs) *exec.Value {
	if len(p.Args)+len(p.KwArgs) > 0 {
		return errValue("escape() takes no arguments")
	}
	if isMarkup(in) {
		return in
	}
	s, err := softStr(in)
	if err != nil {
		return exec.AsValue(err)
	}
	return exec.AsSafeValue(pyMarkup(htmlEscape.Replace(s)))
}

func filterSafe(_ *exec.Evaluator, in *exec.Value, p *exec.VarArgs) *exec.Value {
	if isMarkup(in) {
		return in
	}
	s, err := softStr(in)
	if err != nil {
		return exec.AsValue(err)
	}
	return exec.AsSafeValue(pyMarkup(s))
}

// filterIndent is Jinja2's indent on a string (a non-string fails, as
// s + "\n" does in Python).
func filterIndent(_ *exec.Evaluator, in *exec.Value, p *exec.VarArgs) *exec.Value {
	a, err := bind("indent", p, []string{"width", "first", "blank"}, 0, exec.AsValue(4), exec.AsValue(false), exec.AsValue(false))
	if err != nil {
		return exec.AsValue(err)
	}
	s, ok := plain(in).(string)
	if !ok {
		return errValue("unsupported operand type(s) for +=: '%s' and 'str'", pyTypeName(in))
	}
	var ind string
	switch w := plain(a[0]).(type) {
	case string:
		ind = w
	default:
		n, err := intArg(a[0])
		if err != nil {
			return exec.AsValue(err)
		}
		ind = strings.Repeat(" ", int(max(min(n, maxRange), 0)))
	}
	lines := pySplitlines(s + "\n")
	var rv string
	if truthy(a[2]) {
		rv = strings.Join(lines, "\n"+ind)
	} else {
		rv = lines[0]
		for _, l := range lines[1:] {
			rv += "\n"
			if l != "" {
				rv += ind
			}
			rv += l
		}
	}
	if truthy(a[1]) {
		rv = ind + rv
	}
	return keepMarkup(in, rv)
}

// pySplitlines is str.splitlines() (no ends kept).
func pySplitlines(s string) []string {
	var out []string
	start := 0
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch r {
		case '\n', '\r', '\v', '\f', 0x1c, 0x1d, 0x1e, 0x85, 0x2028, 0x2029:
			out = append(out, s[start:i])
			if r == '\r' && i+1 < len(s) && s[i+1] == '\n' {
				size++
			}
			start = i + size
		}
		i += size
	}
	if start < len(s) {
		out = append(out, s[start:])
	}
	return out
}

func filterTruncate(_ *exec.Evaluator, in *exec.Value, p *exec.VarArgs) *exec.Value {
	a, err := bind("truncate", p, []string{"length", "killwords", "end", "leeway"}, 0, exec.AsValue(255), exec.AsValue(false), exec.AsValue("..."), exec.AsValue(5))
	if err != nil {
		return exec.AsValue(err)
	}
	n, err := pyLen(in)
	if err != nil {
		return exec.AsValue(err)
	}
	length, err := intArg(a[0])
	if err != nil {
		return exec.AsValue(err)
	}
	end, err := pyStr(a[2])
	if err != nil {
		return exec.AsValue(err)
	}
	leeway, err := intArg(a[3])
	if err != nil {
		return exec.AsValue(err)
	}
	if length < int64(utf8.RuneCountInString(end)) || leeway < 0 {
		return errValue("expected length >= %d, got %d", utf8.RuneCountInString(end), length)
	}
	if int64(n) <= length+leeway {
		return in // whatever it is, as Jinja2 returns it
	}
	s, ok := plain(in).(string)
	if !ok {
		return errValue("can only concatenate %s (not \"str\") to %s", pyTypeName(in), pyTypeName(in))
	}
	r := []rune(s)
	cut := string(r[:length-int64(utf8.RuneCountInString(end))])
	if truthy(a[1]) {
		return keepMarkup(in, cut+end) // a Markup slice plus end is Markup
	}
	if i := strings.LastIndex(cut, " "); i >= 0 {
		cut = cut[:i]
	}
	return keepMarkup(in, cut+end) // a Markup slice plus end is Markup
}

// raw unwraps a gonja value: methods must return plain Go values, since
// gonja takes a returned *exec.Value for an error (it has Error()).
func raw(v any) any {
	if x, ok := v.(*exec.Value); ok {
		if x == nil || !x.Val.IsValid() {
			return nil
		}
		return x.Interface()
	}
	return v
}

// groupTuple is Jinja2's _GroupTuple(grouper, list), a named tuple.
type groupTuple []any

func filterGroupby(_ *exec.Evaluator, in *exec.Value, p *exec.VarArgs) *exec.Value {
	a, err := bind("groupby", p, []string{"attribute", "default", "case_sensitive"}, 1, exec.AsValue(nil), exec.AsValue(false))
	if err != nil {
		return exec.AsValue(err)
	}
	items, err := pyIter(in)
	if err != nil {
		return exec.AsValue(err)
	}
	get, err := attrGetter(a[0])
	if err != nil {
		return exec.AsValue(err)
	}
	cs := truthy(a[2])
	key := func(x any) (any, error) {
		v := get(exec.ToValue(x))
		if u := asUndefined(v); u != nil {
			if plain(a[1]) == nil {
				return nil, hardError(u)
			}
			v = a[1]
		}
		if !cs {
			return ignoreCase(v), nil
		}
		return v, nil
	}
	sorted, err := sortBy(items, key, false)
	if err != nil {
		return exec.AsValue(err)
	}
	out := []any{}
	var cur []any
	var curKey any
	flush := func() error {
		if cur == nil {
			return nil
		}
		g := curKey
		if !cs { // the real key of the first value, not the lower-cased one
			v := get(exec.ToValue(cur[0]))
			if asUndefined(v) != nil {
				v = a[1]
			}
			g = v
		}
		out = append(out, groupTuple{raw(g), cur})
		return nil
	}
	for _, it := range sorted {
		k, err := key(it)
		if err != nil {
			return exec.AsValue(err)
		}
		if cur != nil && pyEqual(k, curKey) {
			cur = append(cur, it)
			continue
		}
		_ = flush()
		cur, curKey = []any{it}, k
	}
	_ = flush()
	return exec.AsValue(out)
}

// filterMap is Jinja2's map: map(attribute=..., default=...) or
// map('filter', *args, **kwargs).
func filterMap(e *exec.Evaluator, in *exec.Value, p *exec.VarArgs) *exec.Value {
	if !truthy(in) { // Jinja2: `if value: for item in value: ...`
		return exec.AsValue([]any{})
	}
	items, err := pyIter(in)
	if err != nil {
		return exec.AsValue(err)
	}
	var fn func(*exec.Value) *exec.Value
	if len(p.Args) == 0 {
		a, err := bind("map", p, []string{"attribute", "default"}, 1, exec.AsValue(nil))
		if err != nil {
			return errValue("map requires a filter argument")
		}
		get, err := attrGetter(a[0])
		if err != nil {
			return exec.AsValue(err)
		}
		fn = func(v *exec.Value) *exec.Value {
			r := get(v)
			if asUndefined(r) != nil && plain(a[1]) != nil {
				return a[1]
			}
			return r
		}
	} else {
		name, ok := plain(p.Args[0]).(string)
		if !ok || !e.Environment.Filters.Exists(name) || strings.HasPrefix(name, "\x00") {
			return errValue("No filter named %s", pyQuote(fmt.Sprint(plain(p.Args[0]))))
		}
		f, _ := e.Environment.Filters.Get(name)
		rest := &exec.VarArgs{Args: p.Args[1:], KwArgs: p.KwArgs}
		fn = func(v *exec.Value) *exec.Value { return f(e, v, rest) }
	}
	out := make([]any, 0, len(items))
	for _, it := range items {
		r := fn(exec.ToValue(it))
		if r.IsError() && asUndefined(r) == nil {
			return r
		}
		out = append(out, r.Interface())
	}
	return exec.AsValue(out)
}

// selectFilter is Jinja2's select, reject, selectattr and rejectattr: keep
// the items for which the test (or the item's truth) is want.
func selectFilter(name string, attr, want bool) exec.FilterFunction {
	return func(e *exec.Evaluator, in *exec.Value, p *exec.VarArgs) *exec.Value {
		if !truthy(in) { // Jinja2: `if value: for item in value: ...`
			return exec.AsValue([]any{})
		}
		items, err := pyIter(in)
		if err != nil {
			return exec.AsValue(err)
		}
		args := p.Args
		get := func(v *exec.Value) *exec.Value { return v }
		if attr {
			if len(args) == 0 {
				return errValue("Missing parameter for attribute name")
			}
			g, err := attrGetter(args[0])
			if err != nil {
				return exec.AsValue(err)
			}
			get, args = g, args[1:]
		}
		test := ""
		if len(args) > 0 {
			s, ok := plain(args[0]).(string)
			if !ok || !e.Environment.Tests.Exists(s) {
				return errValue("No test named %s", pyQuote(fmt.Sprint(plain(args[0]))))
			}
			test, args = s, args[1:]
		}
		out := []any{}
		for _, it := range items {
			v := get(exec.ToValue(it))
			var ok bool
			if test == "" {
				ok = truthy(v) // an undefined item is falsy, as in Occopus' Jinja2
			} else {
				if u := asUndefined(v); u != nil && !undefinedIsFalse[test] && test != "defined" && test != "undefined" {
					return exec.AsValue(hardError(u))
				}
				r := e.ExecuteTestByName(test, v, &exec.VarArgs{Args: args, KwArgs: p.KwArgs})
				if r.IsError() {
					return r
				}
				ok = r.IsTrue()
			}
			if ok == want {
				out = append(out, it)
			}
		}
		return exec.AsValue(out)
	}
}

// pyMarkup is a markupsafe.Markup string (escape, safe, tojson): it prints
// as its text but its repr, inside a container, is Markup('...'), and
// str + Markup escapes the str.
type pyMarkup string

func isMarkup(v *exec.Value) bool {
	if v == nil || !v.Val.IsValid() {
		return false
	}
	_, ok := v.Interface().(pyMarkup)
	return ok || v.Safe
}

var (
	htmlCommentRE = regexp.MustCompile(`(?s)<!--.*?-->`)
	htmlTagRE     = regexp.MustCompile(`(?s)<.*?>`)
)

// filterStriptags is Markup(str(value)).striptags(): comments and tags
// removed, whitespace collapsed, entities unescaped.
func filterStriptags(_ *exec.Evaluator, in *exec.Value, p *exec.VarArgs) *exec.Value {
	if len(p.Args)+len(p.KwArgs) > 0 {
		return errValue("striptags() takes no arguments")
	}
	s, err := softStr(in)
	if err != nil {
		return exec.AsValue(err)
	}
	s = htmlTagRE.ReplaceAllString(htmlCommentRE.ReplaceAllString(s, ""), "")
	s = strings.Join(strings.FieldsFunc(s, pyIsSpace), " ")
	return exec.AsValue(html.UnescapeString(s))
}

// floatToInt is Python's int(f) for a finite float: truncation, exact even
// beyond int64.
func floatToInt(f float64) any {
	if f > -9e18 && f < 9e18 {
		return int64(f)
	}
	z, _ := new(big.Float).SetFloat64(math.Trunc(f)).Int(nil)
	return normBig(z)
}

// filterSlice is Jinja2's slice: the items cut into n columns, the first
// ones one longer; fill_with pads the shorter ones.
func filterSlice(_ *exec.Evaluator, in *exec.Value, p *exec.VarArgs) *exec.Value {
	a, err := bind("slice", p, []string{"slices", "fill_with"}, 1, exec.AsValue(nil))
	if err != nil {
		return exec.AsValue(err)
	}
	n, err := intArg(a[0])
	if err != nil {
		return exec.AsValue(err)
	}
	seq, err := pyIter(in)
	if err != nil {
		return exec.AsValue(err)
	}
	if n > maxRange {
		return errValue("numeric argument too large")
	}
	length := int64(len(seq))
	out := []any{}
	if n <= 0 {
		return exec.AsValue(out)
	}
	per, extra, offset := length/n, length%n, int64(0)
	for k := int64(0); k < n; k++ {
		start := offset + k*per
		if k < extra {
			offset++
		}
		end := offset + (k+1)*per
		tmp := append([]any{}, seq[start:end]...)
		if plain(a[1]) != nil && k >= extra {
			tmp = append(tmp, a[1].Interface())
		}
		out = append(out, tmp)
	}
	return exec.AsValue(out)
}

// urlQuote is Jinja2's url_quote: UTF-8 percent-encoding that keeps
// letters, digits, "_.-~" and, outside a query, "/".
func urlQuote(s string, forQS bool) string {
	var b strings.Builder
	for _, c := range []byte(s) {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', strings.IndexByte("_.-~", c) >= 0, c == '/' && !forQS:
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	if forQS {
		return strings.ReplaceAll(b.String(), "%20", "+")
	}
	return b.String()
}

func filterUrlencode(_ *exec.Evaluator, in *exec.Value, p *exec.VarArgs) *exec.Value {
	if len(p.Args)+len(p.KwArgs) > 0 {
		return errValue("urlencode() takes no arguments")
	}
	_, isIter := plain(in).(*pyIterator)
	if _, err := pyIter(in); err != nil || seqKind(in) == "" && !in.IsDict() && !isIter {
		// A string, or anything that is not iterable: str() of it.
		s, err := pyStr(in)
		if err != nil {
			return exec.AsValue(err)
		}
		return exec.AsValue(urlQuote(s, false))
	}
	items, ok := dictPairs(in)
	if !ok {
		var err error
		if items, err = pyIter(in); err != nil {
			return exec.AsValue(err)
		}
	}
	var parts []string
	for _, it := range items {
		kv, err := pyIter(exec.ToValue(it))
		if _, isStr := plain(it).(string); err != nil || isStr && len(kv) != 2 {
			return errValue("cannot unpack non-iterable %s object", pyTypeName(it))
		}
		if len(kv) != 2 {
			return errValue("not enough values to unpack (expected 2, got %d)", len(kv))
		}
		k, err := pyStr(exec.ToValue(kv[0]))
		if err != nil {
			return exec.AsValue(err)
		}
		v, err := pyStr(exec.ToValue(kv[1]))
		if err != nil {
			return exec.AsValue(err)
		}
		parts = append(parts, urlQuote(k, true)+"="+urlQuote(v, true))
	}
	return exec.AsValue(strings.Join(parts, "&"))
}

// filterTitle is Jinja2's title; it joins words with "".join, so even a
// Markup's title is a plain str.
func filterTitle(_ *exec.Evaluator, in *exec.Value, p *exec.VarArgs) *exec.Value {
	if len(p.Args)+len(p.KwArgs) > 0 {
		return errValue("title() takes no arguments")
	}
	s, err := softStr(in)
	if err != nil {
		return exec.AsValue(err)
	}
	return exec.AsValue(pyTitle(s))
}

// filterAttr is Jinja2's attr: the attribute, never the item (so a dict's
// keys are not attributes); missing is undefined.
func filterAttr(_ *exec.Evaluator, in *exec.Value, p *exec.VarArgs) *exec.Value {
	a, err := bind("attr", p, []string{"name"}, 1)
	if err != nil {
		return exec.AsValue(err)
	}
	name, ok := plain(a[0]).(string)
	if !ok {
		return errValue("attribute name must be string, not %s", pyTypeName(a[0]))
	}
	if g, ok := in.Interface().(groupTuple); ok && (name == "grouper" || name == "list") {
		return exec.ToValue(g[map[string]int{"grouper": 0, "list": 1}[name]])
	}
	if !in.IsDict() && !in.IsList() && !in.IsString() && !in.IsNil() {
		if v, found := in.GetAttribute(name); found && !v.IsError() {
			return v
		}
	}
	return exec.AsValue(&undefined{name: name, msg: fmt.Sprintf("%s has no attribute %s", pyQuote(pyTypeName(in)+" object"), pyQuote(name))})
}

// filterForceescape escapes even a Markup.
func filterForceescape(_ *exec.Evaluator, in *exec.Value, p *exec.VarArgs) *exec.Value {
	if len(p.Args)+len(p.KwArgs) > 0 {
		return errValue("forceescape() takes no arguments")
	}
	s, err := softStr(in)
	if err != nil {
		return exec.AsValue(err)
	}
	return exec.AsSafeValue(pyMarkup(htmlEscape.Replace(s)))
}

// hashKey is a string that equal Python values share (1 == 1.0 == True),
// for the scalars and tuples of them; ok is false for anything else.
func hashKey(v any) (string, bool) {
	switch t := plain(v).(type) {
	case nil:
		return "N", true
	case bool, int64:
		n, _, _, _ := number(t)
		return "n" + strconv.FormatInt(n, 10), true
	case float64:
		if t == math.Trunc(t) && math.Abs(t) < 1<<62 {
			return "n" + strconv.FormatInt(int64(t), 10), true
		}
		return "f" + strconv.FormatFloat(t, 'g', -1, 64), true
	case string:
		return "s" + t, true
	case []any:
		if _, ok := raw(v).(pyTuple); !ok {
			return "", false
		}
		k := "t("
		for _, x := range t {
			xk, ok := hashKey(x)
			if !ok {
				return "", false
			}
			k += strconv.Itoa(len(xk)) + ":" + xk
		}
		return k + ")", true
	}
	return "", false
}
