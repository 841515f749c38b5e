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
	case *undefined:
		return t
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
	switch plain(v).(type) {
	case nil:
		return "NoneType"
	case bool:
		return "bool"
	case int64:
		return "int"
	case float64:
		return "float"
	case string:
		return "str"
	case []any:
		return "list"
	case map[string]any, *exec.Dict:
		return "dict"
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

func pyEqual(a, b any) bool {
	a, b = plain(a), plain(b)
	if ai, af, afl, ok := number(a); ok {
		if bi, bf, bfl, ok := number(b); ok {
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
	li, lf, lfl, lnum := number(l)
	ri, rf, rfl, rnum := number(r)
	isNum := lnum && rnum
	anyFloat := lfl || rfl
	unsupported := func() error {
		return fmt.Errorf("unsupported operand type(s) for %s: '%s' and '%s'", op.Val, pyTypeName(l), pyTypeName(r))
	}
	switch op.Type {
	case tokens.Tilde:
		a, err := pyFormat(l, false, 0)
		if err != nil {
			return nil, err
		}
		c, err := pyFormat(r, false, 0)
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
				return a + c, nil
			}
		}
		if a, ok := l.([]any); ok {
			if c, ok := r.([]any); ok {
				return append(append([]any{}, a...), c...), nil
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
		if s, ok := l.(string); ok && rnum && !rfl {
			if int64(len(s))*rep(ri) > 1<<24 {
				return nil, errors.New("string repetition too large")
			}
			return strings.Repeat(s, int(rep(ri))), nil
		}
		if s, ok := r.(string); ok && lnum && !lfl {
			if int64(len(s))*rep(li) > 1<<24 {
				return nil, errors.New("string repetition too large")
			}
			return strings.Repeat(s, int(rep(li))), nil
		}
		if a, ok := l.([]any); ok && rnum && !rfl {
			if int64(len(a))*rep(ri) > 1<<20 {
				return nil, errors.New("list repetition too large")
			}
			out := []any{}
			for k := int64(0); k < ri; k++ {
				out = append(out, a...)
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
			return math.Floor(lf / rf), nil
		}
		q := li / ri
		if (li%ri != 0) && ((li < 0) != (ri < 0)) {
			q--
		}
		return q, nil
	case tokens.Modulo:
		if s, ok := l.(string); ok {
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
		return math.Pow(lf, rf), nil
	case tokens.Equals:
		return pyEqual(l, r), nil
	case tokens.Ne:
		return !pyEqual(l, r), nil
	case tokens.In:
		return pyContains(r, l)
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
	a, b = plain(a), plain(b)
	if ai, af, afl, ok := number(a); ok {
		if bi, bf, bfl, ok := number(b); ok {
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
	switch c := plain(container).(type) {
	case string:
		s, ok := plain(item).(string)
		if !ok {
			return false, fmt.Errorf("'in <string>' requires string as left operand, not %s", pyTypeName(item))
		}
		return strings.Contains(c, s), nil
	case []any:
		for _, x := range c {
			if pyEqual(x, item) {
				return true, nil
			}
		}
		return false, nil
	case map[string]any:
		s, ok := plain(item).(string)
		if !ok {
			return false, nil
		}
		_, found := c[s]
		return found, nil
	case *exec.Dict:
		for _, p := range c.Pairs {
			if pyEqual(p.Key, item) {
				return true, nil
			}
		}
		return false, nil
	}
	return false, fmt.Errorf("argument of type '%s' is not iterable", pyTypeName(container))
}
