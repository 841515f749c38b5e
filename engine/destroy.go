package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/occopus-go/occopus/resource"
	"github.com/occopus-go/occopus/store"
)

// drop destroys one instance at its backend and removes its record. An
// instance already gone is success. The record is marked `destroying`
// first, so a crash in between is finished by the next pass.
func (e *Engine) drop(ctx context.Context, in *store.Instance, reason string) error {
	if in.State != store.StateDestroying {
		if err := e.setState(ctx, in, store.StateDestroying, reason); err != nil {
			return err
		}
	}
	if err := e.destroyAtBackend(ctx, *in); err != nil {
		in.Error = err.Error()
		if !store.LeaseLost(ctx) {
			wctx, cancel := store.WithoutCancelUnlessLost(ctx)
			_ = e.putInstance(wctx, in)
			cancel()
		}
		return fmt.Errorf("node %s instance %s: destroy: %w", in.NodeName, in.NodeID, err)
	}
	// Then its node at the config manager: while the VM ran, its
	// chef-client could have saved the node again.
	if err := e.dropAtConfigManager(ctx, *in); err != nil {
		in.Error = err.Error()
		if !store.LeaseLost(ctx) {
			wctx, cancel := store.WithoutCancelUnlessLost(ctx)
			_ = e.putInstance(wctx, in)
			cancel()
		}
		return fmt.Errorf("node %s instance %s: drop at its config manager: %w", in.NodeName, in.NodeID, err)
	}
	if err := e.store.DeleteInstance(ctx, in.InfraID, in.NodeID); err != nil {
		return err
	}
	e.event(ctx, store.Event{InfraID: in.InfraID, NodeName: in.NodeName, NodeID: in.NodeID, Kind: "instance.state", From: store.StateDestroying, To: "deleted", Message: reason})
	return nil
}

func (e *Engine) destroyAtBackend(ctx context.Context, in store.Instance) error {
	h, release, err := e.handlerFor(in)
	if err != nil {
		if len(in.Resource) == 0 {
			return nil // never reached a backend
		}
		return err
	}
	defer release()
	hd, ok := handleOf(in)
	if !ok {
		// A creation interrupted before the backend answered: look the
		// instance up by its labels.
		f, isFinder := asFinder(h)
		if !isFinder {
			return nil
		}
		var found bool
		hd, found, err = f.Find(ctx, in.InfraID, in.NodeID)
		if err != nil || !found {
			return err
		}
	}
	return h.Destroy(ctx, hd)
}

// DestroyReport says what Destroy removed, and what it could not.
type DestroyReport struct {
	// Instances are the node ids of recorded instances destroyed.
	Instances []string
	// Orphans are backend resources labelled with the infra id that the
	// store did not know of (a crash between create and record, say).
	Orphans []resource.Owned
	// Left are the resources that could not be removed (or looked for),
	// with why: after a forced destroy, what the user must remove by hand.
	Left []Leftover
}

// Leftover is a backend resource Destroy could not remove.
type Leftover struct {
	NodeName string `json:"node_name,omitempty"`
	NodeID   string `json:"node_id,omitempty"`
	// Backend is the resource type; ID the backend's id of the resource,
	// "" when not even that is known (a backend that could not be asked).
	Backend string `json:"backend"`
	ID      string `json:"id,omitempty"`
	Error   string `json:"error"`
}

// Destroy tears an infrastructure down: every recorded instance, then
// every resource any of its backends still holds under the infra id, then
// the record. The infrastructure record stays when something could not be
// removed, so the command can be run again; with force it goes anyway
// (an endpoint that is gone, a key revoked), and the report's Left names
// every resource that may remain.
func (e *Engine) Destroy(ctx context.Context, id string, force bool) (*DestroyReport, error) {
	inf, err := e.infra(ctx, id)
	if err != nil {
		return nil, err
	}
	rep, err := e.destroyAll(ctx, inf)
	if err != nil && !force {
		return rep, err
	}
	if err := e.store.DeleteInfra(ctx, id); err != nil && !errors.Is(err, store.ErrNotFound) {
		return rep, err
	}
	msg := fmt.Sprintf("%d instance(s) and %d orphan(s) removed", len(rep.Instances), len(rep.Orphans))
	if len(rep.Left) > 0 {
		msg += fmt.Sprintf("; %d resource(s) could not be removed", len(rep.Left))
	}
	// Told to observers (webhooks), not stored: nothing of a destroyed
	// infrastructure stays in the store.
	e.notify(store.Event{InfraID: id, Kind: "infra.destroyed", Message: msg})
	return rep, nil
}

// DestroyInstances destroys the given instances of an infrastructure (the
// rollback of a failed `build -i`).
func (e *Engine) DestroyInstances(ctx context.Context, id string, nodeIDs []string) ([]string, error) {
	var jobs []func() error
	done := make([]bool, len(nodeIDs))
	for i, nid := range nodeIDs {
		in, err := e.store.Instance(ctx, id, nid)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		jobs = append(jobs, func() error {
			err := e.drop(ctx, &in, "rolled back")
			done[i] = err == nil
			return err
		})
	}
	err := limitN(e.opt.Parallel, jobs)
	var out []string
	for i, ok := range done {
		if ok {
			out = append(out, nodeIDs[i])
		}
	}
	return out, err
}

func (e *Engine) destroyAll(ctx context.Context, inf store.Infra) (*DestroyReport, error) {
	rep := &DestroyReport{}
	insts, err := e.store.Instances(ctx, inf.ID)
	if err != nil {
		return rep, err
	}
	// Every backend configuration seen, to look for orphans afterwards.
	configs := map[string]map[string]any{}
	for _, in := range insts {
		var res map[string]any
		if json.Unmarshal(in.Resource, &res) == nil && res != nil {
			key, _ := json.Marshal(res)
			configs[string(key)] = res
		}
	}
	if _, st, err := e.Static(ctx, inf.ID); err == nil {
		if defs, err := e.defs(ctx, st); err == nil {
			for _, impls := range defs {
				for _, im := range impls {
					res := im.Section("resource")
					if res != nil && !templated(res) {
						key, _ := json.Marshal(res)
						configs[string(key)] = res
					}
				}
			}
		}
	}
	failed := make([]error, len(insts))
	var jobs []func() error
	for i := range insts {
		jobs = append(jobs, func() error {
			failed[i] = e.drop(ctx, &insts[i], "infrastructure destroyed")
			return failed[i]
		})
	}
	errs := []error{limitN(e.opt.Parallel, jobs)}
	for i, err := range failed {
		if err == nil {
			rep.Instances = append(rep.Instances, insts[i].NodeID)
			continue
		}
		hd, _ := handleOf(insts[i])
		rep.Left = append(rep.Left, Leftover{NodeName: insts[i].NodeName, NodeID: insts[i].NodeID,
			Backend: insts[i].Backend, ID: hd.ID, Error: e.Redact(err.Error())})
	}
	for _, res := range configs {
		orphans, left, err := e.removeOrphans(ctx, inf.ID, res)
		rep.Orphans = append(rep.Orphans, orphans...)
		rep.Left = append(rep.Left, left...)
		errs = append(errs, err)
	}
	rep.Left = uniqueLeft(rep.Left)
	// Last, what the infrastructure has at its config managers (found by
	// name: what a crash left unrecorded too).
	errs = append(errs, e.dropInfraAtConfigManagers(ctx, inf))
	return rep, errors.Join(errs...)
}

// uniqueLeft drops repeats: a recorded instance that could not be
// dropped is found again, labelled, when orphans are looked for.
func uniqueLeft(left []Leftover) []Leftover {
	seen := map[[2]string]bool{}
	out := left[:0]
	for _, l := range left {
		k := [2]string{l.Backend, l.ID}
		if l.ID != "" && seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, l)
	}
	return out
}

// removeOrphans destroys what the backend of one resource section still
// has labelled with the infrastructure's id.
func (e *Engine) removeOrphans(ctx context.Context, infraID string, res map[string]any) ([]resource.Owned, []Leftover, error) {
	typ, _ := res["type"].(string)
	h, _, release, err := e.handlerWithAuth(res)
	if err != nil {
		return nil, nil, nil
	}
	defer release()
	l, ok := asLister(h)
	if !ok {
		return nil, nil, nil
	}
	owned, err := l.List(ctx, infraID)
	if err != nil {
		err = fmt.Errorf("look for orphans: %w", err)
		return nil, []Leftover{{Backend: typ, Error: e.Redact(err.Error())}}, err
	}
	var removed []resource.Owned
	var left []Leftover
	var errs []error
	for _, o := range owned {
		if err := h.Destroy(ctx, o.Handle); err != nil {
			err = fmt.Errorf("remove orphan %s (node %s): %w", o.Handle.ID, o.NodeName, err)
			errs = append(errs, err)
			left = append(left, Leftover{NodeName: o.NodeName, NodeID: o.NodeID, Backend: typ, ID: o.Handle.ID, Error: e.Redact(err.Error())})
			continue
		}
		removed = append(removed, o)
		e.event(ctx, store.Event{InfraID: infraID, NodeName: o.NodeName, NodeID: o.NodeID, Kind: "orphan.removed", Message: "removed " + o.Handle.ID})
	}
	return removed, left, errors.Join(errs...)
}

// templated reports whether any string of a resource section is a
// template (its rendered form is only known per instance).
func templated(v any) bool {
	switch v := v.(type) {
	case string:
		return containsTemplate(v)
	case map[string]any:
		for _, x := range v {
			if templated(x) {
				return true
			}
		}
	case []any:
		for _, x := range v {
			if templated(x) {
				return true
			}
		}
	}
	return false
}
