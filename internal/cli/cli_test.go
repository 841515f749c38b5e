package cli

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	_ "github.com/occopus-go/occopus/plugins/standard"
)

var update = flag.Bool("update", false, "rewrite golden files")

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

// TestValidateCorpus checks every mistake in testdata/validate: each
// CASE.yaml has CASE.err, the exact stderr of `occopus validate CASE.yaml`
// (file:line:column, key path, message). Run with -update to rewrite.
func TestValidateCorpus(t *testing.T) {
	files, err := filepath.Glob("testdata/validate/*.yaml")
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
			if code != 1 {
				t.Fatalf("exit %d, want 1; stdout %q stderr %q", code, stdout, stderr)
			}
			if stdout != "" {
				t.Errorf("stdout %q, want nothing", stdout)
			}
			golden := strings.TrimSuffix(f, ".yaml") + ".err"
			if *update {
				if err := os.WriteFile(golden, []byte(stderr), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if stderr != string(want) {
				t.Errorf("stderr differs from %s\n--- got\n%s--- want\n%s", golden, stderr, want)
			}
			// Every line names the file and a line number.
			for _, l := range strings.Split(strings.TrimSpace(stderr), "\n") {
				if !strings.HasPrefix(l, "testdata/validate/") {
					t.Errorf("error line does not start with the file: %q", l)
				}
			}
		})
	}
}
