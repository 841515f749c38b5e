package occopus

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/occopus-go/occopus/descr"
	_ "github.com/occopus-go/occopus/plugins/standard"
	"github.com/occopus-go/occopus/store"
	"github.com/occopus-go/occopus/store/sqlite"
)

func newManager(t *testing.T, path, home string) *Manager {
	t.Helper()
	st, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	m, err := New(Options{Store: st, Home: home, Interval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

const helloDefs = `'node_def:hello':
  - resource: {type: local}
    contextualisation: {type: docker, command: ["sleep", "3600"]}
    health_check: {ping: false}
`

func submitHello(t *testing.T, m *Manager) string {
	t.Helper()
	root, _ := descr.Parse("nodes.yaml", []byte(helloDefs), descr.LoadOptions{})
	defs, err := descr.DecodeNodeDefs("nodes.yaml", root)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.ImportNodeDefs(t.Context(), defs); err != nil {
		t.Fatal(err)
	}
	in, err := descr.ParseInfra("infra.yaml", []byte("infra_name: h\nnodes:\n  - {name: hello, type: hello, scaling: {min: 2, max: 4}}\n"), descr.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	id, err := m.Submit(t.Context(), in, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.TearDown(context.Background(), id) })
	return id
}

// TestLeaseOneMaintainerAtATime: two Managers (two processes, say) share a
// store; while one runs a pass the other's pass is refused with ErrBusy,
// and together they never make more instances than the target.
func TestLeaseOneMaintainerAtATime(t *testing.T) {
	dir := t.TempDir()
	a := newManager(t, filepath.Join(dir, "db"), dir)
	b := newManager(t, filepath.Join(dir, "db"), dir)
	id := submitHello(t, a)
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, m := range []*Manager{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = m.Maintain(t.Context(), id)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil && !errors.Is(err, ErrBusy) {
			t.Fatal(err)
		}
	}
	// A second round: whoever was refused now finds nothing to do.
	for _, m := range []*Manager{a, b} {
		if _, err := m.Maintain(t.Context(), id); err != nil {
			t.Fatal(err)
		}
	}
	ins, err := a.Store().Instances(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	if len(ins) != 2 {
		t.Fatalf("%d instances, want exactly the target 2 (no double creation)", len(ins))
	}
}

func TestAttachDetachResume(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "db")
	a := newManager(t, db, dir)
	id := submitHello(t, a)
	if err := a.Attach(t.Context(), id); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { ins, _ := a.Store().Instances(t.Context(), id); return countReady(ins) == 2 })
	if err := a.Detach(t.Context(), id); err != nil || a.Attached(id) {
		t.Fatalf("detach: %v, still attached %v", err, a.Attached(id))
	}
	if err := a.Attach(t.Context(), id); err != nil {
		t.Fatal(err)
	}
	a.Close()
	// A new Manager on the same store (a restarted service) resumes it.
	b := newManager(t, db, dir)
	ids, err := b.ResumeAttached(t.Context())
	if err != nil || len(ids) != 1 || ids[0] != id || !b.Attached(id) {
		t.Fatalf("resume: %v %v", ids, err)
	}
	if err := b.Attach(t.Context(), "no-such-id"); !errors.Is(err, ErrUnknownInfra) {
		t.Fatalf("attach unknown: %v", err)
	}
}

func TestScaleValidation(t *testing.T) {
	dir := t.TempDir()
	m := newManager(t, filepath.Join(dir, "db"), dir)
	id := submitHello(t, m)
	one, zero := 1, 0
	cases := []struct {
		req  ScaleRequest
		want error
	}{
		{ScaleRequest{InfraID: "nope", Node: "hello", Change: 1}, ErrUnknownInfra},
		{ScaleRequest{InfraID: id, Node: "nope", Change: 1}, ErrUnknownNode},
		{ScaleRequest{InfraID: id, Node: "hello", Victim: "10.9.9.9"}, ErrUnknownNode},
		{ScaleRequest{InfraID: id, Node: "hello"}, ErrInvalid},
		{ScaleRequest{InfraID: id, Node: "hello", Change: 1, Set: &one}, ErrInvalid},
		{ScaleRequest{InfraID: id, Node: "hello", Set: &zero}, ErrInvalid},
		{ScaleRequest{InfraID: id, Node: "hello", Change: 1}, nil},
	}
	for _, tc := range cases {
		_, err := m.Scale(t.Context(), tc.req)
		if !errors.Is(err, tc.want) && !(err == nil && tc.want == nil) {
			t.Errorf("%+v: err %v, want %v", tc.req, err, tc.want)
		}
	}
}

func countReady(ins []store.Instance) int {
	n := 0
	for _, in := range ins {
		if in.State == store.StateReady {
			n++
		}
	}
	return n
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestLeaseOfDeadProcessIsTakenOver: a lease left by a process killed on
// this host does not block the next maintainer until it expires.
func TestLeaseOfDeadProcessIsTakenOver(t *testing.T) {
	dir := t.TempDir()
	m := newManager(t, filepath.Join(dir, "db"), dir)
	id := submitHello(t, m)
	host, _ := os.Hostname()
	l := m.Store().(store.Leaser)
	if ok, err := l.Acquire(t.Context(), "infra:"+id, host+"/999999999/1/dead-manager", time.Hour); err != nil || !ok {
		t.Fatalf("plant lease: %v %v", ok, err)
	}
	start := time.Now()
	if _, err := m.Maintain(t.Context(), id); err != nil {
		t.Fatalf("maintain: %v", err)
	}
	if time.Since(start) > 5*time.Second {
		t.Fatalf("took %s: waited for the dead holder's lease", time.Since(start))
	}
	// A live holder (another Manager of this process) is respected.
	live := leaseOwner()
	if ok, _ := l.Acquire(t.Context(), "infra:"+id, live, time.Hour); !ok {
		t.Fatal("could not plant a live lease")
	}
	_, err := m.Maintain(t.Context(), id)
	l.Release(t.Context(), "infra:"+id, live)
	if !errors.Is(err, ErrBusy) {
		t.Fatalf("maintain under a live lease: %v, want ErrBusy", err)
	}
}
