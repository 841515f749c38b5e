package engine

import (
	"context"
	"fmt"
	"sync"

	"github.com/occopus-go/occopus/descr"
	"github.com/occopus-go/occopus/resource"
)

// fakeCloud is an in-memory backend registered like a real plugin, as
// type "fake", for engine tests. It keeps what it made in a map, can be
// told to fail creations, and lets a test remove instances behind the
// engine's back.
type fakeCloud struct {
	mu        sync.Mutex
	instances map[string]*fakeInstance // by backend id
	next      int
	// failCreate makes Create fail for resource sections whose `zone`
	// equals the key.
	failCreate map[string]bool
	creates    int
	// addr is the address every instance reports (a test's listener).
	addr string
	// stateErr, when set, is what State answers for every instance.
	stateErr error
	// onListAll, when set, runs inside ListAll before it reads the
	// instances (with cloud.mu not held): what happens at the backend
	// while a sweep lists.
	onListAll func()
	// inflight are creations asked for by a process that died: the backend
	// finishes them (they appear) at the next Create of anyone, after any
	// look that came before.
	inflight []resource.Spec
}

type fakeInstance struct {
	id, infra, node, name string
	zone, store           string // the handler's zone; the spec's store id
	env                   []string
	state                 resource.State
}

var cloud = &fakeCloud{instances: map[string]*fakeInstance{}, failCreate: map[string]bool{}, addr: "127.0.0.1"}

// fakeSettings are the keys of a fake resource section.
type fakeSettings struct {
	Zone string `occopus:"zone"`
}

func init() {
	resource.Register(resource.Plugin{Type: "fake", Schema: descr.SchemaOf[fakeSettings](), New: func(cfg resource.Config) (resource.Handler, error) {
		var s fakeSettings
		if err := descr.Decode("resource", cfg.Resource, &s); err != nil {
			return nil, err
		}
		if s.Zone == "misconfigured" {
			return nil, fmt.Errorf("fake: zone %q cannot be configured", s.Zone)
		}
		return &fakeHandler{zone: s.Zone}, nil
	}})
}

type fakeHandler struct{ zone string }

func (h *fakeHandler) Create(ctx context.Context, spec resource.Spec) (resource.Handle, error) {
	cloud.mu.Lock()
	defer cloud.mu.Unlock()
	for _, late := range cloud.inflight {
		cloud.next++
		cloud.creates++
		id := fmt.Sprintf("fake-%d", cloud.next)
		cloud.instances[id] = &fakeInstance{id: id, infra: late.InfraID, node: late.NodeID, name: late.NodeName, zone: h.zone,
			store: late.StoreID, env: late.Context.Env, state: resource.StateRunning}
	}
	cloud.inflight = nil
	for _, in := range cloud.instances {
		if in.node == spec.NodeID {
			return resource.Handle{ID: in.id}, nil // idempotent per node id
		}
	}
	if cloud.failCreate[h.zone] {
		return resource.Handle{}, fmt.Errorf("zone %s is full", h.zone)
	}
	cloud.next++
	cloud.creates++
	id := fmt.Sprintf("fake-%d", cloud.next)
	cloud.instances[id] = &fakeInstance{id: id, infra: spec.InfraID, node: spec.NodeID, name: spec.NodeName, zone: h.zone, store: spec.StoreID,
		env: spec.Context.Env, state: resource.StateRunning}
	return resource.Handle{ID: id}, nil
}

func (h *fakeHandler) Destroy(ctx context.Context, hd resource.Handle) error {
	cloud.mu.Lock()
	defer cloud.mu.Unlock()
	if h.zone == "unreachable" {
		return fmt.Errorf("zone %s: endpoint gone", h.zone)
	}
	delete(cloud.instances, hd.ID)
	return nil
}

func (h *fakeHandler) State(ctx context.Context, hd resource.Handle) (resource.State, error) {
	cloud.mu.Lock()
	defer cloud.mu.Unlock()
	if cloud.stateErr != nil {
		return "", cloud.stateErr
	}
	in, ok := cloud.instances[hd.ID]
	if !ok {
		return "", resource.ErrNotFound
	}
	return in.state, nil
}

func (h *fakeHandler) Addresses(ctx context.Context, hd resource.Handle) (resource.Addresses, error) {
	cloud.mu.Lock()
	defer cloud.mu.Unlock()
	if _, ok := cloud.instances[hd.ID]; !ok {
		return resource.Addresses{}, resource.ErrNotFound
	}
	return resource.Addresses{Public: cloud.addr, Private: cloud.addr}, nil
}

func (h *fakeHandler) List(ctx context.Context, infraID string) ([]resource.Owned, error) {
	cloud.mu.Lock()
	defer cloud.mu.Unlock()
	var out []resource.Owned
	for _, in := range cloud.instances {
		if in.infra == infraID {
			out = append(out, in.owned())
		}
	}
	return out, nil
}

// ListAll lists the instances made in the handler's zone (a zone stands
// for an endpoint), of every infrastructure.
func (h *fakeHandler) ListAll(ctx context.Context) ([]resource.Owned, error) {
	cloud.mu.Lock()
	hook := cloud.onListAll
	cloud.mu.Unlock()
	if hook != nil {
		hook()
	}
	cloud.mu.Lock()
	defer cloud.mu.Unlock()
	switch h.zone {
	case "unreachable":
		return nil, fmt.Errorf("zone %s: endpoint gone", h.zone)
	case "list-panics":
		panic("fake: a bug in ListAll")
	}
	var out []resource.Owned
	for _, in := range cloud.instances {
		if in.zone == h.zone {
			out = append(out, in.owned())
		}
	}
	return out, nil
}

func (in *fakeInstance) owned() resource.Owned {
	return resource.Owned{Handle: resource.Handle{ID: in.id}, InfraID: in.infra, NodeID: in.node, NodeName: in.name, StoreID: in.store}
}

func (h *fakeHandler) Find(ctx context.Context, infraID, nodeID string) (resource.Handle, bool, error) {
	cloud.mu.Lock()
	defer cloud.mu.Unlock()
	for _, in := range cloud.instances {
		if in.infra == infraID && in.node == nodeID {
			return resource.Handle{ID: in.id}, true, nil
		}
	}
	return resource.Handle{}, false, nil
}

// count returns how many instances of an infrastructure exist.
func (c *fakeCloud) count(infra string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, in := range c.instances {
		if in.infra == infra {
			n++
		}
	}
	return n
}

// byName returns the instances of a node name.
func (c *fakeCloud) byName(infra, name string) []fakeInstance {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []fakeInstance
	for _, in := range c.instances {
		if in.infra == infra && in.name == name {
			out = append(out, *in)
		}
	}
	return out
}

var (
	_ resource.Handler = (*fakeHandler)(nil)
	_ resource.Lister  = (*fakeHandler)(nil)
	_ resource.Finder  = (*fakeHandler)(nil)
	_ resource.Sweeper = (*fakeHandler)(nil)
)

func specFor(infra, nodeID, name string) resource.Spec {
	return resource.Spec{InfraID: infra, NodeID: nodeID, NodeName: name}
}

// vanish removes one instance of a node behind the engine's back.
func (c *fakeCloud) vanish(infra, name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for id, in := range c.instances {
		if in.infra == infra && in.name == name {
			delete(c.instances, id)
			return
		}
	}
}

// setState sets what the backend says of every instance of a node.
func (c *fakeCloud) setState(infra, name string, s resource.State) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, in := range c.instances {
		if in.infra == infra && in.name == name {
			in.state = s
		}
	}
}
