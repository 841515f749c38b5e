package engine

import (
	"math"
	"testing"

	"github.com/occopus-go/occopus/compile"
	"github.com/occopus-go/occopus/store"
)

// FuzzTargets: whatever the stored target and the requests (huge, negative,
// absolute, relative), every node's target stays within its [min, max].
// Run on purpose: go test -run=^$ -fuzz=FuzzTargets -fuzztime=30m ./engine
func FuzzTargets(f *testing.F) {
	f.Add(1, 4, 3, int64(math.MaxInt64), int64(1), int64(0), false)
	f.Add(2, 5, 3, int64(-math.MaxInt64), int64(-math.MaxInt64), int64(0), false)
	f.Add(1, 3, 3, int64(0), int64(0), int64(math.MinInt64), true)
	f.Add(1, 1, 0, int64(-1), int64(1), int64(7), true)
	f.Fuzz(func(t *testing.T, min, max, stored int, d1, d2, set int64, useSet bool) {
		if min < 1 || max < min {
			t.Skip() // compile refuses these
		}
		st := &compile.Static{Nodes: []*compile.Node{{Name: "n", Min: min, Max: max}}}
		st.ByName = map[string]*compile.Node{"n": st.Nodes[0]}
		reqs := []store.ScaleRequest{{NodeName: "n", Delta: int(d1)}, {NodeName: "n", Delta: int(d2)}}
		if useSet {
			s := int(set)
			reqs = append(reqs, store.ScaleRequest{NodeName: "n", Set: &s}, store.ScaleRequest{NodeName: "n", Delta: int(d1)})
		}
		got := Targets(st, map[string]int{"n": stored}, reqs)["n"]
		if got.Target < min || got.Target > max {
			t.Fatalf("target %d outside [%d, %d] (stored %d, requests %+v)", got.Target, min, max, stored, reqs)
		}
	})
}
