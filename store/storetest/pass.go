package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/occopus-go/occopus/store"
)

func normPass(p store.PassStatus) store.PassStatus {
	p.At = normTime(p.At)
	return p
}

// readBoth reads infrastructure id with Infra and from Infras, fails if
// the two differ, and returns it.
func readBoth(t *testing.T, s store.Store, id string) store.Infra {
	t.Helper()
	one, err := s.Infra(t.Context(), id)
	must(t, err)
	list, err := s.Infras(t.Context())
	must(t, err)
	for _, in := range list {
		if in.ID == id {
			equal(t, "Infras and Infra", in, one, normInfra)
			return one
		}
	}
	t.Fatalf("Infras does not list %s", id)
	return one
}

func testPassStatus(t *testing.T, s store.Store) {
	ctx := t.Context()
	wantErr(t, s.SetPassStatus(ctx, "nope", store.PassStatus{Result: store.PassOK, At: t0}), store.ErrNotFound)

	// CreateInfra ignores a LastPass it is given.
	given := infra("x", t0)
	given.LastPass = store.PassStatus{Result: store.PassError, Error: "given", At: t1, Failures: 2}
	must(t, s.CreateInfra(ctx, given))
	must(t, s.CreateInfra(ctx, infra("y", t1)))
	if got := readBoth(t, s, "x"); got.LastPass != (store.PassStatus{}) {
		t.Fatalf("new infra has LastPass %+v, want none", got.LastPass)
	}
	before := readBoth(t, s, "x")

	// Each status replaces the one before, whole; nothing else changes.
	for _, ps := range []store.PassStatus{
		{Result: store.PassRequeue, At: t0, Failures: 1},
		{Result: store.PassError, Error: "ec2 i-1: RequestLimitExceeded: slow down", At: t1, Failures: 2},
		{Result: store.PassTerminal, Error: "node web: no backend \"occi\"", At: t2, Failures: 3},
		{Result: store.PassPanic, Error: "panic: runtime error: index out of range [3] with length 3\n\ngoroutine 7 [running]:", At: t2.Add(1), Failures: 4},
		{Result: store.PassOK, At: t2.Add(2)}, // clears Error and Failures
		{Result: store.PassError, Error: "ünïcödé ✓ 😀", At: t0.In(time.UTC), Failures: 1},
	} {
		t.Run(ps.Result, func(t *testing.T) {
			must(t, s.SetPassStatus(ctx, "x", ps))
			got := readBoth(t, s, "x")
			equal(t, "LastPass", got.LastPass, ps, normPass)
			got.LastPass = store.PassStatus{}
			equal(t, "the rest of the infra", got, before, normInfra)
		})
	}
	if y := readBoth(t, s, "y"); y.LastPass != (store.PassStatus{}) {
		t.Fatalf("y got LastPass %+v", y.LastPass)
	}

	// A zero At is the current time.
	start := time.Now()
	must(t, s.SetPassStatus(ctx, "x", store.PassStatus{Result: store.PassOK}))
	if at := readBoth(t, s, "x").LastPass.At; at.Before(start.Add(-time.Second)) || at.After(time.Now().Add(time.Second)) {
		t.Fatalf("stamped At %v, want about now", at)
	}

	// Error is cut to MaxPassError bytes at a rune boundary, with "…";
	// one of exactly MaxPassError bytes is kept whole.
	for _, tc := range []struct {
		name string
		err  string
		cut  bool
	}{
		{"exactly the bound", strings.Repeat("e", store.MaxPassError), false},
		{"one byte over", strings.Repeat("e", store.MaxPassError+1), true},
		{"2-byte runes", strings.Repeat("é", store.MaxPassError), true},
		{"4-byte runes, odd offset", "x" + strings.Repeat("😀", store.MaxPassError/4), true},
		{"1 MB", strings.Repeat("0123456789", 100_000), true},
	} {
		t.Run("cut "+tc.name, func(t *testing.T) {
			must(t, s.SetPassStatus(ctx, "x", store.PassStatus{Result: store.PassError, Error: tc.err, At: t1, Failures: 1}))
			got := readBoth(t, s, "x").LastPass.Error
			if !tc.cut {
				if got != tc.err {
					t.Fatalf("error of %d bytes stored as %d bytes", len(tc.err), len(got))
				}
				return
			}
			body, ok := strings.CutSuffix(got, "…")
			if !ok || len(got) > store.MaxPassError || len(got) < store.MaxPassError-utf8.UTFMax ||
				!utf8.ValidString(got) || !strings.HasPrefix(tc.err, body) {
				t.Fatalf("error of %d bytes stored as %d bytes (valid UTF-8 %v), ending %q",
					len(tc.err), len(got), utf8.ValidString(got), got[max(0, len(got)-12):])
			}
		})
	}

	// Refused statuses store nothing.
	must(t, s.SetPassStatus(ctx, "x", store.PassStatus{Result: store.PassRequeue, At: t2}))
	for _, bad := range []store.PassStatus{
		{At: t0},
		{Result: "done", At: t0},
		{Result: store.PassError, Failures: -1, At: t0},
		{Result: store.PassOK, Failures: 1, At: t0},
	} {
		if err := s.SetPassStatus(ctx, "x", bad); err == nil {
			t.Errorf("SetPassStatus accepted %+v", bad)
		}
	}
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	if err := s.SetPassStatus(canceled, "x", store.PassStatus{Result: store.PassOK, At: t0}); !errors.Is(err, context.Canceled) {
		t.Errorf("SetPassStatus with canceled context: %v", err)
	}
	equal(t, "LastPass after refusals", readBoth(t, s, "x").LastPass,
		store.PassStatus{Result: store.PassRequeue, At: t2}, normPass)

	// UpdateInfra (a read-modify-write, or a new description whose
	// LastPass is zero) and UpdateTargets keep it.
	want := store.PassStatus{Result: store.PassTerminal, Error: "credentials: none for ec2 endpoint", At: t2, Failures: 5}
	must(t, s.SetPassStatus(ctx, "x", want))
	in := readBoth(t, s, "x")
	in.Attached = true
	in.LastPass = store.PassStatus{Result: store.PassOK, At: t0}
	must(t, s.UpdateInfra(ctx, in))
	fresh := infra("x", t0)
	fresh.Description = json.RawMessage(`{"v":2}`)
	must(t, s.UpdateInfra(ctx, fresh))
	must(t, s.UpdateTargets(ctx, "x", map[string]int{"n": 4}, nil))
	got := readBoth(t, s, "x")
	equal(t, "LastPass after updates", got.LastPass, want, normPass)
	if string(got.Description) != `{"v":2}` || got.Targets["n"] != 4 {
		t.Fatalf("updates lost: %+v", got)
	}

	// It goes with the infrastructure.
	must(t, s.DeleteInfra(ctx, "x"))
	wantErr(t, s.SetPassStatus(ctx, "x", want), store.ErrNotFound)
	if _, err := s.Infra(ctx, "x"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("SetPassStatus on a deleted infra made a record: %v", err)
	}
	must(t, s.CreateInfra(ctx, infra("x", t1)))
	if got := readBoth(t, s, "x"); got.LastPass != (store.PassStatus{}) {
		t.Fatalf("recreated infra inherits LastPass %+v", got.LastPass)
	}
}

// testPassStatusAtomic: readers beside writers see one status or another,
// never parts of two.
func testPassStatusAtomic(t *testing.T, s store.Store) {
	ctx := t.Context()
	must(t, s.CreateInfra(ctx, infra("x", t0)))
	status := func(k int) store.PassStatus {
		return store.PassStatus{Result: store.PassError, Error: fmt.Sprintf("failure %d", k),
			At: t0.Add(time.Duration(k) * time.Second), Failures: k}
	}
	must(t, s.SetPassStatus(ctx, "x", status(1)))
	const writers, each, readers = 4, 25, 4
	var wg sync.WaitGroup
	stop := make(chan struct{})
	errs := make(chan error, writers+readers)
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				if err := s.SetPassStatus(ctx, "x", status(2+w*each+i)); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	var rg sync.WaitGroup
	for range readers {
		rg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				in, err := s.Infra(ctx, "x")
				if err != nil {
					errs <- err
					return
				}
				k := in.LastPass.Failures
				if want := status(k); in.LastPass.Error != want.Error || !in.LastPass.At.Equal(want.At) {
					errs <- fmt.Errorf("torn status: %+v", in.LastPass)
					return
				}
			}
		})
	}
	wg.Wait()
	close(stop)
	rg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func testNotify(t *testing.T, s store.Store) {
	ctx := t.Context()
	props := json.RawMessage(`{ "webhook": "http://127.0.0.1:9/hook", "order" : [2, 1, null] }`)
	wantErr(t, s.SetNotify(ctx, "nope", props), store.ErrNotFound)
	wantErr(t, s.SetNotify(ctx, "nope", nil), store.ErrNotFound)

	// CreateInfra ignores a Notify it is given.
	given := infra("x", t0)
	given.Notify = json.RawMessage(`{"webhook":"http://127.0.0.1:9/given"}`)
	must(t, s.CreateInfra(ctx, given))
	must(t, s.CreateInfra(ctx, infra("y", t0)))
	before := readBoth(t, s, "x")
	if before.Notify != nil {
		t.Fatalf("new infra has Notify %s, want none", before.Notify)
	}

	// Stored byte for byte, nothing else changes (UpdatedAt neither).
	must(t, s.SetNotify(ctx, "x", props))
	got := readBoth(t, s, "x")
	if string(got.Notify) != string(props) {
		t.Fatalf("Notify %s, want %s", got.Notify, props)
	}
	got.Notify = nil
	equal(t, "the rest of the infra", got, before, normInfra)
	if y := readBoth(t, s, "y"); y.Notify != nil {
		t.Fatalf("y got Notify %s", y.Notify)
	}

	// Each way of clearing it, and setting again after each.
	for _, clear := range []json.RawMessage{nil, {}, json.RawMessage(`null`), json.RawMessage(" null\n")} {
		must(t, s.SetNotify(ctx, "x", props))
		must(t, s.SetNotify(ctx, "x", clear))
		if got := readBoth(t, s, "x"); got.Notify != nil {
			t.Fatalf("SetNotify(%q) left %s", clear, got.Notify)
		}
	}
	// A JSON document other than an object is the caller's business.
	for _, v := range []string{`{}`, `[]`, `"x"`, `0`} {
		must(t, s.SetNotify(ctx, "x", json.RawMessage(v)))
		if got := readBoth(t, s, "x").Notify; string(got) != v {
			t.Fatalf("SetNotify(%s) read back %s", v, got)
		}
	}

	// The bound: MaxNotify bytes pass, one more is ErrTooLarge; refused
	// and invalid values store nothing.
	sized := func(n int) json.RawMessage { // {"p":"aaa…"} of n bytes
		return json.RawMessage(`{"p":"` + strings.Repeat("a", n-len(`{"p":""}`)) + `"}`)
	}
	must(t, s.SetNotify(ctx, "x", sized(store.MaxNotify)))
	if got := readBoth(t, s, "x").Notify; len(got) != store.MaxNotify {
		t.Fatalf("Notify of %d bytes read back as %d", store.MaxNotify, len(got))
	}
	must(t, s.SetNotify(ctx, "x", props))
	for _, tc := range []struct {
		name  string
		v     json.RawMessage
		large bool
	}{
		{"one byte over", sized(store.MaxNotify + 1), true},
		{"1 MB", sized(1 << 20), true},
		{"1 MB, not JSON", json.RawMessage(strings.Repeat("{", 1<<20)), true},
		{"not JSON", json.RawMessage(`{"webhook":`), false},
		{"two documents", json.RawMessage(`{} {}`), false},
	} {
		err := s.SetNotify(ctx, "x", tc.v)
		if err == nil || errors.Is(err, store.ErrTooLarge) != tc.large {
			t.Errorf("SetNotify(%s): %v, want an error (ErrTooLarge: %v)", tc.name, err, tc.large)
		}
	}
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	if err := s.SetNotify(canceled, "x", nil); !errors.Is(err, context.Canceled) {
		t.Errorf("SetNotify with canceled context: %v", err)
	}
	if got := readBoth(t, s, "x").Notify; string(got) != string(props) {
		t.Fatalf("refused SetNotify changed Notify to %.40s", got)
	}

	// UpdateInfra and UpdateTargets keep it.
	in := readBoth(t, s, "x")
	in.Notify = json.RawMessage(`{"webhook":"http://127.0.0.1:9/other"}`)
	in.Name = "renamed"
	must(t, s.UpdateInfra(ctx, in))
	must(t, s.UpdateInfra(ctx, infra("x", t0)))
	must(t, s.UpdateTargets(ctx, "x", map[string]int{"n": 2}, nil))
	if got := readBoth(t, s, "x"); string(got.Notify) != string(props) || got.Targets["n"] != 2 {
		t.Fatalf("after updates: Notify %s, targets %v", got.Notify, got.Targets)
	}

	// It goes with the infrastructure.
	must(t, s.DeleteInfra(ctx, "x"))
	wantErr(t, s.SetNotify(ctx, "x", props), store.ErrNotFound)
	if _, err := s.Infra(ctx, "x"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("SetNotify on a deleted infra made a record: %v", err)
	}
	must(t, s.CreateInfra(ctx, infra("x", t1)))
	if got := readBoth(t, s, "x"); got.Notify != nil {
		t.Fatalf("recreated infra inherits Notify %s", got.Notify)
	}
}
