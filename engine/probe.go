package engine

import (
	"context"

	"github.com/occopus-go/occopus/resource"
	"github.com/occopus-go/occopus/store"
)

// Probe asks the backend of a recorded (or about to be recorded) instance
// for its state and addresses, changing nothing: used to take over
// instances made by another orchestrator. Addresses are asked only of a
// running instance.
func (e *Engine) Probe(ctx context.Context, in store.Instance) (resource.State, resource.Addresses, error) {
	h, release, err := e.handlerFor(in)
	if err != nil {
		return resource.StateUnknown, resource.Addresses{}, err
	}
	defer release()
	hd, ok := handleOf(in)
	if !ok {
		return resource.StateUnknown, resource.Addresses{}, resource.ErrNotFound
	}
	st, err := h.State(ctx, hd)
	if err != nil || st != resource.StateRunning {
		return st, resource.Addresses{}, err
	}
	addrs, err := h.Addresses(ctx, hd)
	return st, addrs, err
}
