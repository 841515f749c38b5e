package occopus

import (
	"context"

	"github.com/occopus-go/occopus/engine"
)

// Cost reports of the engine (engine.CostReport).
type (
	CostReport   = engine.CostReport
	NodeCost     = engine.NodeCost
	InstanceCost = engine.InstanceCost
)

// Cost reports what the instances of an infrastructure have cost so far,
// in total, per node and per instance, where their backends tell it
// (CloudBroker does); the others report no cost (nil, not 0). It reads
// the store and asks the backends, without the infrastructure's lease:
// it changes nothing. An unknown id is ErrUnknownInfra.
func (m *Manager) Cost(ctx context.Context, id string) (*CostReport, error) {
	if m.opt.Store == nil {
		return nil, ErrNoStore
	}
	return m.eng.Cost(ctx, id)
}
