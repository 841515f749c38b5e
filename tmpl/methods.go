package tmpl

import (
	"sort"
	"strings"

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
	List:  builtins.Methods.List,
	Str: copyMethods(builtins.Methods.Str, strings.Fields(`capitalize capwords casefold center count encode
		endswith expandtabs find format format_map isalnum isalpha isascii isdecimal isdigit islower isnumeric
		isprintable isspace istitle isupper join ljust lower lstrip partition removeprefix removesuffix rfind
		rjust rpartition rsplit rstrip split splitlines startswith strip swapcase title upper zfill`),
		map[string]exec.Method[string]{
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
	Dict: copyMethods(builtins.Methods.Dict, strings.Fields("keys values get pop setdefault update copy clear"),
		map[string]exec.Method[map[string]any]{
			"items": func(self map[string]any, _ *exec.Value, a *exec.VarArgs) (any, error) {
				keys := make([]string, 0, len(self))
				for k := range self {
					keys = append(keys, k)
				}
				sort.Strings(keys)
				out := make([]any, len(keys))
				for i, k := range keys {
					out[i] = pyTuple{k, self[k]}
				}
				return out, nil
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
			out := make([]any, len(t))
			for i, x := range t {
				out[len(t)-1-i] = x
			}
			return exec.AsValue(out)
		}
		return exec.AsValue(errorf("%s object is not reversible", pyTypeName(in)))
	}
	gonjaInt, _ := builtins.Filters.Get("int")
	ourFilters["int"] = func(e *exec.Evaluator, in *exec.Value, p *exec.VarArgs) *exec.Value {
		if b, ok := plain(in).(bool); ok {
			return exec.AsValue(map[bool]int{false: 0, true: 1}[b])
		}
		return gonjaInt(e, in, p)
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
