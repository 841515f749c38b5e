package occopus

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/occopus-go/occopus/store"
)

// collectEvents reads the log of an infrastructure to its end.
func collectEvents(t *testing.T, m *Manager, opt FollowOptions) []store.Event {
	t.Helper()
	opt.NoWait = true
	var out []store.Event
	if err := m.Follow(t.Context(), opt, func(ev store.Event) error { out = append(out, ev); return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}

func kinds(evs []store.Event) string {
	var k []string
	for _, ev := range evs {
		k = append(k, ev.Kind)
	}
	return strings.Join(k, " ")
}

// TestFollowFilterResumeAndRecordedKinds: the feed of one infrastructure
// holds its state changes, its scale requests and its pass results and
// nothing of another; resuming after an event's Seq gives exactly the
// events after it; a pass that repeats the last outcome adds nothing.
func TestFollowFilterResumeAndRecordedKinds(t *testing.T) {
	dir := t.TempDir()
	m := newManager(t, filepath.Join(dir, "db"), dir)
	a, b := submitHello(t, m), submitHello(t, m)
	for range 3 {
		if _, err := m.Maintain(t.Context(), a); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := m.Maintain(t.Context(), b); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Scale(t.Context(), ScaleRequest{InfraID: a, Node: "hello", Change: 9}); err != nil {
		t.Fatal(err)
	}
	evs := collectEvents(t, m, FollowOptions{InfraID: a})
	var scale, pass []store.Event
	for i, ev := range evs {
		if ev.InfraID != a {
			t.Errorf("event %d of infrastructure %s in the feed of %s", ev.Seq, ev.InfraID, a)
		}
		if i > 0 && ev.Seq <= evs[i-1].Seq {
			t.Errorf("seq %d after %d", ev.Seq, evs[i-1].Seq)
		}
		switch ev.Kind {
		case KindScale:
			scale = append(scale, ev)
		case KindPass:
			pass = append(pass, ev)
		}
	}
	for _, want := range []string{"infra.created", "instance.state", KindPass, KindScale} {
		if !strings.Contains(kinds(evs), want) {
			t.Errorf("no %s event in %s", want, kinds(evs))
		}
	}
	if len(scale) != 1 || scale[0].NodeName != "hello" || !strings.Contains(scale[0].Message, "scale up by 9: target 4 (min 2, max 4)") ||
		!strings.Contains(scale[0].Message, "max") {
		t.Errorf("scale events %+v", scale)
	}
	if len(pass) == 0 || pass[0].From != "" {
		t.Fatalf("pass events %+v", pass)
	}
	for i := 1; i < len(pass); i++ {
		if pass[i].To == pass[i-1].To && pass[i].Message == pass[i-1].Message {
			t.Errorf("pass event %d repeats the outcome before it: %+v", i, pass[i])
		}
		if pass[i].From != pass[i-1].To {
			t.Errorf("pass event %d from %q, the one before ended %q", i, pass[i].From, pass[i-1].To)
		}
	}
	if len(pass) >= 3 {
		t.Errorf("%d pass events for 3 passes that end alike after the first: %+v", len(pass), pass)
	}
	mid := len(evs) / 2
	rest := collectEvents(t, m, FollowOptions{InfraID: a, After: evs[mid].Seq})
	if len(rest) != len(evs)-mid-1 || rest[0].Seq != evs[mid+1].Seq {
		t.Errorf("resumed after %d: %d events from %d, want %d from %d", evs[mid].Seq, len(rest), rest[0].Seq, len(evs)-mid-1, evs[mid+1].Seq)
	}
	all := collectEvents(t, m, FollowOptions{})
	if len(all) <= len(evs) {
		t.Errorf("the whole log has %d events, the feed of one infrastructure %d", len(all), len(evs))
	}
	back := collectEvents(t, m, FollowOptions{InfraID: a, After: -1, Backlog: 3})
	if len(back) != 3 || back[2].Seq != evs[len(evs)-1].Seq {
		t.Errorf("backlog 3: %+v", back)
	}
	if err := m.Follow(t.Context(), FollowOptions{InfraID: "no-such-infra"}, func(store.Event) error { return nil }); !errors.Is(err, ErrUnknownInfra) {
		t.Errorf("unknown infrastructure: %v, want ErrUnknownInfra", err)
	}
	if err := m.Follow(t.Context(), FollowOptions{Backlog: MaxBacklog + 1}, func(store.Event) error { return nil }); !errors.Is(err, ErrInvalid) {
		t.Errorf("backlog over the bound: %v, want ErrInvalid", err)
	}
}

// follow runs Follow from the end of the log in the background and hands
// over each event.
func follow(t *testing.T, m *Manager, opt FollowOptions) <-chan store.Event {
	t.Helper()
	ch := make(chan store.Event, 100)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done })
	opt.After = -1
	go func() {
		defer close(done)
		m.Follow(ctx, opt, func(ev store.Event) error {
			select {
			case ch <- ev:
			case <-ctx.Done():
			}
			return nil
		})
	}()
	return ch
}

// TestFollowWakesAndPolls: a follower of this Manager is woken by its
// events (the poll interval is an hour, so only the wake-up can deliver
// them); a follower in another Manager on the same store (another
// process) finds them by polling.
func TestFollowWakesAndPolls(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "db")
	m := newManager(t, db, dir)
	other := newManager(t, db, dir)
	id := submitHello(t, m)
	woken := follow(t, m, FollowOptions{InfraID: id, Poll: time.Hour})
	polled := follow(t, other, FollowOptions{InfraID: id, Poll: 10 * time.Millisecond})
	// Follow subscribes before it looks for the end: a request made now
	// may come before or after that, so ask until one arrives.
	if _, err := m.Scale(t.Context(), ScaleRequest{InfraID: id, Node: "hello", Change: 1}); err != nil {
		t.Fatal(err)
	}
	ev := waitKindOrAsk(t, woken, KindScale, func() {
		if _, err := m.Scale(t.Context(), ScaleRequest{InfraID: id, Node: "hello", Change: 1}); err != nil {
			t.Fatal(err)
		}
	})
	if ev.InfraID != id || ev.Seq == 0 {
		t.Errorf("woken follower got %+v", ev)
	}
	// The polling follower may have found the end of the log after the
	// request above: ask again while it is quiet.
	waitKindOrAsk(t, polled, KindScale, func() {
		if _, err := m.Scale(t.Context(), ScaleRequest{InfraID: id, Node: "hello", Change: 1}); err != nil {
			t.Fatal(err)
		}
	})
}

// waitKindOrAsk waits for an event of kind, calling ask again whenever
// the feed has been quiet for a while (the first ask may precede the
// follower's start).
func waitKindOrAsk(t *testing.T, ch <-chan store.Event, kind string, ask func()) store.Event {
	t.Helper()
	for range 60 {
		select {
		case ev := <-ch:
			if ev.Kind == kind {
				return ev
			}
		case <-time.After(500 * time.Millisecond):
			ask()
		}
	}
	t.Fatalf("no %s event", kind)
	return store.Event{}
}

// TestFollowerNeverBlocksTheEngine: a follower that takes no event at all
// does not stop passes and requests from completing (were the engine to
// wait for it, this test would hang until its timeout).
func TestFollowerNeverBlocksTheEngine(t *testing.T) {
	dir := t.TempDir()
	m := newManager(t, filepath.Join(dir, "db"), dir)
	id := submitHello(t, m)
	stuck := make(chan struct{})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		m.Follow(ctx, FollowOptions{InfraID: id}, func(store.Event) error { <-stuck; return nil })
	}()
	for range 3 {
		if _, err := m.Maintain(t.Context(), id); err != nil {
			t.Fatal(err)
		}
	}
	for range 50 {
		if _, err := m.Scale(t.Context(), ScaleRequest{InfraID: id, Node: "hello", Change: 1}); err != nil {
			t.Fatal(err)
		}
	}
	n := len(collectEvents(t, m, FollowOptions{InfraID: id}))
	if n < 50 {
		t.Errorf("%d events logged, want at least the 50 requests", n)
	}
	close(stuck)
	cancel()
	<-done
}
