package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/occopus-go/occopus/resource"
)

// metered times every backend call for Options.OnBackendCall. Optional
// capabilities (Lister, Finder, Sweeper) are reached through asLister,
// asFinder and asSweeper, which look at the wrapped handler, so the
// wrapper does not claim any it lacks.
type metered struct {
	h   resource.Handler
	typ string
	obs func(backend, op string, d time.Duration, err error)
}

func (m *metered) observe(op string, start time.Time, err error) {
	m.obs(m.typ, op, time.Since(start), err)
}

// gate refuses a call once ctx has ended: a pass whose lease was lost
// (occopus.ErrLeaseLost cancels its context) must not make another
// backend call, whether or not the backend's client checks ctx first.
func gate(ctx context.Context, op string) error {
	if ctx.Err() != nil {
		return fmt.Errorf("backend %s not called: %w", op, context.Cause(ctx))
	}
	return nil
}

func (m *metered) Create(ctx context.Context, spec resource.Spec) (hd resource.Handle, err error) {
	defer func(start time.Time) { m.observe("create", start, err) }(time.Now())
	if err := gate(ctx, "create"); err != nil {
		return resource.Handle{}, err
	}
	return m.h.Create(ctx, spec)
}

func (m *metered) Destroy(ctx context.Context, hd resource.Handle) (err error) {
	defer func(start time.Time) { m.observe("destroy", start, err) }(time.Now())
	if err := gate(ctx, "destroy"); err != nil {
		return err
	}
	return m.h.Destroy(ctx, hd)
}

func (m *metered) State(ctx context.Context, hd resource.Handle) (st resource.State, err error) {
	defer func(start time.Time) { m.observe("state", start, notFoundIsNoError(err)) }(time.Now())
	if err := gate(ctx, "state"); err != nil {
		return "", err
	}
	return m.h.State(ctx, hd)
}

func (m *metered) Addresses(ctx context.Context, hd resource.Handle) (a resource.Addresses, err error) {
	defer func(start time.Time) { m.observe("addresses", start, notFoundIsNoError(err)) }(time.Now())
	if err := gate(ctx, "addresses"); err != nil {
		return resource.Addresses{}, err
	}
	return m.h.Addresses(ctx, hd)
}

// A vanished instance is an answer, not a failing backend.
func notFoundIsNoError(err error) error {
	if errors.Is(err, resource.ErrNotFound) {
		return nil
	}
	return err
}

type meteredFinder struct {
	f resource.Finder
	m *metered
}

func (f meteredFinder) Find(ctx context.Context, infraID, nodeID string) (hd resource.Handle, ok bool, err error) {
	defer func(start time.Time) { f.m.observe("find", start, err) }(time.Now())
	return f.f.Find(ctx, infraID, nodeID)
}

type meteredLister struct {
	l resource.Lister
	m *metered
}

func (l meteredLister) List(ctx context.Context, infraID string) (out []resource.Owned, err error) {
	defer func(start time.Time) { l.m.observe("list", start, err) }(time.Now())
	return l.l.List(ctx, infraID)
}

type meteredSweeper struct {
	s resource.Sweeper
	m *metered
}

func (s meteredSweeper) ListAll(ctx context.Context) (out []resource.Owned, err error) {
	defer func(start time.Time) { s.m.observe("list_all", start, err) }(time.Now())
	return s.s.ListAll(ctx)
}

func asSweeper(h resource.Handler) (resource.Sweeper, bool) {
	if m, ok := h.(*metered); ok {
		s, ok := m.h.(resource.Sweeper)
		if !ok {
			return nil, false
		}
		return meteredSweeper{s: s, m: m}, true
	}
	s, ok := h.(resource.Sweeper)
	return s, ok
}

func asFinder(h resource.Handler) (resource.Finder, bool) {
	if m, ok := h.(*metered); ok {
		f, ok := m.h.(resource.Finder)
		if !ok {
			return nil, false
		}
		return meteredFinder{f: f, m: m}, true
	}
	f, ok := h.(resource.Finder)
	return f, ok
}

func asLister(h resource.Handler) (resource.Lister, bool) {
	if m, ok := h.(*metered); ok {
		l, ok := m.h.(resource.Lister)
		if !ok {
			return nil, false
		}
		return meteredLister{l: l, m: m}, true
	}
	l, ok := h.(resource.Lister)
	return l, ok
}

var _ resource.Handler = (*metered)(nil)

// nearby reports whether h (maybe metered) is a resource.Nearby handler
// that says so.
func nearby(h resource.Handler) bool {
	if m, ok := h.(*metered); ok {
		h = m.h
	}
	n, ok := h.(resource.Nearby)
	return ok && n.Nearby()
}

type meteredLabeller struct {
	l resource.Labeller
	m *metered
}

func (l meteredLabeller) Label(ctx context.Context, hd resource.Handle, spec resource.Spec) (err error) {
	defer func(start time.Time) { l.m.observe("label", start, err) }(time.Now())
	return l.l.Label(ctx, hd, spec)
}

func asLabeller(h resource.Handler) (resource.Labeller, bool) {
	if m, ok := h.(*metered); ok {
		l, ok := m.h.(resource.Labeller)
		if !ok {
			return nil, false
		}
		return meteredLabeller{l: l, m: m}, true
	}
	l, ok := h.(resource.Labeller)
	return l, ok
}
