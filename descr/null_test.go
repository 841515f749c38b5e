package descr_test

import (
	"testing"

	"github.com/occopus-go/occopus/descr"
)

// TestNullOptionalAbsent: an optional key left empty is gone from what the
// rest of the program sees, as if it had not been written; its siblings stay.
func TestNullOptionalAbsent(t *testing.T) {
	defs, err := descr.LoadNodeDefs("testdata/validate/43-null-optional-keys.yaml", descr.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	im := defs.Impls["web"][0]
	res := im.Section("resource")
	for _, k := range []string{"key_name", "security_group_ids", "subnet_id"} {
		if _, ok := res[k]; ok {
			t.Errorf("resource.%s is still present: %v", k, res)
		}
	}
	if res["image_id"] != "ami-12345678" {
		t.Errorf("resource.image_id = %v, want ami-12345678", res["image_id"])
	}
	if _, ok := im.Data["health_check"]; ok {
		t.Errorf("health_check is still present")
	}
	if len(defs.Warnings) != 4 {
		t.Errorf("%d warnings, want 4: %v", len(defs.Warnings), defs.Warnings)
	}
	for _, w := range defs.Warnings {
		if !w.Warning || w.Pos.Line == 0 || w.Pos.Col == 0 {
			t.Errorf("warning %q lacks its place or its mark", w.Error())
		}
	}
}
