package occopus

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/occopus-go/occopus/descr"
	"github.com/occopus-go/occopus/resource"
	"github.com/occopus-go/occopus/store"
)

// brittle is a backend whose behaviour a test sets by zone: "broken"
// cannot be configured (terminal), "panics" panics in Create, "flaky"
// fails Create (retryable), anything else works.
type brittle struct{ zone string }

type brittleSettings struct {
	Zone string `occopus:"zone"`
}

var brittleCreated sync.Map // node id → true

func init() {
	resource.Register(resource.Plugin{Type: "brittle", Schema: descr.SchemaOf[brittleSettings](), New: func(cfg resource.Config) (resource.Handler, error) {
		var s brittleSettings
		if err := descr.Decode("resource", cfg.Resource, &s); err != nil {
			return nil, err
		}
		if s.Zone == "broken" {
			return nil, errors.New("brittle: zone broken cannot be configured")
		}
		return brittle{zone: s.Zone}, nil
	}})
}

func (b brittle) Create(_ context.Context, s resource.Spec) (resource.Handle, error) {
	switch b.zone {
	case "panics":
		panic("brittle: a bug in the backend")
	case "flaky":
		return resource.Handle{}, errors.New("brittle: try again later")
	}
	brittleCreated.Store(s.NodeID, true)
	return resource.Handle{ID: s.NodeID}, nil
}

func (brittle) Destroy(_ context.Context, h resource.Handle) error {
	brittleCreated.Delete(h.ID)
	return nil
}

func (brittle) State(_ context.Context, h resource.Handle) (resource.State, error) {
	if _, ok := brittleCreated.Load(h.ID); !ok {
		return resource.StateUnknown, resource.ErrNotFound
	}
	return resource.StateRunning, nil
}

func (brittle) Addresses(context.Context, resource.Handle) (resource.Addresses, error) {
	return resource.Addresses{Public: "127.0.0.1"}, nil
}

func brittleInfra(t *testing.T, m *Manager, zone string) string {
	t.Helper()
	root, _ := descr.Parse("nodes.yaml", []byte("'node_def:b_"+zone+"':\n  - resource: {type: brittle, zone: "+zone+"}\n    health_check: {ping: false}\n"), descr.LoadOptions{})
	defs, err := descr.DecodeNodeDefs("nodes.yaml", root)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.ImportNodeDefs(t.Context(), defs); err != nil {
		t.Fatal(err)
	}
	in, err := descr.ParseInfra("infra.yaml", []byte("infra_name: b\nnodes:\n  - {name: a, type: b_"+zone+"}\n"), descr.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	id, err := m.Submit(t.Context(), in, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.ForceTearDown(context.Background(), id) })
	return id
}

// TestPassOutcomesRecorded: every pass stores its outcome and error, and
// counts the failures in a row; a panic in a backend is one of them, not
// the end of the process.
func TestPassOutcomesRecorded(t *testing.T) {
	dir := t.TempDir()
	m := newManager(t, filepath.Join(dir, "db"), dir)
	cases := []struct {
		zone, want, msg string
		failures        int
	}{
		{"broken", store.PassTerminal, "zone broken cannot be configured", 2},
		{"flaky", store.PassError, "try again later", 2},
		{"panics", store.PassPanic, "panic: brittle: a bug in the backend", 2},
		{"fine", store.PassOK, "", 0},
	}
	for _, tc := range cases {
		t.Run(tc.zone, func(t *testing.T) {
			id := brittleInfra(t, m, tc.zone)
			for range 2 {
				m.Maintain(t.Context(), id)
			}
			inf, err := m.opt.Store.Infra(t.Context(), id)
			if err != nil {
				t.Fatal(err)
			}
			lp := inf.LastPass
			if lp.Result != tc.want || lp.Failures != tc.failures || (tc.msg == "") != (lp.Error == "") || tc.msg != "" && !strings.Contains(lp.Error, tc.msg) || lp.At.IsZero() {
				t.Fatalf("last pass %+v, want %s with %q after %d failures", lp, tc.want, tc.msg, tc.failures)
			}
		})
	}
}

// TestTerminalStopsTheLoop: an attached infrastructure that can never be
// built is not retried every interval; a new description starts it again.
func TestTerminalStopsTheLoop(t *testing.T) {
	dir := t.TempDir()
	m := newManager(t, filepath.Join(dir, "db"), dir) // interval 50 ms
	var passes atomic.Int32
	id := brittleInfra(t, m, "broken")
	m.Subscribe(Observer{Pass: func(pid string, _ time.Duration, _ *PassResult, _ error) {
		if pid == id {
			passes.Add(1)
		}
	}})
	if err := m.Attach(t.Context(), id); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, func() bool { return passes.Load() >= 1 })
	quiet := passes.Load()
	// Ten intervals: a retrying loop would have run about ten passes.
	time.Sleep(10 * m.opt.Interval)
	if n := passes.Load(); n != quiet {
		t.Fatalf("%d more passes after a terminal failure, want none", n-quiet)
	}
	// A corrected description (build -i) is maintained again.
	brittleInfra(t, m, "fine") // imports b_fine
	in, _ := descr.ParseInfra("infra.yaml", []byte("infra_name: b\nnodes:\n  - {name: a, type: b_fine}\n"), descr.LoadOptions{})
	if err := m.eng.Update(t.Context(), id, in); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, func() bool {
		inf, _ := m.opt.Store.Infra(t.Context(), id)
		return inf.LastPass.Result == store.PassOK
	})
}

func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestBackoff(t *testing.T) {
	m := &Manager{opt: Options{Interval: 10 * time.Second}}
	prev := time.Duration(0)
	for n := 1; n <= 12; n++ {
		d := m.backoff(n)
		base := min(time.Second<<(n-1), MaxBackoff)
		if d < base || d > base+base/10+1 || d < prev {
			t.Fatalf("backoff(%d) = %v, want %v..%v and not less than %v", n, d, base, base+base/10, prev)
		}
		prev = base
	}
	short := &Manager{opt: Options{Interval: 50 * time.Millisecond}}
	if d := short.backoff(1); d < 50*time.Millisecond || d > 56*time.Millisecond {
		t.Fatalf("with a 50 ms interval the first backoff is %v", d)
	}
}
