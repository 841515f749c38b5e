package engine

import (
	"context"

	"github.com/occopus-go/occopus/store"
)

// Record appends an event to the log and tells the observers, as the
// engine's own events are: scrubbed of secrets, serialised with them, and
// never failing the caller (a store error is logged).
func (e *Engine) Record(ctx context.Context, ev store.Event) { e.event(ctx, ev) }
