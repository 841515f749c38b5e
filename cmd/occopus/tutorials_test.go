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

func TestTutorialsValidate(t *testing.T) {
	for _, dir := range tutorials(t) {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			infras, _ := filepath.Glob(filepath.Join(dir, "infra-*.yaml"))
			nodes := filepath.Join(dir, "nodes", "node_definitions.yaml")
			files := append(infras, nodes)
			stdout, stderr, code := run(t, append([]string{"validate"}, files...)...)
			if code != 0 {
				t.Fatalf("exit %d\n%s", code, stderr)
			}
			if got := strings.Count(stdout, ": ok ("); got != len(files) {
				t.Errorf("%d files ok, want %d:\n%s", got, len(files), stdout)
			}
		})
	}
}

// TestTutorialsValidateEveryFile: every YAML file of the tutorials (infra
// descriptions, node definitions, cloud-init templates, auth_data,
// occopus_config.yaml and redis_config.yaml) passes validate, each told
// apart by its content, with no warning.
func TestTutorialsValidateEveryFile(t *testing.T) {
	var files []string
	err := filepath.WalkDir(tutorialsDir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && (strings.HasSuffix(p, ".yaml") || strings.HasSuffix(p, ".yml")) {
			files = append(files, p)
		}
		return err
	})
	if err != nil || len(files) == 0 {
		t.Skipf("no Occopus tutorials at %s (%v)", tutorialsDir, err)
	}
	kinds := map[string]int{}
	for _, f := range files {
		stdout, stderr, code := run(t, "validate", f)
		if code != 0 || stderr != "" || !strings.Contains(stdout, ": ok (") {
			t.Errorf("%s: exit %d\nstdout %s\nstderr %s", f, code, stdout, stderr)
			continue
		}
		kind, _, _ := strings.Cut(strings.SplitN(stdout, ": ok (", 2)[1], ":")
		kinds[strings.Fields(kind)[0]]++
	}
	for _, k := range []string{"infrastructure", "node", "cloud-init", "auth_data", "configuration"} {
		if kinds[k] == 0 {
			t.Errorf("no tutorial file validated as %s: %v", k, kinds)
		}
	}
	t.Logf("%d files: %v", len(files), kinds)
}

// TestTutorialsRender renders every tutorial and compares the result, by
// meaning, with what Python's Jinja2 and PyYAML produce for the same data
// (testdata/tutorials/*.json, made by scripts/jinja2_golden.py).
func TestTutorialsRender(t *testing.T) {
	for _, dir := range tutorials(t) {
		name := filepath.Base(dir)
		t.Run(name, func(t *testing.T) {
			infras, _ := filepath.Glob(filepath.Join(dir, "infra-*.yaml"))
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

// TestRefusedTypes: a definition naming a resource type this build has
// no backend for (occi, of older Occopus versions) is refused by import
// at its line and column, and, when it reached the store some other way
// (an Occopus store, another build), by build before anything is stored
// or created.
func TestRefusedTypes(t *testing.T) {
	home := t.TempDir()
	t.Setenv("OCCOPUS_HOME", home)
	nodes := filepath.Join(home, "nodes.yaml")
	infra := filepath.Join(home, "infra.yaml")
	os.WriteFile(nodes, []byte("'node_def:vm':\n  - resource:\n      type: occi\n      endpoint: https://occi.example\n"), 0o644)
	os.WriteFile(infra, []byte("infra_name: old\nnodes:\n  - name: vm\n    type: vm\n"), 0o644)
	supported := strings.Join(descr.SectionTypes(descr.SectionResource), ", ")
	want := `unknown resource type "occi" (supported: ` + supported + ")"
	_, stderr, code := run(t, "import", nodes)
	if code != 1 || !strings.Contains(stderr, nodes+`:3:13: node_def:vm[0].resource.type: unknown resource type "occi"`) {
		t.Fatalf("import: exit %d, stderr %s", code, stderr)
	}
	st, err := sqlite.Open(t.Context(), filepath.Join(home, "occopus.db"))
	if err != nil {
		t.Fatal(err)
	}
	if types, _ := st.NodeDefTypes(t.Context()); len(types) != 0 {
		t.Fatalf("a refused import stored %v", types)
	}
	if err := st.PutNodeDefs(t.Context(), map[string]json.RawMessage{"vm": json.RawMessage(`[{"resource": {"type": "occi", "endpoint": "https://occi.example"}}]`)}); err != nil {
		t.Fatal(err)
	}
	st.Close()
	stdout, stderr, code := run(t, "build", infra)
	if code != 1 || !strings.Contains(stderr, infra+`:4:11: nodes[0].type: node type "vm" (node_def:vm[0]): `+want) {
		t.Fatalf("build: exit %d, want 1 naming the type at the description's line\nstdout %s\nstderr %s", code, stdout, stderr)
	}
	stdout, _, _ = run(t, "maintain", "-l")
	if strings.Count(strings.TrimSpace(stdout), "\n") != 0 {
		t.Fatalf("an infrastructure was stored:\n%s", stdout)
	}
}
