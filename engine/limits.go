package engine

import (
	"context"
	"fmt"

	"github.com/occopus-go/occopus/compile"
	"github.com/occopus-go/occopus/descr"
	"github.com/occopus-go/occopus/store"
)

// Limits cap instance counts, so that a typo (`min: 100000`) or a scale
// request is refused instead of starting instances until the host or the
// cloud account gives up. Zero fields take the defaults.
type Limits struct {
	PerNode  int // a node's scaling max
	PerInfra int // the sum of an infrastructure's node minimums, and of its targets
	Total    int // the sum of every infrastructure's targets in the store
}

// DefaultLimits protect a laptop: occopus_config.yaml's `limits:` raise them.
var DefaultLimits = Limits{PerNode: 100, PerInfra: 500, Total: 2000}

func (l Limits) withDefaults() Limits {
	if l.PerNode <= 0 {
		l.PerNode = DefaultLimits.PerNode
	}
	if l.PerInfra <= 0 {
		l.PerInfra = DefaultLimits.PerInfra
	}
	if l.Total <= 0 {
		l.Total = DefaultLimits.Total
	}
	return l
}

// CheckLimits reports the nodes whose scaling exceeds the per-node limit
// and a description whose minimums exceed the per-infrastructure limit,
// each at its place in the file.
func CheckLimits(st *compile.Static, l Limits) error {
	l = l.withDefaults()
	var errs descr.Errors
	sum := 0
	for _, n := range st.Nodes {
		sum += n.Min
		for _, key := range []string{"min", "max"} {
			v := n.Max
			if key == "min" {
				v = n.Min
			}
			if v <= l.PerNode {
				continue
			}
			errs = append(errs, &descr.Error{Pos: scalingPos(n, key), Path: n.Desc.Path + ".scaling." + key,
				Msg: fmt.Sprintf("%s %d is more than the %d instances a node may have (limits.instances_per_node in occopus_config.yaml)", key, v, l.PerNode)})
			break // min over the limit means max is too: one error per node
		}
	}
	if sum > l.PerInfra {
		errs = append(errs, &descr.Error{Pos: firstNodePos(st), Path: "nodes",
			Msg: fmt.Sprintf("the nodes' minimums add up to %d instances, more than the %d an infrastructure may have (limits.instances_per_infrastructure in occopus_config.yaml)", sum, l.PerInfra)})
	}
	return errs.Err()
}

// checkTotal refuses a description whose minimums, with every other
// infrastructure's targets, exceed the service-wide limit.
func (e *Engine) checkTotal(ctx context.Context, st *compile.Static, self string) error {
	l := e.opt.Limits.withDefaults()
	others, err := e.targetsElsewhere(ctx, self)
	if err != nil {
		return err
	}
	want := 0
	for _, n := range st.Nodes {
		want += n.Min
	}
	if others+want > l.Total {
		return descr.Errors{{Pos: firstNodePos(st), Path: "nodes",
			Msg: fmt.Sprintf("its %d instances with the %d of the other infrastructures would be more than the %d this service runs (limits.instances in occopus_config.yaml)", want, others, l.Total)}}
	}
	return nil
}

// CheckScale refuses a scale request whose resulting target for node
// would take its infrastructure, or the service, past its limit.
func (e *Engine) CheckScale(ctx context.Context, inf store.Infra, st *compile.Static, targets map[string]Scaling) error {
	l := e.opt.Limits.withDefaults()
	sum := 0
	for _, s := range targets {
		sum += s.Target
	}
	if sum > l.PerInfra {
		return fmt.Errorf("infrastructure %s would have %d instances, more than the %d an infrastructure may have (limits.instances_per_infrastructure in occopus_config.yaml)", inf.ID, sum, l.PerInfra)
	}
	others, err := e.targetsElsewhere(ctx, inf.ID)
	if err != nil {
		return err
	}
	if others+sum > l.Total {
		return fmt.Errorf("infrastructure %s would have %d instances and the others have %d: more than the %d this service runs (limits.instances in occopus_config.yaml)", inf.ID, sum, others, l.Total)
	}
	return nil
}

// targetsElsewhere adds up the targets of every infrastructure but self,
// with their pending scale requests applied (clamped to each node's
// limits, as the next pass will).
func (e *Engine) targetsElsewhere(ctx context.Context, self string) (int, error) {
	infras, err := e.store.Infras(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, inf := range infras {
		if inf.ID == self {
			continue
		}
		st, err := staticOf(inf)
		if err != nil {
			for _, t := range inf.Targets { // an unreadable description: what is stored
				n += t
			}
			continue
		}
		reqs, err := e.store.ScaleRequests(ctx, inf.ID)
		if err != nil {
			return 0, err
		}
		for _, s := range Targets(st, inf.Targets, reqs) {
			n += s.Target
		}
	}
	return n, nil
}

func scalingPos(n *compile.Node, key string) descr.Pos {
	if n.Desc.Src != nil {
		if s := n.Desc.Src.Get("scaling"); s != nil {
			if v := s.Get(key); v != nil {
				return v.Pos
			}
			return s.Pos
		}
		return n.Desc.Src.Pos
	}
	return descr.Pos{}
}

func firstNodePos(st *compile.Static) descr.Pos {
	for _, n := range st.Nodes {
		if n.Desc.Src != nil {
			return n.Desc.Src.Pos
		}
	}
	return descr.Pos{}
}
