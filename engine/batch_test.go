package engine

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/occopus-go/occopus/store"
)

// logStore records the instance writes of a store, in order, with the
// backend calls the engine reports (Options.OnBackendCall) in between.
type logStore struct {
	store.Store
	mu  sync.Mutex
	log []string
}

func (s *logStore) add(e string) { s.mu.Lock(); s.log = append(s.log, e); s.mu.Unlock() }

func (s *logStore) PutInstance(ctx context.Context, in store.Instance) error {
	s.add("put " + in.NodeName + " " + in.State)
	return s.Store.PutInstance(ctx, in)
}

func (s *logStore) PutInstances(ctx context.Context, ins []store.Instance, evs []store.Event) error {
	states := map[string]int{}
	for _, in := range ins {
		states[in.NodeName+" "+in.State]++
	}
	s.add(fmt.Sprintf("batch %v %d events", states, len(evs)))
	return s.Store.PutInstances(ctx, ins, evs)
}

// A level's `creating` records are written in one transaction, before the
// first backend call of the level, in both modes; each level's after the
// level before is ready.
func TestLevelRecordsWrittenInOneBatch(t *testing.T) {
	for _, par := range []bool{false, true} {
		t.Run(fmt.Sprintf("parallelize=%v", par), func(t *testing.T) {
			w := newWorld(t, Options{})
			ls := &logStore{Store: w.st}
			opt := w.eng.opt
			opt.Parallelize = par
			opt.OnBackendCall = func(_, op string, _ time.Duration, _ error) {
				if op == "create" {
					ls.add("create")
				}
			}
			w.eng = New(ls, opt)
			w.importDefs(twoLevelDefs)
			id := w.submit(twoLevelInfra)
			if _, err := w.eng.Build(t.Context(), id, BuildOptions{}); err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, e := range ls.log {
				if e == "create" || e[:5] == "batch" || e == "put db creating" || e == "put web creating" {
					got = append(got, e)
				}
			}
			want := []string{"batch map[db creating:1] 1 events", "create", "batch map[web creating:2] 2 events", "create", "create"}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("writes and calls:\n%q\nwant\n%q\n(all: %q)", got, want, ls.log)
			}
			evs, err := w.st.Events(t.Context(), id, 0, 0)
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			for _, e := range evs {
				if e.Kind == "instance.state" && e.To == store.StateCreating && e.From == "" && e.Message == "creating on fake" {
					n++
				}
			}
			if n != 3 {
				t.Errorf("%d creating events, want 3", n)
			}
		})
	}
}
