package sqlite

import (
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/occopus-go/occopus/store"
	"github.com/occopus-go/occopus/store/storetest"
)

// The leases are judged by a frozen clock that only advance moves, so no
// step's outcome depends on how long the steps took.
func TestLeaser(t *testing.T) {
	storetest.RunLeaser(t, func(t *testing.T) (store.Leaser, storetest.Advance) {
		s := openTemp(t)
		var mu sync.Mutex
		now := time.Unix(1_800_000_000, 0)
		s.now = func() time.Time {
			mu.Lock()
			defer mu.Unlock()
			return now
		}
		return s, func(t *testing.T, d time.Duration) {
			mu.Lock()
			defer mu.Unlock()
			now = now.Add(d)
		}
	})
}

// Two Store values on one file (as two processes would have) share leases.
func TestLeaseAcrossOpens(t *testing.T) {
	path := filepath.Join(t.TempDir(), "occopus.db")
	ctx := t.Context()
	var ss [2]*Store
	for i := range ss {
		s, err := Open(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		ss[i] = s
	}
	if ok, err := ss[0].Acquire(ctx, "maintain/x", "p0", time.Minute); err != nil || !ok {
		t.Fatalf("p0 acquire: %v %v", ok, err)
	}
	if ok, err := ss[1].Acquire(ctx, "maintain/x", "p1", time.Minute); err != nil || ok {
		t.Fatalf("p1 acquired a held lease: %v %v", ok, err)
	}
	if err := ss[0].Release(ctx, "maintain/x", "p0"); err != nil {
		t.Fatal(err)
	}
	if ok, err := ss[1].Acquire(ctx, "maintain/x", "p1", time.Minute); err != nil || !ok {
		t.Fatalf("p1 acquire after release: %v %v", ok, err)
	}
}

func TestFence(t *testing.T) {
	storetest.RunFence(t, func(t *testing.T) storetest.LeasingStore { return openTemp(t) })
}
