package redis

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/occopus-go/occopus/store"
)

// TailEvents implements store.Tailer: the newest limit entries of the
// stream, read backwards (XREVRANGE), oldest first.
func (s *Store) TailEvents(ctx context.Context, infraID string, limit int) ([]store.Event, error) {
	if limit <= 0 {
		return nil, fmt.Errorf("redis: tail events: limit %d, want > 0", limit)
	}
	key := s.kEvents()
	if infraID != "" {
		key = s.kInfraEvents(infraID)
	}
	msgs, err := s.c.XRevRangeN(ctx, key, "+", "-", int64(limit)).Result()
	if err != nil {
		return nil, fmt.Errorf("redis: tail events %s: %w", infraID, err)
	}
	out := make([]store.Event, 0, len(msgs))
	for _, m := range msgs {
		seqStr, _, _ := strings.Cut(m.ID, "-")
		seq, err := strconv.ParseInt(seqStr, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("redis: tail events %s: bad entry id %q", infraID, m.ID)
		}
		data, _ := m.Values["e"].(string)
		var r eventRec
		if err := json.Unmarshal([]byte(data), &r); err != nil {
			return nil, fmt.Errorf("redis: tail events %s: %d: %w", infraID, seq, err)
		}
		e := store.Event{Seq: seq, InfraID: r.InfraID, NodeName: r.NodeName, NodeID: r.NodeID, Kind: r.Kind,
			From: r.From, To: r.To, Message: r.Message, Data: raw(r.Data)}
		if e.Time, err = parseTime(r.Time); err != nil {
			return nil, fmt.Errorf("redis: tail events %s: %d: %w", infraID, seq, err)
		}
		out = append(out, e)
	}
	slices.Reverse(out)
	return out, nil
}

var _ store.Tailer = (*Store)(nil)
