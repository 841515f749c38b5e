package sqlite

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/occopus-go/occopus/store"
)

// Concurrent writes are committed together, and one that fails (its
// infrastructure is missing) fails alone: the others are all stored.
func TestGroupCommitFailsAlone(t *testing.T) {
	s := openTemp(t)
	ctx := t.Context()
	now := time.Now()
	if err := s.CreateInfra(ctx, store.Infra{ID: "x", Name: "x", Description: []byte(`{}`), CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	const n = 200
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			infra := "x"
			if i%50 == 7 {
				infra = "missing"
			}
			if i%2 == 0 {
				errs[i] = s.AppendEvent(ctx, store.Event{InfraID: infra, Kind: fmt.Sprintf("k%d", i)})
				return
			}
			errs[i] = s.PutInstance(ctx, store.Instance{InfraID: infra, NodeID: fmt.Sprintf("n%d", i), NodeName: "n", State: store.StatePending, CreatedAt: now})
		})
	}
	wg.Wait()
	puts, evs := 0, 0
	for i, err := range errs {
		switch {
		case i%50 == 7:
			if !errors.Is(err, store.ErrNotFound) {
				t.Errorf("write %d for a missing infra: %v, want ErrNotFound", i, err)
			}
		case err != nil:
			t.Errorf("write %d: %v", i, err)
		case i%2 == 0:
			evs++
		default:
			puts++
		}
	}
	ins, err := s.Instances(ctx, "x")
	if err != nil {
		t.Fatal(err)
	}
	all, err := s.Events(ctx, "", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	// The writes for the missing infra (i%50 == 7) are all odd: puts.
	if len(ins) != puts || len(all) != evs || puts != n/2-n/50 {
		t.Fatalf("stored %d instances and %d events, want %d and %d", len(ins), len(all), puts, evs)
	}
}

// Another process's commit (another Store on the file) moves the
// revision too: at the latest after revPoll.
func TestRevisionSeesOtherProcess(t *testing.T) {
	a := openTemp(t)
	b, err := Open(t.Context(), a.path)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx := t.Context()
	before, err := a.Revision(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.CreateInfra(ctx, store.Infra{ID: "y", Name: "y", Description: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	a.revAt.Store(0) // as if revPoll had passed, without waiting for it
	after, err := a.Revision(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if after <= before {
		t.Fatalf("revision %d after another store's write, was %d", after, before)
	}
}
