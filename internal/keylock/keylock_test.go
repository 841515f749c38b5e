package keylock

import (
	"sync"
	"sync/atomic"
	"testing"
)

func TestLocks(t *testing.T) {
	var l Locks
	var inside, maxInside atomic.Int32
	var wg sync.WaitGroup
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			unlock := l.Lock("a")
			n := inside.Add(1)
			if n > maxInside.Load() {
				maxInside.Store(n)
			}
			inside.Add(-1)
			unlock()
		}()
	}
	// Another key is independent: it can be held while "a" is in use.
	unlockB := l.Lock("b")
	wg.Wait()
	unlockB()
	if maxInside.Load() != 1 {
		t.Fatalf("%d holders of one key at once", maxInside.Load())
	}
	if l.Len() != 0 {
		t.Fatalf("%d keys left after every unlock", l.Len())
	}
}
