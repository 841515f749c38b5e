package store

import (
	"context"
	"errors"
)

// ErrFenced is returned (wrapped) by a write made under a Fence whose
// lease the writer no longer holds: another process took the work over,
// and the write was refused so that a stale owner cannot undo the new
// one's work.
var ErrFenced = errors.New("write fenced: the lease it was made under is no longer held")

// ErrLeaseLost is the cause a context's cancellation carries when the
// lease its work was done under ended (occopus.ErrLeaseLost is it). Work
// seeing it stops at once, and skips even the writes it would make on a
// context without cancel (recording events and outcomes): they would be
// fenced anyway, and with the store out of reach they would wait.
var ErrLeaseLost = errors.New("the lease on the infrastructure was lost")

// LeaseLost reports whether ctx ended because its lease was lost.
func LeaseLost(ctx context.Context) bool { return errors.Is(context.Cause(ctx), ErrLeaseLost) }

// Fence ties the writes made with a context to a lease (store.Leaser):
// a store that supports fencing (etcd, sqlite, redis) makes each write
// conditional on Owner still holding Key, in the same transaction as the
// write, and refuses it with ErrFenced otherwise. Stores that cannot
// lease ignore it.
type Fence struct {
	Key, Owner string
}

type fenceKey struct{}

// WithFence returns ctx carrying f; every store write made with it (or a
// context derived from it) is fenced.
func WithFence(ctx context.Context, f Fence) context.Context {
	return context.WithValue(ctx, fenceKey{}, f)
}

// FenceFrom returns the fence ctx carries, if any.
func FenceFrom(ctx context.Context) (Fence, bool) {
	f, ok := ctx.Value(fenceKey{}).(Fence)
	return f, ok && f.Key != "" && f.Owner != ""
}

// WithoutCancelUnlessLost is context.WithoutCancel for the writes work
// makes after its context ended (recording the outcome, an event), except
// that it does end, with the same cause, when ctx ended because its lease
// was lost: such a write would be fenced, and must not wait on a store out
// of reach past the lease. Call cancel when done.
func WithoutCancelUnlessLost(ctx context.Context) (context.Context, context.CancelFunc) {
	out, cancel := context.WithCancelCause(context.WithoutCancel(ctx))
	stop := context.AfterFunc(ctx, func() {
		if LeaseLost(ctx) {
			cancel(context.Cause(ctx))
		}
	})
	return out, func() { stop(); cancel(nil) }
}
