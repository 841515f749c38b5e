package sqlite

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/occopus-go/occopus/store"
	"github.com/occopus-go/occopus/store/storetest"
)

// setBatches makes PruneEvents work in tiny batches for one test.
func setBatches(t *testing.T, prune, vacuum int) {
	p, v := pruneBatch, vacuumBatch
	pruneBatch, vacuumBatch = prune, vacuum
	t.Cleanup(func() { pruneBatch, vacuumBatch = p, v })
}

// The PruneEvents suite again, with batches smaller than what is pruned.
func TestPruneSmallBatches(t *testing.T) {
	setBatches(t, 2, 3)
	storetest.RunPrune(t, func(t *testing.T) store.Store { return openTemp(t) })
}

// Space freed by PruneEvents and by DeleteInfra goes back to the file
// system at the next PruneEvents: the file shrinks, no page stays free.
func TestPruneReclaimsSpace(t *testing.T) {
	setBatches(t, 50, 7)
	s := openTemp(t)
	ctx := t.Context()
	data := json.RawMessage(fmt.Sprintf(`{"pad":%q}`, strings.Repeat("x", 4000)))
	for _, id := range []string{"a", "b"} {
		if err := s.CreateInfra(ctx, store.Infra{ID: id}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 200 {
		for _, id := range []string{"a", "b"} {
			if err := s.AppendEvent(ctx, store.Event{InfraID: id, Kind: "k", Data: data, Time: time.Unix(int64(i), 0)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	pages := func() (total, free int) {
		return queryInt(t, s.w, "PRAGMA page_count"), queryInt(t, s.w, "PRAGMA freelist_count")
	}
	full, _ := pages()

	// b goes; its pages are free but still in the file.
	if err := s.DeleteInfra(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	total, free := pages()
	if total != full || free < 150 {
		t.Fatalf("after DeleteInfra: %d pages, %d free; want %d, most of b's 200 free", total, free, full)
	}
	// A PruneEvents with nothing to prune gives them back.
	if n, err := s.PruneEvents(ctx, time.Time{}, 0); err != nil || n != 0 {
		t.Fatalf("PruneEvents without bounds: %d %v", n, err)
	}
	half, free := pages()
	if free != 0 || half > full/2+20 {
		t.Fatalf("after PruneEvents: %d pages of %d, %d free", half, full, free)
	}
	// Pruning all but 10 of a's events shrinks the file to a few pages.
	n, err := s.PruneEvents(ctx, time.Time{}, 10)
	if err != nil || n != 190 {
		t.Fatalf("PruneEvents: %d %v, want 190", n, err)
	}
	small, free := pages()
	if free != 0 || small > 40 {
		t.Fatalf("after pruning to 10 events: %d pages, %d free", small, free)
	}
	t.Logf("pages: %d full, %d after DeleteInfra and PruneEvents, %d after pruning to 10", full, half, small)
}
