package tmpl

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"math/big"
	osexec "os/exec"

	"strings"
	"unicode/utf8"

	"github.com/nikolalohinski/gonja/v2/exec"
)

// ourFunctions are the Occopus template globals.
var ourFunctions = map[string]any{
	"getip":     addrFunc("getip"),
	"getprivip": addrFunc("getprivip"),
	"getipall":  addrFunc("getipall"),
	"cut":       cutFunc,
	"cmd":       cmdFunc,
	"range":     rangeFunc,
	"dict":      dictFunc,
}

// maxRange bounds range() (Jinja2's sandbox uses the same limit); gonja's
// range streams from a goroutine that leaks when a loop breaks early.
const maxRange = 100000

func rangeFunc(_ *exec.Evaluator, va *exec.VarArgs) *exec.Value {
	var ints []int64
	for _, a := range va.Args {
		i, ok := plain(a).(int64)
		if !ok {
			return exec.AsValue(fmt.Errorf("range(): %s object cannot be interpreted as an integer", pyTypeName(a)))
		}
		ints = append(ints, i)
	}
	if len(ints) == 0 || len(ints) > 3 || len(va.KwArgs) > 0 {
		return exec.AsValue(errors.New("range() expects 1 to 3 integer arguments"))
	}
	start, stop, step := int64(0), ints[0], int64(1)
	if len(ints) > 1 {
		start, stop = ints[0], ints[1]
	}
	if len(ints) > 2 {
		step = ints[2]
	}
	if step == 0 {
		return exec.AsValue(errors.New("range() arg 3 must not be zero"))
	}
	out := []any{}
	for i := start; (step > 0 && i < stop) || (step < 0 && i > stop); i += step {
		if len(out) >= maxRange {
			return exec.AsValue(fmt.Errorf("range() is limited to %d items", maxRange))
		}
		out = append(out, i)
	}
	return exec.AsValue(out)
}

// boundedArgs rejects huge integer arguments to filters that allocate in
// proportion to them (center(10**9) would exhaust memory).
func boundedArgs(f exec.FilterFunction) exec.FilterFunction {
	return func(e *exec.Evaluator, in *exec.Value, p *exec.VarArgs) *exec.Value {
		check := func(v *exec.Value) bool {
			switch n := plain(v).(type) {
			case int64:
				return n > -maxRange && n < maxRange
			case float64:
				return n > -maxRange && n < maxRange
			}
			return true
		}
		for _, a := range p.Args {
			if !check(a) {
				return exec.AsValue(errors.New("numeric argument too large"))
			}
		}
		for _, a := range p.KwArgs {
			if !check(a) {
				return exec.AsValue(errors.New("numeric argument too large"))
			}
		}
		return f(e, in, p)
	}
}

// ourFilters replace or extend gonja's filters where Occopus needs them or
// gonja differs from Jinja2.
var ourFilters = map[string]exec.FilterFunction{
	"length":         filterLength,
	"count":          filterLength,
	"round":          boundedArgs(filterRound),
	"sum":            filterSum,
	"join":           filterJoin,
	"items":          filterItems,
	"list":           filterList,
	"dictsort":       filterDictsort,
	"capitalize":     strFilter("capitalize", func(s string) any { return pyCapitalize(s) }),
	"upper":          strFilter("upper", func(s string) any { return strings.ToUpper(s) }),
	"lower":          strFilter("lower", func(s string) any { return strings.ToLower(s) }),
	"title":          filterTitle,
	"wordcount":      strFilter("wordcount", pyWordcount),
	"center":         filterCenter,
	"trim":           filterTrim,
	"float":          filterFloat,
	"int":            filterInt,
	"abs":            filterAbs,
	"filesizeformat": filterFilesize,
	"batch":          boundedArgs(filterBatch),
	"sort":           filterSort,
	"unique":         filterUnique,
	"min":            minMax("min", false),
	"max":            minMax("max", true),
	"pprint":         filterPprint,
	"groupby":        filterGroupby,
	"striptags":      filterStriptags,
	"slice":          filterSlice,
	"urlencode":      filterUrlencode,
	"attr":           filterAttr,
	"forceescape":    filterForceescape,
	"map":            filterMap,
	"select":         selectFilter("select", false, true),
	"reject":         selectFilter("reject", false, false),
	"selectattr":     selectFilter("selectattr", true, true),
	"rejectattr":     selectFilter("rejectattr", true, false),
	"replace":        filterReplace,
	"escape":         filterEscape,
	"e":              filterEscape,
	"safe":           filterSafe,
	"indent":         boundedArgs(filterIndent),
	"truncate":       boundedArgs(filterTruncate),
	blockStrFilter:   filterBlockStr,
	"tojson":         filterToJSON,
	// Occopus' b64encode/b64decode take a string (s.encode(...) in
	// Python): anything else fails.
	"b64encode": func(_ *exec.Evaluator, in *exec.Value, p *exec.VarArgs) *exec.Value {
		s, ok := plain(in).(string)
		if !ok {
			return errValue("'%s' object has no attribute 'encode'", pyTypeName(in))
		}
		return exec.AsValue(base64.StdEncoding.EncodeToString([]byte(s)))
	},
	"b64decode": func(_ *exec.Evaluator, in *exec.Value, p *exec.VarArgs) *exec.Value {
		s, ok := plain(in).(string)
		if !ok {
			return errValue("'%s' object has no attribute 'encode'", pyTypeName(in))
		}
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return exec.AsValue(fmt.Errorf("invalid base64: %v", err))
		}
		if !utf8.Valid(b) {
			return exec.AsValue(errors.New("decoded base64 is not valid UTF-8"))
		}
		return exec.AsValue(string(b))
	},
	"format": func(_ *exec.Evaluator, in *exec.Value, p *exec.VarArgs) *exec.Value {
		s, err := softStr(in) // Jinja2: soft_str(value) % args
		if err != nil {
			return exec.AsValue(err)
		}
		if len(p.Args) > 0 && len(p.KwArgs) > 0 {
			return exec.AsValue(errors.New("can't handle positional and keyword arguments at the same time"))
		}
		var arg any
		if len(p.KwArgs) > 0 {
			m := map[string]any{}
			for k, v := range p.KwArgs {
				m[k] = v
			}
			arg = m
		} else {
			args := make([]any, len(p.Args))
			for i, v := range p.Args {
				args[i] = v
			}
			arg = args
		}
		out, err := pyPercent(s, arg)
		if err != nil {
			return exec.AsValue(err)
		}
		return exec.AsValue(out)
	},
	"string": func(_ *exec.Evaluator, in *exec.Value, p *exec.VarArgs) *exec.Value {
		if _, ok := in.Interface().(pyMarkup); ok {
			return in // soft_str keeps a Markup
		}
		s, err := pyStr(in)
		if err != nil {
			return exec.AsValue(err)
		}
		return exec.AsValue(s)
	},
}

func strArg(v *exec.Value) (string, error) {
	if s, ok := plain(v).(string); ok {
		return s, nil
	}
	return pyStr(v)
}

func addrFunc(name string) func(*exec.Evaluator, *exec.VarArgs) *exec.Value {
	return func(e *exec.Evaluator, va *exec.VarArgs) *exec.Value {
		if len(va.Args) != 1 || len(va.KwArgs) != 0 {
			return exec.AsValue(fmt.Errorf("%s() takes exactly one argument (the node name)", name))
		}
		node, err := pyStr(va.Args[0])
		if err != nil {
			return exec.AsValue(err)
		}
		st := stateOf(e)
		if st == nil || st.opt.Addresses == nil {
			return exec.AsValue(fmt.Errorf("%s(%s): no addresses are available for node %q", name, pyQuote(node), node))
		}
		var res any
		switch name {
		case "getip":
			res, err = st.opt.Addresses.IP(node)
		case "getprivip":
			res, err = st.opt.Addresses.PrivIP(node)
		default:
			var all []string
			all, err = st.opt.Addresses.AllIPs(node)
			list := make([]any, len(all))
			for i, a := range all {
				list[i] = a
			}
			res = list
		}
		if err != nil {
			return exec.AsValue(fmt.Errorf("%s(%s): %v", name, pyQuote(node), err))
		}
		return exec.AsValue(res)
	}
}

// cutFunc is Occopus' cut(s, a, b): Python's s[a:b].
func cutFunc(_ *exec.Evaluator, va *exec.VarArgs) *exec.Value {
	if len(va.Args) != 3 || len(va.KwArgs) != 0 {
		return exec.AsValue(errors.New("cut() takes exactly 3 arguments: cut(s, start, end)"))
	}
	bound := func(v *exec.Value) (int, bool, error) {
		switch t := plain(v).(type) {
		case nil:
			return 0, false, nil
		case int64:
			return int(max(min(t, math.MaxInt32), math.MinInt32)), true, nil
		case bool:
			if t {
				return 1, true, nil
			}
			return 0, true, nil
		}
		return 0, false, fmt.Errorf("cut(): slice indices must be integers or None, not %s", pyTypeName(v))
	}
	a, hasA, err := bound(va.Args[1])
	if err != nil {
		return exec.AsValue(err)
	}
	b, hasB, err := bound(va.Args[2])
	if err != nil {
		return exec.AsValue(err)
	}
	switch t := plain(va.Args[0]).(type) {
	case string:
		r := []rune(t)
		i, j := sliceBounds(len(r), a, hasA, b, hasB)
		if _, ok := va.Args[0].Interface().(pyMarkup); ok {
			return exec.AsValue(pyMarkup(r[i:j])) // a Markup's slice is Markup
		}
		return exec.AsValue(string(r[i:j]))
	case []any:
		i, j := sliceBounds(len(t), a, hasA, b, hasB)
		out := append([]any{}, t[i:j]...)
		if seqKind(va.Args[0]) == "tuple" {
			return exec.AsValue(pyTuple(out))
		}
		return exec.AsValue(out)
	}
	return exec.AsValue(fmt.Errorf("cut(): cannot slice %s", pyTypeName(va.Args[0])))
}

func sliceBounds(n, a int, hasA bool, b int, hasB bool) (int, int) {
	norm := func(x int) int {
		if x < 0 {
			x += n
		}
		return max(0, min(x, n))
	}
	i, j := 0, n
	if hasA {
		i = norm(a)
	}
	if hasB {
		j = norm(b)
	}
	if j < i {
		j = i
	}
	return i, j
}

// ErrCmdDisabled is returned by cmd() unless Options.AllowCmd is set.
var ErrCmdDisabled = errors.New("cmd() is disabled: set `allow_cmd: true` in occopus_config.yaml to allow templates to run programs")

// ErrNetworkCmdDisabled is returned by cmd() instead of ErrCmdDisabled when
// the description arrived over the network (Options.FromNetwork).
var ErrNetworkCmdDisabled = errors.New("cmd() is disabled for descriptions received over the network: set `allow_network_cmd: true` (with `allow_cmd: true`) in occopus_config.yaml to allow them to run programs")

// cmdFunc runs a program: one string argument goes through `sh -c`, several
// arguments (or one list) are the argv. It returns stdout without the
// trailing newline, like Occopus' cmd().
func cmdFunc(e *exec.Evaluator, va *exec.VarArgs) *exec.Value {
	st := stateOf(e)
	if st == nil || !st.opt.AllowCmd {
		if st != nil && st.opt.FromNetwork {
			return exec.AsValue(ErrNetworkCmdDisabled)
		}
		return exec.AsValue(ErrCmdDisabled)
	}
	var argv []string
	if len(va.Args) == 1 {
		switch t := plain(va.Args[0]).(type) {
		case string:
			argv = []string{"sh", "-c", t}
		case []any:
			for _, x := range t {
				s, err := pyFormat(x, false, 0)
				if err != nil {
					return exec.AsValue(err)
				}
				argv = append(argv, s)
			}
		}
	} else {
		for _, x := range va.Args {
			s, err := pyStr(x)
			if err != nil {
				return exec.AsValue(err)
			}
			argv = append(argv, s)
		}
	}
	if len(argv) == 0 {
		return exec.AsValue(errors.New("cmd(): no program given"))
	}
	c := osexec.Command(argv[0], argv[1:]...)
	var stdout, stderr bytes.Buffer
	c.Stdout, c.Stderr = &stdout, &stderr
	if err := c.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg != "" {
			return exec.AsValue(fmt.Errorf("cmd(%s): %v: %s", strings.Join(argv, " "), err, msg))
		}
		return exec.AsValue(fmt.Errorf("cmd(%s): %v", strings.Join(argv, " "), err))
	}
	return exec.AsValue(strings.TrimSuffix(stdout.String(), "\n"))
}

// pyPercent implements Python's printf-style "fmt % args" for the format
// filter and the % operator on strings.
func pyPercent(format string, args any) (string, error) {
	var list []any
	var mapping map[string]any
	mappingLike := false // Python does not check that a list or dict argument was used
	switch t := plain(args).(type) {
	case percentObject:
		list, mappingLike = []any{t.v}, true
	case []any:
		list = t
	case map[string]any:
		mapping = t
		list = []any{t}
	case *exec.Dict:
		mapping = dictItems(t)
		list = []any{t}
	default:
		list = []any{args}
	}
	var b strings.Builder
	next := 0
	for i := 0; i < len(format); i++ {
		c := format[i]
		if c != '%' {
			b.WriteByte(c)
			continue
		}
		i++
		if i >= len(format) {
			return "", errors.New("incomplete format")
		}
		var arg any
		hasKey := false
		if format[i] == '(' {
			end := strings.IndexByte(format[i:], ')')
			if end < 0 {
				return "", errors.New("incomplete format key")
			}
			key := format[i+1 : i+end]
			i += end + 1
			if mapping == nil {
				return "", errors.New("format requires a mapping")
			}
			v, ok := mapping[key]
			if !ok {
				return "", fmt.Errorf("KeyError: %s", pyQuote(key))
			}
			arg, hasKey = v, true
		}
		flags := ""
		for i < len(format) && strings.IndexByte("-+ 0#", format[i]) >= 0 {
			flags += string(format[i])
			i++
		}
		width := ""
		for i < len(format) && format[i] >= '0' && format[i] <= '9' {
			width += string(format[i])
			i++
		}
		prec := ""
		if i < len(format) && format[i] == '.' {
			prec = "."
			i++
			for i < len(format) && format[i] >= '0' && format[i] <= '9' {
				prec += string(format[i])
				i++
			}
		}
		if i >= len(format) {
			return "", errors.New("incomplete format")
		}
		if len(width) > 4 || len(prec) > 5 {
			return "", errors.New("format width or precision too large")
		}
		verb := format[i]
		if verb == '%' {
			if hasKey || flags != "" || width != "" || prec != "" {
				return "", fmt.Errorf("unsupported format character '%%' (0x25) at index %d", i)
			}
			b.WriteByte('%')
			continue
		}
		if !hasKey {
			if next >= len(list) {
				return "", errors.New("not enough arguments for format string")
			}
			arg = list[next]
			next++
		}
		spec := "%" + flags + width + prec
		v := plain(arg)
		switch verb {
		case 's', 'r', 'a':
			s, err := pyFormat(arg, verb != 's', 0) // arg: a Markup's repr is Markup('...')
			if err != nil {
				return "", err
			}
			fmt.Fprintf(&b, spec+"s", s)
		case 'd', 'i', 'u':
			if z, ok := v.(*big.Int); ok {
				fmt.Fprintf(&b, strings.Replace(spec, "#", "", 1)+"d", z)
				break
			}
			n, f, isF, ok := number(v)
			if !ok {
				return "", fmt.Errorf("%%%c format: a real number is required, not %s", verb, pyTypeName(v))
			}
			var x any = n
			if isF {
				if math.IsInf(f, 0) || math.IsNaN(f) {
					return "", fmt.Errorf("cannot convert float %s to integer", pyFloat(f))
				}
				x = floatToInt(f)
			}
			fmt.Fprintf(&b, strings.Replace(spec, "#", "", 1)+"d", x)
		case 'f', 'F', 'e', 'E', 'g', 'G':
			if z, ok := v.(*big.Int); ok {
				v = bigFloat(z)
			}
			_, f, _, ok := number(v)
			if !ok {
				return "", fmt.Errorf("must be real number, not %s", pyTypeName(v))
			}
			if prec == "" {
				spec += ".6" // Python's default precision, %g included
			}
			fmt.Fprintf(&b, spec+string(verb), f)
		case 'x', 'X', 'o':
			n, _, isF, ok := number(v)
			if !ok || isF {
				return "", fmt.Errorf("%%%c format: an integer is required, not %s", verb, pyTypeName(v))
			}
			fmt.Fprintf(&b, spec+string(verb), n)
		case 'c':
			switch t := v.(type) {
			case int64:
				b.WriteRune(rune(t))
			case string:
				if utf8.RuneCountInString(t) != 1 {
					return "", errors.New("%c requires int or char")
				}
				b.WriteString(t)
			default:
				return "", errors.New("%c requires int or char")
			}
		default:
			return "", fmt.Errorf("unsupported format character '%c' (0x%x)", verb, verb)
		}
	}
	if mapping == nil && !mappingLike && next < len(list) {
		return "", errors.New("not all arguments converted during string formatting")
	}
	return b.String(), nil
}

// percentObject is one argument of str % arg that is a list: Python takes
// it as a single value and, as for a dict, does not complain when the
// format does not use it.
type percentObject struct{ v any }
