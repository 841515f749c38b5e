package descr

import (
	"strings"
	"testing"

	"github.com/occopus-go/occopus/plugin"
)

// TestTypeNotInThisBuild: a type Occopus knows but this build has no
// plugin for is named as such, at the type's place; an unknown type is
// "unknown", with a did-you-mean. (The standard build has a plugin for
// every Occopus type, so the test adds one it lacks.)
func TestTypeNotInThisBuild(t *testing.T) {
	saved := occopusTypes[SectionResource]
	occopusTypes[SectionResource] = append(append([]string(nil), saved...), "occi")
	t.Cleanup(func() { occopusTypes[SectionResource] = saved })
	supported := strings.Join(plugin.Names(SectionResource), ", ")
	cases := []struct{ typ, want string }{
		{"occi", `nodes.yaml:3:13: node_def:web[0].resource.type: resource type occi is not supported by this build (supported: ` + supported + `)`},
		{"dokcer", `nodes.yaml:3:13: node_def:web[0].resource.type: unknown resource type "dokcer" (did you mean "docker"?)`},
	}
	for _, tc := range cases {
		src := "'node_def:web':\n  - resource:\n      type: " + tc.typ + "\n      image: x\n"
		root, err := Parse("nodes.yaml", []byte(src), LoadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err = DecodeNodeDefs("nodes.yaml", root); err == nil || err.Error() != tc.want {
			t.Errorf("%s: %v\nwant %s", tc.typ, err, tc.want)
		}
	}
	if err := SupportedType(SectionResource, "occi"); err == nil || err.Error() != "resource type occi is not supported by this build (supported: "+supported+")" {
		t.Errorf("SupportedType(occi) = %v", err)
	}
	if err := SupportedType(SectionResource, "nosuch"); err == nil || !strings.HasPrefix(err.Error(), `unknown resource type "nosuch"`) {
		t.Errorf("SupportedType(nosuch) = %v", err)
	}
	if supported != "" {
		if err := SupportedType(SectionResource, plugin.Names(SectionResource)[0]); err != nil {
			t.Errorf("SupportedType of a registered type = %v", err)
		}
	}
}
