package occopus

import (
	"context"

	"github.com/occopus-go/occopus/engine"
)

// Topology is the shape of an infrastructure's description: its nodes
// level by level, what each depends on, and its scaling as it will be
// (stored target and pending requests, clamped to min/max).
type Topology struct {
	// Levels lists node names level by level (level 0 depends on nothing).
	Levels [][]string     `json:"levels"`
	Nodes  []TopologyNode `json:"nodes"`
}

// TopologyNode is one node of a Topology.
type TopologyNode struct {
	Name      string         `json:"name"`
	Type      string         `json:"type"`
	Level     int            `json:"level"`
	DependsOn []string       `json:"depends_on"`
	Scaling   engine.Scaling `json:"scaling"`
}

// Topology returns the graph of an infrastructure; ErrUnknownInfra when
// there is none with that id.
func (m *Manager) Topology(ctx context.Context, id string) (*Topology, error) {
	if m.opt.Store == nil {
		return nil, ErrNoStore
	}
	inf, st, err := m.eng.Static(ctx, id)
	if err != nil {
		return nil, err
	}
	reqs, err := m.opt.Store.ScaleRequests(ctx, id)
	if err != nil {
		return nil, err
	}
	targets := engine.Targets(st, inf.Targets, reqs)
	t := &Topology{Levels: st.Levels, Nodes: make([]TopologyNode, 0, len(st.Nodes))}
	for _, n := range st.Nodes {
		deps := n.DependsOn
		if deps == nil {
			deps = []string{}
		}
		t.Nodes = append(t.Nodes, TopologyNode{Name: n.Name, Type: n.Type, Level: n.Level, DependsOn: deps, Scaling: targets[n.Name]})
	}
	return t, nil
}
