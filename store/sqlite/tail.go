package sqlite

import (
	"context"
	"fmt"
	"slices"

	"github.com/occopus-go/occopus/store"
)

// TailEvents implements store.Tailer: the newest limit events, oldest
// first, read backwards through the seq index.
func (s *Store) TailEvents(ctx context.Context, infraID string, limit int) ([]store.Event, error) {
	if limit <= 0 {
		return nil, fmt.Errorf("sqlite: tail events: limit %d, want > 0", limit)
	}
	q := `SELECT seq, time, infra_id, node_name, node_id, kind, from_state, to_state, message, data
		FROM events ORDER BY seq DESC LIMIT ?1`
	args := []any{limit}
	if infraID != "" {
		q = `SELECT seq, time, infra_id, node_name, node_id, kind, from_state, to_state, message, data
			FROM events WHERE infra_id = ?2 ORDER BY seq DESC LIMIT ?1`
		args = append(args, infraID)
	}
	rows, err := s.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: tail events %s: %w", infraID, err)
	}
	out, err := collect(rows, scanEvent)
	if err != nil {
		return nil, fmt.Errorf("sqlite: tail events %s: %w", infraID, err)
	}
	slices.Reverse(out)
	return out, nil
}

var _ store.Tailer = (*Store)(nil)
