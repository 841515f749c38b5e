package main

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var updateGolden = flag.Bool("update", false, "rewrite golden files")

// TestValidateTogether: validate INFRA NODES checks the description
// against the node definitions: each case of testdata/validate-together
// has infra.yaml, checked with the shared nodes.yaml, and want.err, the
// stderr (file:line:col: path: message) it must give; a case whose
// want.err holds only warnings exits 0. -update rewrites want.err.
func TestValidateTogether(t *testing.T) {
	dirs, _ := filepath.Glob("testdata/validate-together/*/infra.yaml")
	if len(dirs) < 5 {
		t.Fatalf("%d cases", len(dirs))
	}
	nodes := "testdata/validate-together/nodes.yaml"
	for _, f := range dirs {
		d := filepath.Dir(f)
		t.Run(filepath.Base(d), func(t *testing.T) {
			_, stderr, code := run(t, "validate", filepath.Join(d, "infra.yaml"), nodes)
			golden := filepath.Join(d, "want.err")
			if *updateGolden {
				if err := os.WriteFile(golden, []byte(stderr), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if stderr != string(want) {
				t.Errorf("stderr differs from %s\n--- got\n%s--- want\n%s", golden, stderr, want)
			}
			if wantCode := map[bool]int{true: 0, false: 1}[onlyWarnings(string(want))]; code != wantCode {
				t.Errorf("exit %d, want %d", code, wantCode)
			}
		})
	}
}

// TestValidateWithStore: without node definition files, validate checks
// the node types against the store and says so.
func TestValidateWithStore(t *testing.T) {
	t.Setenv("OCCOPUS_HOME", t.TempDir())
	infra := "testdata/validate-together/getip-not-dependency/infra.yaml"
	stdout, _, code := run(t, "validate", infra)
	if code != 0 || !strings.Contains(stdout, "not checked: no node definition file given and no store") {
		t.Fatalf("without a store: exit %d, %s", code, stdout)
	}
	if _, stderr, code := run(t, "import", "testdata/validate-together/nodes.yaml"); code != 0 {
		t.Fatal(stderr)
	}
	stdout, stderr, code := run(t, "validate", infra)
	if code != 0 || !strings.Contains(stdout, "ok with the store's node definitions") || !strings.Contains(stderr, "warning: node web uses the address of node db") {
		t.Fatalf("with the store: exit %d\n%s\n%s", code, stdout, stderr)
	}
	stdout, stderr, code = run(t, "validate", "testdata/validate-together/unknown-type/infra.yaml")
	if code != 1 || !strings.Contains(stderr, "node type \"webb\" has no definition in the store") {
		t.Fatalf("unknown type with the store: exit %d\n%s\n%s", code, stdout, stderr)
	}
}

// TestWrongKind: import of a description, build of node definitions (and
// either of the other files) says what the file is and which command
// takes it.
func TestWrongKind(t *testing.T) {
	infra := "testdata/validate-together/unknown-type/infra.yaml"
	nodes := "testdata/validate-together/nodes.yaml"
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"import", infra}, "is an infrastructure description (infra_name, nodes), which is built with `occopus build " + infra + "`; import takes a node definition file"},
		{[]string{"build", nodes}, "is a node definition file ('node_def:TYPE' keys), which is stored with `occopus import " + nodes + "`; build takes an infrastructure description"},
		{[]string{"build", "../../descr/testdata/validate/54-config-unknown-key.yaml"}, "is an occopus_config.yaml"},
		{[]string{"import", "../../descr/testdata/validate/52-cloudinit-template.yaml"}, "is a cloud-init template"},
		{[]string{"import", "../../descr/testdata/validate/36-auth-data-entry.yaml"}, "is an auth_data file"},
	}
	for _, tc := range cases {
		_, stderr, code := run(t, tc.args...)
		if code != 1 || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want %q", tc.args, code, stderr, tc.want)
		}
	}
}
