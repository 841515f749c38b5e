package occopus_test

import (
	"go/build"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/occopus-go/occopus"

// imports lists, per package directory of this module, the module's
// packages it imports (tests excluded, as they may reach wider).
func imports(t *testing.T) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			return nil
		}
		if name := d.Name(); path != "." && (strings.HasPrefix(name, ".") || name == "testdata") {
			return filepath.SkipDir
		}
		pkg, err := build.ImportDir(path, 0)
		if err != nil {
			return nil // no Go files here
		}
		rel := filepath.ToSlash(path)
		for _, imp := range pkg.Imports {
			if imp == module || strings.HasPrefix(imp, module+"/") {
				out[rel] = append(out[rel], strings.TrimPrefix(strings.TrimPrefix(imp, module), "/"))
			}
		}
		if _, ok := out[rel]; !ok {
			out[rel] = nil
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestLayers keeps the import graph of docs/DESIGN.md: the CLI reaches
// the engine only through the Manager, internal/ holds leaf helpers, the
// plugins and the data model never import what runs them.
func TestLayers(t *testing.T) {
	graph := imports(t)
	if len(graph) < 20 {
		t.Fatalf("found only %d packages; is the test run from the module root?", len(graph))
	}
	rules := []struct {
		pkg       func(string) bool
		forbidden []string // packages (and their sub-packages) it must not import
		why       string
	}{
		{func(p string) bool { return p == "cmd/occopus" },
			[]string{"engine", "compile", "resolve", "resource", "health", "configmgr", "contextualise", "internal/cloudapi", "internal/keylock", "internal/proc", "tmpl", "plugin"},
			"the CLI goes through occopus.Manager"},
		{func(p string) bool { return p == "rest" },
			[]string{"engine", "compile", "resolve", "resource", "internal/cloudapi"},
			"REST goes through occopus.Manager"},
		{func(p string) bool { return strings.HasPrefix(p, "internal/") },
			[]string{"", "descr", "engine", "store", "resource", "rest", "cmd", "auth", "compile", "resolve", "health", "tmpl", "plugin"},
			"internal/ holds leaf helpers"},
		{func(p string) bool { return p == "descr" || p == "plugin" || p == "tmpl" },
			[]string{"", "engine", "store", "resource", "rest", "cmd", "compile", "resolve", "health", "configmgr", "contextualise"},
			"the data model is below everything that uses it"},
		{func(p string) bool {
			return strings.HasPrefix(p, "resource/") || strings.HasPrefix(p, "health") || strings.HasPrefix(p, "configmgr") || strings.HasPrefix(p, "contextualise")
		},
			[]string{"", "engine", "store", "rest", "cmd", "resolve"},
			"plugins do not import what runs them"},
		{func(p string) bool { return p == "engine" }, []string{"", "rest", "cmd"}, "the engine is below the Manager"},
	}
	for pkg, imps := range graph {
		for _, r := range rules {
			if !r.pkg(pkg) {
				continue
			}
			for _, imp := range imps {
				for _, f := range r.forbidden {
					if imp == f || (f != "" && strings.HasPrefix(imp, f+"/")) {
						t.Errorf("%s imports %s: %s", pkg, orRoot(imp), r.why)
					}
				}
			}
		}
	}
	// The rule above must see the CLI at all.
	if !slices.Contains(graph["cmd/occopus"], "") {
		t.Error("cmd/occopus does not import the occopus package")
	}
}

func orRoot(p string) string {
	if p == "" {
		return module
	}
	return p
}
