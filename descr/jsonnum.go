package descr

import (
	"bytes"
	"encoding/json"
	"math"
	"strconv"
	"strings"
)

// Node definitions and descriptions are stored as JSON, where 3 and 3.0
// are one number; YAML (and Jinja2, which prints 3.0) tells them apart, and
// a filter on `tag: 3.0` must still match after a round trip. MarshalJSON
// writes a float as a number with a point (3.0) and DecodeJSON reads a
// number with a point or exponent as float64, others as int.

// MarshalJSON encodes a value read from YAML, keeping a float a float.
func MarshalJSON(v any) ([]byte, error) {
	return json.Marshal(keepFloats(v))
}

func keepFloats(v any) any {
	switch v := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, x := range v {
			out[k] = keepFloats(x)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, x := range v {
			out[i] = keepFloats(x)
		}
		return out
	case []map[string]any:
		out := make([]any, len(v))
		for i, x := range v {
			out[i] = keepFloats(x)
		}
		return out
	case float64:
		if math.IsInf(v, 0) || math.IsNaN(v) {
			return v // json.Marshal refuses it, naming the value
		}
		s := strconv.FormatFloat(v, 'g', -1, 64)
		if !strings.ContainsAny(s, ".eE") {
			s += ".0"
		}
		return json.Number(s)
	}
	return v
}

// DecodeJSON decodes what MarshalJSON wrote (or plain JSON): numbers with
// a point or exponent become float64, the others int (float64 when too
// large for an int).
func DecodeJSON(raw []byte) (any, error) {
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, err
	}
	return fromNumbers(v), nil
}

func fromNumbers(v any) any {
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			v[k] = fromNumbers(x)
		}
	case []any:
		for i, x := range v {
			v[i] = fromNumbers(x)
		}
	case json.Number:
		s := string(v)
		if !strings.ContainsAny(s, ".eE") {
			if n, err := strconv.ParseInt(s, 10, 64); err == nil {
				return int(n)
			}
		}
		f, _ := strconv.ParseFloat(s, 64) // a JSON number always parses
		return f
	}
	return v
}
