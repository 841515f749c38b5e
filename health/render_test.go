package health

import "testing"

func TestRender(t *testing.T) {
	tg := Target{Addr: "10.0.0.1", Data: map[string]any{
		"ip":        "overridden", // Target.Addr wins: it is the instance's address
		"variables": map[string]any{"port": 8080},
	}}
	tests := []struct {
		src, want string
		wantErr   bool
	}{
		{"plain", "plain", false},
		{"http://{{ip}}/", "http://10.0.0.1/", false},
		{"http://{{ ip }}:{{variables.port}}/", "http://10.0.0.1:8080/", false},
		{"{{ missing }}", "", true},
		{"{{ ip | replace('.', '-') }}", "10-0-0-1", false}, // full Jinja2 via tmpl
		{"pa{{ss", "", true},                                // syntax error
		{"secret\n", "secret\n", false},                     // plain strings untouched
	}
	for _, tt := range tests {
		got, err := render(tt.src, tg)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("render(%q) = %q, %v", tt.src, got, err)
		}
	}
}
