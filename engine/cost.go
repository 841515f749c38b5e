package engine

import (
	"context"
	"errors"
	"sort"
	"sync"
	"time"

	"github.com/occopus-go/occopus/resource"
	"github.com/occopus-go/occopus/store"
)

// CostReport is what the instances of an infrastructure have cost, where
// their backends tell it (Occopus's GET /infrastructures/{id}/cost).
// Backends that cannot tell (docker, ec2, nova, ...) report no cost: null,
// not 0.
type CostReport struct {
	InfraID string `json:"infraid"`
	// TotalCost sums the costs the backends told; null when none told one,
	// or when they are in different currencies.
	TotalCost *float64 `json:"total_cost"`
	// Currency of TotalCost; absent when unknown.
	Currency string `json:"currency,omitempty"`
	// Nodes by name, each with its instances by node id.
	Nodes map[string]NodeCost `json:"nodes"`
}

// NodeCost is one node of a CostReport.
type NodeCost struct {
	// TotalCost sums its instances' costs (null as in CostReport).
	TotalCost *float64                `json:"total_cost"`
	Currency  string                  `json:"currency,omitempty"`
	Instances map[string]InstanceCost `json:"instances"`
}

// InstanceCost is one instance of a CostReport.
type InstanceCost struct {
	// Backend is the instance's resource type.
	Backend string `json:"backend"`
	// TotalCost is what the backend says the instance has cost so far;
	// null when it tells none.
	TotalCost *float64 `json:"total_cost"`
	Currency  string   `json:"currency,omitempty"`
	// Error says why the backend could not tell (the cost is then null).
	Error string `json:"error,omitempty"`
}

// Cost asks the backend of every instance with a backend handle what it
// has cost, a few at a time. A backend's failure is that instance's
// Error, not the call's; an unknown infrastructure is ErrUnknownInfra.
func (e *Engine) Cost(ctx context.Context, id string) (*CostReport, error) {
	if _, err := e.infra(ctx, id); err != nil {
		return nil, err
	}
	ins, err := e.store.Instances(ctx, id)
	if err != nil {
		return nil, err
	}
	rep := &CostReport{InfraID: id, Nodes: map[string]NodeCost{}}
	if _, st, err := e.Static(ctx, id); err == nil {
		for _, n := range st.Nodes {
			rep.Nodes[n.Name] = NodeCost{Instances: map[string]InstanceCost{}}
		}
	}
	var mu sync.Mutex
	jobs := make([]func() error, 0, len(ins))
	for _, in := range ins {
		jobs = append(jobs, func() error {
			ic := e.instanceCost(ctx, in)
			mu.Lock()
			defer mu.Unlock()
			nc, ok := rep.Nodes[in.NodeName]
			if !ok {
				nc = NodeCost{Instances: map[string]InstanceCost{}}
			}
			nc.Instances[in.NodeID] = ic
			rep.Nodes[in.NodeName] = nc
			return nil
		})
	}
	_ = limitN(e.opt.Parallel, jobs)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var all []InstanceCost
	for name, nc := range rep.Nodes {
		var costs []InstanceCost
		for _, ic := range nc.Instances {
			costs = append(costs, ic)
		}
		nc.TotalCost, nc.Currency = sum(costs)
		rep.Nodes[name] = nc
		all = append(all, costs...)
	}
	rep.TotalCost, rep.Currency = sum(all)
	return rep, nil
}

// instanceCost asks one instance's backend.
func (e *Engine) instanceCost(ctx context.Context, in store.Instance) InstanceCost {
	ic := InstanceCost{Backend: in.Backend}
	hd, ok := handleOf(in)
	if !ok || in.State == store.StateCreating || in.State == store.StateDestroying {
		return ic // nothing at the backend to ask about (yet, any more)
	}
	h, release, err := e.handlerFor(in)
	if err != nil {
		ic.Error = err.Error()
		return ic
	}
	defer release()
	c, ok := asCoster(h)
	if !ok {
		return ic
	}
	cost, known, err := c.Cost(ctx, hd)
	switch {
	case errors.Is(err, resource.ErrNotFound):
		ic.Error = "gone at the backend"
	case err != nil:
		ic.Error = err.Error()
	case known:
		v := cost.Total
		ic.TotalCost, ic.Currency = &v, cost.Currency
	}
	return ic
}

// sum adds the known costs; nil when there are none or their currencies
// differ.
func sum(costs []InstanceCost) (*float64, string) {
	var total float64
	var currencies []string
	n := 0
	for _, c := range costs {
		if c.TotalCost == nil {
			continue
		}
		n++
		total += *c.TotalCost
		currencies = append(currencies, c.Currency)
	}
	if n == 0 {
		return nil, ""
	}
	sort.Strings(currencies)
	if currencies[0] != currencies[len(currencies)-1] {
		return nil, ""
	}
	return &total, currencies[0]
}

type meteredCoster struct {
	c resource.Coster
	m *metered
}

func (c meteredCoster) Cost(ctx context.Context, hd resource.Handle) (cost resource.Cost, ok bool, err error) {
	defer func(start time.Time) { c.m.observe("cost", start, notFoundIsNoError(err)) }(time.Now())
	return c.c.Cost(ctx, hd)
}

// asCoster finds a handler's Coster, also behind the metering wrapper.
func asCoster(h resource.Handler) (resource.Coster, bool) {
	if m, ok := h.(*metered); ok {
		c, ok := m.h.(resource.Coster)
		if !ok {
			return nil, false
		}
		return meteredCoster{c: c, m: m}, true
	}
	c, ok := h.(resource.Coster)
	return c, ok
}
