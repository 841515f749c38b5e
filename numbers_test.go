package occopus

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/occopus-go/occopus/descr"
	"github.com/occopus-go/occopus/engine"
	"github.com/occopus-go/occopus/resolve"
)

// TestStoredNumbersKeepTheirForm: node definitions and descriptions go
// through JSON in the store, where 3 and 3.0 are one number. A filter on
// `tag: 3.0` must select the implementation with `tag: 3.0` (not the one
// with `tag: 3`) after import, as validate with the files does — both for
// the stored node definitions (Render from the store) and for the stored
// description (the filter as a pass reads it back).
func TestStoredNumbersKeepTheirForm(t *testing.T) {
	dir := t.TempDir()
	m := newManager(t, filepath.Join(dir, "db"), dir)
	const defsText = `'node_def:web_t':
  - resource: {type: docker, image: a, tag: 3.0}
  - resource: {type: docker, image: a, tag: 3}
  - resource: {type: docker, image: a, tag: 2.5e+20}
`
	root, err := descr.Parse("nodes.yaml", []byte(defsText), descr.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defs, err := descr.DecodeNodeDefs("nodes.yaml", root)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.ImportNodeDefs(t.Context(), defs); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		filter string
		want   string // the tag of the one implementation selected
	}{
		{`{tag: 3.0}`, "3.0"},
		{`{tag: "3.0"}`, "3.0"},
		{`{tag: 3}`, "3"},
		{`{tag: "3"}`, "3"},
		{`{tag: 2.5e+20}`, "2.5e+20"},
	} {
		t.Run(tc.filter, func(t *testing.T) {
			src := "infra_name: nums\nnodes:\n  - name: web\n    type: web_t\n    filter: " + tc.filter + "\n"
			in, err := descr.ParseInfra("infra.yaml", []byte(src), descr.LoadOptions{})
			if err != nil {
				t.Fatal(err)
			}
			// With the files and from the store: the same choice.
			for what, nd := range map[string][]*descr.NodeDefs{"files": {defs}, "store": nil} {
				r, err := m.Render(t.Context(), RenderRequest{Infra: in, NodeDefs: nd})
				if err != nil {
					t.Fatalf("render with the %s: %v", what, err)
				}
				impls := r.Nodes["web"].Implementations
				if len(impls) != 1 || tagText(impls[0].Resource["tag"]) != tc.want {
					t.Errorf("render with the %s: %d implementation(s) %v, want the one with tag %s", what, len(impls), impls, tc.want)
				}
			}
			// The stored description, read back as a pass reads it.
			id, err := m.Submit(t.Context(), in, "")
			if err != nil {
				t.Fatal(err)
			}
			_, st, err := m.eng.Static(t.Context(), id)
			if err != nil {
				t.Fatal(err)
			}
			stored, err := engine.Implementations(t.Context(), m.opt.Store, "web_t")
			if err != nil {
				t.Fatal(err)
			}
			got := resolve.Candidates(st.ByName["web"], stored)
			if len(got) != 1 || tagText(got[0].Section("resource")["tag"]) != tc.want {
				t.Errorf("stored description and definitions: %d candidate(s), want the one with tag %s", len(got), tc.want)
			}
		})
	}
}

// tagText shows a value as YAML wrote it: a float keeps its point.
func tagText(v any) string {
	switch v := v.(type) {
	case float64:
		s := fmt.Sprint(v)
		if v == float64(int64(v)) && v < 1e15 {
			s = fmt.Sprintf("%.1f", v)
		}
		return s
	}
	return fmt.Sprint(v)
}
