package tmpl

import (
	"fmt"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/nikolalohinski/gonja/v2/builtins"
	"github.com/nikolalohinski/gonja/v2/exec"
)

// pyTuple is a Python tuple: it behaves as a list for gonja but prints with
// parentheses, as dict.items() pairs and (a, b) literals do in Jinja2.
type pyTuple []any

// copyMethods builds a method set from gonja's by name, replacing some.
func copyMethods[T any](src *exec.MethodSet[T], names []string, repl map[string]exec.Method[T]) *exec.MethodSet[T] {
	m := map[string]exec.Method[T]{}
	for _, n := range names {
		if f, ok := src.Get(n); ok {
			m[n] = f
		}
	}
	for n, f := range repl {
		m[n] = f
	}
	return exec.NewMethodSet(m)
}

var methodSet = exec.Methods{
	Bool:  builtins.Methods.Bool,
	Int:   builtins.Methods.Int,
	Float: builtins.Methods.Float,
	List: copyMethods(builtins.Methods.List, []string{"append", "reverse", "copy"}, map[string]exec.Method[[]any]{
		"count": listSearch("count"),
		"index": listSearch("index"),
	}),
	Str: copyMethods(builtins.Methods.Str, strings.Fields(`capitalize capwords casefold count encode
		endswith expandtabs find format format_map isalnum isalpha isascii isdecimal isdigit islower isnumeric
		isprintable isspace istitle isupper join lower partition removeprefix removesuffix rfind
		rpartition rsplit splitlines startswith swapcase title upper zfill`),
		map[string]exec.Method[string]{
			"split":  strSplit,
			"strip":  strStrip(true, true),
			"lstrip": strStrip(true, false),
			"rstrip": strStrip(false, true),
			"center": strPad("center"),
			"ljust":  strPad("ljust"),
			"rjust":  strPad("rjust"),
			// gonja requires the optional count argument.
			"replace": func(self string, _ *exec.Value, a *exec.VarArgs) (any, error) {
				if len(a.Args) < 2 || len(a.Args) > 3 {
					return nil, errorf("replace() takes 2 or 3 arguments")
				}
				old, _ := strArg(a.Args[0])
				repl, _ := strArg(a.Args[1])
				n := -1
				if len(a.Args) == 3 {
					c, ok := plain(a.Args[2]).(int64)
					if !ok {
						return nil, errorf("replace() count must be an integer")
					}
					n = int(c)
				}
				return strings.Replace(self, old, repl, n), nil
			},
		}),
	Dict: copyMethods(builtins.Methods.Dict, strings.Fields("pop setdefault update copy clear"),
		map[string]exec.Method[map[string]any]{
			// In the dict's order: a literal's, or a Go map's sorted keys.
			"items":  dictMethod("items", func(t pyTuple) any { return t }),
			"keys":   dictMethod("keys", func(t pyTuple) any { return t[0] }),
			"values": dictMethod("values", func(t pyTuple) any { return t[1] }),
			"get": func(_ map[string]any, self *exec.Value, a *exec.VarArgs) (any, error) {
				b, err := bind("get", a, []string{"key", "default"}, 1, exec.AsValue(nil))
				if err != nil {
					return nil, err
				}
				if err := hashable(b[0]); err != nil {
					return nil, err
				}
				pairs, _ := dictPairs(self)
				for _, p := range pairs {
					if t := p.(pyTuple); pyEqual(t[0], b[0]) {
						return raw(t[1]), nil
					}
				}
				return raw(b[1]), nil
			},
		}),
}

// fixedFilters are filters whose gonja versions differ from Jinja2.
func fixedFilters() map[string]exec.FilterFunction {
	ourFilters := map[string]exec.FilterFunction{}
	ourFilters["reverse"] = func(_ *exec.Evaluator, in *exec.Value, _ *exec.VarArgs) *exec.Value {
		switch t := plain(in).(type) {
		case string:
			r := []rune(t)
			for i, j := 0, len(r)-1; i < j; i, j = i+1, j-1 {
				r[i], r[j] = r[j], r[i]
			}
			return exec.AsValue(string(r))
		case []any:
			kind := "list_reverseiterator"
			if seqKind(in) == "tuple" {
				kind = "reversed"
			}
			return exec.AsValue(&pyIterator{kind: kind, items: reversedItems(t)})
		case map[string]any, *exec.Dict: // Python 3.8+ reverses a dict's keys
			keys, _ := pyIter(in)
			return exec.AsValue(&pyIterator{kind: "dict_reversekeyiterator", items: reversedItems(keys)})
		case *pyIterator:
			// Not reversible: Jinja2 falls back to a reversed list.
			return exec.AsValue(reversedItems(t.items))
		}
		return exec.AsValue(errorf("'%s' object is not reversible", pyTypeName(in)))
	}
	firstLast := func(last bool) exec.FilterFunction {
		return func(_ *exec.Evaluator, in *exec.Value, _ *exec.VarArgs) *exec.Value {
			var items []any
			switch t := plain(in).(type) {
			case string:
				for _, r := range t {
					items = append(items, string(r))
				}
			case []any:
				items = t
			case *pyIterator:
				if last { // Jinja2's last calls reversed() on it
					return exec.AsValue(errorf("'%s' object is not reversible", t.kind))
				}
				items = t.items
			case map[string]any:
				for k := range t {
					items = append(items, k)
				}
				sort.Slice(items, func(i, j int) bool { return items[i].(string) < items[j].(string) })
			case *exec.Dict:
				for _, p := range t.Pairs {
					items = append(items, p.Key)
				}
			default:
				return exec.AsValue(errorf("%s object is not iterable", pyTypeName(in)))
			}
			if len(items) == 0 {
				return exec.AsValue(&undefined{msg: "no first/last item, sequence was empty"})
			}
			if last {
				return exec.ToValue(items[len(items)-1])
			}
			return exec.ToValue(items[0])
		}
	}
	ourFilters["first"] = firstLast(false)
	ourFilters["last"] = firstLast(true)
	return ourFilters
}

func dictMethod(name string, part func(pyTuple) any) exec.Method[map[string]any] {
	return func(_ map[string]any, self *exec.Value, a *exec.VarArgs) (any, error) {
		if len(a.Args)+len(a.KwArgs) > 0 {
			return nil, fmt.Errorf("dict.%s() takes no arguments", name)
		}
		pairs, _ := dictPairs(self)
		out := make([]any, len(pairs))
		for i, p := range pairs {
			out[i] = part(p.(pyTuple))
		}
		return out, nil
	}
}

// strPad is str.center/ljust/rjust(width, fillchar=' '); gonja's default
// fill character is a number.
func strPad(name string) exec.Method[string] {
	return func(self string, _ *exec.Value, a *exec.VarArgs) (any, error) {
		b, err := bind(name, a, []string{"width", "fillchar"}, 1, exec.AsValue(" "))
		if err != nil {
			return nil, err
		}
		w, err := intArg(b[0])
		if err != nil {
			return nil, err
		}
		fill, ok := plain(b[1]).(string)
		if !ok || utf8.RuneCountInString(fill) != 1 {
			return nil, fmt.Errorf("the fill character must be exactly one character long")
		}
		n := utf8.RuneCountInString(self)
		w = min(w, maxRange)
		if int(w) <= n {
			return self, nil
		}
		marg := int(w) - n
		left := 0
		switch name {
		case "center":
			left = marg/2 + (marg & int(w) & 1)
		case "rjust":
			left = marg
		}
		return strings.Repeat(fill, left) + self + strings.Repeat(fill, marg-left), nil
	}
}

// strStrip is str.strip/lstrip/rstrip(chars=None).
func strStrip(left, right bool) exec.Method[string] {
	return func(self string, _ *exec.Value, a *exec.VarArgs) (any, error) {
		b, err := bind("strip", a, []string{"chars"}, 0, exec.AsValue(nil))
		if err != nil {
			return nil, err
		}
		cut := pyIsSpace
		switch c := plain(b[0]).(type) {
		case nil:
		case string:
			cut = func(r rune) bool { return strings.ContainsRune(c, r) }
		default:
			return nil, fmt.Errorf("strip arg must be None or str")
		}
		if left {
			self = strings.TrimLeftFunc(self, cut)
		}
		if right {
			self = strings.TrimRightFunc(self, cut)
		}
		return self, nil
	}
}

// runeSlice is s[start:end] in code points, with Python's slice bounds.
func runeSlice(s string, a []*exec.Value) ([]rune, int, error) {
	r := []rune(s)
	var bounds [2]*int64
	for i, v := range a {
		if v == nil || plain(v) == nil {
			continue
		}
		n, err := intArg(v)
		if err != nil {
			return nil, 0, err
		}
		bounds[i] = &n
	}
	idx := sliceIndices(int64(len(r)), bounds[0], bounds[1], 1)
	if len(idx) == 0 {
		start := 0
		if bounds[0] != nil {
			start = int(max(min(*bounds[0], int64(len(r))), 0))
			if *bounds[0] < 0 {
				start = int(max(int64(len(r))+*bounds[0], 0))
			}
		}
		return []rune{}, start, nil
	}
	return r[idx[0] : idx[len(idx)-1]+1], int(idx[0]), nil
}

// strAffix is str.startswith/endswith(prefix, start=None, end=None); the
// prefix may be a tuple of strings.
func strAffix(name string, suffix bool) exec.Method[string] {
	return func(self string, _ *exec.Value, a *exec.VarArgs) (any, error) {
		b, err := bind(name, a, []string{"prefix", "start", "end"}, 1, exec.AsValue(nil), exec.AsValue(nil))
		if err != nil {
			return nil, err
		}
		part, start, err := runeSlice(self, b[1:])
		if err != nil {
			return nil, err
		}
		// Python: with start beyond the string, even "" does not match.
		if b[1] != nil && plain(b[1]) != nil && start > utf8.RuneCountInString(self) {
			return false, nil
		}
		s := string(part)
		var cands []any
		if seqKind(b[0]) == "tuple" {
			cands = plain(b[0]).([]any)
		} else {
			cands = []any{plain(b[0])}
		}
		for _, c := range cands {
			p, ok := plain(c).(string)
			if !ok {
				return nil, fmt.Errorf("%s first arg must be str or a tuple of str, not %s", name, pyTypeName(c))
			}
			if (!suffix && strings.HasPrefix(s, p)) || (suffix && strings.HasSuffix(s, p)) {
				return true, nil
			}
		}
		return false, nil
	}
}

// strSearch is str.count/find/rfind(sub, start=None, end=None).
func strSearch(name string) exec.Method[string] {
	return func(self string, _ *exec.Value, a *exec.VarArgs) (any, error) {
		b, err := bind(name, a, []string{"sub", "start", "end"}, 1, exec.AsValue(nil), exec.AsValue(nil))
		if err != nil {
			return nil, err
		}
		sub, ok := plain(b[0]).(string)
		if !ok {
			return nil, fmt.Errorf("must be str, not %s", pyTypeName(b[0]))
		}
		part, start, err := runeSlice(self, b[1:])
		if err != nil {
			return nil, err
		}
		s := string(part)
		switch name {
		case "count":
			if b[1] != nil && plain(b[1]) != nil && start > utf8.RuneCountInString(self) {
				return 0, nil
			}
			if sub == "" {
				return utf8.RuneCountInString(s) + 1, nil
			}
			return strings.Count(s, sub), nil
		case "find":
			i := strings.Index(s, sub)
			if i < 0 || (start > utf8.RuneCountInString(self)) {
				return -1, nil
			}
			return start + utf8.RuneCountInString(s[:i]), nil
		}
		i := strings.LastIndex(s, sub)
		if i < 0 || (start > utf8.RuneCountInString(self)) {
			return -1, nil
		}
		return start + utf8.RuneCountInString(s[:i]), nil
	}
}

// pyStrTitle is str.title(): a letter after a non-letter is upper-cased,
// every other letter lower-cased.
func pyStrTitle(s string) string {
	var b strings.Builder
	prevCased := false
	for _, r := range s {
		switch {
		case unicode.IsLetter(r) && !prevCased:
			b.WriteRune(unicode.ToTitle(r))
		case unicode.IsLetter(r):
			b.WriteRune(unicode.ToLower(r))
		default:
			b.WriteRune(r)
		}
		prevCased = unicode.IsUpper(r) || unicode.IsLower(r) || unicode.IsTitle(r)
	}
	return b.String()
}

func strNoArgs(name string, f func(string) any) exec.Method[string] {
	return func(self string, _ *exec.Value, a *exec.VarArgs) (any, error) {
		if len(a.Args)+len(a.KwArgs) > 0 {
			return nil, fmt.Errorf("str.%s() takes no arguments", name)
		}
		return f(self), nil
	}
}

var extraStrMethods = map[string]exec.Method[string]{
	"startswith": strAffix("startswith", false),
	"endswith":   strAffix("endswith", true),
	"count":      strSearch("count"),
	"find":       strSearch("find"),
	"rfind":      strSearch("rfind"),
	"upper":      strNoArgs("upper", func(s string) any { return strings.ToUpper(s) }),
	"lower":      strNoArgs("lower", func(s string) any { return strings.ToLower(s) }),
	"title":      strNoArgs("title", func(s string) any { return pyStrTitle(s) }),
	"capitalize": strNoArgs("capitalize", func(s string) any { return pyCapitalize(s) }),
	"swapcase": strNoArgs("swapcase", func(s string) any {
		return strings.Map(func(r rune) rune {
			if unicode.IsUpper(r) {
				return unicode.ToLower(r)
			}
			if unicode.IsLower(r) {
				return unicode.ToUpper(r)
			}
			return r
		}, s)
	}),
	"isdigit": strNoArgs("isdigit", func(s string) any {
		return s != "" && strings.IndexFunc(s, func(r rune) bool { return !unicode.IsDigit(r) && !unicode.Is(unicode.No, r) }) < 0
	}),
	"zfill": func(self string, _ *exec.Value, a *exec.VarArgs) (any, error) {
		b, err := bind("zfill", a, []string{"width"}, 1)
		if err != nil {
			return nil, err
		}
		w, err := intArg(b[0])
		if err != nil {
			return nil, err
		}
		n := utf8.RuneCountInString(self)
		if int64(n) >= w {
			return self, nil
		}
		pad := strings.Repeat("0", int(min(w, maxRange))-n)
		if self != "" && (self[0] == '+' || self[0] == '-') {
			return self[:1] + pad + self[1:], nil
		}
		return pad + self, nil
	},
}

// listSearch is list.count(x) and list.index(x).
func listSearch(name string) exec.Method[[]any] {
	return func(_ []any, self *exec.Value, a *exec.VarArgs) (any, error) {
		b, err := bind(name, a, []string{"value"}, 1)
		if err != nil {
			return nil, err
		}
		items, _ := pyIter(self)
		n := 0
		for i, x := range items {
			if pyEqual(x, b[0]) {
				if name == "index" {
					return i, nil
				}
				n++
			}
		}
		if name == "index" {
			s, _ := pyFormat(b[0], true, 0)
			return nil, fmt.Errorf("%s is not in list", s)
		}
		return n, nil
	}
}

func init() {
	// Python's str methods where gonja's answer differently (count of
	// "", title of "they're", ...).
	m := map[string]exec.Method[string]{}
	for name, f := range extraStrMethods {
		m[name] = f
	}
	names := strings.Fields(`capwords casefold encode endswith expandtabs format format_map isalnum isalpha isascii
		isdecimal islower isnumeric isprintable isspace istitle isupper join partition removeprefix removesuffix
		rpartition rsplit splitlines`)
	for _, n := range names {
		if _, ours := m[n]; ours {
			continue
		}
		if f, ok := builtins.Methods.Str.Get(n); ok {
			m[n] = f
		}
	}
	for _, n := range []string{"split", "strip", "lstrip", "rstrip", "center", "ljust", "rjust", "replace"} {
		f, _ := methodSet.Str.Get(n)
		m[n] = f
	}
	methodSet.Str = exec.NewMethodSet(m)
}
