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
		cj, err := e.levelCreates(ctx, v, res.Actions, lvl, created)
		if err != nil {
			return res, errors.Join(dropErr, err)
		}
		jobs = append(jobs, cj...)
		err = e.limit(jobs)
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

// levelCreates prepares the creations of one level: each node's
// dependencies and the address book are checked once, every creation's
// first implementation is resolved, and all their `creating` records are
// written in one transaction before any backend call. It returns one job
// per creation; a creation that could not be prepared fails in its job.
func (e *Engine) levelCreates(ctx context.Context, v *view, actions []Action, lvl int, created chan<- string) ([]func() error, error) {
	type one struct {
		n     *compile.Node
		p     createPrep
		err   error
		first *attempt
		rest  []*descr.Impl
		errs  []error
	}
	var todo []*one
	preps := map[string]*one{} // per node: its createPrep or error
	var ab *addresses
	for _, a := range actions {
		if a.Op != OpCreate || a.Level != lvl {
			continue
		}
		n := v.st.ByName[a.Node]
		o := &one{n: n}
		if pp, ok := preps[n.Name]; ok {
			o.p, o.err = pp.p, pp.err
		} else {
			o.p, o.err = e.prepareNode(ctx, v, n, ab)
			ab = cmpOr(ab, o.p.addrs)
			preps[n.Name] = o
		}
		if o.err == nil {
			o.first, o.rest, o.errs = e.firstAttempt(v, n, o.p)
		}
		todo = append(todo, o)
	}
	var batch []*attempt
	for _, o := range todo {
		if o.first != nil {
			batch = append(batch, o.first)
		}
	}
	if err := e.writeCreating(ctx, batch); err != nil {
		for _, a := range batch {
			a.release()
		}
		return nil, err
	}
	jobs := make([]func() error, 0, len(todo))
	for _, o := range todo {
		jobs = append(jobs, func() error {
			if o.err != nil {
				return o.err
			}
			in, err := e.createWith(ctx, v, o.n, o.p, o.first, o.rest, o.errs)
			if in.NodeID != "" {
				created <- in.NodeID
			}
			return err
		})
	}
	return jobs, nil
}

// cmpOr returns a unless it is nil, else b.
func cmpOr(a, b *addresses) *addresses {
	if a != nil {
		return a
	}
	return b
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
	err := e.observe(ctx, v, in, apply)
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
// apply is false for a plan, which must not change anything (not even
// retry an interrupted creation).
func (e *Engine) observe(ctx context.Context, v *view, in *store.Instance, apply bool) error {
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
		return e.adopt(ctx, v, in, apply)
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
// either has the instance (adopt it) or not yet (retry the creation with the
// record's node id; with apply false, fail it and let the plan show its
// replacement).
//
// Not found does not mean never made: the dead creator's request may still
// be under way at the backend (a Docker create, a RunInstances) and finish
// after this look. A replacement under a new node id would then run beside
// it, one instance too many (found by the chaos suite). Creating again under
// the same node id is safe either way, as Create is idempotent per node id
// (the container name, EC2's ClientToken): it returns the late instance, or
// makes the one the late request then cannot.
func (e *Engine) adopt(ctx context.Context, v *view, in *store.Instance, apply bool) error {
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
	case !apply:
		in.State, in.Error = store.StateFailed, "interrupted creation left nothing at the backend"
	default:
		if err := e.retryCreate(ctx, v, in); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			in.State, in.Error = store.StateFailed, "interrupted creation left nothing at the backend, and creating it again failed: "+err.Error()
		}
	}
	return nil
}

// retryCreate creates an instance again under its record's node id and
// implementation, as create would, taking the record over first (so no
// other process adopts it meanwhile). On success the record has its
// handle and is pending.
func (e *Engine) retryCreate(ctx context.Context, v *view, in *store.Instance) error {
	n := v.st.ByName[in.NodeName]
	im := implOf(v, in)
	if n == nil || im == nil {
		return fmt.Errorf("node %s or its implementation %d is no longer described", in.NodeName, in.Impl)
	}
	for _, dep := range n.DependsOn {
		if ok, err := e.hasReady(ctx, v.inf.ID, dep); err != nil {
			return err
		} else if !ok {
			return fmt.Errorf("its dependency %s has no ready instance", dep)
		}
	}
	addrs, err := e.addressBook(ctx, v)
	if err != nil {
		return err
	}
	allowCmd, network := e.cmdPolicy(v.inf)
	r, err := resolve.Resolve(resolve.Input{InfraID: v.inf.ID, InfraName: v.st.Name, UserID: v.st.UserID, NodeID: in.NodeID, Node: n,
		Addresses: addrs, AllowCmd: allowCmd, FromNetwork: network}, im)
	if err != nil {
		return err
	}
	h, authData, release, err := e.handlerWithAuth(r.Resource)
	if err != nil {
		return err
	}
	defer release()
	in.Owner = e.owner
	if err := e.putInstance(ctx, in); err != nil {
		return err
	}
	e.log.Info("creating again an instance whose creation was interrupted", "infra", in.InfraID, "node", in.NodeName, "node_id", in.NodeID)
	if err := e.registerNode(ctx, v, n, r, in.NodeID, addrs); err != nil {
		return err
	}
	hd, err := h.Create(ctx, resource.Spec{InfraID: v.inf.ID, NodeID: in.NodeID, NodeName: n.Name, StoreID: e.StoreID(ctx),
		Resource: r.Resource, Context: r.Context, Auth: authData})
	if err != nil {
		return err
	}
	in.Handle, _ = json.Marshal(hd)
	in.State, in.Error = store.StatePending, ""
	return nil
}

// waitReady polls a starting instance until it is ready, failed or gone,
// on the schedule of pollDelay.
func (e *Engine) waitReady(ctx context.Context, v *view, in *store.Instance) error {
	// A backend that keeps giving no usable answer (state unknown) is
	// waited for as long as a creation may take, then the pass gives up;
	// the instance itself is not failed for it.
	deadline := e.opt.Now().Add(e.createTimeout(v, in))
	near := e.nearby(*in)
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
		t := time.NewTimer(e.pollDelay(e.opt.Now().Sub(in.CreatedAt), near))
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// pollDelay is the pause before the next poll of an instance that has
// been starting for elapsed: 4 % of it (a passing check is then seen
// within 5 %, the poll itself included), at least PollFirst for a nearby
// backend and PollRemote for a remote one, at most PollMax.
func (e *Engine) pollDelay(elapsed time.Duration, near bool) time.Duration {
	floor := e.opt.PollRemote
	if near {
		floor = e.opt.PollFirst
	}
	return min(max(elapsed/25, floor), e.opt.PollMax)
}

// nearby tells whether the instance's backend is cheap to poll
// (resource.Nearby); an instance whose handler cannot be had is remote.
func (e *Engine) nearby(in store.Instance) bool {
	h, release, err := e.handlerFor(in)
	if err != nil {
		return false
	}
	defer release()
	return nearby(h)
}

// createPrep is what every creation of one node in a level shares: the
// candidate implementations and the address book.
type createPrep struct {
	cands []*descr.Impl
	addrs *addresses
}

// prepareNode checks a node's candidates and dependencies and reads the
// address book; ab, when not nil, is the level's (read once per level).
func (e *Engine) prepareNode(ctx context.Context, v *view, n *compile.Node, ab *addresses) (createPrep, error) {
	cands := resolve.Candidates(n, v.defs[n.Type])
	if len(cands) == 0 {
		return createPrep{}, Terminal(fmt.Errorf("node %s: no implementation of type %q passes the filter %v", n.Name, n.Type, n.Filter))
	}
	for _, dep := range n.DependsOn {
		if ok, err := e.hasReady(ctx, v.inf.ID, dep); err != nil {
			return createPrep{}, err
		} else if !ok {
			return createPrep{}, fmt.Errorf("node %s: its dependency %s has no ready instance", n.Name, dep)
		}
	}
	if ab == nil {
		var err error
		if ab, err = e.addressBook(ctx, v); err != nil {
			return createPrep{}, err
		}
	}
	return createPrep{cands: cands, addrs: ab}, nil
}

// attempt is one implementation's try at creating an instance: resolved,
// its handler held (release when done), its record made.
type attempt struct {
	im      *descr.Impl
	r       *resolve.Resolved
	h       resource.Handler
	auth    map[string]any
	release func()
	in      store.Instance
}

// newAttempt resolves im for a new instance of n; nothing is written.
func (e *Engine) newAttempt(v *view, n *compile.Node, im *descr.Impl, addrs *addresses) (*attempt, error) {
	nodeID := uuid.NewString()
	allowCmd, network := e.cmdPolicy(v.inf)
	r, err := resolve.Resolve(resolve.Input{InfraID: v.inf.ID, InfraName: v.st.Name, UserID: v.st.UserID, NodeID: nodeID, Node: n,
		Addresses: addrs, AllowCmd: allowCmd, FromNetwork: network}, im)
	if err != nil {
		return nil, err
	}
	h, authData, release, err := e.handlerWithAuth(r.Resource)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", im.Path(), err)
	}
	resJSON, err := json.Marshal(r.Resource)
	if err != nil {
		release()
		return nil, err
	}
	typ, _ := r.Resource["type"].(string)
	in := store.Instance{InfraID: v.inf.ID, NodeID: nodeID, NodeName: n.Name, Backend: typ, Impl: im.Index,
		Resource: resJSON, Owner: e.owner, CreatedAt: e.opt.Now()}
	return &attempt{im: im, r: r, h: h, auth: authData, release: release, in: in}, nil
}

// firstAttempt makes the attempt of the first candidate (in random order)
// that resolves; the others are left for fallback.
func (e *Engine) firstAttempt(v *view, n *compile.Node, p createPrep) (*attempt, []*descr.Impl, []error) {
	var errs []error
	cands := shuffled(p.cands)
	for i, im := range cands {
		a, err := e.newAttempt(v, n, im, p.addrs)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		return a, cands[i+1:], errs
	}
	return nil, nil, errs
}

// writeCreating writes the `creating` records of attempts, with their
// events, in one transaction (store.PutInstances): one commit for a whole
// level, and every record exists before its backend call.
func (e *Engine) writeCreating(ctx context.Context, as []*attempt) error {
	if len(as) == 0 {
		return nil
	}
	ins := make([]store.Instance, len(as))
	evs := make([]store.Event, len(as))
	now := e.opt.Now()
	for i, a := range as {
		msg := e.Redact("creating on " + a.in.Backend)
		a.in.State, a.in.UpdatedAt, a.in.Error = store.StateCreating, now, e.Redact(a.in.Error)
		ins[i] = a.in
		evs[i] = store.Event{Time: now, InfraID: a.in.InfraID, NodeName: a.in.NodeName, NodeID: a.in.NodeID,
			Kind: "instance.state", To: store.StateCreating, Message: msg}
	}
	if err := e.store.PutInstances(ctx, ins, evs); err != nil {
		return err
	}
	for _, ev := range evs {
		e.notify(ev)
	}
	return nil
}

// createWith makes one instance of a node and waits until it is ready.
// It carries out first (an attempt whose record is written), if any, then
// tries the candidates of rest (the implementations that pass the node's
// filter, in random order) one by one, each record written before its
// call, until one can be created. errs are the failures so far. The
// returned instance has a NodeID as soon as a record was written, even
// with an error.
func (e *Engine) createWith(ctx context.Context, v *view, n *compile.Node, p createPrep, first *attempt, rest []*descr.Impl, errs []error) (store.Instance, error) {
	if first != nil {
		if in, done, err := e.runAttempt(ctx, v, n, p, first, &errs); done {
			return in, err
		}
	}
	for _, im := range rest {
		a, err := e.newAttempt(v, n, im, p.addrs)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		// The record exists before the backend is called: whatever
		// happens next, some process can find what was made.
		if err := e.setState(ctx, &a.in, store.StateCreating, "creating on "+a.in.Backend); err != nil {
			a.release()
			return store.Instance{}, err
		}
		if in, done, err := e.runAttempt(ctx, v, n, p, a, &errs); done {
			return in, err
		}
	}
	err := fmt.Errorf("node %s: no implementation could be created: %w", n.Name, errors.Join(errs...))
	if allTerminal(errs) {
		err = Terminal(err)
	}
	return store.Instance{}, err
}

// runAttempt calls the backend for an attempt whose record is written and
// waits for the instance; done is false when the backend refused it (the
// record is dropped, the failure added to errs) and the next candidate
// may be tried.
func (e *Engine) runAttempt(ctx context.Context, v *view, n *compile.Node, p createPrep, a *attempt, errs *[]error) (_ store.Instance, done bool, _ error) {
	// The creation's clock starts with its call (a level's records are
	// written together, before the first call).
	a.in.CreatedAt = e.opt.Now()
	// The config manager knows the node before its VM boots (the VM's
	// chef-client finds its run list waiting).
	var hd resource.Handle
	err := e.registerNode(ctx, v, n, a.r, a.in.NodeID, p.addrs)
	if err == nil {
		hd, err = a.h.Create(ctx, resource.Spec{InfraID: v.inf.ID, NodeID: a.in.NodeID, NodeName: n.Name, StoreID: e.StoreID(ctx), Resource: a.r.Resource, Context: a.r.Context, Auth: a.auth})
	}
	a.release()
	if err != nil {
		if ctx.Err() != nil {
			// Interrupted: the record stays for the caller's rollback.
			return a.in, true, ctx.Err()
		}
		*errs = append(*errs, fmt.Errorf("node %s: %s: %w", n.Name, a.im.Path(), err))
		if derr := e.drop(ctx, &a.in, "creation failed"); derr != nil {
			return a.in, true, errors.Join(append(*errs, derr)...)
		}
		return store.Instance{}, false, nil
	}
	a.in.Handle, _ = json.Marshal(hd)
	if err := e.setState(ctx, &a.in, store.StatePending, "created"); err != nil {
		return a.in, true, err
	}
	return a.in, true, e.waitReady(ctx, v, &a.in)
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
