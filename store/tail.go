package store

import "context"

// Tailer is implemented by stores that read the newest events directly
// (sqlite, redis). TailEvents returns the newest limit events of an
// infrastructure (all when infraID is ""), oldest first; limit must be
// positive. Without it, TailEvents below pages through Events.
type Tailer interface {
	TailEvents(ctx context.Context, infraID string, limit int) ([]Event, error)
}

// tailPage is how many events one Events call of the fallback reads.
const tailPage = 1000

// TailEvents returns the newest limit (> 0) events of an infrastructure
// (all when infraID is ""), oldest first: the store's own TailEvents when
// it has one, else a scan of the whole log in pages.
func TailEvents(ctx context.Context, s Store, infraID string, limit int) ([]Event, error) {
	if limit <= 0 {
		limit = 1
	}
	if t, ok := s.(Tailer); ok {
		return t.TailEvents(ctx, infraID, limit)
	}
	var ring []Event
	var after int64
	for {
		page, err := s.Events(ctx, infraID, after, tailPage)
		if err != nil {
			return nil, err
		}
		ring = append(ring, page...)
		if len(ring) > limit {
			ring = append([]Event(nil), ring[len(ring)-limit:]...)
		}
		if len(page) < tailPage {
			return ring, nil
		}
		after = page[len(page)-1].Seq
	}
}
