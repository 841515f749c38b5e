package nova

import (
	"strings"
	"testing"

	"github.com/occopus-go/occopus/descr"
	"github.com/occopus-go/occopus/resource"
)

// TestSchema: the schema derived from Settings accepts exactly the keys
// and value types of Occopus's nova resource section, and wants
// project_id or tenant_name.
func TestSchema(t *testing.T) {
	p, ok := resource.Lookup("nova")
	if !ok {
		t.Fatal("nova is not registered")
	}
	var got []string
	for _, f := range p.Schema.Fields {
		got = append(got, f.Key+map[bool]string{true: "*"}[f.Required]+" "+f.Type.Name)
	}
	want := []string{"endpoint* a string", "project_id a string",
		"tenant_name a string", "user_domain_name a string", "project_domain_name a string", "region_name a string",
		"image_id* a string", "flavor_name* a string", "server_name a string", "key_name a string", "security_groups a list of string", "network_id a string",
		"floating_ip a single value", "floating_ip_pool a string", "volume_size an integer", "volume_persist a boolean (true or false)",
		"name a string"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") || p.Schema.Open {
		t.Errorf("fields:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	const section = `'node_def:n':
  - resource:
      type: nova
      endpoint: https://keystone.example:5000/v3
      image_id: img-1
      flavor_name: m1.small
`
	cases := []struct{ extra, wantErr string }{
		{"      project_id: p\n", ""},
		{"      tenant_name: demo\n      floating_ip: add_yes_if_you_need_floating_ip_or_remove\n      volume_size: 20\n      volume_persist: yes\n      security_groups: [default]\n", ""},
		{"", `missing required key "project_id" (or the deprecated "tenant_name")`},
		{"      project_id: p\n      volume_size: \"8\"\n", "volume_size: must be an integer, not a string"},
		{"      project_id: p\n      floating_ip: [yes]\n", "floating_ip: must be a single value, not a list"},
		{"      project_id: p\n      volume_persist: maybe\n", "volume_persist: must be a boolean (true or false), not a string"},
	}
	for _, tc := range cases {
		root, err := descr.Parse("nodes.yaml", []byte(section+tc.extra), descr.LoadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		_, err = descr.DecodeNodeDefs("nodes.yaml", root)
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("%q: %v", tc.extra, err)
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("%q: err %v, want %q", tc.extra, err, tc.wantErr)
		}
	}
}
