package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/occopus-go/occopus/compile"
	"github.com/occopus-go/occopus/descr"
	"github.com/occopus-go/occopus/health"
	"github.com/occopus-go/occopus/internal/proc"
	"github.com/occopus-go/occopus/resolve"
	"github.com/occopus-go/occopus/resource"
	"github.com/occopus-go/occopus/store"
)

// PassResult says what one reconcile pass did.
type PassResult struct {
	Actions []Action
	// Created and Dropped list node ids, in the order the work finished.
	Created []string
	Dropped []string
	// Complete is true when every node has its target number of ready
	// instances and nothing else remains.
	Complete bool
}

// view is what one pass knows of an infrastructure.
type view struct {
	inf  store.Infra
	st   *compile.Static
	defs map[string][]*descr.Impl
	// prepared: the config managers that prepared the infrastructure
	// in this pass (configmgr.go).
	prepared prepared
}

// Reconcile runs one maintenance pass on an infrastructure: refresh every
// instance, compute the plan, carry it out level by level. Creations of a
// level finish (ready or failed) before the next level starts. The result
// lists what was done even when an error stops the pass.
func (e *Engine) Reconcile(ctx context.Context, id string) (*PassResult, error) {
	v, insts, targets, err := e.prepare(ctx, id, nil, true)
	if err != nil {
		return nil, err
	}
	res := &PassResult{Actions: Plan(v.st, targets, insts)}
	byID := map[string]*store.Instance{}
	for i := range insts {
		byID[insts[i].NodeID] = &insts[i]
	}
	// Drops first: heal, removed nodes, scale-down.
	var drops []func() error
	dropped := make([]bool, len(res.Actions))
	for i, a := range res.Actions {
		if a.Op != OpDrop {
			continue
		}
		in := byID[a.NodeID]
		drops = append(drops, func() error {
			if err := e.drop(ctx, in, a.Reason); err != nil {
				return err
			}
			dropped[i] = true
			return nil
		})
	}
	dropErr := e.limit(drops)
	for i, ok := range dropped {
		if ok {
			res.Dropped = append(res.Dropped, res.Actions[i].NodeID)
		}
	}
	gone := map[string]bool{}
	for _, id := range res.Dropped {
		gone[id] = true
	}
	// Then, level by level: wait for instances still starting, create the
	// missing ones.
	created := make(chan string, len(res.Actions))
	for lvl := range v.st.Levels {
		var jobs []func() error
		for i := range insts {
			in := &insts[i]
			n := v.st.ByName[in.NodeName]
			if n == nil || n.Level != lvl || gone[in.NodeID] {
				continue
			}
			// Wait for instances still starting; one that was ready and is
			// not now (paused) is not waited for: its timeout is the health
			// timeout, and the next pass looks again.
			if (in.State == store.StatePending || in.State == store.StateUnknown) && in.FailingSince.IsZero() {
				jobs = append(jobs, func() error { return e.waitReady(ctx, v, in) })
			}
		}
		for _, a := range res.Actions {
			if a.Op != OpCreate || a.Level != lvl {
				continue
			}
			n := v.st.ByName[a.Node]
			jobs = append(jobs, func() error {
				in, err := e.create(ctx, v, n)
				if in.NodeID != "" {
					created <- in.NodeID
				}
				return err
			})
		}
		err := e.limit(jobs)
		res.Created = append(res.Created, drain(created)...)
		if err != nil {
			return res, errors.Join(dropErr, err)
		}
	}
	if dropErr != nil {
		return res, dropErr
	}
	res.Complete, err = e.complete(ctx, v, targets)
	return res, err
}

func drain(c chan string) []string {
	var out []string
	for {
		select {
		case s := <-c:
			out = append(out, s)
		default:
			return out
		}
	}
}

// prepare loads an infrastructure, refreshes its instances and computes
// the targets against the stored description or an override (plan of a
// build -i). With apply (a pass) it writes refreshed states, targets and
// consumed scale requests to the store; without (a plan) it writes
// nothing at all: what it shows must still be what the next pass does.
func (e *Engine) prepare(ctx context.Context, id string, override *compile.Static, apply bool) (*view, []store.Instance, map[string]Scaling, error) {
	inf, st, err := e.Static(ctx, id)
	if err != nil {
		return nil, nil, nil, err
	}
	if override != nil {
		st = override
	}
	defs, err := e.defs(ctx, st)
	if err != nil {
		return nil, nil, nil, err
	}
	v := &view{inf: inf, st: st, defs: defs}
	insts, err := e.store.Instances(ctx, id)
	if err != nil {
		return nil, nil, nil, err
	}
	sortInstances(insts)
	var jobs []func() error
	for i := range insts {
		jobs = append(jobs, func() error { return e.refresh(ctx, v, &insts[i], apply) })
	}
	// Refreshing only reads the backends: always concurrent.
	if err := limitN(e.opt.Parallel, jobs); err != nil {
		return nil, nil, nil, err
	}
	reqs, err := e.store.ScaleRequests(ctx, id)
	if err != nil {
		return nil, nil, nil, err
	}
	reqs, _ = Deferred(reqs, insts) // the others stay stored for a later pass
	targets := Targets(st, inf.Targets, reqs)
	for name, s := range targets {
		if s.Clamped != "" && apply {
			e.log.Info(s.Clamped, "infra", id)
			e.event(ctx, store.Event{InfraID: id, NodeName: name, Kind: "scale.clamped", Message: s.Clamped})
		}
	}
	if apply {
		flat := map[string]int{}
		changed := len(reqs) > 0
		for name, s := range targets {
			flat[name] = s.Target
			if old, ok := inf.Targets[name]; !ok || old != s.Target {
				changed = true
			}
		}
		if changed {
			ids := make([]int64, len(reqs))
			for i, r := range reqs {
				ids[i] = r.ID
			}
			if err := e.store.UpdateTargets(ctx, id, flat, ids); err != nil {
				return nil, nil, nil, err
			}
		}
	}
	return v, insts, targets, nil
}

// refresh brings one instance record up to date with its backend and its
// health checks.
func (e *Engine) refresh(ctx context.Context, v *view, in *store.Instance, apply bool) error {
	before := *in
	err := e.observe(ctx, v, in)
	if err != nil || !apply || instanceEqual(before, *in) {
		return err
	}
	to, msg := in.State, in.Error
	in.State = before.State
	if err := e.setState(ctx, in, to, msg); err != nil {
		return err
	}
	e.waitingEvent(ctx, before, *in)
	return nil
}

func instanceEqual(a, b store.Instance) bool {
	return a.State == b.State && a.Address == b.Address && a.PrivAddress == b.PrivAddress &&
		a.FailingSince.Equal(b.FailingSince) && string(a.Handle) == string(b.Handle) && a.Error == b.Error
}

// observe updates an instance in memory from its backend and health checks.
func (e *Engine) observe(ctx context.Context, v *view, in *store.Instance) error {
	switch in.State {
	case store.StateDestroying, store.StateFailed, store.StateShutdown:
		return nil
	case store.StateCreating:
		if _, ok := handleOf(*in); ok {
			in.State = store.StatePending
			break
		}
		if in.Owner != e.owner && proc.Alive(in.Owner) {
			return nil // another live process is creating it
		}
		return e.adopt(ctx, in)
	}
	h, release, err := e.handlerFor(*in)
	if err != nil {
		in.State, in.Error = store.StateUnknown, err.Error()
		return nil
	}
	defer release()
	hd, ok := handleOf(*in)
	if !ok {
		in.State, in.Error = store.StateFailed, "instance record has no backend handle"
		return nil
	}
	state, err := h.State(ctx, hd)
	switch {
	case errors.Is(err, resource.ErrNotFound):
		in.State, in.Error = store.StateShutdown, "gone at the backend"
		return nil
	case err != nil:
		if ctx.Err() != nil {
			return ctx.Err()
		}
		in.State, in.Error = store.StateUnknown, err.Error()
		return nil
	}
	switch state {
	case resource.StateShutdown:
		in.State, in.Error = store.StateShutdown, "stopped at the backend"
		return nil
	case resource.StateFailed:
		in.State, in.Error = store.StateFailed, "the backend reports a failure"
		return nil
	case resource.StatePending, resource.StateUnknown:
		if in.State == store.StateReady || !in.FailingSince.IsZero() {
			return e.notRunningAnyMore(v, in, state)
		}
		if in.State == store.StateUnknown {
			in.State = store.StatePending
		}
		var w waits
		w.add("the backend", "the backend still reports it starting")
		in.Error = w.pending()
		return e.checkCreateTimeout(v, in, w.reason())
	}
	if addrs, err := h.Addresses(ctx, hd); err == nil {
		in.Address, in.PrivAddress = addrs.Public, addrs.Private
		if in.PrivAddress == "" {
			in.PrivAddress = in.Address
		}
	}
	return e.checkHealth(ctx, v, in)
}

// checkHealth runs the instance's health checks and moves it between
// pending, ready and failed.
func (e *Engine) checkHealth(ctx context.Context, v *view, in *store.Instance) error {
	n := v.st.ByName[in.NodeName]
	im := implOf(v, in)
	if n == nil || im == nil {
		return nil // being dropped: no checks
	}
	check, err := health.Build(im.Section("health_check"))
	if err != nil {
		in.State, in.Error = store.StateFailed, fmt.Sprintf("health_check: %v", err)
		return nil
	}
	data := resolve.Data(resolve.Input{InfraID: v.inf.ID, InfraName: v.st.Name, UserID: v.st.UserID, NodeID: in.NodeID, Node: n}, im)
	results := check.Run(ctx, health.Target{Addr: in.Address, Data: data})
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if e.opt.OnProbe != nil {
		for _, r := range results {
			e.opt.OnProbe(in.InfraID, in.NodeName, r)
		}
	}
	// Ready = resource running (above), health checks passing and, with
	// a config manager that can tell, the node converged.
	var w waits
	if !health.Healthy(results) {
		w.add("the health checks", "health checks failing: "+failures(results))
	}
	if ok, why := e.converged(ctx, v, in); !ok {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		w.add("the config manager", why)
	}
	if w.empty() {
		in.State, in.FailingSince, in.Error = store.StateReady, time.Time{}, ""
		return nil
	}
	if in.State != store.StateReady && in.FailingSince.IsZero() {
		in.State, in.Error = store.StatePending, w.pending()
		return e.checkCreateTimeout(v, in, w.reason())
	}
	now := e.opt.Now()
	if in.FailingSince.IsZero() {
		in.FailingSince = now
	}
	if now.Sub(in.FailingSince) >= check.Timeout {
		in.State, in.Error = store.StateFailed, fmt.Sprintf("failing for %s: %s", check.Timeout, w.reason())
	}
	return nil
}

func failures(rs []health.Result) string {
	var out []string
	for _, r := range rs {
		if r.Status != health.Pass {
			out = append(out, r.Primitive+": "+r.Output)
		}
	}
	return strings.Join(out, "; ")
}

// notRunningAnyMore handles an instance that was ready and whose backend
// now says it is not running (a paused or restarting container, say): it
// is not ready, and is failed, so that the next pass replaces it, once
// that lasts as long as the health checks may fail.
func (e *Engine) notRunningAnyMore(v *view, in *store.Instance, state resource.State) error {
	now := e.opt.Now()
	if in.FailingSince.IsZero() {
		in.FailingSince = now
	}
	limit := health.DefaultTimeout
	if im := implOf(v, in); im != nil {
		if c, err := health.Build(im.Section("health_check")); err == nil {
			limit = c.Timeout
		}
	}
	in.State, in.Error = store.StatePending, fmt.Sprintf("the backend reports it %s, not running", state)
	if now.Sub(in.FailingSince) >= limit {
		in.State, in.Error = store.StateFailed, fmt.Sprintf("not running at the backend for %s (it reports %s)", limit, state)
	}
	return nil
}

// checkCreateTimeout fails a starting instance that has taken too long.
func (e *Engine) checkCreateTimeout(v *view, in *store.Instance, why string) error {
	limit := e.createTimeout(v, in)
	if e.opt.Now().Sub(in.CreatedAt) >= limit {
		in.State, in.Error = store.StateFailed, fmt.Sprintf("not ready within %s: %s", limit, why)
	}
	return nil
}

func (e *Engine) createTimeout(v *view, in *store.Instance) time.Duration {
	if n := v.st.ByName[in.NodeName]; n != nil && n.CreateTimeout > 0 {
		return n.CreateTimeout
	}
	if im := implOf(v, in); im != nil {
		switch t := im.Data["create_timeout"].(type) {
		case int:
			return time.Duration(t) * time.Second
		case float64:
			return time.Duration(t * float64(time.Second))
		}
	}
	return e.opt.CreateTimeout
}

func implOf(v *view, in *store.Instance) *descr.Impl {
	n := v.st.ByName[in.NodeName]
	if n == nil {
		return nil
	}
	impls := v.defs[n.Type]
	if in.Impl < 0 || in.Impl >= len(impls) {
		return nil
	}
	return impls[in.Impl]
}

// adopt resolves a `creating` record whose creator is gone: the backend
// either has the instance (adopt it) or not (fail it; the plan replaces it).
func (e *Engine) adopt(ctx context.Context, in *store.Instance) error {
	h, release, err := e.handlerFor(*in)
	if err != nil {
		in.State, in.Error = store.StateFailed, "interrupted creation: "+err.Error()
		return nil
	}
	defer release()
	f, ok := asFinder(h)
	if !ok {
		in.State, in.Error = store.StateFailed, "interrupted creation; the backend cannot look it up"
		return nil
	}
	hd, found, err := f.Find(ctx, in.InfraID, in.NodeID)
	switch {
	case err != nil:
		in.State, in.Error = store.StateUnknown, "interrupted creation: "+err.Error()
	case found:
		raw, _ := json.Marshal(hd)
		in.Handle, in.State, in.Error = raw, store.StatePending, ""
		e.log.Info("adopted an instance whose creation was interrupted", "infra", in.InfraID, "node", in.NodeName, "node_id", in.NodeID)
	default:
		in.State, in.Error = store.StateFailed, "interrupted creation left nothing at the backend"
	}
	return nil
}

// waitReady polls a starting instance until it is ready, failed or gone;
// the delay starts short and grows to a cap.
func (e *Engine) waitReady(ctx context.Context, v *view, in *store.Instance) error {
	delay := e.opt.PollFirst
	// A backend that keeps giving no usable answer (state unknown) is
	// waited for as long as a creation may take, then the pass gives up;
	// the instance itself is not failed for it.
	deadline := e.opt.Now().Add(e.createTimeout(v, in))
	for {
		if err := e.refresh(ctx, v, in, true); err != nil {
			return err
		}
		switch in.State {
		case store.StateReady:
			return nil
		case store.StateFailed, store.StateShutdown:
			return fmt.Errorf("node %s instance %s: %s", in.NodeName, in.NodeID, in.Error)
		case store.StateUnknown:
			if e.opt.Now().After(deadline) {
				return fmt.Errorf("node %s instance %s: no usable answer from its backend for %s: %s", in.NodeName, in.NodeID, e.createTimeout(v, in), in.Error)
			}
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		delay = min(delay*3/2, e.opt.PollMax)
	}
}

// create makes one instance of a node and waits until it is ready. It
// tries the implementations that pass the node's filter in random order
// until one can be created. The returned instance has a NodeID as soon as
// a record was written, even with an error.
func (e *Engine) create(ctx context.Context, v *view, n *compile.Node) (store.Instance, error) {
	cands := resolve.Candidates(n, v.defs[n.Type])
	if len(cands) == 0 {
		return store.Instance{}, Terminal(fmt.Errorf("node %s: no implementation of type %q passes the filter %v", n.Name, n.Type, n.Filter))
	}
	for _, dep := range n.DependsOn {
		if ok, err := e.hasReady(ctx, v.inf.ID, dep); err != nil {
			return store.Instance{}, err
		} else if !ok {
			return store.Instance{}, fmt.Errorf("node %s: its dependency %s has no ready instance", n.Name, dep)
		}
	}
	addrs, err := e.addressBook(ctx, v)
	if err != nil {
		return store.Instance{}, err
	}
	allowCmd, network := e.cmdPolicy(v.inf)
	var errs []error
	for _, im := range shuffled(cands) {
		nodeID := uuid.NewString()
		r, err := resolve.Resolve(resolve.Input{InfraID: v.inf.ID, InfraName: v.st.Name, UserID: v.st.UserID, NodeID: nodeID, Node: n,
			Addresses: addrs, AllowCmd: allowCmd, FromNetwork: network}, im)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		h, authData, release, err := e.handlerWithAuth(r.Resource)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", im.Path(), err))
			continue
		}
		resJSON, err := json.Marshal(r.Resource)
		if err != nil {
			release()
			errs = append(errs, err)
			continue
		}
		now := e.opt.Now()
		typ, _ := r.Resource["type"].(string)
		in := store.Instance{InfraID: v.inf.ID, NodeID: nodeID, NodeName: n.Name, Backend: typ, Impl: im.Index,
			Resource: resJSON, Owner: e.owner, CreatedAt: now}
		// The record exists before the backend is called: whatever
		// happens next, some process can find what was made.
		if err := e.setState(ctx, &in, store.StateCreating, "creating on "+typ); err != nil {
			release()
			return store.Instance{}, err
		}
		// The config manager knows the node before its VM boots (the
		// VM's chef-client finds its run list waiting).
		var hd resource.Handle
		err = e.registerNode(ctx, v, n, r, nodeID, addrs)
		if err == nil {
			hd, err = h.Create(ctx, resource.Spec{InfraID: v.inf.ID, NodeID: nodeID, NodeName: n.Name, StoreID: e.StoreID(ctx), Resource: r.Resource, Context: r.Context, Auth: authData})
		}
		release()
		if err != nil {
			if ctx.Err() != nil {
				// Interrupted: the record stays for the caller's rollback.
				return in, ctx.Err()
			}
			errs = append(errs, fmt.Errorf("node %s: %s: %w", n.Name, im.Path(), err))
			if derr := e.drop(ctx, &in, "creation failed"); derr != nil {
				return in, errors.Join(append(errs, derr)...)
			}
			continue
		}
		in.Handle, _ = json.Marshal(hd)
		if err := e.setState(ctx, &in, store.StatePending, "created"); err != nil {
			return in, err
		}
		return in, e.waitReady(ctx, v, &in)
	}
	err = fmt.Errorf("node %s: no implementation could be created: %w", n.Name, errors.Join(errs...))
	if allTerminal(errs) {
		err = Terminal(err)
	}
	return store.Instance{}, err
}

func (e *Engine) hasReady(ctx context.Context, infraID, node string) (bool, error) {
	ins, err := e.store.Instances(ctx, infraID)
	if err != nil {
		return false, err
	}
	for _, in := range ins {
		if in.NodeName == node && in.State == store.StateReady {
			return true, nil
		}
	}
	return false, nil
}

// complete reports whether every node has its target of ready instances
// and no other instance remains.
func (e *Engine) complete(ctx context.Context, v *view, targets map[string]Scaling) (bool, error) {
	ins, err := e.store.Instances(ctx, v.inf.ID)
	if err != nil {
		return false, err
	}
	ready := map[string]int{}
	for _, in := range ins {
		if in.State != store.StateReady {
			return false, nil
		}
		ready[in.NodeName]++
	}
	for name, s := range targets {
		if ready[name] != s.Target {
			return false, nil
		}
	}
	return true, nil
}
