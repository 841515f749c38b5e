package tmpl

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/nikolalohinski/gonja/v2/exec"
)

// filterToJSON is Jinja2's tojson: json.dumps(sort_keys=True) with Python's
// separators and ASCII escaping, plus the HTML-safe escapes of <>&'. gonja's
// version uses Go's compact encoding, which changes rendered files.
func filterToJSON(_ *exec.Evaluator, in *exec.Value, p *exec.VarArgs) *exec.Value {
	indent := -1
	var iv *exec.Value
	if len(p.Args) > 0 {
		iv = p.Args[0]
	}
	if v, ok := p.KwArgs["indent"]; ok {
		iv = v
	}
	if iv != nil {
		if n, ok := plain(iv).(int64); ok && n >= 0 && n <= 64 {
			indent = int(n)
		} else if plain(iv) != nil {
			return exec.AsValue(errors.New("tojson: indent must be a small non-negative integer"))
		}
	}
	var b strings.Builder
	if err := writeJSON(&b, in, indent, 0); err != nil {
		return exec.AsValue(err)
	}
	r := strings.NewReplacer("<", `\u003c`, ">", `\u003e`, "&", `\u0026`, "'", `\u0027`)
	return exec.AsSafeValue(pyMarkup(r.Replace(b.String())))
}

func writeJSON(b *strings.Builder, v any, indent, depth int) error {
	if depth > 100 {
		return errTooDeep
	}
	nl := func(d int) {
		if indent >= 0 {
			b.WriteByte('\n')
			b.WriteString(strings.Repeat(" ", indent*d))
		}
	}
	itemSep := ", "
	if indent >= 0 {
		itemSep = ","
	}
	switch t := plain(v).(type) {
	case nil:
		b.WriteString("null")
	case *undefined:
		return hardError(t)
	case bool:
		b.WriteString(strconv.FormatBool(t))
	case int64:
		b.WriteString(strconv.FormatInt(t, 10))
	case float64:
		switch {
		case math.IsNaN(t):
			b.WriteString("NaN")
		case math.IsInf(t, 1):
			b.WriteString("Infinity")
		case math.IsInf(t, -1):
			b.WriteString("-Infinity")
		default:
			b.WriteString(pyFloat(t))
		}
	case string:
		jsonQuote(b, t)
	case []any:
		if len(t) == 0 {
			b.WriteString("[]")
			return nil
		}
		b.WriteByte('[')
		for i, x := range t {
			if i > 0 {
				b.WriteString(itemSep)
			}
			nl(depth + 1)
			if err := writeJSON(b, x, indent, depth+1); err != nil {
				return err
			}
		}
		nl(depth)
		b.WriteByte(']')
	default:
		items, err := jsonObject(t)
		if err != nil {
			return err
		}
		if len(items) == 0 {
			b.WriteString("{}")
			return nil
		}
		b.WriteByte('{')
		for i, it := range items {
			if i > 0 {
				b.WriteString(itemSep)
			}
			nl(depth + 1)
			jsonQuote(b, it.k)
			b.WriteString(": ")
			if err := writeJSON(b, it.v, indent, depth+1); err != nil {
				return err
			}
		}
		nl(depth)
		b.WriteByte('}')
	}
	return nil
}

type jsonItem struct {
	k string
	v any
}

// jsonObject returns the key-sorted items of a dict-like value.
func jsonObject(v any) ([]jsonItem, error) {
	var items []jsonItem
	key := func(k any) (string, error) {
		switch x := plain(k).(type) {
		case string:
			return x, nil
		case int64, bool, nil:
			s, _ := pyFormat(x, false, 0)
			if x == nil {
				s = "null"
			} else if bx, ok := x.(bool); ok {
				s = strconv.FormatBool(bx)
			}
			return s, nil
		case float64:
			return pyFloat(x), nil
		}
		return "", fmt.Errorf("keys must be str, int, float, bool or None, not %s", pyTypeName(k))
	}
	switch t := v.(type) {
	case map[string]any:
		for k, x := range t {
			items = append(items, jsonItem{k, x})
		}
	case *exec.Dict:
		// sort_keys sorts the keys themselves, so mixed types fail and
		// numbers sort as numbers.
		pairs := make([]any, len(t.Pairs))
		for i, p := range t.Pairs {
			pairs[i] = pyTuple{raw(p.Key), raw(p.Value)}
		}
		sorted, err := pySorted(pairs, func(x any) any { return x.(pyTuple)[0] }, false)
		if err != nil {
			return nil, err
		}
		for _, p := range sorted {
			kv := p.(pyTuple)
			k, err := key(kv[0])
			if err != nil {
				return nil, err
			}
			items = append(items, jsonItem{k, kv[1]})
		}
		return items, nil
	default:
		rv := reflect.ValueOf(v)
		if rv.Kind() != reflect.Map {
			//lint:ignore ST1005 the message is Python's, as Jinja2's tojson prints it
			return nil, fmt.Errorf("Object of type %s is not JSON serializable", pyTypeName(v))
		}
		for _, k := range rv.MapKeys() {
			ks, err := key(k.Interface())
			if err != nil {
				return nil, err
			}
			items = append(items, jsonItem{ks, rv.MapIndex(k).Interface()})
		}
	}
	sort.SliceStable(items, func(i, j int) bool { return items[i].k < items[j].k })
	return items, nil
}

// jsonQuote writes s like Python's json.dumps with ensure_ascii=True.
func jsonQuote(b *strings.Builder, s string) {
	b.WriteByte('"')
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		i += size
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		case '\b':
			b.WriteString(`\b`)
		case '\f':
			b.WriteString(`\f`)
		default:
			switch {
			case r < 0x20 || (r >= 0x7f && r <= 0xffff):
				fmt.Fprintf(b, `\u%04x`, r)
			case r > 0xffff:
				r -= 0x10000
				fmt.Fprintf(b, `\u%04x\u%04x`, 0xd800+(r>>10), 0xdc00+(r&0x3ff))
			default:
				b.WriteRune(r)
			}
		}
	}
	b.WriteByte('"')
}
