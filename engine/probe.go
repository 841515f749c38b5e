package engine

import (
	"context"
	"encoding/json"

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

// Label puts occopus's labels/tags on a recorded instance made by another
// orchestrator, when its backend can (resource.Labeller): false, nil when
// it cannot. The labels are those Create puts, with this store's id, so
// that List, Find and the sweep for orphans know the instance as ours.
func (e *Engine) Label(ctx context.Context, in store.Instance) (bool, error) {
	h, release, err := e.handlerFor(in)
	if err != nil {
		return false, err
	}
	defer release()
	l, ok := asLabeller(h)
	if !ok {
		return false, nil
	}
	hd, ok := handleOf(in)
	if !ok {
		return false, resource.ErrNotFound
	}
	var res map[string]any
	_ = json.Unmarshal(in.Resource, &res) // handlerFor has read it already
	spec := resource.Spec{InfraID: in.InfraID, NodeID: in.NodeID, NodeName: in.NodeName, StoreID: e.StoreID(ctx), Resource: res}
	return true, l.Label(ctx, hd, spec)
}

// CanLabel tells whether the backend of an instance can label it
// (resource.Labeller), asking nothing of the backend.
func (e *Engine) CanLabel(in store.Instance) bool {
	h, release, err := e.handlerFor(in)
	if err != nil {
		return false
	}
	defer release()
	_, ok := asLabeller(h)
	return ok
}
