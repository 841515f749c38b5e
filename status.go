package occopus

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/occopus-go/occopus/store"
)

// PassStatus is the outcome of an infrastructure's last maintenance pass.
type PassStatus = store.PassStatus

// Outcomes of a pass (Outcome, PassStatus.Result).
const (
	PassOK       = store.PassOK
	PassRequeue  = store.PassRequeue
	PassError    = store.PassError
	PassTerminal = store.PassTerminal
	PassPanic    = store.PassPanic
)

// Status is what an infrastructure is doing: its record and its last
// pass, and how many of its instances are in each state.
type Status struct {
	InfraID   string         `json:"infraid"`
	Name      string         `json:"name"`
	Attached  bool           `json:"attached"`
	Origin    string         `json:"origin,omitempty"`
	CreatedAt time.Time      `json:"created_at"`
	UpdatedAt time.Time      `json:"updated_at"`
	LastPass  *PassStatus    `json:"last_pass,omitempty"` // nil before the first pass
	Instances map[string]int `json:"instances"`           // by state
}

// Status reports an infrastructure's status; ErrUnknownInfra when there
// is none with that id.
func (m *Manager) Status(ctx context.Context, id string) (*Status, error) {
	if m.opt.Store == nil {
		return nil, ErrNoStore
	}
	inf, err := m.opt.Store.Infra(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("%w: %s", ErrUnknownInfra, id)
	}
	if err != nil {
		return nil, err
	}
	ins, err := m.opt.Store.Instances(ctx, id)
	if err != nil {
		return nil, err
	}
	st := &Status{InfraID: inf.ID, Name: inf.Name, Attached: inf.Attached, Origin: inf.Origin,
		CreatedAt: inf.CreatedAt, UpdatedAt: inf.UpdatedAt, Instances: map[string]int{}}
	if inf.LastPass.Result != "" {
		lp := inf.LastPass
		st.LastPass = &lp
	}
	for _, in := range ins {
		st.Instances[in.State]++
	}
	return st, nil
}
