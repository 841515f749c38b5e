package engine

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/occopus-go/occopus/resource"
)

// countingHandler counts the calls that reach it.
type countingHandler struct{ calls int }

func (c *countingHandler) Create(context.Context, resource.Spec) (resource.Handle, error) {
	c.calls++
	return resource.Handle{ID: "x"}, nil
}
func (c *countingHandler) Destroy(context.Context, resource.Handle) error { c.calls++; return nil }
func (c *countingHandler) State(context.Context, resource.Handle) (resource.State, error) {
	c.calls++
	return resource.StateRunning, nil
}
func (c *countingHandler) Addresses(context.Context, resource.Handle) (resource.Addresses, error) {
	c.calls++
	return resource.Addresses{}, nil
}

// TestGateAfterCancel: once a pass's context ended (a lost lease cancels
// it with its cause), no backend call goes out, and the error carries the
// cause.
func TestGateAfterCancel(t *testing.T) {
	lost := errors.New("lease lost")
	calls := map[string]func(ctx context.Context, m *metered) error{
		"create":    func(ctx context.Context, m *metered) error { _, err := m.Create(ctx, resource.Spec{}); return err },
		"destroy":   func(ctx context.Context, m *metered) error { return m.Destroy(ctx, resource.Handle{}) },
		"state":     func(ctx context.Context, m *metered) error { _, err := m.State(ctx, resource.Handle{}); return err },
		"addresses": func(ctx context.Context, m *metered) error { _, err := m.Addresses(ctx, resource.Handle{}); return err },
	}
	for name, call := range calls {
		t.Run(name, func(t *testing.T) {
			h := &countingHandler{}
			m := &metered{h: h, typ: "t", obs: func(string, string, time.Duration, error) {}}
			if err := call(t.Context(), m); err != nil || h.calls != 1 {
				t.Fatalf("live context: %v, %d calls", err, h.calls)
			}
			ctx, cancel := context.WithCancelCause(t.Context())
			cancel(lost)
			if err := call(ctx, m); !errors.Is(err, lost) {
				t.Fatalf("ended context: %v, want the cause", err)
			}
			if h.calls != 1 {
				t.Fatalf("%d calls reached the backend after the context ended", h.calls-1)
			}
		})
	}
}
