package ec2

import (
	"strings"
	"testing"

	"github.com/occopus-go/occopus/descr"
	"github.com/occopus-go/occopus/resource"
)

// TestSchema: the schema derived from Settings accepts exactly the keys
// and value types of Occopus's ec2 resource section.
func TestSchema(t *testing.T) {
	p, ok := resource.Lookup("ec2")
	if !ok {
		t.Fatal("ec2 is not registered")
	}
	var got []string
	for _, f := range p.Schema.Fields {
		got = append(got, f.Key+map[bool]string{true: "*"}[f.Required]+" "+f.Type.Name)
	}
	want := []string{"endpoint* a string", "regionname* a string", "image_id* a string", "instance_type* a string",
		"key_name a string", "security_group_ids a list of string", "subnet_id a string", "tags a mapping", "name a string"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") || p.Schema.Open {
		t.Errorf("fields:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	const section = `'node_def:n':
  - resource:
      type: ec2
      endpoint: https://ec2.example
      regionname: eu-1
      image_id: ami-1
      instance_type: t3.micro
`
	cases := []struct{ extra, wantErr string }{
		{"", ""},
		{"      key_name: k\n      security_group_ids: [sg-1, 2]\n      subnet_id: 20.04\n      tags: {a: 1}\n      name: c\n", ""},
		{"      security_group_ids: sg-1\n", "security_group_ids: must be a list, not a string"},
		{"      tags: x\n", "tags: must be a mapping, not a string"},
		{"      security_groups_ids: [sg-1]\n", `unknown key "security_groups_ids" (did you mean "security_group_ids"?)`},
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
