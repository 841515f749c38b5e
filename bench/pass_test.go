package bench

// One maintenance pass over 10,000 instances (issue 17): 100
// infrastructures × 100 instances and 1 × 10,000, on a fake backend
// ("loopfake") whose every instance is a real HTTP listener of its own on a
// loopback address (127.x.y.z, one port for all), health-checked by the
// engine's real ports and urls probes.
//
//	go test ./bench -run '^$' -bench Pass10k -benchtime 5x -timeout 30m

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/occopus-go/occopus/descr"
	"github.com/occopus-go/occopus/engine"
	"github.com/occopus-go/occopus/health"
	"github.com/occopus-go/occopus/resource"
	"github.com/occopus-go/occopus/store/sqlite"
)

// loop is the fake backend's state: every instance it made, by id.
var loop = struct {
	mu    sync.Mutex
	port  int
	next  atomic.Uint32
	insts map[string]*loopInst
}{insts: map[string]*loopInst{}}

type loopInst struct {
	addr string
	srv  *http.Server
}

type loopHandler struct{}

func init() {
	resource.Register(resource.Plugin{Type: "loopfake", Schema: descr.SchemaOf[struct{}](), New: func(resource.Config) (resource.Handler, error) {
		return loopHandler{}, nil
	}})
}

// loopAddr is the n-th loopback address, from 127.1.0.1 on.
func loopAddr(n uint32) string {
	n += 1<<16 + 1
	return fmt.Sprintf("127.%d.%d.%d", n>>16&0xff, n>>8&0xff, n&0xff)
}

func (loopHandler) Create(_ context.Context, spec resource.Spec) (resource.Handle, error) {
	addr := loopAddr(loop.next.Add(1))
	l, err := net.Listen("tcp", net.JoinHostPort(addr, fmt.Sprint(loop.port)))
	if err != nil {
		return resource.Handle{}, err
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok\n")) }),
		ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(l)
	loop.mu.Lock()
	loop.insts[spec.NodeID] = &loopInst{addr: addr, srv: srv}
	loop.mu.Unlock()
	return resource.Handle{ID: spec.NodeID}, nil
}

func (loopHandler) Destroy(_ context.Context, h resource.Handle) error {
	loop.mu.Lock()
	in := loop.insts[h.ID]
	delete(loop.insts, h.ID)
	loop.mu.Unlock()
	if in != nil {
		in.srv.Close()
	}
	return nil
}

func (loopHandler) State(_ context.Context, h resource.Handle) (resource.State, error) {
	loop.mu.Lock()
	defer loop.mu.Unlock()
	if loop.insts[h.ID] == nil {
		return "", resource.ErrNotFound
	}
	return resource.StateRunning, nil
}

func (loopHandler) Addresses(_ context.Context, h resource.Handle) (resource.Addresses, error) {
	loop.mu.Lock()
	defer loop.mu.Unlock()
	in := loop.insts[h.ID]
	if in == nil {
		return resource.Addresses{}, resource.ErrNotFound
	}
	return resource.Addresses{Public: in.addr, Private: in.addr}, nil
}

// Nearby: the instances are on this host.
func (loopHandler) Nearby() bool { return true }

// passParallel is the engine's Parallel in this benchmark: how many
// instances of one infrastructure are refreshed (and probed) at once; up
// to passInfras infrastructures are passed at once, as the service's
// loops would.
const (
	passParallel = 64
	passInfras   = 4
)

// BenchmarkPass10k times one pass (engine.Reconcile of every
// infrastructure) over 10,000 ready instances, after an untimed build.
// Nothing changes between passes, so a pass is: read the records,
// refresh each (backend state and addresses, a TCP connect and an HTTP
// GET), plan, check completeness. Metrics: instances, probes/op (counted
// by the engine's OnProbe), goroutines-max (sampled while passing).
func BenchmarkPass10k(b *testing.B) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err == nil && rl.Cur < 65536 {
		rl.Cur = min(65536, rl.Max)
		syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl) // 10,000 listeners and their probes
	}
	for _, sh := range []struct{ infras, per int }{{100, 100}, {1, 10000}} {
		b.Run(fmt.Sprintf("%dx%d", sh.infras, sh.per), func(b *testing.B) { benchPass(b, sh.infras, sh.per) })
	}
}

func benchPass(b *testing.B, infras, per int) {
	ctx := b.Context()
	if loop.port == 0 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		loop.port = l.Addr().(*net.TCPAddr).Port
		l.Close() // kept free on 127.0.0.1; the instances use other addresses
	}
	dir := b.TempDir()
	st, err := sqlite.Open(ctx, filepath.Join(dir, "occopus.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	def := fmt.Sprintf(`[{"resource": {"type": "loopfake"}, "health_check": {"ping": false, "ports": [%d], "urls": ["http://{{ ip }}:%d/"]}}]`, loop.port, loop.port)
	if err := st.PutNodeDefs(ctx, map[string]json.RawMessage{"svc": json.RawMessage(def)}); err != nil {
		b.Fatal(err)
	}
	var probes, fails atomic.Int64
	eng := engine.New(st, engine.Options{Home: dir, Parallelize: true, Parallel: passParallel,
		Limits: engine.Limits{PerNode: per, PerInfra: per, Total: infras * per},
		OnProbe: func(_, _ string, r health.Result) {
			probes.Add(1)
			if r.Status != health.Pass {
				fails.Add(1)
			}
		}})
	b.Cleanup(func() { eng.Close() })
	src := fmt.Sprintf("infra_name: pass\nnodes:\n  - {name: svc, type: svc, scaling: {min: %d, max: %d}}\n", per, per)
	in, err := descr.ParseInfra("infra.yaml", []byte(src), descr.LoadOptions{})
	if err != nil {
		b.Fatal(err)
	}
	ids := make([]string, infras)
	t0 := time.Now()
	for i := range ids {
		if ids[i], err = eng.Submit(ctx, in, ""); err != nil {
			b.Fatal(err)
		}
		id := ids[i]
		b.Cleanup(func() {
			if _, err := eng.Destroy(context.WithoutCancel(ctx), id, false); err != nil {
				b.Error(err)
			}
		})
	}
	if err := forEach(ids, passInfras, func(id string) error {
		_, err := eng.Build(ctx, id, engine.BuildOptions{})
		return err
	}); err != nil {
		b.Fatal(err)
	}
	build := time.Since(t0)
	probes.Store(0)
	var maxG atomic.Int64
	stop := make(chan struct{})
	go func() { // samples the goroutine count: a storm would show
		for {
			select {
			case <-stop:
				return
			case <-time.After(10 * time.Millisecond):
				if g := int64(runtime.NumGoroutine()); g > maxG.Load() {
					maxG.Store(g)
				}
			}
		}
	}()
	n := 0
	cpu0 := cpuTime()
	for b.Loop() {
		// Labelled, so that a CPU profile can show the passes alone
		// (go tool pprof -tagfocus phase=pass).
		pctx := pprof.WithLabels(ctx, pprof.Labels("phase", "pass"))
		pprof.SetGoroutineLabels(pctx)
		if err := forEach(ids, passInfras, func(id string) error {
			res, err := eng.Reconcile(pctx, id)
			if err == nil && (!res.Complete || len(res.Actions) > 0) {
				err = fmt.Errorf("pass of %s: complete=%v, %d actions: the instances should all stay ready", id, res.Complete, len(res.Actions))
			}
			return err
		}); err != nil {
			b.Fatal(err)
		}
		n++
		pprof.SetGoroutineLabels(ctx)
	}
	cpu := cpuTime() - cpu0
	close(stop)
	if fails.Load() > 0 {
		b.Fatalf("%d probes failed", fails.Load())
	}
	b.ReportMetric(float64(infras*per), "instances")
	b.ReportMetric(float64(probes.Load())/float64(n), "probes/op")
	b.ReportMetric(float64(maxG.Load()), "goroutines-max")
	b.ReportMetric(build.Seconds(), "build-s")
	// CPU of the whole process (engine, probes, the fake's listeners) per
	// pass: what the other jobs on the machine do not change.
	b.ReportMetric(cpu.Seconds()/float64(n), "cpu-s/op")
}

// forEach runs fn on every id, at most n at a time, and returns the
// errors joined.
func forEach(ids []string, n int, fn func(string) error) error {
	sem := make(chan struct{}, n)
	var mu sync.Mutex
	var errs []string
	var wg sync.WaitGroup
	for _, id := range ids {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := fn(id); err != nil {
				mu.Lock()
				errs = append(errs, err.Error())
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		return fmt.Errorf("%d failed: %s", len(errs), strings.Join(errs[:min(3, len(errs))], "; "))
	}
	return nil
}

// cpuTime is the user and system CPU time of this process so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
