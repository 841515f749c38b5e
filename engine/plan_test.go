package engine

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/occopus-go/occopus/compile"
	"github.com/occopus-go/occopus/descr"
	"github.com/occopus-go/occopus/store"
)

var update = flag.Bool("update", false, "rewrite golden files")

// TestPlanGolden runs Deferred, Targets and Plan on each case of testdata/plan:
// infra.yaml (the description), actual.json (stored targets, pending scale
// requests, refreshed instances in creation order) and plan.golden.
func TestPlanGolden(t *testing.T) {
	dirs, _ := filepath.Glob("testdata/plan/*")
	if len(dirs) == 0 {
		t.Fatal("no plan cases")
	}
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			in, err := descr.LoadInfra(filepath.Join(dir, "infra.yaml"), descr.LoadOptions{})
			if err != nil {
				t.Fatal(err)
			}
			st, err := compile.Compile(in)
			if err != nil {
				t.Fatal(err)
			}
			raw, err := os.ReadFile(filepath.Join(dir, "actual.json"))
			if err != nil {
				t.Fatal(err)
			}
			var actual struct {
				Targets   map[string]int       `json:"targets"`
				Requests  []store.ScaleRequest `json:"requests"`
				Instances []store.Instance     `json:"instances"`
			}
			if err := json.Unmarshal(raw, &actual); err != nil {
				t.Fatal(err)
			}
			for i := range actual.Instances {
				actual.Instances[i].CreatedAt = time.Unix(int64(i), 0)
			}
			reqs, later := Deferred(actual.Requests, actual.Instances)
			targets := Targets(st, actual.Targets, reqs)
			var b strings.Builder
			for _, r := range later {
				b.WriteString("deferred: scale request of " + r.NodeName + " naming " + r.Victim + "\n")
			}
			for _, n := range st.Nodes {
				s := targets[n.Name]
				b.WriteString("target " + n.Name + " = " + itoa(s.Target))
				if s.Clamped != "" {
					b.WriteString(" (" + s.Clamped + ")")
				}
				b.WriteString("\n")
			}
			for _, a := range Plan(st, targets, actual.Instances) {
				b.WriteString(a.String() + "\n")
			}
			golden := filepath.Join(dir, "plan.golden")
			if *update {
				if err := os.WriteFile(golden, []byte(b.String()), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update)", err)
			}
			if b.String() != string(want) {
				t.Errorf("plan differs\n--- got\n%s--- want\n%s", b.String(), want)
			}
		})
	}
}

func itoa(i int) string { b, _ := json.Marshal(i); return string(b) }
