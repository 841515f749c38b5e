package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/occopus-go/occopus/descr"
	"github.com/occopus-go/occopus/store/sqlite"
)

// tutorialsDir holds Occopus's own tutorials (Apache-2.0), kept outside the
// repository in ../shared.
const tutorialsDir = "../../../shared/occopus-tutorials"

func tutorials(t *testing.T) []string {
	t.Helper()
	dirs, _ := filepath.Glob(filepath.Join(tutorialsDir, "*", "nodes", "node_definitions.yaml"))
	if len(dirs) == 0 {
		t.Skipf("no Occopus tutorials at %s (../shared is not laid out beside this checkout)", tutorialsDir)
	}
	out := make([]string, len(dirs))
	for i, d := range dirs {
		out[i] = filepath.Dir(filepath.Dir(d))
	}
	return out
}

// notInThisBuild are the tutorials whose resource type has no backend in
// this build yet, with that type: validate, render, import, build and
// REST refuse them, saying so. A backend that lands removes its entries
// (and TestTutorialsRender then compares them with the Jinja2 goldens).
var notInThisBuild = map[string]string{}

// supportedResources lists the resource types of this build as the
// refusals name them.
func supportedResources() string {
	return strings.Join(descr.SectionTypes(descr.SectionResource), ", ")
}

// refusedTypes checks that stderr holds only "not supported by this
// build" errors, each about typ and naming the node definition file with
// a line and column.
func refusedTypes(t *testing.T, dir, typ, stderr string) {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	want := fmt.Sprintf("resource.type: resource type %s is not supported by this build (supported: %s)", typ, supportedResources())
	prefix := filepath.Join(dir, "nodes", "node_definitions.yaml") + ":"
	for _, l := range lines {
		if !strings.HasPrefix(l, prefix) || !strings.HasSuffix(l, want) {
			t.Errorf("error line %q: want %s<line>:<col>: node_def:...%s", l, prefix, want)
		}
	}
}

func TestTutorialsValidate(t *testing.T) {
	for _, dir := range tutorials(t) {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			infras, _ := filepath.Glob(filepath.Join(dir, "infra-*.yaml"))
			nodes := filepath.Join(dir, "nodes", "node_definitions.yaml")
			files := append(infras, nodes)
			stdout, stderr, code := run(t, append([]string{"validate"}, files...)...)
			if typ, refused := notInThisBuild[filepath.Base(dir)]; refused {
				if code != 1 {
					t.Fatalf("exit %d, want 1 (resource type %s has no backend in this build)\n%s%s", code, typ, stdout, stderr)
				}
				refusedTypes(t, dir, typ, stderr)
				if got := strings.Count(stdout, ": ok ("); got != len(infras) {
					t.Errorf("%d files ok, want the %d infrastructure description(s):\n%s", got, len(infras), stdout)
				}
				return
			}
			if code != 0 {
				t.Fatalf("exit %d\n%s", code, stderr)
			}
			if got := strings.Count(stdout, ": ok ("); got != len(files) {
				t.Errorf("%d files ok, want %d:\n%s", got, len(files), stdout)
			}
		})
	}
}

// TestTutorialsNotInThisBuildImport: importing the node definitions of a
// type this build cannot run is refused, and stores nothing.
func TestTutorialsNotInThisBuildImport(t *testing.T) {
	dirs := tutorials(t)
	for _, dir := range dirs {
		typ, refused := notInThisBuild[filepath.Base(dir)]
		if !refused {
			continue
		}
		t.Run(filepath.Base(dir), func(t *testing.T) {
			t.Setenv("OCCOPUS_HOME", t.TempDir())
			_, stderr, code := run(t, "import", filepath.Join(dir, "nodes", "node_definitions.yaml"))
			if code != 1 {
				t.Fatalf("import: exit %d, want 1\n%s", code, stderr)
			}
			refusedTypes(t, dir, typ, stderr)
			infras, _ := filepath.Glob(filepath.Join(dir, "infra-*.yaml"))
			_, stderr, code = run(t, "build", infras[0])
			if code != 1 || !strings.Contains(stderr, "has no definition in the store") {
				t.Fatalf("build after a refused import: exit %d, want 1 naming the missing definition\n%s", code, stderr)
			}
		})
	}
}

// TestTutorialsRender renders every tutorial and compares the result, by
// meaning, with what Python's Jinja2 and PyYAML produce for the same data
// (testdata/tutorials/*.json, made by scripts/jinja2_golden.py).
func TestTutorialsRender(t *testing.T) {
	for _, dir := range tutorials(t) {
		name := filepath.Base(dir)
		t.Run(name, func(t *testing.T) {
			infras, _ := filepath.Glob(filepath.Join(dir, "infra-*.yaml"))
			if typ, refused := notInThisBuild[name]; refused {
				_, stderr, code := run(t, "render", "--nodes", filepath.Join(dir, "nodes", "node_definitions.yaml"), infras[0])
				if code != 1 {
					t.Fatalf("render: exit %d, want 1 (resource type %s has no backend in this build)\n%s", code, typ, stderr)
				}
				refusedTypes(t, dir, typ, stderr)
				return
			}
			in, err := descr.LoadInfra(infras[0], descr.LoadOptions{})
			if err != nil {
				t.Fatal(err)
			}
			args := []string{"render", "--nodes", filepath.Join(dir, "nodes", "node_definitions.yaml"),
				"--infra-id", "11111111-1111-4111-8111-111111111111"}
			for i, n := range in.Nodes {
				args = append(args,
					"--node-id", fmt.Sprintf("%s=22222222-2222-4222-8222-%012d", n.Name, i+1),
					"--ip", fmt.Sprintf("%s=192.0.2.%d", n.Name, i+1),
					"--privip", fmt.Sprintf("%s=198.51.100.%d", n.Name, i+1))
			}
			args = append(args, infras[0])
			stdout, stderr, code := run(t, args...)
			if code != 0 {
				t.Fatalf("exit %d\n%s", code, stderr)
			}
			if stderr != "" {
				t.Errorf("unexpected stderr: %s", stderr)
			}
			var got, want any
			if err := json.Unmarshal([]byte(stdout), &got); err != nil {
				t.Fatalf("output is not JSON: %v\n%s", err, stdout)
			}
			raw, err := os.ReadFile(filepath.Join("testdata", "tutorials", name+".json"))
			if err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(raw, &want); err != nil {
				t.Fatal(err)
			}
			compareMeaning(t, "", got, want)
		})
	}
}

// compareMeaning compares JSON values; strings holding cloud-config are
// compared as the YAML data they encode.
func compareMeaning(t *testing.T, path string, got, want any) {
	t.Helper()
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			t.Errorf("%s: got %T, want a mapping", path, got)
			return
		}
		for k := range w {
			if _, ok := g[k]; !ok {
				t.Errorf("%s.%s: missing", path, k)
			}
		}
		for k := range g {
			if _, ok := w[k]; !ok {
				t.Errorf("%s.%s: unexpected (value %v)", path, k, g[k])
				continue
			}
			compareMeaning(t, path+"."+k, g[k], w[k])
		}
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			t.Errorf("%s: got %v, want %v", path, got, want)
			return
		}
		for i := range w {
			compareMeaning(t, fmt.Sprintf("%s[%d]", path, i), g[i], w[i])
		}
	case string:
		g, ok := got.(string)
		if ok && strings.HasPrefix(w, "#cloud-config") && strings.HasPrefix(g, "#cloud-config") {
			var gv, wv any
			if err := yaml.Unmarshal([]byte(g), &gv); err != nil {
				t.Errorf("%s: rendered cloud-config is not YAML: %v\n%s", path, err, g)
				return
			}
			if err := yaml.Unmarshal([]byte(w), &wv); err != nil {
				t.Fatalf("%s: golden cloud-config is not YAML: %v", path, err)
			}
			if !reflect.DeepEqual(gv, wv) {
				t.Errorf("%s: cloud-config differs\n--- got\n%s\n--- want (Jinja2)\n%s", path, g, w)
			}
			return
		}
		if got != want {
			t.Errorf("%s: got %q, want (Jinja2) %q", path, got, want)
		}
	default:
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: got %v, want %v", path, got, want)
		}
	}
}

// TestTutorialsNotInThisBuildBuild: node definitions that reached the
// store some other way (an Occopus store, another build) still cannot be
// built: build refuses before anything is stored or created.
func TestTutorialsNotInThisBuildBuild(t *testing.T) {
	dir := filepath.Join(tutorialsDir, "azure-ping")
	if _, err := os.Stat(dir); err != nil {
		t.Skipf("no %s (../shared not laid out)", dir)
	}
	home := t.TempDir()
	t.Setenv("OCCOPUS_HOME", home)
	root, err := descr.ParseFile(filepath.Join(dir, "nodes", "node_definitions.yaml"), descr.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defs := map[string]json.RawMessage{}
	for k, v := range root.Interface().(map[string]any) {
		raw, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		defs[strings.TrimPrefix(k, "node_def:")] = raw
	}
	st, err := sqlite.Open(t.Context(), filepath.Join(home, "occopus.db"))
	if err != nil {
		t.Fatal(err)
	}
	if err := st.PutNodeDefs(t.Context(), defs); err != nil {
		t.Fatal(err)
	}
	st.Close()
	infras, _ := filepath.Glob(filepath.Join(dir, "infra-*.yaml"))
	stdout, stderr, code := run(t, "build", infras[0])
	if code != 1 || !strings.Contains(stderr, "resource type azure_vm is not supported by this build (supported: "+supportedResources()+")") {
		t.Fatalf("build: exit %d, want 1 saying azure_vm is not supported\nstdout %s\nstderr %s", code, stdout, stderr)
	}
	if !strings.Contains(stderr, "infra-azure-ping.yaml:") {
		t.Errorf("the error does not name the description's file and line: %s", stderr)
	}
	stdout, _, _ = run(t, "maintain", "-l")
	if strings.Count(strings.TrimSpace(stdout), "\n") != 0 {
		t.Fatalf("an infrastructure was stored:\n%s", stdout)
	}
}
