package engine

import (
	"errors"
	"fmt"
	"runtime/debug"

	"github.com/occopus-go/occopus/store"
)

// ErrTerminal marks an error that no retry can mend: the stored
// description does not decode, a resource type has no backend in this
// build, a backend cannot be configured from its section or credentials
// (constructors do not contact their backend, so their refusal is about
// the description or the configuration). Nothing will change until one of
// those does; test with errors.Is(err, ErrTerminal).
var ErrTerminal = errors.New("terminal")

// ErrPanic marks a panic of a pass, a backend call or a probe, recovered
// into an error.
var ErrPanic = errors.New("panic")

type terminal struct{ err error }

func (t *terminal) Error() string        { return t.err.Error() }
func (t *terminal) Unwrap() error        { return t.err }
func (t *terminal) Is(target error) bool { return target == ErrTerminal }

// Terminal marks err as terminal (nil stays nil).
func Terminal(err error) error {
	if err == nil || errors.Is(err, ErrTerminal) {
		return err
	}
	return &terminal{err: err}
}

// allTerminal marks the join of errs terminal when every one of them is:
// a node none of whose implementations can ever be created.
func allTerminal(errs []error) bool {
	for _, err := range errs {
		if !errors.Is(err, ErrTerminal) {
			return false
		}
	}
	return len(errs) > 0
}

type panicked struct {
	v     any
	stack []byte
}

func (p *panicked) Error() string        { return fmt.Sprintf("panic: %v", p.v) }
func (p *panicked) Is(target error) bool { return target == ErrPanic }

// Stack is where the panic happened, for the log.
func (p *panicked) Stack() []byte { return p.stack }

// Recovered turns a recovered value into an error wrapping ErrPanic, nil
// for nil: `defer func() { if err == nil { err = Recovered(recover()) } }()`
// cannot be written, so callers write `if v := recover(); v != nil`.
func Recovered(v any) error {
	if v == nil {
		return nil
	}
	return &panicked{v: v, stack: debug.Stack()}
}

// IsTerminal reports whether every cause of err is terminal: a pass that
// failed on one node for good and on another for now may succeed later.
func IsTerminal(err error) bool {
	switch e := err.(type) {
	case nil:
		return false
	case *terminal:
		return true
	case interface{ Unwrap() []error }:
		errs := e.Unwrap()
		for _, c := range errs {
			if !IsTerminal(c) {
				return false
			}
		}
		return len(errs) > 0
	}
	return IsTerminal(errors.Unwrap(err))
}

// Pass outcomes (controller-runtime's reconcile results, Nomad's
// allocation statuses): what the maintenance loop does next.
const (
	OutcomeOK       = store.PassOK       // done: look again after the interval
	OutcomeRequeue  = store.PassRequeue  // instances still starting: look again soon
	OutcomeError    = store.PassError    // retry with per-infrastructure backoff
	OutcomeTerminal = store.PassTerminal // nothing changes until the description or configuration does
	OutcomePanic    = store.PassPanic    // recovered, counted, retried like an error
)

// Outcome classifies a pass by its result and error.
func Outcome(res *PassResult, err error) string {
	switch {
	case err == nil && res != nil && !res.Complete:
		return OutcomeRequeue
	case err == nil:
		return OutcomeOK
	case errors.Is(err, ErrPanic):
		return OutcomePanic
	case IsTerminal(err):
		return OutcomeTerminal
	}
	return OutcomeError
}
