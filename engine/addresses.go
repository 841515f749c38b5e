package engine

import (
	"context"
	"fmt"

	"github.com/occopus-go/occopus/store"
	"github.com/occopus-go/occopus/tmpl"
)

func containsTemplate(s string) bool { return tmpl.HasTemplate(s) }

// addresses answers getip & co. from the ready instances of an
// infrastructure, oldest first (Occopus picks the first one).
type addresses struct {
	infra string
	ready map[string][]store.Instance
	known map[string]bool
}

func (e *Engine) addressBook(ctx context.Context, v *view) (*addresses, error) {
	ins, err := e.store.Instances(ctx, v.inf.ID)
	if err != nil {
		return nil, err
	}
	sortInstances(ins)
	a := &addresses{infra: v.st.Name, ready: map[string][]store.Instance{}, known: map[string]bool{}}
	for _, n := range v.st.Nodes {
		a.known[n.Name] = true
	}
	for _, in := range ins {
		if in.State == store.StateReady {
			a.ready[in.NodeName] = append(a.ready[in.NodeName], in)
		}
	}
	return a, nil
}

func (a *addresses) first(node string) (store.Instance, error) {
	if !a.known[node] {
		return store.Instance{}, fmt.Errorf("no node named %q in infrastructure %q", node, a.infra)
	}
	ins := a.ready[node]
	if len(ins) == 0 {
		return store.Instance{}, fmt.Errorf("node %q has no ready instance yet (add a dependency on it so it is built first)", node)
	}
	return ins[0], nil
}

func (a *addresses) IP(node string) (string, error) {
	in, err := a.first(node)
	return in.Address, err
}

func (a *addresses) PrivIP(node string) (string, error) {
	in, err := a.first(node)
	return in.PrivAddress, err
}

func (a *addresses) AllIPs(node string) ([]string, error) {
	if _, err := a.first(node); err != nil {
		return nil, err
	}
	out := make([]string, len(a.ready[node]))
	for i, in := range a.ready[node] {
		out[i] = in.Address
	}
	return out, nil
}

var _ tmpl.Addresses = (*addresses)(nil)
