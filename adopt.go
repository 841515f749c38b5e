package occopus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"time"

	"github.com/occopus-go/occopus/descr"
	"github.com/occopus-go/occopus/engine"
	"github.com/occopus-go/occopus/resource"
	"github.com/occopus-go/occopus/store"
)

// Takeover is an infrastructure made by another orchestrator (Occopus
// 1.10) to be recorded here with its running instances, so that maintain,
// scale and destroy work on it.
type Takeover struct {
	// ID is kept: users and scripts know the infrastructure by it.
	ID        string
	Desc      *descr.Infra
	Instances []TakeoverInstance
	Requests  []TakeoverRequest
}

// TakeoverInstance is one running instance, known by its backend id.
type TakeoverInstance struct {
	NodeName, NodeID string
	// Resource is the resource section it was made with.
	Resource  map[string]any
	BackendID string
	CreatedAt time.Time
}

// TakeoverRequest is a scaling request not yet carried out.
type TakeoverRequest struct {
	Node string
	// One of: Change (+1 / -1), Set, Victim (node id or address).
	Change int
	Set    *int
	Victim string
}

// TakeoverReport says what was (or, dry, would be) taken over.
type TakeoverReport struct {
	ID, Name string
	// Adopted are the instances recorded, with their backend state.
	Adopted []AdoptedInstance
	// Requests are the scaling requests stored, as the node's target
	// after each.
	Requests []string
	// Notes are what was left aside and why.
	Notes []string
}

// AdoptedInstance is one instance taken over.
type AdoptedInstance struct {
	Node, NodeID, Backend, BackendID string
	State                            resource.State
	Address                          string
	// Labelled: the backend now carries occopus's labels/tags on it.
	Labelled bool
}

// Take records an infrastructure with its instances as they run: no
// instance is created or destroyed. The node types must be in the store
// (ImportNodeDefs first). With dry, it only checks and probes.
func (m *Manager) Take(ctx context.Context, t Takeover, dry bool) (out *TakeoverReport, err error) {
	defer func() { err = m.clean(err) }()
	if m.opt.Store == nil {
		return nil, ErrNoStore
	}
	rep := &TakeoverReport{ID: t.ID, Name: t.Desc.Name}
	if _, err := m.opt.Store.Infra(ctx, t.ID); err == nil {
		return nil, fmt.Errorf("infrastructure %s is already in the store (taken over before?): %w", t.ID, store.ErrExists)
	} else if !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	var ins []store.Instance
	noted := map[string]bool{}
	for _, ti := range t.Instances {
		in, err := m.takeoverInstance(ctx, t, ti)
		if err != nil {
			return nil, err
		}
		st, addrs, perr := m.eng.Probe(ctx, in)
		a := AdoptedInstance{Node: ti.NodeName, NodeID: ti.NodeID, Backend: in.Backend, BackendID: ti.BackendID, State: st, Address: addrs.Public}
		if perr != nil {
			if errors.Is(perr, resource.ErrNotFound) {
				rep.Notes = append(rep.Notes, fmt.Sprintf("instance %s of node %s (%s %s) is gone at the backend: not taken over; maintain makes a new one if the node needs it", ti.NodeID, ti.NodeName, in.Backend, ti.BackendID))
				continue
			}
			return nil, fmt.Errorf("instance %s of node %s: %w", ti.NodeID, ti.NodeName, perr)
		}
		in.Address, in.PrivAddress = addrs.Public, addrs.Private
		ins = append(ins, in)
		rep.Adopted = append(rep.Adopted, a)
		if !m.eng.CanLabel(in) && !noted[in.Backend] {
			noted[in.Backend] = true
			rep.Notes = append(rep.Notes, labelNote(in.Backend))
		}
	}
	if dry {
		for _, in := range ins {
			if m.eng.CanLabel(in) {
				rep.Notes = append(rep.Notes, fmt.Sprintf("instance %s of node %s (%s %s) would be labelled as ours", in.NodeID, in.NodeName, in.Backend, backendID(in)))
			}
		}
		for _, r := range t.Requests {
			rep.Requests = append(rep.Requests, requestText(r, ins))
		}
		return rep, nil
	}
	if _, err := m.eng.Submit(ctx, t.Desc, t.ID); err != nil {
		return nil, err
	}
	for _, in := range ins {
		if err := m.opt.Store.PutInstance(ctx, in); err != nil {
			return nil, err
		}
	}
	// Labelled once recorded: an instance labelled but not recorded would
	// look like an orphan of this store to the sweep.
	for i, in := range ins {
		ok, err := m.eng.Label(ctx, in)
		switch {
		case err != nil:
			// Still known by its id: destroy and maintain work; only the
			// sweep for orphans and Find do not see it.
			rep.Notes = append(rep.Notes, fmt.Sprintf("instance %s of node %s (%s %s) could not be labelled: %v", in.NodeID, in.NodeName, in.Backend, backendID(in), err))
		case ok:
			rep.Adopted[i].Labelled = true
		}
	}
	inf, st, err := m.eng.Static(ctx, t.ID)
	if err != nil {
		return nil, err
	}
	// The targets are what runs, within the node's limits: a pass neither
	// adds nor removes an instance the description allows.
	targets := map[string]int{}
	for _, n := range st.Nodes {
		c := 0
		for _, in := range ins {
			if in.NodeName == n.Name {
				c++
			}
		}
		targets[n.Name] = min(max(c, n.Min), n.Max)
	}
	if err := m.opt.Store.UpdateTargets(ctx, inf.ID, targets, nil); err != nil {
		return nil, err
	}
	for _, r := range t.Requests {
		req := ScaleRequest{InfraID: t.ID, Node: r.Node, Change: r.Change, Set: r.Set, Victim: r.Victim}
		if r.Victim != "" && victimOf(r, ins) == "" {
			// Occopus counts a drop request naming no instance as one fewer.
			req.Victim, req.Change = "", -1
			rep.Notes = append(rep.Notes, fmt.Sprintf("the request to remove %q from node %s names no instance taken over: stored as one fewer", r.Victim, r.Node))
		}
		s, err := m.Scale(ctx, req)
		if err != nil {
			rep.Notes = append(rep.Notes, fmt.Sprintf("scaling request %s left aside: %v", requestText(r, ins), err))
			continue
		}
		rep.Requests = append(rep.Requests, fmt.Sprintf("%s (node %s target %d%s)", requestText(r, ins), r.Node, s.Target, clampedText(s)))
	}
	if err := m.opt.Store.AppendEvent(ctx, store.Event{Time: time.Now(), InfraID: t.ID, Kind: "infra.taken_over", Message: fmt.Sprintf("taken over with %d running instance(s)", len(ins))}); err != nil {
		m.opt.Log.Warn("recording event failed", "err", err)
	}
	return rep, nil
}

func clampedText(s engine.Scaling) string {
	if s.Clamped != "" {
		return ", " + s.Clamped
	}
	return ""
}

func victimOf(r TakeoverRequest, ins []store.Instance) string {
	for _, in := range ins {
		if in.NodeName == r.Node && (in.NodeID == r.Victim || in.Address == r.Victim || in.PrivAddress == r.Victim) {
			return in.NodeID
		}
	}
	return ""
}

func requestText(r TakeoverRequest, ins []store.Instance) string {
	switch {
	case r.Set != nil:
		return fmt.Sprintf("%s to %d", r.Node, *r.Set)
	case r.Victim != "":
		if id := victimOf(r, ins); id != "" {
			return fmt.Sprintf("%s remove %s (%s)", r.Node, r.Victim, id)
		}
		return fmt.Sprintf("%s remove %s (no such instance: one fewer)", r.Node, r.Victim)
	}
	return fmt.Sprintf("%s %+d", r.Node, r.Change)
}

// labelNote says why a taken-over instance carries no labels.
func labelNote(backend string) string {
	if backend == "docker" {
		return "docker cannot relabel a container: the containers are known by their ids (the sweep for orphans, which goes by labels, leaves it alone)"
	}
	return backend + " instances not labelled: this backend cannot label an instance it did not make here; they are known by their ids (the sweep for orphans leaves them alone)"
}

func backendID(in store.Instance) string {
	var h resource.Handle
	_ = json.Unmarshal(in.Handle, &h)
	return h.ID
}

// takeoverInstance is the record of one instance, its implementation the
// node type's one whose resource section it was made with.
func (m *Manager) takeoverInstance(ctx context.Context, t Takeover, ti TakeoverInstance) (store.Instance, error) {
	var typ string
	for _, n := range t.Desc.Nodes {
		if n.Name == ti.NodeName {
			typ = n.Type
		}
	}
	if typ == "" {
		return store.Instance{}, fmt.Errorf("instance %s: no node named %q in the description", ti.NodeID, ti.NodeName)
	}
	backend, _ := ti.Resource["type"].(string)
	impl := 0
	if raw, err := m.opt.Store.NodeDef(ctx, typ); err == nil {
		if impls, err := descr.ImplsFromJSON(typ, raw); err == nil {
			for i, im := range impls {
				if sameResource(im.Section("resource"), ti.Resource) {
					impl = i
					break
				}
			}
		}
	}
	res, err := json.Marshal(ti.Resource)
	if err != nil {
		return store.Instance{}, err
	}
	hd, _ := json.Marshal(resource.Handle{ID: ti.BackendID})
	created := ti.CreatedAt
	if created.IsZero() {
		created = time.Now()
	}
	return store.Instance{InfraID: t.ID, NodeID: ti.NodeID, NodeName: ti.NodeName, State: store.StatePending, Backend: backend,
		Impl: impl, Resource: res, Handle: hd, CreatedAt: created, UpdatedAt: time.Now()}, nil
}

// sameResource compares sections through JSON, as the store keeps them.
func sameResource(a, b map[string]any) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	var x, y any
	_ = json.Unmarshal(ja, &x)
	_ = json.Unmarshal(jb, &y)
	return reflect.DeepEqual(x, y)
}
