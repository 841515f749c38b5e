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
	"unicode"
	"unicode/utf8"

	"github.com/nikolalohinski/gonja/v2/exec"
	"github.com/nikolalohinski/gonja/v2/tokens"
)

func errorf(format string, args ...any) error { return fmt.Errorf(format, args...) }

// plain normalises a gonja value to the Python-like Go types used by our
// semantics: nil, bool, int64, float64, string, []any, map[string]any,
// *exec.Dict (ordered literal dicts), or the original value.
func plain(v any) any {
	switch t := v.(type) {
	case nil:
		return nil
	case *exec.Value:
		if t == nil || !t.Val.IsValid() {
			return nil
		}
		if u := asUndefined(t); u != nil {
			return u
		}
		return plain(t.Interface())
	case bool, string, float64, int64, []any, map[string]any, *exec.Dict:
		return t
	case pyTuple:
		return []any(t)
	case groupTuple:
		return []any(t)
	case int:
		return int64(t)
	case float32:
		return float64(t)
	case exec.Dict:
		return &t
	case exec.ValuesList:
		out := make([]any, len(t))
		for i, x := range t {
			out[i] = x
		}
		return out
	case reflect.Value:
		if !t.IsValid() {
			return nil
		}
		return plain(t.Interface())
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return rv.Int()
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return int64(rv.Uint())
	case reflect.Float32, reflect.Float64:
		return rv.Float()
	case reflect.String:
		return rv.String()
	case reflect.Bool:
		return rv.Bool()
	case reflect.Slice, reflect.Array:
		out := make([]any, rv.Len())
		for i := range out {
			out[i] = rv.Index(i).Interface()
		}
		return out
	case reflect.Pointer, reflect.Interface:
		if rv.IsNil() {
			return nil
		}
	}
	return v
}

// truthy is Python's bool(); undefined is false.
func truthy(v *exec.Value) bool {
	switch t := plain(v).(type) {
	case nil, *undefined:
		return false
	case *pyIterator:
		return true // an iterator has no len(): always true
	case bool:
		return t
	case int64:
		return t != 0
	case float64:
		return t != 0
	case string:
		return t != ""
	case []any:
		return len(t) > 0
	case map[string]any:
		return len(t) > 0
	case *exec.Dict:
		return len(t.Pairs) > 0
	case error:
		return false
	}
	rv := reflect.ValueOf(plain(v))
	switch rv.Kind() {
	case reflect.Map, reflect.Chan:
		return rv.Len() > 0
	}
	return true
}

// Python renders a Go value the way Python's str() would (True/False/None,
// quoted strings inside containers), so values interpolated into
// contextualisation files look exactly as they did with the Python Occopus.
func Python(v any) string {
	s, _ := pyFormat(v, false, 0)
	return s
}

// pyStr is str() of a template value; it fails on undefined values nested
// in containers.
func pyStr(v *exec.Value) (string, error) { return pyFormat(v, false, 0) }

var errTooDeep = errors.New("value nesting too deep (recursive structure?)")

func pyFormat(v any, repr bool, depth int) (string, error) {
	if depth > 100 {
		return "", errTooDeep
	}
	var b strings.Builder
	err := writePy(&b, v, repr, depth)
	return b.String(), err
}

func writePy(b *strings.Builder, v any, repr bool, depth int) error {
	if depth > 100 {
		return errTooDeep
	}
	raw := v
	if x, ok := raw.(*exec.Value); ok && x != nil {
		raw = x.Interface()
	}
	if g, ok := raw.(groupTuple); ok {
		raw = pyTuple(g) // Jinja2's _GroupTuple prints as a plain tuple
	}
	if m, ok := raw.(pyMarkup); ok && repr {
		b.WriteString("Markup(" + pyQuote(string(m)) + ")")
		return nil
	}
	if tup, ok := raw.(pyTuple); ok {
		b.WriteByte('(')
		for i, x := range tup {
			if i > 0 {
				b.WriteString(", ")
			}
			if err := writePy(b, x, true, depth+1); err != nil {
				return err
			}
		}
		if len(tup) == 1 {
			b.WriteByte(',')
		}
		b.WriteByte(')')
		return nil
	}
	switch t := plain(v).(type) {
	case nil:
		b.WriteString("None")
	case *pyIterator:
		b.WriteString("<" + t.kind + " object at 0x0>") // Python's repr has the address
	case *undefined:
		if repr {
			// repr() of Jinja2's undefined, inside a container: only
			// str() of it fails.
			b.WriteString("Undefined")
			return nil
		}
		if t.lenient {
			return nil // str() of the plain Undefined is ""
		}
		return hardError(t)
	case bool:
		if t {
			b.WriteString("True")
		} else {
			b.WriteString("False")
		}
	case int64:
		b.WriteString(strconv.FormatInt(t, 10))
	case float64:
		b.WriteString(pyFloat(t))
	case string:
		if repr {
			b.WriteString(pyQuote(t))
		} else {
			b.WriteString(t)
		}
	case []any:
		b.WriteByte('[')
		for i, x := range t {
			if i > 0 {
				b.WriteString(", ")
			}
			if err := writePy(b, x, true, depth+1); err != nil {
				return err
			}
		}
		b.WriteByte(']')
	case map[string]any:
		keys := make([]string, 0, len(t))
		for k := range t {
			keys = append(keys, k)
		}
		sort.Strings(keys) // Go maps lost the YAML order; sorted is stable
		b.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(pyQuote(k))
			b.WriteString(": ")
			if err := writePy(b, t[k], true, depth+1); err != nil {
				return err
			}
		}
		b.WriteByte('}')
	case *exec.Dict:
		b.WriteByte('{')
		for i, p := range t.Pairs {
			if i > 0 {
				b.WriteString(", ")
			}
			if err := writePy(b, p.Key, true, depth+1); err != nil {
				return err
			}
			b.WriteString(": ")
			if err := writePy(b, p.Value, true, depth+1); err != nil {
				return err
			}
		}
		b.WriteByte('}')
	case error:
		return t
	default:
		rv := reflect.ValueOf(t)
		if rv.Kind() == reflect.Map {
			type kv struct {
				k string
				v reflect.Value
			}
			var items []kv
			for _, k := range rv.MapKeys() {
				ks, err := pyFormat(k.Interface(), true, depth+1)
				if err != nil {
					return err
				}
				items = append(items, kv{ks, rv.MapIndex(k)})
			}
			sort.Slice(items, func(i, j int) bool { return items[i].k < items[j].k })
			b.WriteByte('{')
			for i, it := range items {
				if i > 0 {
					b.WriteString(", ")
				}
				b.WriteString(it.k)
				b.WriteString(": ")
				if err := writePy(b, it.v.Interface(), true, depth+1); err != nil {
					return err
				}
			}
			b.WriteByte('}')
			return nil
		}
		if s, ok := t.(fmt.Stringer); ok {
			b.WriteString(s.String())
			return nil
		}
		fmt.Fprint(b, t)
	}
	return nil
}

// pyFloat is Python's repr(float): shortest round-trip digits, exponent
// form below 1e-4 and from 1e16 on, always a decimal point otherwise.
func pyFloat(f float64) string {
	switch {
	case math.IsNaN(f):
		return "nan"
	case math.IsInf(f, 1):
		return "inf"
	case math.IsInf(f, -1):
		return "-inf"
	}
	s := strconv.FormatFloat(f, 'e', -1, 64)
	i := strings.IndexByte(s, 'e')
	exp, _ := strconv.Atoi(s[i+1:])
	if exp < -4 || exp >= 16 {
		mant := s[:i]
		sign := "+"
		if exp < 0 {
			sign, exp = "-", -exp
		}
		return fmt.Sprintf("%se%s%02d", mant, sign, exp)
	}
	s = strconv.FormatFloat(f, 'f', -1, 64)
	if !strings.ContainsAny(s, ".") {
		s += ".0"
	}
	return s
}

// pyQuote is Python's repr(str).
func pyQuote(s string) string {
	q := byte('\'')
	if strings.ContainsRune(s, '\'') && !strings.ContainsRune(s, '"') {
		q = '"'
	}
	var b strings.Builder
	b.WriteByte(q)
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			// Invalid UTF-8 cannot come from Python; show the byte.
			fmt.Fprintf(&b, "\\x%02x", s[i])
			i++
			continue
		}
		i += size
		switch {
		case r == rune(q) || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, r)
		case r < 0x80 || unicode.IsPrint(r):
			b.WriteRune(r)
		case r <= 0xff:
			fmt.Fprintf(&b, `\x%02x`, r)
		case r <= 0xffff:
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			fmt.Fprintf(&b, `\U%08x`, r)
		}
	}
	b.WriteByte(q)
	return b.String()
}

func pyTypeName(v any) string {
	switch t := plain(v).(type) {
	case nil:
		return "NoneType"
	case bool:
		return "bool"
	case int64:
		return "int"
	case float64:
		return "float"
	case *big.Int:
		return "int"
	case string:
		return "str"
	case []any:
		return "list"
	case map[string]any, *exec.Dict:
		return "dict"
	case *undefined:
		return "Undefined"
	case *pyIterator:
		return t.kind
	}
	return fmt.Sprintf("%T", v)
}

// number returns v as int64 or float64 (bool counts as int, as in Python).
func number(v any) (i int64, f float64, isFloat, ok bool) {
	switch t := v.(type) {
	case bool:
		if t {
			return 1, 1, false, true
		}
		return 0, 0, false, true
	case int64:
		return t, float64(t), false, true
	case float64:
		return 0, t, true, true
	}
	return 0, 0, false, false
}

// intFloatCmp compares an int with a float exactly, as Python does
// (9223372036854775807 == 2.0**63 is False); ok is false unless exactly
// one side is a float and it is not NaN.
func intFloatCmp(ai int64, af float64, afl bool, bi int64, bf float64, bfl bool) (int, bool) {
	switch {
	case afl == bfl, math.IsNaN(af), math.IsNaN(bf):
		return 0, false
	case afl:
		return big.NewFloat(af).Cmp(new(big.Float).SetInt64(bi)), true
	}
	return new(big.Float).SetInt64(ai).Cmp(big.NewFloat(bf)), true
}

func pyEqual(a, b any) bool {
	a, b = plain(a), plain(b)
	if res, err, ok := bigBinop(&tokens.Token{Type: tokens.Equals}, a, b); ok && err == nil {
		v, _ := res.(bool)
		return v
	}
	if ai, af, afl, ok := number(a); ok {
		if bi, bf, bfl, ok := number(b); ok {
			if c, ok := intFloatCmp(ai, af, afl, bi, bf, bfl); ok {
				return c == 0
			}
			if afl || bfl {
				return af == bf
			}
			return ai == bi
		}
		return false
	}
	switch x := a.(type) {
	case nil:
		return b == nil
	case *pyIterator:
		return x == b // an iterator equals only itself
	case string:
		y, ok := b.(string)
		return ok && x == y
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !pyEqual(x[i], y[i]) {
				return false
			}
		}
		return true
	case map[string]any, *exec.Dict:
		ka, kb := dictItems(x), dictItems(b)
		if ka == nil || kb == nil || len(ka) != len(kb) {
			return false
		}
		for k, v := range ka {
			w, ok := kb[k]
			if !ok || !pyEqual(v, w) {
				return false
			}
		}
		return true
	}
	return reflect.DeepEqual(a, b)
}

// dictItems flattens a dict to string keys (Python-quoted for non-strings).
func dictItems(v any) map[string]any {
	switch t := v.(type) {
	case map[string]any:
		return t
	case *exec.Dict:
		out := map[string]any{}
		for _, p := range t.Pairs {
			k, _ := pyFormat(p.Key, true, 0)
			if s, ok := plain(p.Key).(string); ok {
				k = s
			}
			out[k] = p.Value
		}
		return out
	}
	return nil
}

// bigOp computes an integer operation exactly, like Python's unbounded
// ints: the result is an int64 when it fits and a *big.Int (printed in
// decimal) otherwise, instead of silently wrapping around.
func bigOp(a, b int64, op func(z, x, y *big.Int) *big.Int) any {
	r := op(new(big.Int), big.NewInt(a), big.NewInt(b))
	if r.IsInt64() {
		return r.Int64()
	}
	return r
}

// binop implements Python semantics for the binary operators gonja gets
// wrong (string + int, floor division and modulo of negatives, division by
// zero, "%" string formatting, mixed-type comparisons).
func binop(op *tokens.Token, lv, rv *exec.Value) (any, error) {
	l, r := plain(lv), plain(rv)
	if res, err, ok := bigBinop(op, l, r); ok {
		return res, err
	}
	li, lf, lfl, lnum := number(l)
	ri, rf, rfl, rnum := number(r)
	isNum := lnum && rnum
	anyFloat := lfl || rfl
	unsupported := func() error {
		return fmt.Errorf("unsupported operand type(s) for %s: '%s' and '%s'", op.Val, pyTypeName(l), pyTypeName(r))
	}
	switch op.Type {
	case tokens.Tilde:
		a, err := pyFormat(lv, false, 0) // not l: plain turns tuples into lists
		if err != nil {
			return nil, err
		}
		c, err := pyFormat(rv, false, 0)
		if err != nil {
			return nil, err
		}
		return a + c, nil
	case tokens.Addition:
		switch {
		case isNum && anyFloat:
			return lf + rf, nil
		case isNum:
			return bigOp(li, ri, (*big.Int).Add), nil
		}
		if a, ok := l.(string); ok {
			if c, ok := r.(string); ok {
				// Markup + str (and str + Markup) escapes the str.
				_, lm := lv.Interface().(pyMarkup)
				_, rm := rv.Interface().(pyMarkup)
				switch {
				case lm && !rm:
					return pyMarkup(a + htmlEscape.Replace(c)), nil
				case rm && !lm:
					return pyMarkup(htmlEscape.Replace(a) + c), nil
				case lm && rm:
					return pyMarkup(a + c), nil
				}
				return a + c, nil
			}
		}
		if a, ok := l.([]any); ok {
			if c, ok := r.([]any); ok {
				lk, rk := seqKind(lv), seqKind(rv)
				if lk != rk {
					return nil, fmt.Errorf("can only concatenate %s (not \"%s\") to %s", lk, rk, lk)
				}
				res := append(append([]any{}, a...), c...)
				if lk == "tuple" {
					return pyTuple(res), nil
				}
				return res, nil
			}
		}
		return nil, unsupported()
	case tokens.Subtraction:
		switch {
		case isNum && anyFloat:
			return lf - rf, nil
		case isNum:
			return bigOp(li, ri, (*big.Int).Sub), nil
		}
		return nil, unsupported()
	case tokens.Multiply:
		switch {
		case isNum && anyFloat:
			return lf * rf, nil
		case isNum:
			return bigOp(li, ri, (*big.Int).Mul), nil
		}
		rep := func(n int64) int64 {
			if n < 0 {
				return 0
			}
			return n
		}
		// tooMany reports whether n copies of size units exceed limit,
		// without the multiplication (which overflows for a huge n).
		tooMany := func(size int, n, limit int64) bool {
			return size > 0 && rep(n) > limit/int64(size)
		}
		if _, ok := r.(string); ok && lnum && !lfl { // n * str is str * n
			l, r, lv, rv, li, ri = r, l, rv, lv, ri, li
			lnum, rnum, lfl, rfl = rnum, lnum, rfl, lfl
		}
		if s, ok := l.(string); ok && rnum && !rfl {
			if tooMany(len(s), ri, 1<<24) {
				return nil, errors.New("string repetition too large")
			}
			if s == "" {
				ri = 0
			}
			out := strings.Repeat(s, int(rep(ri)))
			if _, m := lv.Interface().(pyMarkup); m {
				return pyMarkup(out), nil
			}
			return out, nil
		}
		if s, ok := r.(string); ok && lnum && !lfl {
			if tooMany(len(s), li, 1<<24) {
				return nil, errors.New("string repetition too large")
			}
			return strings.Repeat(s, int(rep(li))), nil
		}
		if _, ok := r.([]any); ok && lnum && !lfl { // n * list is list * n
			l, r, lv, rv, li, ri = r, l, rv, lv, ri, li
			lnum, rnum, lfl, rfl = rnum, lnum, rfl, lfl
		}
		if a, ok := l.([]any); ok && rnum && !rfl {
			if tooMany(len(a), ri, 1<<20) {
				return nil, errors.New("list repetition too large")
			}
			if len(a) == 0 {
				ri = 0 // [] * 10**18 is [] at once
			}
			out := []any{}
			for k := int64(0); k < ri; k++ {
				out = append(out, a...)
			}
			if seqKind(lv) == "tuple" {
				return pyTuple(out), nil
			}
			return out, nil
		}
		return nil, unsupported()
	case tokens.Division:
		if !isNum {
			return nil, unsupported()
		}
		if rf == 0 {
			return nil, errors.New("division by zero")
		}
		return lf / rf, nil
	case tokens.FloorDivision:
		if !isNum {
			return nil, unsupported()
		}
		if rf == 0 {
			return nil, errors.New("integer division or modulo by zero")
		}
		if anyFloat {
			return floatFloorDiv(lf, rf), nil
		}
		q := li / ri
		if (li%ri != 0) && ((li < 0) != (ri < 0)) {
			q--
		}
		return q, nil
	case tokens.Modulo:
		if s, ok := l.(string); ok {
			// Only a tuple is a list of arguments; a list is one.
			switch seqKind(rv) {
			case "tuple":
			case "list":
				r = percentObject{r}
			default:
				r = raw(rv) // a Markup stays one, for its repr
			}
			return pyPercent(s, r)
		}
		if !isNum {
			return nil, unsupported()
		}
		if rf == 0 {
			return nil, errors.New("integer division or modulo by zero")
		}
		if anyFloat {
			m := math.Mod(lf, rf)
			if m != 0 && (m < 0) != (rf < 0) {
				m += rf
			}
			if m == 0 {
				m = math.Copysign(0, rf) // Python: the sign of the divisor
			}
			return m, nil
		}
		m := li % ri
		if m != 0 && (m < 0) != (ri < 0) {
			m += ri
		}
		return m, nil
	case tokens.Power:
		if !isNum {
			return nil, unsupported()
		}
		if !anyFloat && ri >= 0 {
			if ri > 4096 {
				return nil, errors.New("exponent too large")
			}
			return bigOp(li, ri, func(z, x, y *big.Int) *big.Int { return z.Exp(x, y, nil) }), nil
		}
		if lf == 0 && rf < 0 {
			return nil, errors.New("0.0 cannot be raised to a negative power")
		}
		if lf < 0 && rf != math.Trunc(rf) {
			return nil, errors.New("a negative number to a fractional power is a complex number, which is not supported")
		}
		p := floatPow(lf, rf)
		if math.IsInf(p, 0) && !math.IsInf(lf, 0) && !math.IsInf(rf, 0) {
			return nil, errors.New("(34, 'Numerical result out of range')")
		}
		return p, nil
	case tokens.Equals:
		return pyEqual(l, r) && seqKind(lv) == seqKind(rv), nil
	case tokens.Ne:
		return !pyEqual(l, r) || seqKind(lv) != seqKind(rv), nil
	case tokens.In:
		return pyContains(r, lv) // lv: a tuple is hashable, a list is not
	case tokens.LowerThan, tokens.LowerThanOrEqual, tokens.GreaterThan, tokens.GreaterThanOrEqual:
		c, err := pyCompare(l, r)
		if err != nil {
			return nil, fmt.Errorf("'%s' not supported between instances of '%s' and '%s'", op.Val, pyTypeName(l), pyTypeName(r))
		}
		switch op.Type {
		case tokens.LowerThan:
			return c < 0, nil
		case tokens.LowerThanOrEqual:
			return c <= 0, nil
		case tokens.GreaterThan:
			return c > 0, nil
		}
		return c >= 0, nil
	}
	return nil, fmt.Errorf("unsupported operator %q", op.Val)
}

func pyCompare(a, b any) (int, error) {
	if x, ok := a.(eqKey); ok {
		if y, ok := b.(eqKey); ok {
			if pyEqual(x.v, y.v) {
				return 0, nil
			}
			return pyCompare(x.v, y.v)
		}
	}
	a, b = plain(a), plain(b)
	if res, err, ok := bigBinop(&tokens.Token{Type: tokens.LowerThan}, a, b); ok && err == nil {
		if res == true {
			return -1, nil
		}
		eq, _, _ := bigBinop(&tokens.Token{Type: tokens.Equals}, a, b)
		if eq == true {
			return 0, nil
		}
		return 1, nil
	}
	if ai, af, afl, ok := number(a); ok {
		if bi, bf, bfl, ok := number(b); ok {
			if c, ok := intFloatCmp(ai, af, afl, bi, bf, bfl); ok {
				return c, nil
			}
			if afl || bfl {
				switch {
				case af < bf:
					return -1, nil
				case af > bf:
					return 1, nil
				}
				return 0, nil
			}
			switch {
			case ai < bi:
				return -1, nil
			case ai > bi:
				return 1, nil
			}
			return 0, nil
		}
	}
	if x, ok := a.(string); ok {
		if y, ok := b.(string); ok {
			return strings.Compare(x, y), nil
		}
	}
	if x, ok := a.([]any); ok {
		if y, ok := b.([]any); ok {
			for i := 0; i < len(x) && i < len(y); i++ {
				if pyEqual(x[i], y[i]) {
					continue
				}
				return pyCompare(x[i], y[i])
			}
			return len(x) - len(y), nil
		}
	}
	return 0, errors.New("not comparable")
}

func pyContains(container, item any) (bool, error) {
	if it, ok := plain(container).(*pyIterator); ok {
		container = it.items // Python's in iterates
	}
	switch c := plain(container).(type) {
	case string:
		s, ok := plain(item).(string)
		if !ok {
			return false, fmt.Errorf("'in <string>' requires string as left operand, not %s", pyTypeName(item))
		}
		return strings.Contains(c, s), nil
	case []any:
		for _, x := range c {
			if u, ok := plain(x).(*undefined); ok && !u.lenient {
				return false, hardError(u) // Python compares with ==, which fails
			}
			if pyEqual(x, item) {
				return true, nil
			}
		}
		return false, nil
	case map[string]any:
		if err := hashable(item); err != nil {
			return false, err
		}
		s, ok := plain(item).(string)
		if !ok {
			return false, nil
		}
		_, found := c[s]
		return found, nil
	case *exec.Dict:
		if err := hashable(item); err != nil {
			return false, err
		}
		for _, p := range c.Pairs {
			if pyEqual(p.Key, item) {
				return true, nil
			}
		}
		return false, nil
	}
	return false, fmt.Errorf("argument of type '%s' is not iterable", pyTypeName(container))
}

// seqKind tells a tuple from a list (plain makes both []any), for the
// operators where Python tells them apart; "" for anything else.
func seqKind(v *exec.Value) string {
	if v == nil || !v.Val.IsValid() {
		return ""
	}
	switch v.Interface().(type) {
	case pyTuple, groupTuple:
		return "tuple"
	}
	if _, ok := plain(v).([]any); ok {
		return "list"
	}
	return ""
}

// floatFloorDiv is Python's float //, computed as CPython does (from
// fmod), which differs from floor(a/b) when a/b rounds up to an integer.
func floatFloorDiv(a, b float64) float64 {
	mod := math.Mod(a, b)
	div := (a - mod) / b
	if mod != 0 && (b < 0) != (mod < 0) {
		div--
	}
	if div == 0 {
		return math.Copysign(0, a/b)
	}
	f := math.Floor(div)
	if div-f > 0.5 {
		f++
	}
	return f
}

// toBig returns an integer (int64, bool or *big.Int) as a big.Int.
func toBig(v any) (*big.Int, bool) {
	switch t := v.(type) {
	case *big.Int:
		return t, true
	case int64:
		return big.NewInt(t), true
	case bool:
		if t {
			return big.NewInt(1), true
		}
		return big.NewInt(0), true
	}
	return nil, false
}

func normBig(z *big.Int) any {
	if z.IsInt64() {
		return z.Int64()
	}
	return z
}

func bigFloat(z *big.Int) float64 {
	f, _ := new(big.Float).SetInt(z).Float64()
	return f
}

// bigBinop does integer arithmetic when an operand is beyond int64 (Python
// ints have no limit); ok is false when neither operand is.
func bigBinop(op *tokens.Token, l, r any) (any, error, bool) {
	_, lb := l.(*big.Int)
	_, rb := r.(*big.Int)
	if !lb && !rb {
		return nil, nil, false
	}
	x, xok := toBig(l)
	y, yok := toBig(r)
	if !xok || !yok {
		// With a float, Python converts the int to float.
		if f, ok := r.(float64); ok && xok {
			res, err := binop(op, exec.AsValue(bigFloat(x)), exec.AsValue(f))
			return res, err, true
		}
		if f, ok := l.(float64); ok && yok {
			res, err := binop(op, exec.AsValue(f), exec.AsValue(bigFloat(y)))
			return res, err, true
		}
		return nil, nil, false // strings, lists: the general rules
	}
	z := new(big.Int)
	switch op.Type {
	case tokens.Addition:
		return normBig(z.Add(x, y)), nil, true
	case tokens.Subtraction:
		return normBig(z.Sub(x, y)), nil, true
	case tokens.Multiply:
		if x.BitLen()+y.BitLen() > 1<<16 {
			return nil, errors.New("integer too large"), true
		}
		return normBig(z.Mul(x, y)), nil, true
	case tokens.Division:
		if y.Sign() == 0 {
			return nil, errors.New("division by zero"), true
		}
		f, _ := new(big.Rat).SetFrac(x, y).Float64()
		return f, nil, true
	case tokens.FloorDivision, tokens.Modulo:
		if y.Sign() == 0 {
			return nil, errors.New("integer division or modulo by zero"), true
		}
		q, m := new(big.Int), new(big.Int)
		q.DivMod(x, y, m) // Euclidean: 0 <= m < |y|
		if m.Sign() != 0 && y.Sign() < 0 {
			q.Add(q, big.NewInt(1))
			m.Add(m, y)
		}
		if op.Type == tokens.Modulo {
			return normBig(m), nil, true
		}
		return normBig(q), nil, true
	case tokens.Power:
		if y.Sign() < 0 {
			res, err := binop(op, exec.AsValue(bigFloat(x)), exec.AsValue(bigFloat(y)))
			return res, err, true
		}
		if !y.IsInt64() || int64(x.BitLen())*y.Int64() > 1<<16 {
			return nil, errors.New("exponent too large"), true
		}
		return normBig(z.Exp(x, y, nil)), nil, true
	case tokens.Equals, tokens.Ne, tokens.LowerThan, tokens.LowerThanOrEqual, tokens.GreaterThan, tokens.GreaterThanOrEqual:
		c := x.Cmp(y)
		return map[tokens.Type]bool{tokens.Equals: c == 0, tokens.Ne: c != 0, tokens.LowerThan: c < 0, tokens.LowerThanOrEqual: c <= 0,
			tokens.GreaterThan: c > 0, tokens.GreaterThanOrEqual: c >= 0}[op.Type], nil, true
	}
	return nil, nil, false
}

// floatPow is C's pow() as Python calls it: glibc's is correctly rounded,
// Go's math.Pow may be off by an ulp. An integral exponent is computed
// exactly and rounded once.
func floatPow(x, y float64) float64 {
	if y != math.Trunc(y) || math.Abs(y) > 64 || x == 0 || math.IsInf(x, 0) || math.IsNaN(x) {
		return math.Pow(x, y)
	}
	n := int(math.Abs(y))
	prec := uint(53*n + 128)
	z := new(big.Float).SetPrec(prec).SetInt64(1)
	bx := new(big.Float).SetPrec(prec).SetFloat64(x)
	for i := 0; i < n; i++ {
		z.Mul(z, bx)
	}
	if y < 0 {
		z.Quo(new(big.Float).SetPrec(prec).SetInt64(1), z)
	}
	f, _ := z.Float64()
	return f
}
