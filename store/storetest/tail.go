package storetest

import (
	"context"
	"fmt"
	"testing"

	"github.com/occopus-go/occopus/store"
)

// onlyStore hides a store's optional interfaces, so that store.TailEvents
// takes its fallback.
type onlyStore struct{ store.Store }

// RunTail checks a store.Tailer against the fallback of store.TailEvents
// (a scan with Events): the same newest events, oldest first, for the
// whole log and per infrastructure, with limits below, at and above the
// number stored; and that a limit of 0 is refused.
func RunTail(t *testing.T, open func(t *testing.T) store.Store) {
	ctx := context.Background()
	s := open(t)
	tl, ok := s.(store.Tailer)
	if !ok {
		t.Fatalf("%T does not implement store.Tailer", s)
	}
	for i := range 23 {
		infra := []string{"a", "b", "c"}[i%3]
		must(t, s.AppendEvent(ctx, store.Event{InfraID: infra, Kind: "k", Message: fmt.Sprint(i)}))
	}
	for _, infra := range []string{"", "a", "b", "none"} {
		for _, limit := range []int{1, 2, 7, 8, 23, 100} {
			t.Run(fmt.Sprintf("%s/%d", infra, limit), func(t *testing.T) {
				got, err := tl.TailEvents(ctx, infra, limit)
				must(t, err)
				want, err := store.TailEvents(ctx, onlyStore{s}, infra, limit)
				must(t, err)
				all, err := s.Events(ctx, infra, 0, 0)
				must(t, err)
				if n := min(limit, len(all)); len(want) != n {
					t.Fatalf("fallback: %d events, want %d", len(want), n)
				}
				if len(got) != len(want) {
					t.Fatalf("%d events, want %d", len(got), len(want))
				}
				for i := range got {
					if got[i].Seq != want[i].Seq || got[i].Message != want[i].Message || got[i].InfraID != want[i].InfraID {
						t.Errorf("event %d: %+v, want %+v", i, got[i], want[i])
					}
					if i > 0 && got[i].Seq <= got[i-1].Seq {
						t.Errorf("event %d: seq %d after %d: not oldest first", i, got[i].Seq, got[i-1].Seq)
					}
				}
				if len(all) > 0 && len(got) > 0 && got[len(got)-1].Seq != all[len(all)-1].Seq {
					t.Errorf("newest %d, want %d", got[len(got)-1].Seq, all[len(all)-1].Seq)
				}
			})
		}
	}
	if _, err := tl.TailEvents(ctx, "", 0); err == nil {
		t.Error("TailEvents with limit 0: no error")
	}
}
