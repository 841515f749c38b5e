package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	_ "github.com/occopus-go/occopus/plugins/standard"
)

// run runs the command line with a private OCCOPUS_HOME.
func run(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	if os.Getenv("OCCOPUS_HOME") == "" {
		t.Setenv("OCCOPUS_HOME", t.TempDir())
	}
	var o, e bytes.Buffer
	code = Run(context.Background(), "occopus", args, strings.NewReader(""), &o, &e)
	return o.String(), e.String(), code
}

// corpusDir is the validation corpus, kept beside package descr.
const corpusDir = "../../descr/testdata/validate/"

// TestValidateCorpus: `occopus validate` prints exactly the errors the
// corpus records (descr's TestValidateCorpus checks them against the
// Manager), one per line on stderr, nothing on stdout, and exits 1.
func TestValidateCorpus(t *testing.T) {
	files, err := filepath.Glob(corpusDir + "*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 25 {
		t.Fatalf("corpus has %d cases, want at least 25", len(files))
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".yaml")
		t.Run(name, func(t *testing.T) {
			stdout, stderr, code := run(t, "validate", f)
			golden := strings.TrimSuffix(f, ".yaml") + ".err"
			raw, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			// A golden of warnings only is a valid file: exit 0 and "ok".
			warnOnly := onlyWarnings(string(raw))
			switch {
			case warnOnly && (code != 0 || !strings.Contains(stdout, ": ok (")):
				t.Fatalf("exit %d, want 0 and ok; stdout %q stderr %q", code, stdout, stderr)
			case !warnOnly && code != 1:
				t.Fatalf("exit %d, want 1; stdout %q stderr %q", code, stdout, stderr)
			case !warnOnly && stdout != "":
				t.Errorf("stdout %q, want nothing", stdout)
			}
			want := strings.ReplaceAll(string(raw), "testdata/validate/", corpusDir)
			if stderr != want {
				t.Errorf("stderr differs from %s\n--- got\n%s--- want\n%s", golden, stderr, want)
			}
		})
	}
}

// onlyWarnings reports whether every line of a golden is a warning.
func onlyWarnings(golden string) bool {
	for _, l := range strings.Split(strings.TrimSpace(golden), "\n") {
		if !strings.Contains(l, ": warning: ") {
			return false
		}
	}
	return true
}

// TestMultiCall: the binary answers to the names of Occopus's commands.
func TestMultiCall(t *testing.T) {
	cases := []struct {
		argv0 string
		args  []string
		want  []string
	}{
		{"occopus", []string{"build", "x.yaml"}, []string{"build", "x.yaml"}},
		{"/usr/local/bin/occopus-build", []string{"x.yaml"}, []string{"build", "x.yaml"}},
		{"occopus-import", []string{"nodes.yaml"}, []string{"import", "nodes.yaml"}},
		{"occopus-rest-service", nil, []string{"rest-service"}},
		{"occopus-", []string{"version"}, []string{"version"}},
	}
	for _, tc := range cases {
		got := multiCall(tc.argv0, tc.args)
		if strings.Join(got, " ") != strings.Join(tc.want, " ") {
			t.Errorf("multiCall(%q, %v) = %v, want %v", tc.argv0, tc.args, got, tc.want)
		}
	}
	var o, e bytes.Buffer
	if code := Run(context.Background(), "occopus-version", nil, strings.NewReader(""), &o, &e); code != 0 || !strings.HasPrefix(o.String(), "occopus ") {
		t.Fatalf("occopus-version: exit %d, stdout %q, stderr %q", code, o.String(), e.String())
	}
}

// TestRenderErrors: bad flags and undefined names are errors that say where.
func TestRenderErrors(t *testing.T) {
	dir := t.TempDir()
	infra := filepath.Join(dir, "infra.yaml")
	nodes := filepath.Join(dir, "nodes.yaml")
	os.WriteFile(infra, []byte("infra_name: x\nnodes:\n  - {name: a, type: t}\n  - {name: b, type: t}\n"), 0o644)
	os.WriteFile(nodes, []byte("'node_def:t':\n  - resource: {type: docker, image: busybox}\n    contextualisation:\n      type: docker\n      env: [\"M={{ getip(master) }}\"]\n"), 0o644)
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"--node-id", "zz=11111111-1111-4111-8111-111111111111"}, `no node named "zz"`},
		{[]string{"--node-id", "a=not-a-uuid"}, "not a UUID"},
		{[]string{"--ip", "a=999.1.1.1"}, "not an IP address"},
		{[]string{"--infra-id", "nope"}, "not a UUID"},
		{nil, `nodes.yaml:5:25: node_def:t[0].contextualisation.env[0]: line 1, column 12: undefined name "master" in getip(master)`},
	}
	for _, tc := range cases {
		args := append(append([]string{"render", "--nodes", nodes}, tc.args...), infra)
		_, stderr, code := run(t, args...)
		if code == 0 || !strings.Contains(stderr, tc.want) {
			t.Errorf("render %v: exit %d, stderr %q; want it to contain %q", tc.args, code, stderr, tc.want)
		}
	}
}

// TestValidateAuthData: Occopus's own auth_data.yaml is recognised and
// checked, and its credentials are not printed.
func TestValidateAuthData(t *testing.T) {
	path := filepath.Join(tutorialsDir, "dot-occopus", "auth_data.yaml")
	if _, err := os.Stat(path); err != nil {
		t.Skipf("no %s (../shared not laid out)", path)
	}
	stdout, stderr, code := run(t, "validate", path)
	if code != 0 || !strings.Contains(stdout, "auth_data: entries for resource types ec2, nova") {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	if strings.Contains(stdout+stderr, "your_secret_key") || strings.Contains(stdout+stderr, "your_password") {
		t.Fatal("validate printed a credential")
	}
}

// TestRenderFromStore: without --nodes, render takes the types imported
// into the store.
func TestRenderFromStore(t *testing.T) {
	t.Setenv("OCCOPUS_HOME", t.TempDir())
	ex := "../../examples/local-ping/"
	if _, stderr, code := run(t, "import", ex+"nodes.yaml"); code != 0 {
		t.Fatal(stderr)
	}
	stdout, stderr, code := run(t, "render", "--ip", "receiver=127.0.0.9", ex+"infra.yaml")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.Contains(stdout, "127.0.0.9',8080") {
		t.Fatalf("the sender's command lacks the receiver's address:\n%s", stdout)
	}
	if !strings.Contains(stderr, "sender=192.0.2.2") {
		t.Fatalf("the documentation address was not announced: %q", stderr)
	}
}
