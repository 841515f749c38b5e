package sqlite

import (
	"context"
	"database/sql"
	"sync"
)

// maxGroup bounds the writes committed in one transaction.
const maxGroup = 256

// grouper commits concurrent small writes (instance records, events)
// together: SQLite has one writer and each commit costs a WAL write and
// its sync, so 100 creations of a level writing their records at once
// would queue behind 100 commits. The first caller to find no commit
// running leads: it commits everything queued, in batches, until the queue
// is empty; the others wait for their batch. Each write runs in a
// savepoint of its own, so one that fails (say, for a missing
// infrastructure) fails alone and is not part of the commit; a failing
// commit fails every write of its batch. Every call returns after its
// write is committed, as a write of its own would.
type grouper struct {
	mu      sync.Mutex
	queue   []*groupWrite
	leading bool
}

type groupWrite struct {
	fn   func(x execer) error
	done chan error
}

// write runs fn in a group commit and returns its error, or the commit's.
func (s *Store) write(fn func(x execer) error) error {
	w := &groupWrite{fn: fn, done: make(chan error, 1)}
	g := &s.group
	g.mu.Lock()
	g.queue = append(g.queue, w)
	lead := !g.leading
	g.leading = true
	g.mu.Unlock()
	if lead {
		s.lead()
	}
	return <-w.done
}

// lead commits batches until the queue is empty.
func (s *Store) lead() {
	g := &s.group
	for {
		g.mu.Lock()
		n := min(len(g.queue), maxGroup)
		if n == 0 {
			g.leading = false
			g.mu.Unlock()
			return
		}
		batch := g.queue[:n:n]
		g.queue = append([]*groupWrite(nil), g.queue[n:]...)
		g.mu.Unlock()
		s.commitGroup(batch)
	}
}

func (s *Store) commitGroup(batch []*groupWrite) {
	// The transaction is everyone's: no one caller's ctx may end it.
	ctx := context.Background()
	if len(batch) == 1 {
		batch[0].done <- batch[0].fn(counted{s})
		return
	}
	errs := make([]error, len(batch))
	err := s.tx(ctx, func(tx *sql.Tx) error {
		for i, w := range batch {
			if _, err := tx.ExecContext(ctx, "SAVEPOINT w"); err != nil {
				return err
			}
			errs[i] = w.fn(tx)
			if errs[i] != nil {
				if _, err := tx.ExecContext(ctx, "ROLLBACK TO w"); err != nil {
					return err
				}
			}
			if _, err := tx.ExecContext(ctx, "RELEASE w"); err != nil {
				return err
			}
		}
		return nil
	})
	for i, w := range batch {
		if err != nil {
			errs[i] = err
		}
		w.done <- errs[i]
	}
}
