package descr_test

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/occopus-go/occopus"
	"github.com/occopus-go/occopus/descr"
)

var update = flag.Bool("update", false, "rewrite golden files")

// TestValidateCorpus checks every mistake in testdata/validate: each
// CASE.yaml has CASE.err, the errors `occopus validate CASE.yaml` prints,
// one per line (file:line:column, key path, message), against the plugins
// of the standard build. A case may be a valid file with warnings (then
// CASE.err holds the warnings). Run with -update to rewrite.
func TestValidateCorpus(t *testing.T) {
	files, err := filepath.Glob("testdata/validate/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 25 {
		t.Fatalf("corpus has %d cases, want at least 25", len(files))
	}
	m, err := occopus.New(occopus.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".yaml")
		t.Run(name, func(t *testing.T) {
			v, err := m.Validate(t.Context(), f)
			var b strings.Builder
			if err == nil {
				// A valid file is in the corpus for its warnings.
				if len(v.Warnings) == 0 {
					t.Fatalf("valid (%s) without warnings, want errors or warnings", v.Summary)
				}
				for _, w := range v.Warnings {
					b.WriteString(w.Error() + "\n")
				}
			}
			for _, de := range descr.AsErrors(err) {
				b.WriteString(de.Error() + "\n")
			}
			got := b.String()
			golden := strings.TrimSuffix(f, ".yaml") + ".err"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("errors differ from %s\n--- got\n%s--- want\n%s", golden, got, want)
			}
			// Every line names the file and a line number.
			for _, l := range strings.Split(strings.TrimSpace(got), "\n") {
				if !strings.HasPrefix(l, "testdata/validate/") {
					t.Errorf("error line does not start with the file: %q", l)
				}
			}
		})
	}
}
