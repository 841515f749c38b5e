package tmpl

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"testing"
)

// goldenCase is one entry of testdata/golden.json, whose "out"/"error"
// fields were produced by real Jinja2 (testdata/jinja_ref.py).
type goldenCase struct {
	Name  string         `json:"name"`
	Src   string         `json:"src"`
	Data  map[string]any `json:"data"`
	Out   *string        `json:"out,omitempty"`
	Error string         `json:"error,omitempty"`
}

// fakeAddrs mirrors ADDRS in testdata/jinja_ref.py.
type fakeAddrs map[string][3]any

func (f fakeAddrs) get(node string, i int) (any, error) {
	a, ok := f[node]
	if !ok {
		return nil, errors.New("unknown node")
	}
	return a[i], nil
}
func (f fakeAddrs) IP(node string) (string, error) {
	v, err := f.get(node, 0)
	s, _ := v.(string)
	return s, err
}
func (f fakeAddrs) PrivIP(node string) (string, error) {
	v, err := f.get(node, 1)
	s, _ := v.(string)
	return s, err
}
func (f fakeAddrs) AllIPs(node string) ([]string, error) {
	v, err := f.get(node, 2)
	s, _ := v.([]string)
	return s, err
}

var testAddrs = fakeAddrs{"master": {"10.0.0.1", "192.168.0.1", []string{"10.0.0.1", "10.0.0.2"}}}

func loadGolden(t testing.TB) ([]goldenCase, []byte) {
	raw, err := os.ReadFile("testdata/golden.json")
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var cases []goldenCase
	if err := dec.Decode(&cases); err != nil {
		t.Fatal(err)
	}
	for i := range cases {
		cases[i].Data, _ = yamlLike(cases[i].Data).(map[string]any)
	}
	return cases, raw
}

// TestGolden renders every case and compares with the Jinja2 output.
func TestGolden(t *testing.T) {
	cases, _ := loadGolden(t)
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			got, err := Render(c.Src, Data(c.Data), Options{Addresses: testAddrs})
			if c.Error != "" {
				if err == nil {
					t.Fatalf("Jinja2 raised %s, we rendered %q", c.Error, got)
				}
				var re *RenderError
				var se *SyntaxError
				switch {
				case c.Error == "TemplateSyntaxError" && errors.As(err, &se):
				case !errors.As(err, &re) || re.Line == 0:
					t.Errorf("want positioned *RenderError, got %T %v", err, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if got != *c.Out {
				t.Errorf("src %q\n got %q\nwant %q", c.Src, got, *c.Out)
			}
		})
	}
}

// TestGoldenMatchesJinja2 re-runs the reference renderer so the stored
// expectations cannot drift from real Jinja2 (Debian's, as on CI; see
// jinja2Python).
func TestGoldenMatchesJinja2(t *testing.T) {
	py := jinja2Python(t)
	cases, raw := loadGolden(t)
	cmd := exec.Command(py, "testdata/jinja_ref.py")
	cmd.Stdin = bytes.NewReader(raw)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("jinja_ref.py: %v", err)
	}
	var fresh []goldenCase
	if err := json.Unmarshal(out, &fresh); err != nil {
		t.Fatal(err)
	}
	if len(fresh) != len(cases) {
		t.Fatalf("got %d results for %d cases", len(fresh), len(cases))
	}
	for i, c := range cases {
		f := fresh[i]
		if (c.Out == nil) != (f.Out == nil) || (c.Out != nil && *c.Out != *f.Out) || c.Error != f.Error {
			t.Errorf("%s: golden out=%v err=%q, Jinja2 now out=%v err=%q", c.Name, deref(c.Out), c.Error, deref(f.Out), f.Error)
		}
	}
}

func deref(s *string) any {
	if s == nil {
		return nil
	}
	return *s
}

// yamlLike converts json.Number to int64/float64 as a YAML decoder would
// produce them, so integers print as Python ints.
func yamlLike(v any) any {
	switch t := v.(type) {
	case json.Number:
		if i, err := t.Int64(); err == nil {
			return i
		}
		f, _ := t.Float64()
		return f
	case map[string]any:
		for k, x := range t {
			t[k] = yamlLike(x)
		}
	case []any:
		for i, x := range t {
			t[i] = yamlLike(x)
		}
	}
	return v
}
