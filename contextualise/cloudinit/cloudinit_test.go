package cloudinit

import (
	"reflect"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// upper is a Renderer that upper-cases every string, to see that each
// string of a mapping template is rendered in place.
type upper struct{}

func (upper) Render(path string, v any) (any, error) {
	switch v := v.(type) {
	case string:
		return strings.ToUpper(v), nil
	case map[string]any:
		out := map[string]any{}
		for k, x := range v {
			rx, _ := upper{}.Render(path, x)
			out[k] = rx
		}
		return out, nil
	case []any:
		out := make([]any, len(v))
		for i, x := range v {
			out[i], _ = upper{}.Render(path, x)
		}
		return out, nil
	}
	return v, nil
}

func TestResolve(t *testing.T) {
	cases := []struct {
		name     string
		template any
		want     string // user data, or its YAML meaning for mappings
		wantErr  string
	}{
		{name: "string template is text", template: "#cloud-config\nruncmd: [x]\n", want: "#cloud-config\nRUNCMD: [X]\n"},
		{name: "mapping becomes cloud-config", template: map[string]any{"runcmd": []any{"echo 'a' \"b\""}}, want: "runcmd:\n- ECHO 'A' \"B\"\n"},
		{name: "broken cloud-config is refused", template: "#cloud-config\na: b: c\n", wantErr: "not valid YAML: line 2"},
		{name: "non-cloud-config text passes", template: "#!/bin/sh\necho a: b: c\n", want: "#!/BIN/SH\nECHO A: B: C\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sec := map[string]any{"type": "cloudinit", "context_template": tc.template, "attributes": map[string]any{"k": "v"}}
			out, ctx, err := Contextualiser{}.Resolve("contextualisation", sec, upperKeepHeader{})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if out["context"] != ctx.UserData || out["attributes"].(map[string]any)["k"] != "V" {
				t.Fatalf("section %v", out)
			}
			if _, isMap := tc.template.(map[string]any); isMap {
				if !strings.HasPrefix(ctx.UserData, "#cloud-config\n") {
					t.Fatalf("user data %q lacks the header", ctx.UserData)
				}
				var got, want any
				if err := yaml.Unmarshal([]byte(ctx.UserData), &got); err != nil {
					t.Fatal(err)
				}
				if err := yaml.Unmarshal([]byte(tc.want), &want); err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(got, want) {
					t.Fatalf("user data\n%s\nwant the meaning of\n%s", ctx.UserData, tc.want)
				}
				return
			}
			if ctx.UserData != tc.want {
				t.Fatalf("user data %q, want %q", ctx.UserData, tc.want)
			}
		})
	}
}

// upperKeepHeader upper-cases like upper but keeps a leading
// "#cloud-config" line, which Check looks for.
type upperKeepHeader struct{}

func (upperKeepHeader) Render(path string, v any) (any, error) {
	if s, ok := v.(string); ok && strings.HasPrefix(s, Header) {
		return Header + strings.ToUpper(strings.TrimPrefix(s, Header)), nil
	}
	return upper{}.Render(path, v)
}
