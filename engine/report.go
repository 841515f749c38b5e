package engine

import (
	"context"
	"fmt"
	"time"

	"github.com/occopus-go/occopus/compile"
	"github.com/occopus-go/occopus/descr"
)

// InstanceReport is one instance in a report (the REST shape).
type InstanceReport struct {
	ResourceAddress string `json:"resource_address"`
	State           string `json:"state"`
}

// ScalingReport is a node's scaling in a report.
type ScalingReport struct {
	Actual int `json:"actual"`
	Target int `json:"target"`
	Min    int `json:"min"`
	Max    int `json:"max"`
}

// NodeReport is one node in a report.
type NodeReport struct {
	Instances map[string]InstanceReport `json:"instances"`
	Scaling   ScalingReport             `json:"scaling"`
}

// Report is the state of an infrastructure by node name, in the shape of
// Occopus's REST report: {NODE: {"instances": {NODE_ID: {...}}, "scaling": {...}}}.
type Report map[string]NodeReport

// Report describes an infrastructure as the store knows it, without
// calling any backend. Target counts include pending scale requests.
func (e *Engine) Report(ctx context.Context, id string) (Report, error) {
	inf, st, err := e.Static(ctx, id)
	if err != nil {
		return nil, err
	}
	ins, err := e.store.Instances(ctx, id)
	if err != nil {
		return nil, err
	}
	reqs, err := e.store.ScaleRequests(ctx, id)
	if err != nil {
		return nil, err
	}
	targets := Targets(st, inf.Targets, reqs)
	rep := Report{}
	for _, n := range st.Nodes {
		s := targets[n.Name]
		rep[n.Name] = NodeReport{Instances: map[string]InstanceReport{}, Scaling: ScalingReport{Target: s.Target, Min: s.Min, Max: s.Max}}
	}
	for _, in := range ins {
		nr, ok := rep[in.NodeName]
		if !ok {
			// A node removed from the description, not yet dropped.
			nr = NodeReport{Instances: map[string]InstanceReport{}}
		}
		nr.Instances[in.NodeID] = InstanceReport{ResourceAddress: in.Address, State: in.State}
		nr.Scaling.Actual++
		rep[in.NodeName] = nr
	}
	return rep, nil
}

// PlanFor computes what the next pass would do, refreshing instances from
// the backends without writing anything. With a new description (build -i
// preview), the plan is computed against it.
func (e *Engine) PlanFor(ctx context.Context, id string, next *descr.Infra) ([]Action, error) {
	var override *compile.Static
	if next != nil {
		st, err := compile.Compile(next)
		if err != nil {
			return nil, err
		}
		if err := e.checkTypes(ctx, st); err != nil {
			return nil, err
		}
		override = st
	}
	v, insts, targets, err := e.prepare(ctx, id, override, false)
	if err != nil {
		return nil, err
	}
	return Plan(v.st, targets, insts), nil
}

// BuildOptions control Build.
type BuildOptions struct {
	// Interval is the pause between passes while not complete.
	Interval time.Duration
}

// Build runs passes until every node has its target of ready instances.
// Any pass error ends it: the caller decides whether to roll back
// (Created lists every instance made, for that).
func (e *Engine) Build(ctx context.Context, id string, opt BuildOptions) (created []string, err error) {
	if opt.Interval <= 0 {
		// Passes that leave work undone are rare (waitReady waits within
		// a pass): no need to spin at the readiness poll's pace.
		opt.Interval = max(e.opt.PollFirst, 20*time.Millisecond)
	}
	for pass := 1; ; pass++ {
		res, err := e.Reconcile(ctx, id)
		if res != nil {
			created = append(created, res.Created...)
		}
		if err != nil {
			return created, err
		}
		if res.Complete {
			return created, nil
		}
		if pass > 1000 {
			return created, fmt.Errorf("infrastructure %s did not converge after %d passes", id, pass)
		}
		select {
		case <-ctx.Done():
			return created, ctx.Err()
		case <-time.After(opt.Interval):
		}
	}
}
