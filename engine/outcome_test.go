package engine

import (
	"errors"
	"fmt"
	"testing"
)

func TestOutcome(t *testing.T) {
	term := Terminal(errors.New("resource type occi is not supported by this build"))
	other := errors.New("connection reset")
	cases := []struct {
		name string
		res  *PassResult
		err  error
		want string
	}{
		{"complete", &PassResult{Complete: true}, nil, OutcomeOK},
		{"no result", nil, nil, OutcomeOK},
		{"pending", &PassResult{}, nil, OutcomeRequeue},
		{"transient", nil, other, OutcomeError},
		{"terminal", nil, term, OutcomeTerminal},
		{"terminal wrapped", nil, fmt.Errorf("node a: %w", term), OutcomeTerminal},
		{"all terminal", nil, errors.Join(term, fmt.Errorf("node b: %w", Terminal(other))), OutcomeTerminal},
		{"mixed", nil, errors.Join(term, other), OutcomeError},
		{"mixed wrapped", nil, fmt.Errorf("pass: %w", errors.Join(fmt.Errorf("x: %w", term), other)), OutcomeError},
		{"panic", nil, errors.Join(Recovered("boom"), term), OutcomePanic},
		{"Terminal(nil)", nil, Terminal(nil), OutcomeOK},
	}
	for _, tc := range cases {
		if got := Outcome(tc.res, tc.err); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
	if !errors.Is(term, ErrTerminal) || errors.Unwrap(term).Error() != "resource type occi is not supported by this build" {
		t.Error("Terminal does not keep its cause")
	}
	if p := Recovered("boom"); !errors.Is(p, ErrPanic) || p.Error() != "panic: boom" || Recovered(nil) != nil {
		t.Errorf("Recovered: %v", p)
	}
}

// TestPanickingBackendFailsItsJob: a backend call that panics inside a
// concurrent job becomes that job's error.
func TestPanickingBackendFailsItsJob(t *testing.T) {
	err := limitN(2, []func() error{
		func() error { return nil },
		func() error { panic("backend bug") },
	})
	if !errors.Is(err, ErrPanic) || err.Error() != "panic: backend bug" {
		t.Fatalf("err %v", err)
	}
}

// TestTerminalOutcomes: a pass that can never succeed says so: a backend
// that cannot be configured from its section, a stored description that
// no longer decodes.
func TestTerminalOutcomes(t *testing.T) {
	w := newWorld(t, Options{})
	w.importDefs("'node_def:bad':\n  - resource: {type: fake, zone: misconfigured}\n    health_check: {ping: false}\n")
	id := w.submit("infra_name: t\nnodes:\n  - {name: a, type: bad}\n")
	res, err := w.eng.Reconcile(t.Context(), id)
	if got := Outcome(res, err); got != OutcomeTerminal {
		t.Fatalf("unconfigurable backend: outcome %s (%v), want terminal", got, err)
	}
	inf, _ := w.st.Infra(t.Context(), id)
	inf.Description = []byte(`{"infra_name": 3}`)
	if err := w.st.UpdateInfra(t.Context(), inf); err != nil {
		t.Fatal(err)
	}
	res, err = w.eng.Reconcile(t.Context(), id)
	if got := Outcome(res, err); got != OutcomeTerminal {
		t.Fatalf("undecodable description: outcome %s (%v), want terminal", got, err)
	}
}
