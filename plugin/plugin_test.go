package plugin

import (
	"errors"
	"strings"
	"testing"
)

type fake struct {
	id  ID
	err error
}

func (f fake) PluginID() ID { return f.id }
func (f fake) Check() error { return f.err }

type other struct{ fake }

// reset empties the registry for one test.
func reset(t *testing.T) {
	t.Helper()
	mu.Lock()
	saved := reg
	reg = map[ID]Plugin{}
	mu.Unlock()
	t.Cleanup(func() { mu.Lock(); reg = saved; mu.Unlock() })
}

func TestRegisterRefuses(t *testing.T) {
	cases := []struct {
		name  string
		first Plugin // registered before, when not nil
		p     Plugin
		want  string // panic message part
	}{
		{name: "nil", p: nil, want: "Register(nil)"},
		{name: "empty id", p: fake{id: ""}, want: `id "" is not KIND.NAME`},
		{name: "no kind", p: fake{id: ".docker"}, want: "is not KIND.NAME"},
		{name: "no name", p: fake{id: "resource."}, want: "is not KIND.NAME"},
		{name: "no dot", p: fake{id: "resource"}, want: "is not KIND.NAME"},
		{name: "check fails", p: fake{id: "resource.half", err: errors.New("resource plugin without a constructor (New)")}, want: "resource.half: resource plugin without a constructor"},
		{name: "duplicate", first: fake{id: "resource.docker"}, p: fake{id: "resource.docker"}, want: "duplicate registration of resource.docker"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			reset(t)
			if tc.first != nil {
				Register(tc.first)
			}
			defer func() {
				v := recover()
				if v == nil {
					t.Fatal("no panic")
				}
				if !strings.Contains(v.(string), tc.want) {
					t.Fatalf("panic %q, want it to contain %q", v, tc.want)
				}
				if _, ok := Lookup(ID("resource.half")); ok {
					t.Fatal("a refused plugin was registered")
				}
			}()
			Register(tc.p)
		})
	}
}

func TestLookupGetNames(t *testing.T) {
	reset(t)
	for _, id := range []ID{"resource.nova", "resource.docker", "health_check.ping", "resource.ec2"} {
		Register(fake{id: id})
	}
	Register(other{fake{id: "resource.odd"}})
	if got := strings.Join(Names("resource"), ","); got != "docker,ec2,nova,odd" {
		t.Errorf("Names(resource) = %s", got)
	}
	if got := strings.Join(Names("config_management"), ","); got != "" {
		t.Errorf("Names of an empty kind = %q", got)
	}
	if _, ok := Get[fake](ID("resource.docker")); !ok {
		t.Error("Get[fake] of a fake failed")
	}
	if _, ok := Get[fake](ID("resource.odd")); ok {
		t.Error("Get[fake] returned a plugin of another type")
	}
	if _, ok := Get[fake](ID("resource.azure_vm")); ok {
		t.Error("Get of an unregistered id succeeded")
	}
	var ids []string
	for _, p := range All() {
		ids = append(ids, string(p.PluginID()))
	}
	if got := strings.Join(ids, ","); got != "health_check.ping,resource.docker,resource.ec2,resource.nova,resource.odd" {
		t.Errorf("All() = %s", got)
	}
	if id := NewID("config_management", "puppet_solo"); id.Kind() != "config_management" || id.Name() != "puppet_solo" {
		t.Errorf("NewID/Kind/Name: %q %q %q", id, id.Kind(), id.Name())
	}
}

func TestWhole(t *testing.T) {
	cases := []struct {
		name            string
		schema, newFunc bool
		want            string
	}{
		{"docker", true, true, ""},
		{"", true, true, "resource plugin without a Type"},
		{"azure_vm", false, false, "resource plugin without a Schema"},
		{"azure_vm", true, false, "resource plugin without a constructor (New)"},
	}
	for _, tc := range cases {
		err := Whole("resource", tc.name, tc.schema, tc.newFunc)
		if (err == nil) != (tc.want == "") || err != nil && err.Error() != tc.want {
			t.Errorf("Whole(%q, %v, %v) = %v, want %q", tc.name, tc.schema, tc.newFunc, err, tc.want)
		}
	}
}
