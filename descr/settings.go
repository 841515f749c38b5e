package descr

import (
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Settings structs: a plugin declares the keys of its section as a Go
// struct with `occopus` tags, and gets both its schema (SchemaOf, for
// validate) and its values (Decode, for build) from that one declaration,
// so the keys validate accepts are exactly the keys the plugin reads.
//
//	type Settings struct {
//		Endpoint string        `occopus:"endpoint"`
//		Image    string        `occopus:"image,required"`
//		Ports    []int         `occopus:"ports"`
//		Stop     time.Duration `occopus:"stop_timeout"`
//	}
//
// Field types and what they accept:
//
//	string (and named string types such as auth.Secret)
//	            a string; numbers and booleans as written (YAML reads
//	            `tag: 20.04` as a number). Plain strings are trimmed,
//	            named ones (secrets) are kept byte for byte.
//	bool        true/false; a rendered template's "yes"/"no"/"on"/"off"/"1"/"0"
//	int kinds   an integer, or a string of one, within the type's range
//	float64     a number, or a string of one
//	time.Duration  seconds (a number) or a Go duration ("5s")
//	[]T         a list of T; a single value is a list of one
//	map[string]any     any mapping
//	map[string]string  a mapping, its values as strings
//	any         anything
//	struct, *T  a mapping with its own settings / an optional value
//
// A type can take over both sides by implementing Setting. An embedded
// struct without a tag contributes its fields as if declared in place, so
// a backend can decode the part it needs where it needs it (the
// connection in New, the instance keys in Create) from one declaration.
//
// Tag options: `occopus:"key,required"`; `occopus:"-"` (or no tag) leaves
// a field out. A field tagged `occopus:",rest"` of type map[string]any
// receives the keys no other field names, and makes the schema open.

// Setting is implemented by field types that check and decode themselves.
// SettingType is called on the zero value, DecodeSetting on a pointer.
type Setting interface {
	SettingType() Type
	DecodeSetting(path string, v any) error
}

var (
	settingIface = reflect.TypeFor[Setting]()
	durationType = reflect.TypeFor[time.Duration]()
	anyType      = reflect.TypeFor[any]()
)

type settingField struct {
	key      string
	required bool
	rest     bool
	index    []int // reflect.Value.FieldByIndex: embedded structs are flattened
}

var (
	fieldsMu    sync.Mutex
	fieldsCache = map[reflect.Type][]settingField{}
)

// settingFields reads the tags of a settings struct. It panics on a
// malformed declaration: that is a programming error, found when the
// plugin registers at start-up.
func settingFields(t reflect.Type) []settingField {
	fieldsMu.Lock()
	defer fieldsMu.Unlock()
	if fs, ok := fieldsCache[t]; ok {
		return fs
	}
	out := collectFields(t, nil)
	seen := map[string]bool{}
	for _, f := range out {
		if f.rest {
			continue
		}
		if seen[f.key] {
			panic(fmt.Sprintf("descr: %s: key %q is declared twice", t, f.key))
		}
		seen[f.key] = true
	}
	fieldsCache[t] = out
	return out
}

// collectFields reads the tagged fields of t, and those of its embedded
// structs in place (a backend's Settings may embed the Connection part New
// reads and the Instance part Create reads).
func collectFields(t reflect.Type, at []int) []settingField {
	var out []settingField
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		index := append(append([]int(nil), at...), i)
		tag, ok := sf.Tag.Lookup("occopus")
		if sf.Anonymous && !ok && sf.Type.Kind() == reflect.Struct {
			out = append(out, collectFields(sf.Type, index)...)
			continue
		}
		if !ok || tag == "-" || !sf.IsExported() {
			continue
		}
		key, opts, _ := strings.Cut(tag, ",")
		f := settingField{key: key, index: index}
		for _, o := range strings.Split(opts, ",") {
			switch o {
			case "":
			case "required":
				f.required = true
			case "rest":
				f.rest = true
			default:
				panic(fmt.Sprintf("descr: %s.%s: unknown tag option %q", t, sf.Name, o))
			}
		}
		switch {
		case f.rest && (key != "" || sf.Type != reflect.TypeFor[map[string]any]()):
			panic(fmt.Sprintf("descr: %s.%s: a ,rest field has no key and is a map[string]any", t, sf.Name))
		case !f.rest && key == "":
			panic(fmt.Sprintf("descr: %s.%s: tag has no key", t, sf.Name))
		}
		out = append(out, f)
	}
	return out
}

// SchemaOf derives the schema of a section from its settings struct. It
// panics when T is not a struct or has a field of a type it cannot check.
func SchemaOf[T any]() *Schema {
	t := reflect.TypeFor[T]()
	if t.Kind() != reflect.Struct {
		panic(fmt.Sprintf("descr: SchemaOf(%s): not a struct", t))
	}
	return schemaOf(t)
}

func schemaOf(t reflect.Type) *Schema {
	s := &Schema{}
	for _, f := range settingFields(t) {
		if f.rest {
			s.Open = true
			continue
		}
		sf := t.FieldByIndex(f.index)
		s.Fields = append(s.Fields, Field{Key: f.key, Required: f.required, Type: typeOf(sf.Type, t.String()+"."+sf.Name)})
	}
	return s
}

// typeOf is the schema type of a Go type.
func typeOf(t reflect.Type, where string) Type {
	if t.Implements(settingIface) {
		return reflect.Zero(t).Interface().(Setting).SettingType()
	}
	if reflect.PointerTo(t).Implements(settingIface) {
		return reflect.New(t).Interface().(Setting).SettingType()
	}
	if t == durationType {
		return Type{Name: "a duration (seconds, or e.g. 5s)", shape: ScalarNode, check: String.check}
	}
	switch t.Kind() {
	case reflect.String:
		return String
	case reflect.Bool:
		return Bool
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return Int
	case reflect.Float32, reflect.Float64:
		return Number
	case reflect.Slice:
		return ListOf(typeOf(t.Elem(), where))
	case reflect.Map:
		if t.Key().Kind() == reflect.String {
			return AnyMap
		}
	case reflect.Interface:
		if t == anyType {
			return Any
		}
	case reflect.Struct:
		return MapOf(schemaOf(t))
	case reflect.Pointer:
		return typeOf(t.Elem(), where)
	}
	panic(fmt.Sprintf("descr: %s: settings of type %s are not supported", where, t))
}

// Decode fills the settings struct dst points to from a section (a
// rendered resource section, an auth_data entry, ...). path names the
// section in errors ("resource", "auth_data"). Every problem is reported,
// each naming its key path; keys without a field (such as `type`) are
// ignored: which keys are allowed is the schema's business, checked
// before anything is built.
func Decode(path string, section map[string]any, dst any) error {
	rv := reflect.ValueOf(dst)
	if rv.Kind() != reflect.Pointer || rv.IsNil() || rv.Elem().Kind() != reflect.Struct {
		return fmt.Errorf("descr: Decode needs a pointer to a settings struct, not %T", dst)
	}
	var errs Errors
	decodeStruct(path, section, rv.Elem(), &errs)
	if len(errs) == 0 {
		return nil
	}
	return errs
}

// DecodeValue decodes one value (a health_check key's value, say) into
// the variable dst points to, by the same rules as Decode.
func DecodeValue(path string, v any, dst any) error {
	rv := reflect.ValueOf(dst)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return fmt.Errorf("descr: DecodeValue needs a pointer, not %T", dst)
	}
	var errs Errors
	decodeInto(path, v, rv.Elem(), &errs)
	if len(errs) == 0 {
		return nil
	}
	return errs
}

func decodeStruct(path string, m map[string]any, dst reflect.Value, errs *Errors) {
	fields := settingFields(dst.Type())
	named := map[string]bool{}
	for _, f := range fields {
		if f.rest {
			continue
		}
		named[f.key] = true
		v, ok := m[f.key]
		if !ok || v == nil {
			if f.required {
				*errs = append(*errs, &Error{Path: path, Msg: fmt.Sprintf("missing required key %q", f.key)})
			}
			continue
		}
		decodeInto(join(path, f.key), v, dst.FieldByIndex(f.index), errs)
	}
	for _, f := range fields {
		if !f.rest {
			continue
		}
		rest := map[string]any{}
		for k, v := range m {
			if !named[k] && k != "type" {
				rest[k] = v
			}
		}
		dst.FieldByIndex(f.index).Set(reflect.ValueOf(rest))
	}
}

func decodeInto(path string, v any, dst reflect.Value, errs *Errors) {
	bad := func(want string) {
		*errs = append(*errs, &Error{Path: path, Msg: fmt.Sprintf("must be %s, not %s", want, valueTypeName(v))})
	}
	if dst.CanAddr() {
		if s, ok := dst.Addr().Interface().(Setting); ok {
			if err := s.DecodeSetting(path, v); err != nil {
				*errs = append(*errs, AsErrors(err)...)
			}
			return
		}
	}
	t := dst.Type()
	if t == durationType {
		d, err := parseDuration(v)
		if err != nil {
			*errs = append(*errs, &Error{Path: path, Msg: err.Error()})
			return
		}
		dst.SetInt(int64(d))
		return
	}
	switch t.Kind() {
	case reflect.String:
		s, ok := scalarText(v)
		if !ok {
			bad("a string")
			return
		}
		if t.Kind() == reflect.String && t.PkgPath() == "" {
			s = strings.TrimSpace(s) // plain strings; secrets stay as written
		}
		dst.SetString(s)
	case reflect.Bool:
		b, ok := boolValue(v)
		if !ok {
			bad("a boolean (true or false)")
			return
		}
		dst.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, ok := intValue(v)
		if !ok {
			bad("an integer")
			return
		}
		if dst.OverflowInt(n) {
			*errs = append(*errs, &Error{Path: path, Msg: fmt.Sprintf("%d is out of range", n)})
			return
		}
		dst.SetInt(n)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, ok := intValue(v)
		if !ok {
			bad("an integer")
			return
		}
		if n < 0 || dst.OverflowUint(uint64(n)) {
			*errs = append(*errs, &Error{Path: path, Msg: fmt.Sprintf("%d is out of range", n)})
			return
		}
		dst.SetUint(uint64(n))
	case reflect.Float32, reflect.Float64:
		f, ok := floatValue(v)
		if !ok {
			bad("a number")
			return
		}
		dst.SetFloat(f)
	case reflect.Slice:
		list, ok := v.([]any)
		if !ok {
			if _, isMap := v.(map[string]any); isMap {
				bad("a list")
				return
			}
			list = []any{v} // one value is a list of one
		}
		out := reflect.MakeSlice(t, len(list), len(list))
		for i, x := range list {
			decodeInto(index(path, i), x, out.Index(i), errs)
		}
		dst.Set(out)
	case reflect.Map:
		m, ok := v.(map[string]any)
		if !ok {
			bad("a mapping")
			return
		}
		out := reflect.MakeMapWithSize(t, len(m))
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			ev := reflect.New(t.Elem()).Elem()
			decodeInto(join(path, k), m[k], ev, errs)
			out.SetMapIndex(reflect.ValueOf(k).Convert(t.Key()), ev)
		}
		dst.Set(out)
	case reflect.Interface:
		if v != nil {
			dst.Set(reflect.ValueOf(v))
		}
	case reflect.Struct:
		m, ok := v.(map[string]any)
		if !ok {
			bad("a mapping")
			return
		}
		decodeStruct(path, m, dst, errs)
	case reflect.Pointer:
		p := reflect.New(t.Elem())
		before := len(*errs)
		decodeInto(path, v, p.Elem(), errs)
		if len(*errs) == before {
			dst.Set(p)
		}
	default:
		*errs = append(*errs, &Error{Path: path, Msg: fmt.Sprintf("settings of type %s are not supported", t)})
	}
}

// scalarText writes a scalar as YAML shows it: what a string setting
// gets when the user wrote a number or a boolean.
func scalarText(v any) (string, bool) {
	if rv := reflect.ValueOf(v); rv.Kind() == reflect.String && rv.Type() != reflect.TypeFor[string]() {
		return rv.String(), true // a named string type, such as a secret
	}
	switch v := v.(type) {
	case string:
		return v, true
	case bool:
		return strconv.FormatBool(v), true
	case int:
		return strconv.Itoa(v), true
	case int64:
		return strconv.FormatInt(v, 10), true
	case uint64:
		return strconv.FormatUint(v, 10), true
	case float64:
		return strconv.FormatFloat(v, 'g', -1, 64), true
	case json.Number:
		return v.String(), true
	}
	return "", false
}

// boolValue accepts booleans and, since a rendered template is text, the
// words YAML 1.1 reads as booleans; integers 0 and 1 too.
func boolValue(v any) (bool, bool) {
	switch x := v.(type) {
	case bool:
		return x, true
	case string:
		switch strings.ToLower(strings.TrimSpace(x)) {
		case "yes", "y", "true", "on", "1":
			return true, true
		case "no", "n", "false", "off", "0":
			return false, true
		}
	case int:
		if x == 0 || x == 1 {
			return x == 1, true
		}
	}
	return false, false
}

func intValue(v any) (int64, bool) {
	switch x := v.(type) {
	case int:
		return int64(x), true
	case int64:
		return x, true
	case uint64:
		if x <= math.MaxInt64 {
			return int64(x), true
		}
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1<<53 {
			return int64(x), true
		}
	case json.Number:
		n, err := x.Int64()
		return n, err == nil
	case string:
		n, err := strconv.ParseInt(strings.TrimSpace(x), 10, 64)
		return n, err == nil
	}
	return 0, false
}

func floatValue(v any) (float64, bool) {
	switch x := v.(type) {
	case int:
		return float64(x), true
	case int64:
		return float64(x), true
	case uint64:
		return float64(x), true
	case float64:
		return x, true
	case json.Number:
		f, err := x.Float64()
		return f, err == nil
	case string:
		f, err := strconv.ParseFloat(strings.TrimSpace(x), 64)
		return f, err == nil && !math.IsNaN(f) && !math.IsInf(f, 0)
	}
	return 0, false
}

// maxDuration bounds durations read from descriptions: a year is longer
// than anything an orchestrator waits for, and keeps arithmetic sane.
const maxDuration = 365 * 24 * time.Hour

// parseDuration reads seconds (a number, or a string of one) or a Go
// duration ("5s", "1m30s").
func parseDuration(v any) (time.Duration, error) {
	var d time.Duration
	if secs, ok := floatValue(v); ok {
		if secs > maxDuration.Seconds() {
			return 0, fmt.Errorf("%v seconds is more than a year", secs)
		}
		d = time.Duration(secs * float64(time.Second))
	} else if s, ok := v.(string); ok {
		var err error
		if d, err = time.ParseDuration(strings.TrimSpace(s)); err != nil {
			return 0, fmt.Errorf("%q is neither seconds nor a duration such as 5s", s)
		}
		if d > maxDuration {
			return 0, fmt.Errorf("%s is more than a year", d)
		}
	} else {
		return 0, fmt.Errorf("must be a duration (seconds, or e.g. 5s), not %s", valueTypeName(v))
	}
	if d < 0 {
		return 0, fmt.Errorf("must not be negative, not %s", d)
	}
	return d, nil
}

// valueTypeName names the kind of a plain value as Node.TypeName does.
func valueTypeName(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case map[string]any:
		return "a mapping"
	case []any:
		return "a list"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case int, int64, uint64:
		return "an integer"
	case float64, json.Number:
		return "a number"
	}
	return fmt.Sprintf("%T", v)
}
