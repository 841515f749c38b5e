package descr

import (
	"fmt"
	"testing"
)

// A number keeps its YAML form through the store's JSON: 3.0 stays a
// float, 3 an int, in lists and mappings alike.
func TestJSONKeepsNumberForm(t *testing.T) {
	for _, tc := range []struct {
		in       any
		json     string
		wantType string
	}{
		{3.0, `3.0`, "float64"},
		{3, `3`, "int"},
		{-0.5, `-0.5`, "float64"},
		{2.5e20, `2.5e+20`, "float64"},
		{1e21, `1e+21`, "float64"},
		{"3.0", `"3.0"`, "string"},
		{[]any{3.0, 3}, `[3.0,3]`, "[]interface {}"},
		{[]map[string]any{{"tag": 3.0}}, `[{"tag":3.0}]`, "[]interface {}"},
		{map[string]any{"a": map[string]any{"b": 7.0}}, `{"a":{"b":7.0}}`, "map[string]interface {}"},
	} {
		raw, err := MarshalJSON(tc.in)
		if err != nil {
			t.Fatalf("%v: %v", tc.in, err)
		}
		if string(raw) != tc.json {
			t.Errorf("MarshalJSON(%#v) = %s, want %s", tc.in, raw, tc.json)
		}
		back, err := DecodeJSON(raw)
		if err != nil {
			t.Fatalf("%s: %v", raw, err)
		}
		if got := fmt.Sprintf("%T", back); got != tc.wantType {
			t.Errorf("DecodeJSON(%s) is a %s, want %s", raw, got, tc.wantType)
		}
		again, _ := MarshalJSON(back)
		if string(again) != tc.json {
			t.Errorf("round trip of %s gives %s", raw, again)
		}
	}
	if _, err := DecodeJSON([]byte(`[1,`)); err == nil {
		t.Error("DecodeJSON accepted broken JSON")
	}
	// Plain JSON of older stores: whole numbers are ints.
	v, err := DecodeJSON([]byte(`{"min": 2}`))
	if err != nil || fmt.Sprintf("%T", v.(map[string]any)["min"]) != "int" {
		t.Errorf("old JSON {\"min\": 2}: %#v, %v; want an int", v, err)
	}
}
