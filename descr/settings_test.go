package descr

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

type secret string // a named string type, as auth.Secret

type nested struct {
	Conf string `occopus:"conf,required"`
	VLAN int    `occopus:"vlan"`
}

type sample struct {
	Endpoint string            `occopus:"endpoint,required"`
	Tag      string            `occopus:"tag"`
	Password secret            `occopus:"password"`
	Floating bool              `occopus:"floating_ip"`
	Size     int               `occopus:"volume_size"`
	Port     uint16            `occopus:"port"`
	Ratio    float64           `occopus:"ratio"`
	Stop     time.Duration     `occopus:"stop_timeout"`
	Groups   []string          `occopus:"security_groups"`
	Ports    []int             `occopus:"ports"`
	Tags     map[string]string `occopus:"tags"`
	Extra    map[string]any    `occopus:"extra"`
	Anything any               `occopus:"anything"`
	NIC      nested            `occopus:"nic"`
	NICs     []nested          `occopus:"nics"`
	Persist  *bool             `occopus:"volume_persist"`
	Ignored  string
	Skipped  string `occopus:"-"`
}

func TestSchemaOf(t *testing.T) {
	s := SchemaOf[sample]()
	var got []string
	for _, f := range s.Fields {
		req := ""
		if f.Required {
			req = " required"
		}
		got = append(got, fmt.Sprintf("%s: %s%s", f.Key, f.Type.Name, req))
	}
	want := []string{
		"endpoint: a string required",
		"tag: a string",
		"password: a string",
		"floating_ip: a boolean (true or false)",
		"volume_size: an integer",
		"port: an integer",
		"ratio: a number",
		"stop_timeout: a duration (seconds, or e.g. 5s)",
		"security_groups: a list of string",
		"ports: a list of integer",
		"tags: a mapping",
		"extra: a mapping",
		"anything: any value",
		"nic: a mapping",
		"nics: a list of mapping",
		"volume_persist: a boolean (true or false)",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("fields:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if s.Open {
		t.Error("a schema without a ,rest field is open")
	}
	type open struct {
		Name string         `occopus:"name"`
		Rest map[string]any `occopus:",rest"`
	}
	if o := SchemaOf[open](); !o.Open || len(o.Fields) != 1 {
		t.Errorf("a ,rest field makes the schema open with the other keys: %+v", o)
	}
}

// TestSchemaOfChecks: the derived schema checks a section as validate
// does, naming the key.
func TestSchemaOfChecks(t *testing.T) {
	cases := []struct {
		src  string
		want string // "" = valid
	}{
		{"endpoint: x\ntag: 20.04\nports: [1, 2]\nnic: {conf: dhcp}\n", ""},
		{"tag: x\n", `missing required key "endpoint" (a string)`},
		{"endpoint: x\nvolume_size: big\n", "volume_size: must be an integer, not a string"},
		{"endpoint: x\nnics: [{vlan: 3}]\n", `nics[0]: missing required key "conf" (a string)`},
		{"endpoint: x\nendpiont: y\n", `unknown key "endpiont" (did you mean "endpoint"?)`},
		{"endpoint: x\nsecurity_groups: sg-1\n", "security_groups: must be a list, not a string"},
	}
	for _, tc := range cases {
		t.Run(tc.src, func(t *testing.T) {
			root, err := Parse("s.yaml", []byte(tc.src), LoadOptions{})
			if err != nil {
				t.Fatal(err)
			}
			c := &checker{}
			c.checkMap(root, "resource", SchemaOf[sample]())
			got := c.errs.Error()
			if tc.want == "" && len(c.errs) > 0 || tc.want != "" && !strings.Contains(got, tc.want) {
				t.Fatalf("errors %q, want %q", got, tc.want)
			}
		})
	}
}

func TestDecode(t *testing.T) {
	yes := true
	section := map[string]any{
		"type":            "x",
		"endpoint":        "  https://e.example  ",
		"tag":             20.04,
		"password":        " p@ss ",
		"floating_ip":     "yes", // a rendered template
		"volume_size":     "20",
		"port":            5000,
		"ratio":           "0.5",
		"stop_timeout":    "300ms",
		"security_groups": []any{"a", "b"},
		"ports":           []any{22, 80.0},
		"tags":            map[string]any{"cost": 42, "team": "blue"},
		"extra":           map[string]any{"k": []any{1}},
		"anything":        []any{"x"},
		"nic":             map[string]any{"conf": "dhcp", "vlan": 7},
		"nics":            []any{map[string]any{"conf": "manual"}},
		"volume_persist":  true,
		"unknown":         "ignored: the schema's business",
	}
	var got sample
	if err := Decode("resource", section, &got); err != nil {
		t.Fatal(err)
	}
	want := sample{Endpoint: "https://e.example", Tag: "20.04", Password: " p@ss ", Floating: true, Size: 20, Port: 5000,
		Ratio: 0.5, Stop: 300 * time.Millisecond, Groups: []string{"a", "b"}, Ports: []int{22, 80},
		Tags: map[string]string{"cost": "42", "team": "blue"}, Extra: map[string]any{"k": []any{1}}, Anything: []any{"x"},
		NIC: nested{Conf: "dhcp", VLAN: 7}, NICs: []nested{{Conf: "manual"}}, Persist: &yes}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("decoded\n%+v\nwant\n%+v", got, want)
	}
}

func TestDecodeErrors(t *testing.T) {
	cases := []struct {
		name    string
		section map[string]any
		want    []string // every error line, in order
	}{
		{"missing required", map[string]any{}, []string{`resource: missing required key "endpoint"`}},
		{"null is absent", map[string]any{"endpoint": nil}, []string{`resource: missing required key "endpoint"`}},
		{"wrong scalar", map[string]any{"endpoint": "e", "volume_size": "big", "floating_ip": "maybe"},
			[]string{"resource.floating_ip: must be a boolean (true or false), not a string", "resource.volume_size: must be an integer, not a string"}},
		{"list for string", map[string]any{"endpoint": []any{"a"}}, []string{"resource.endpoint: must be a string, not a list"}},
		{"mapping for list", map[string]any{"endpoint": "e", "ports": map[string]any{}}, []string{"resource.ports: must be a list, not a mapping"}},
		{"bad list item", map[string]any{"endpoint": "e", "ports": []any{22, "ssh"}}, []string{"resource.ports[1]: must be an integer, not a string"}},
		{"out of range", map[string]any{"endpoint": "e", "port": 70000}, []string{"resource.port: 70000 is out of range"}},
		{"negative unsigned", map[string]any{"endpoint": "e", "port": -1}, []string{"resource.port: -1 is out of range"}},
		{"fraction for int", map[string]any{"endpoint": "e", "volume_size": 1.5}, []string{"resource.volume_size: must be an integer, not a number"}},
		{"nested", map[string]any{"endpoint": "e", "nics": []any{map[string]any{"vlan": "x"}}},
			[]string{`resource.nics[0]: missing required key "conf"`, "resource.nics[0].vlan: must be an integer, not a string"}},
		{"duration", map[string]any{"endpoint": "e", "stop_timeout": "soon"}, []string{`resource.stop_timeout: "soon" is neither seconds nor a duration such as 5s`}},
		{"duration too long", map[string]any{"endpoint": "e", "stop_timeout": 1e12}, []string{"resource.stop_timeout: 1e+12 seconds is more than a year"}},
		{"negative duration", map[string]any{"endpoint": "e", "stop_timeout": "-1s"}, []string{"resource.stop_timeout: must not be negative, not -1s"}},
		{"tags values", map[string]any{"endpoint": "e", "tags": map[string]any{"a": []any{}}}, []string{"resource.tags.a: must be a string, not a list"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var s sample
			err := Decode("resource", tc.section, &s)
			if err == nil {
				t.Fatal("no error")
			}
			var got []string
			for _, e := range AsErrors(err) {
				got = append(got, e.Error())
			}
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Fatalf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

func TestDecodeValueAndRest(t *testing.T) {
	var ports []int
	if err := DecodeValue("health_check.ports", []any{22, "80"}, &ports); err != nil || !reflect.DeepEqual(ports, []int{22, 80}) {
		t.Fatalf("ports %v, err %v", ports, err)
	}
	if err := DecodeValue("health_check.ports", "x", &ports); err == nil || err.Error() != "health_check.ports[0]: must be an integer, not a string" {
		t.Fatalf("err %v", err)
	}
	type withRest struct {
		Name string         `occopus:"name"`
		Rest map[string]any `occopus:",rest"`
	}
	var r withRest
	if err := Decode("description", map[string]any{"type": "t", "name": "n", "cpu": 2000, "mem": 1 << 30}, &r); err != nil {
		t.Fatal(err)
	}
	if r.Name != "n" || !reflect.DeepEqual(r.Rest, map[string]any{"cpu": 2000, "mem": 1 << 30}) {
		t.Fatalf("got %+v", r)
	}
	if err := Decode("x", nil, r); err == nil {
		t.Fatal("Decode into a non-pointer succeeded")
	}
}

func TestSchemaOfPanicsOnBadDeclarations(t *testing.T) {
	type noKey struct {
		A string `occopus:",required"`
	}
	type twice struct {
		A string `occopus:"a"`
		B string `occopus:"a"`
	}
	type badOption struct {
		A string `occopus:"a,requird"`
	}
	type badType struct {
		C chan int `occopus:"c"`
	}
	for name, f := range map[string]func(){
		"no key":     func() { SchemaOf[noKey]() },
		"twice":      func() { SchemaOf[twice]() },
		"bad option": func() { SchemaOf[badOption]() },
		"bad type":   func() { SchemaOf[badType]() },
		"not struct": func() { SchemaOf[string]() },
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Fatal("no panic")
				}
			}()
			f()
		})
	}
}

func TestEmbeddedSettings(t *testing.T) {
	type Connection struct {
		Endpoint string `occopus:"endpoint,required"`
		Region   string `occopus:"region"`
	}
	type Instance struct {
		Image string `occopus:"image,required"`
	}
	type Settings struct {
		Connection
		Instance
		Name string `occopus:"name"`
	}
	var keys []string
	for _, f := range SchemaOf[Settings]().Fields {
		keys = append(keys, fmt.Sprintf("%s/%v", f.Key, f.Required))
	}
	if got := strings.Join(keys, ","); got != "endpoint/true,region/false,image/true,name/false" {
		t.Fatalf("flattened keys %s", got)
	}
	section := map[string]any{"type": "x", "endpoint": "e", "image": "busybox", "name": "n"}
	var conn Connection // New's part: the instance keys are not its business
	if err := Decode("resource", section, &conn); err != nil || conn.Endpoint != "e" {
		t.Fatalf("connection %+v, %v", conn, err)
	}
	var all Settings
	if err := Decode("resource", section, &all); err != nil || all.Image != "busybox" || all.Endpoint != "e" || all.Name != "n" {
		t.Fatalf("settings %+v, %v", all, err)
	}
	if err := Decode("resource", map[string]any{"endpoint": "e"}, &all); err == nil || err.Error() != `resource: missing required key "image"` {
		t.Fatalf("missing embedded required key: %v", err)
	}
	type dup struct {
		Connection
		Endpoint string `occopus:"endpoint"`
	}
	defer func() {
		if recover() == nil {
			t.Fatal("a key declared in an embedded struct and beside it did not panic")
		}
	}()
	SchemaOf[dup]()
}

// TestDecodeNamedStrings: values of a named string type (a secret already
// wrapped) decode like strings, byte for byte.
func TestDecodeNamedStrings(t *testing.T) {
	var c struct {
		Key  secret `occopus:"secretkey"`
		User string `occopus:"user"`
	}
	if err := Decode("auth_data", map[string]any{"secretkey": secret(" s3cr3t "), "user": secret(" u ")}, &c); err != nil {
		t.Fatal(err)
	}
	if c.Key != " s3cr3t " || c.User != "u" {
		t.Fatalf("got %+v", c)
	}
}
