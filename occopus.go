// Package occopus is the library face of the orchestrator: a Manager that
// builds, maintains, scales, reports and destroys infrastructures described
// in Occopus's YAML files. The command line and the REST service are thin
// fronts over it; a Go program can use it the same way.
//
// Operations mirror Occopus's InfrastructureManager: Add (submit and start
// maintaining), Submit, Attach (start provisioning), Detach (stop
// provisioning), TearDown, Get; plus Build, Maintain, Scale, Report,
// ImportNodeDefs and Events.
package occopus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"runtime/debug"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/occopus-go/occopus/auth"
	"github.com/occopus-go/occopus/descr"
	"github.com/occopus-go/occopus/engine"
	"github.com/occopus-go/occopus/health"
	"github.com/occopus-go/occopus/internal/keylock"
	"github.com/occopus-go/occopus/internal/proc"
	"github.com/occopus-go/occopus/store"
)

// Errors callers can test for with errors.Is.
var (
	// ErrUnknownInfra: no infrastructure with that id.
	ErrUnknownInfra = engine.ErrUnknownInfra
	// ErrUnknownNode: no node with that name in the infrastructure, or no
	// instance with that id or address.
	ErrUnknownNode = errors.New("unknown node")
	// ErrInvalid: a request that cannot be carried out as asked.
	ErrInvalid = errors.New("invalid request")
	// ErrBusy: another process holds the infrastructure's lease (it is
	// maintaining it right now).
	ErrBusy = errors.New("infrastructure is being maintained by another process")
)

// DefaultLeaseTTL is Options.LeaseTTL's default.
const DefaultLeaseTTL = 30 * time.Second

// DefaultHALeaseTTL is the lease ttl of replicas sharing work (the REST
// service with `ha:` on) unless configured: a dead replica's
// infrastructures are taken over within about that long.
const DefaultHALeaseTTL = 10 * time.Second

// Types of the engine and the store that the Manager's methods take and
// return, so that callers need no other package.
type (
	Event         = store.Event
	Infra         = store.Infra
	Instance      = store.Instance
	Store         = store.Store
	Report        = engine.Report
	PassResult    = engine.PassResult
	Action        = engine.Action
	Scaling       = engine.Scaling
	DestroyReport = engine.DestroyReport
	Leftover      = engine.Leftover
	ProbeResult   = health.Result
	AuthSelector  = engine.AuthSelector
	Limits        = engine.Limits
)

// Instance states (store.State*).
const (
	StateCreating   = store.StateCreating
	StatePending    = store.StatePending
	StateReady      = store.StateReady
	StateFailed     = store.StateFailed
	StateShutdown   = store.StateShutdown
	StateUnknown    = store.StateUnknown
	StateDestroying = store.StateDestroying
)

// ErrNoStore is returned by the operations that need a store when the
// Manager has none.
var ErrNoStore = errors.New("occopus: this Manager has no store")

// Options configure a Manager.
type Options struct {
	// Store keeps everything; the Manager does not close it. Without one
	// only Validate, and Render with every node definition given, work.
	Store store.Store
	// Home is $OCCOPUS_HOME, for backends that keep files.
	Home string
	// Auth selects credentials for resources (package auth); nil: none.
	Auth AuthSelector
	// AllowCmd lets templates run programs with cmd().
	AllowCmd bool
	// AllowNetworkCmd lets descriptions received over the network
	// (FromNetwork) use cmd() too; AllowCmd must be set as well. Both are
	// applied at every pass from the origin stored with the description.
	AllowNetworkCmd bool
	// Parallelize creates a level's nodes, and drops instances, concurrently,
	// at most Parallel at a time (default engine.DefaultParallel).
	Parallelize bool
	Parallel    int
	// Interval is the pause between maintenance passes of attached
	// infrastructures (default 10 s).
	Interval time.Duration
	Log      *slog.Logger
	// LeaseTTL is how long this Manager's lease on an infrastructure lasts
	// without renewal (default 30 s); it is renewed every third of that.
	// Work under a lease stops when no renewal succeeded for four fifths
	// of it.
	LeaseTTL time.Duration
	// Share makes this Manager one of several replicas sharing the
	// attached infrastructures of one store (which must lease): each is
	// maintained by the one replica holding its lease, kept between
	// passes; ResumeAttached starts a scan that takes up, every
	// ScanInterval (default a fifth of LeaseTTL), those nobody holds. See
	// Ownership and ha.go.
	Share        bool
	ScanInterval time.Duration
	// MaxDescriptionBytes bounds the files Validate reads, every alias
	// expanded (default descr.DefaultMaxBytes).
	MaxDescriptionBytes int
	// Limits cap the instances of a node, of an infrastructure and of the
	// Manager's store (default engine.DefaultLimits: 100, 500, 2000);
	// Validate, Submit, Build and Scale refuse what exceeds them.
	Limits Limits
	// Retention bounds the event log when Housekeep runs (default 30 days,
	// 10,000 events per infrastructure).
	Retention Retention
	// Orphans configure the sweep for orphans (Orphans, and the REST
	// service's periodic sweep): remove after a 10-minute grace, every 10
	// minutes, by default.
	Orphans OrphanOptions

	// Engine tunables; zero values take the engine's defaults.

	// CreateTimeout bounds how long a new instance may take to become
	// ready when neither its node nor its implementation says
	// (create_timeout); default 10 minutes.
	CreateTimeout time.Duration
	// PollFirst, PollRemote and PollMax shape the polling of a starting
	// instance (engine.Options).
	PollFirst, PollRemote, PollMax time.Duration
	// RateLimit and RateBurst bound the calls per second to each cloud
	// endpoint, shared by every backend handler of this Manager (default
	// 10 per second with a burst of 20; a burst of 0 is twice the rate).
	RateLimit float64
	RateBurst int
	// HandlerIdle is how long an unused backend handler (its clients and
	// connections) is kept; default 10 minutes.
	HandlerIdle time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Manager runs infrastructures. It is safe for concurrent use.
type Manager struct {
	opt Options
	eng *engine.Engine
	log *slog.Logger

	mu     sync.Mutex
	loops  map[string]context.CancelFunc // attached infras being maintained: stop and wait
	wg     sync.WaitGroup
	closed bool
	// passLocks: one pass at a time per infrastructure in this process (a
	// background loop and a REST-triggered scale, say).
	passLocks keylock.Locks
	owner     string // this Manager, for store leases
	obs       observers
	secrets   []string // of auth_data, removed from returned errors
	orphans   orphanMemory
	ha        haState
	stopScan  context.CancelFunc
}

// New returns a Manager.
func New(opt Options) (*Manager, error) {
	if opt.Log == nil {
		opt.Log = slog.New(slog.DiscardHandler)
	}
	if opt.Interval <= 0 {
		opt.Interval = 10 * time.Second
	}
	if opt.LeaseTTL <= 0 {
		opt.LeaseTTL = DefaultLeaseTTL
	}
	if opt.ScanInterval <= 0 {
		opt.ScanInterval = defaultScan(opt.LeaseTTL)
	}
	if opt.Share {
		if _, ok := opt.Store.(store.Leaser); !ok {
			return nil, fmt.Errorf("occopus: sharing work between replicas needs a store that leases (sqlite, redis, etcd), not %T", opt.Store)
		}
	}
	var secrets []string
	if s, ok := opt.Auth.(interface{ Secrets() []string }); ok {
		secrets = s.Secrets()
	}
	m := &Manager{opt: opt, log: slog.New(auth.RedactHandler(opt.Log.Handler(), secrets)).With("component", "manager"),
		loops: map[string]context.CancelFunc{}, owner: leaseOwner(), secrets: secrets}
	m.ha.owned = map[string]context.Context{}
	m.eng = engine.New(opt.Store, engine.Options{Home: opt.Home, Log: opt.Log, AllowCmd: opt.AllowCmd, AllowNetworkCmd: opt.AllowNetworkCmd,
		Auth: opt.Auth, Parallelize: opt.Parallelize, Parallel: opt.Parallel,
		OnEvent: m.obs.event, OnBackendCall: m.obs.backendCall, OnProbe: m.obs.probe,
		CreateTimeout: opt.CreateTimeout, PollFirst: opt.PollFirst, PollRemote: opt.PollRemote, PollMax: opt.PollMax,
		RateLimit: opt.RateLimit, RateBurst: opt.RateBurst, HandlerIdle: opt.HandlerIdle, Now: opt.Now, Limits: opt.Limits,
		Secrets: secrets})
	return m, nil
}

// clean removes the credentials of auth_data from an error's text, keeping
// its chain (errors.Is and errors.As still see the causes): a provider's
// answer may quote a key, and what the Manager returns is printed, logged
// and answered over HTTP.
func (m *Manager) clean(err error) error {
	if err == nil || len(m.secrets) == 0 {
		return err
	}
	msg := auth.Redact(err.Error(), m.secrets)
	if msg == err.Error() {
		return err
	}
	return &redacted{err: err, msg: msg}
}

type redacted struct {
	err error
	msg string
}

func (r *redacted) Error() string { return r.msg }
func (r *redacted) Unwrap() error { return r.err }

// Store returns the Manager's store.
func (m *Manager) Store() store.Store { return m.opt.Store }

// ImportNodeDefs stores node definitions, replacing those of the same
// types (Occopus import semantics).
func (m *Manager) ImportNodeDefs(ctx context.Context, defs *descr.NodeDefs) error {
	if m.opt.Store == nil {
		return ErrNoStore
	}
	out := make(map[string]json.RawMessage, len(defs.Types))
	for _, t := range defs.Types {
		raw, err := defs.JSON(t)
		if err != nil {
			return fmt.Errorf("encode node type %s: %w", t, err)
		}
		out[t] = raw
	}
	return m.opt.Store.PutNodeDefs(ctx, out)
}

// SubmitOption qualifies Submit, Add and Build; see FromNetwork.
type SubmitOption = engine.SubmitOption

// FromNetwork marks a description as received over the network: it is
// stored with that origin, and its templates' cmd() then needs
// Options.AllowNetworkCmd as well as AllowCmd at every pass, in whichever
// process runs it (the REST service passes it for every POST).
func FromNetwork() SubmitOption { return engine.FromNetwork() }

// Submit stores a new infrastructure without building it; id may be empty.
func (m *Manager) Submit(ctx context.Context, in *descr.Infra, id string, opts ...SubmitOption) (string, error) {
	if m.opt.Store == nil {
		return "", ErrNoStore
	}
	return m.eng.Submit(ctx, in, id, opts...)
}

// Add submits an infrastructure and starts maintaining it in the
// background (the REST service's POST /infrastructures/).
func (m *Manager) Add(ctx context.Context, in *descr.Infra, opts ...SubmitOption) (out string, err error) {
	defer func() { err = m.clean(err) }()
	if m.opt.Store == nil {
		return "", ErrNoStore
	}
	id, err := m.eng.Submit(ctx, in, "", opts...)
	if err != nil {
		return "", err
	}
	return id, m.Attach(ctx, id)
}

// BuildResult says what Build did.
type BuildResult struct {
	ID      string
	Created []string
	// RolledBack lists what was destroyed after a failure.
	RolledBack []string
	Orphans    int
	Duration   time.Duration
}

// Build submits (id empty) or reconfigures (id given) an infrastructure
// and runs passes until every node is ready. On any error, including ctx
// being cancelled, it destroys what it created: the whole infrastructure
// when it was new, the instances it made when reconfiguring. The rollback
// runs on its own context, so a cancelled ctx still cleans up.
func (m *Manager) Build(ctx context.Context, in *descr.Infra, id string, opts ...SubmitOption) (out *BuildResult, err error) {
	defer func() { err = m.clean(err) }()
	if m.opt.Store == nil {
		return nil, ErrNoStore
	}
	start := time.Now()
	fresh := id == ""
	if fresh {
		id, err = m.eng.Submit(ctx, in, "", opts...)
	} else {
		err = m.eng.Update(ctx, id, in, opts...)
	}
	if err != nil {
		return nil, err
	}
	res := &BuildResult{ID: id}
	err = m.withLease(ctx, id, true, func(ctx context.Context) error {
		var berr error
		res.Created, berr = m.eng.Build(ctx, id, engine.BuildOptions{})
		return berr
	})
	res.Duration = time.Since(start)
	if err == nil {
		return res, nil
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Minute)
	defer cancel()
	if fresh {
		rep, derr := m.TearDown(rctx, id)
		if rep != nil {
			res.RolledBack, res.Orphans = rep.Instances, len(rep.Orphans)
		}
		if derr != nil {
			return res, &RollbackError{Cause: err, Rollback: derr, ID: id}
		}
		return res, err
	}
	var err2 error
	res.RolledBack, err2 = m.eng.DestroyInstances(rctx, id, res.Created)
	if err2 != nil {
		return res, &RollbackError{Cause: err, Rollback: err2, ID: id}
	}
	return res, err
}

// RollbackError is a failed build whose clean-up also failed: some
// resources may remain; destroying the infrastructure again removes them.
type RollbackError struct {
	Cause, Rollback error
	ID              string
}

func (e *RollbackError) Error() string {
	return fmt.Sprintf("%v; rollback incomplete: %v (run `occopus destroy -i %s`)", e.Cause, e.Rollback, e.ID)
}

func (e *RollbackError) Unwrap() error { return e.Cause }

// Maintain runs one maintenance pass.
func (m *Manager) Maintain(ctx context.Context, id string) (out *engine.PassResult, err error) {
	defer func() { err = m.clean(err) }()
	if m.opt.Store == nil {
		return nil, ErrNoStore
	}
	var res *engine.PassResult
	err = m.withLease(ctx, id, false, func(ctx context.Context) (perr error) {
		start := time.Now()
		defer func() {
			if v := recover(); v != nil {
				perr = engine.Recovered(v)
				m.log.Error("maintenance pass panicked", "infra", id, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			}
			m.obs.pass(id, time.Since(start), res, perr)
			m.recordPass(ctx, id, res, perr)
		}()
		res, perr = m.eng.Reconcile(ctx, id)
		return perr
	})
	return res, err
}

// Outcome is what a pass came to (store.Pass*): ok, requeue, error,
// terminal or panic.
func Outcome(res *PassResult, err error) string { return engine.Outcome(res, err) }

// recordPass stores the outcome of a pass, so that the report, the CLI
// and every replica show the last error of each infrastructure.
func (m *Manager) recordPass(ctx context.Context, id string, res *engine.PassResult, err error) {
	if errors.Is(err, ErrUnknownInfra) || ctx.Err() != nil && errors.Is(err, context.Canceled) || store.LeaseLost(ctx) {
		return // nothing to record it on, a pass cut short by shutdown, or one whose lease ended: the new owner records
	}
	wctx, cancel := store.WithoutCancelUnlessLost(ctx)
	defer cancel()
	inf, gerr := m.opt.Store.Infra(wctx, id)
	if gerr != nil {
		return
	}
	ps := store.PassStatus{Result: Outcome(res, err), At: time.Now()}
	if err != nil {
		ps.Error = m.clean(err).Error()
	}
	if ps.Result != store.PassOK {
		ps.Failures = inf.LastPass.Failures + 1
	}
	if serr := m.opt.Store.SetPassStatus(wctx, id, ps); serr != nil && !errors.Is(serr, store.ErrNotFound) {
		m.log.Warn("recording the pass failed", "infra", id, "err", serr)
		return
	}
	m.passEvent(ctx, id, inf.LastPass, ps)
}

// withLease runs fn while holding this process's pass lock and, when the
// store can lease (SQLite, Redis, etcd), the store lease of the
// infrastructure, so that two maintainers sharing a store never work on
// one infrastructure at once. Every store write fn makes is fenced on the
// lease (store.WithFence). The lease is renewed while fn runs; losing it
// (a refused renewal, or none succeeding within the ttl minus a margin)
// cancels fn's context. With wait, a busy lease is waited for; without,
// ErrBusy is returned. A lease a sharing loop keeps between passes is
// used as it is, and its loss cancels fn too.
func (m *Manager) withLease(ctx context.Context, id string, wait bool, fn func(ctx context.Context) error) error {
	unlock := m.passLocks.Lock(id)
	defer unlock()
	l, ok := m.opt.Store.(store.Leaser)
	if !ok {
		return fn(ctx)
	}
	fence := store.Fence{Key: leaseKey(id), Owner: m.owner}
	// An ownership that is ending (its loop stopped) is not used: the
	// lease is acquired anew below, under the pass lock its loop needs to
	// release it.
	if own := m.ownedCtx(id); own != nil && own.Err() == nil {
		wctx, cancel := context.WithCancelCause(store.WithFence(ctx, fence))
		defer cancel(nil)
		stop := context.AfterFunc(own, func() { cancel(context.Cause(own)) })
		defer stop()
		return leaseErr(wctx, fn(wctx))
	}
	for {
		got, err := m.acquire(ctx, l, id)
		if err != nil {
			return err
		}
		if got {
			break
		}
		if !wait {
			return ErrBusy
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
	defer l.Release(context.WithoutCancel(ctx), leaseKey(id), m.owner)
	wctx, cancel := context.WithCancelCause(store.WithFence(ctx, fence))
	defer cancel(nil)
	stop := make(chan struct{})
	defer close(stop)
	go m.keep(ctx, l, id, cancel, stop)
	return leaseErr(wctx, fn(wctx))
}

// leaseErr is fn's error, or, when the lease was lost meanwhile, an error
// saying so (wrapping ErrBusy and ErrLeaseLost) and what fn returned.
func leaseErr(wctx context.Context, err error) error {
	if cause := context.Cause(wctx); err != nil && errors.Is(cause, ErrLeaseLost) {
		return fmt.Errorf("%w (the pass stopped: %v)", cause, err)
	}
	if err != nil && errors.Is(err, store.ErrFenced) {
		return fmt.Errorf("%w: %w: %w", ErrBusy, ErrLeaseLost, err)
	}
	return err
}

// leaseOwner names this Manager: the process (so others can tell when it
// died) and a unique suffix (several Managers may share a process).
func leaseOwner() string {
	return proc.Self() + "/" + uuid.NewString()
}

// Attach marks an infrastructure as maintained and starts its background
// loop (Occopus's start_provisioning).
func (m *Manager) Attach(ctx context.Context, id string) error {
	if m.opt.Store == nil {
		return ErrNoStore
	}
	inf, err := m.opt.Store.Infra(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("%w: %s", ErrUnknownInfra, id)
	}
	if err != nil {
		return err
	}
	if !inf.Attached {
		inf.Attached, inf.UpdatedAt = true, time.Now()
		if err := m.opt.Store.UpdateInfra(ctx, inf); err != nil {
			return err
		}
	}
	m.startLoop(id)
	return nil
}

// Detach stops maintaining an infrastructure (stop_provisioning); its
// instances keep running.
func (m *Manager) Detach(ctx context.Context, id string) error {
	if m.opt.Store == nil {
		return ErrNoStore
	}
	inf, err := m.opt.Store.Infra(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("%w: %s", ErrUnknownInfra, id)
	}
	if err != nil {
		return err
	}
	if m.opt.Share {
		// The store first: a scan between the two would start the loop
		// again.
		if inf.Attached {
			inf.Attached, inf.UpdatedAt = false, time.Now()
			if err := m.opt.Store.UpdateInfra(ctx, inf); err != nil {
				return err
			}
		}
		m.stopLoop(id)
		return nil
	}
	m.stopLoop(id)
	if inf.Attached {
		inf.Attached, inf.UpdatedAt = false, time.Now()
		return m.opt.Store.UpdateInfra(ctx, inf)
	}
	return nil
}

// ResumeAttached starts the loops of every attached infrastructure (after
// a restart of the service).
func (m *Manager) ResumeAttached(ctx context.Context) ([]string, error) {
	if m.opt.Store == nil {
		return nil, ErrNoStore
	}
	infras, err := m.opt.Store.Infras(ctx)
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, inf := range infras {
		if inf.Attached {
			if !m.opt.Share {
				m.startLoop(inf.ID)
			}
			ids = append(ids, inf.ID)
		}
	}
	if m.opt.Share {
		// Replicas share them: the scan takes up those nobody holds.
		m.startSharing()
	}
	return ids, nil
}

// Attached reports whether this Manager is maintaining an infrastructure.
func (m *Manager) Attached(id string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, ok := m.loops[id]
	return ok
}

func (m *Manager) startLoop(id string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, running := m.loops[id]; running || m.closed {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	m.loops[id] = func() { cancel(); <-done }
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		defer close(done)
		if m.opt.Share {
			m.ownLoop(ctx, id)
		} else {
			m.loop(ctx, id)
		}
		m.mu.Lock()
		if m.loops[id] != nil && ctx.Err() == nil {
			delete(m.loops, id)
		}
		m.mu.Unlock()
	}()
}

// RequeueAfter is how soon the loop looks again at an infrastructure
// whose instances are still starting.
const RequeueAfter = 2 * time.Second

// MaxBackoff caps the wait after failed passes.
const MaxBackoff = 5 * time.Minute

// loop maintains one infrastructure until ctx ends or it is gone. The
// next pass comes after the interval when all is well, soon while
// instances start, after a growing backoff after failures, and, after a
// terminal failure, only once its description changes (build -i, a new
// POST) or the service restarts with another configuration.
func (m *Manager) loop(ctx context.Context, id string) {
	var stuck time.Time // UpdatedAt of the description a terminal pass failed on
	for {
		if !m.stillAttached(ctx, id) {
			return
		}
		delay := m.opt.Interval
		if !stuck.IsZero() {
			inf, err := m.opt.Store.Infra(ctx, id)
			switch {
			case errors.Is(err, store.ErrNotFound):
				m.log.Info("infrastructure gone; maintenance stops", "infra", id)
				return
			case err == nil && inf.UpdatedAt.Equal(stuck):
				if !m.sleep(ctx, delay) {
					return
				}
				continue
			}
			stuck = time.Time{}
		}
		res, err := m.Maintain(ctx, id)
		if ctx.Err() != nil {
			return
		}
		switch outcome := Outcome(res, err); {
		case errors.Is(err, ErrBusy):
			m.log.Debug("another process maintains it; skipping this pass", "infra", id)
		case errors.Is(err, ErrUnknownInfra):
			m.log.Info("infrastructure gone; maintenance stops", "infra", id)
			return
		case outcome == store.PassRequeue:
			delay = min(RequeueAfter, m.opt.Interval)
		case outcome == store.PassTerminal:
			m.log.Warn("maintenance stops until the description or the configuration changes", "infra", id, "err", err)
			if inf, gerr := m.opt.Store.Infra(ctx, id); gerr == nil {
				stuck = inf.UpdatedAt
			}
		case outcome == store.PassError || outcome == store.PassPanic:
			failures := 1
			if inf, gerr := m.opt.Store.Infra(ctx, id); gerr == nil {
				failures = max(1, inf.LastPass.Failures)
			}
			delay = m.backoff(failures)
			m.log.Warn("maintenance pass failed", "infra", id, "err", err, "retry_in", delay.Round(time.Millisecond), "failures", failures)
		}
		if !m.sleep(ctx, delay) {
			return
		}
	}
}

// backoff is the wait after the n-th failed pass in a row: from a second
// (or the interval, if shorter), doubling, capped at MaxBackoff (or the
// interval, if longer), with a little jitter so that infrastructures that
// failed together do not retry together.
func (m *Manager) backoff(n int) time.Duration {
	d := min(time.Second, m.opt.Interval)
	limit := max(MaxBackoff, m.opt.Interval)
	for i := 1; i < n && d < limit; i++ {
		d *= 2
	}
	d = min(d, limit)
	return d + time.Duration(rand.Int64N(int64(d)/10+1))
}

func (m *Manager) sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// stopLoop ends the loop of id and waits until it returned, so that no
// pass of it is in flight (and its lease is given back) when Detach or
// TearDown go on.
func (m *Manager) stopLoop(id string) {
	m.mu.Lock()
	stop, ok := m.loops[id]
	delete(m.loops, id)
	m.mu.Unlock()
	if ok {
		stop()
	}
}

// TearDown stops maintaining and destroys an infrastructure. It waits for
// a pass another process is running on it to finish. When something
// cannot be removed the record stays (run it again) and the error says
// why; ForceTearDown removes the record anyway.
func (m *Manager) TearDown(ctx context.Context, id string) (*DestroyReport, error) {
	return m.tearDown(ctx, id, false)
}

// ForceTearDown is TearDown for an infrastructure that can never be torn
// down cleanly (its cloud endpoint is gone, its key revoked): what can be
// removed is, the record goes anyway, and the report's Left lists every
// resource that may remain, with its id, for the user to remove.
func (m *Manager) ForceTearDown(ctx context.Context, id string) (*DestroyReport, error) {
	return m.tearDown(ctx, id, true)
}

func (m *Manager) tearDown(ctx context.Context, id string, force bool) (out *DestroyReport, err error) {
	defer func() { err = m.clean(err) }()
	if m.opt.Store == nil {
		return nil, ErrNoStore
	}
	if m.opt.Share {
		// Its owner may be another replica: a detach in the store makes
		// it stop and give the lease up within a pass.
		if err := m.Detach(ctx, id); err != nil && !errors.Is(err, ErrUnknownInfra) {
			return nil, err
		}
	}
	m.stopLoop(id)
	var rep *engine.DestroyReport
	err = m.withLease(ctx, id, true, func(ctx context.Context) error {
		var derr error
		rep, derr = m.eng.Destroy(ctx, id, force)
		return derr
	})
	return rep, err
}

// Get returns the report of an infrastructure (the REST shape).
func (m *Manager) Get(ctx context.Context, id string) (engine.Report, error) {
	if m.opt.Store == nil {
		return nil, ErrNoStore
	}
	return m.eng.Report(ctx, id)
}

// Instances returns the instance records of an infrastructure.
func (m *Manager) Instances(ctx context.Context, id string) ([]store.Instance, error) {
	if m.opt.Store == nil {
		return nil, ErrNoStore
	}
	if _, err := m.opt.Store.Infra(ctx, id); errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("%w: %s", ErrUnknownInfra, id)
	} else if err != nil {
		return nil, err
	}
	return m.opt.Store.Instances(ctx, id)
}

// List returns every infrastructure.
func (m *Manager) List(ctx context.Context) ([]store.Infra, error) {
	if m.opt.Store == nil {
		return nil, ErrNoStore
	}
	return m.opt.Store.Infras(ctx)
}

// ScaleRequest asks for a change of a node's instance count.
type ScaleRequest struct {
	InfraID, Node string
	// Exactly one of: Change (+N / -N), Set (absolute), Victim (node id or
	// address of the instance to remove).
	Change int
	Set    *int
	Victim string
}

// Scale stores a scaling request for the next maintenance pass and
// returns the node's scaling as it will be (clamped to min/max; Clamped
// says so).
func (m *Manager) Scale(ctx context.Context, r ScaleRequest) (engine.Scaling, error) {
	if m.opt.Store == nil {
		return engine.Scaling{}, ErrNoStore
	}
	given := 0
	if r.Change != 0 {
		given++
	}
	if r.Set != nil {
		given++
	}
	if r.Victim != "" {
		given++
	}
	if given != 1 {
		return engine.Scaling{}, fmt.Errorf("%w: give exactly one of a change, a count and an instance to remove", ErrInvalid)
	}
	if r.Set != nil && *r.Set < 1 {
		return engine.Scaling{}, fmt.Errorf("%w: a node has at least one instance, not %d", ErrInvalid, *r.Set)
	}
	inf, st, err := m.eng.Static(ctx, r.InfraID)
	if err != nil {
		return engine.Scaling{}, err
	}
	if _, ok := st.ByName[r.Node]; !ok {
		return engine.Scaling{}, fmt.Errorf("%w: no node named %q in infrastructure %s", ErrUnknownNode, r.Node, r.InfraID)
	}
	req := store.ScaleRequest{InfraID: r.InfraID, NodeName: r.Node, Delta: r.Change, Set: r.Set, CreatedAt: time.Now()}
	if r.Victim != "" {
		ins, err := m.opt.Store.Instances(ctx, r.InfraID)
		if err != nil {
			return engine.Scaling{}, err
		}
		found := false
		for _, in := range ins {
			if in.NodeName == r.Node && (in.NodeID == r.Victim || in.Address == r.Victim || in.PrivAddress == r.Victim) {
				found = true
			}
		}
		if !found {
			return engine.Scaling{}, fmt.Errorf("%w: node %s of infrastructure %s has no instance with id or address %q", ErrUnknownNode, r.Node, r.InfraID, r.Victim)
		}
		req.Delta, req.Victim = -1, r.Victim
	}
	reqs, err := m.pendingScale(ctx, &inf)
	if err != nil {
		return engine.Scaling{}, err
	}
	targets := engine.Targets(st, inf.Targets, append(reqs, req))
	if err := m.eng.CheckScale(ctx, inf, st, targets); err != nil {
		return engine.Scaling{}, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	after := targets[r.Node]
	if _, err := m.opt.Store.AddScaleRequest(ctx, req); err != nil {
		return engine.Scaling{}, err
	}
	m.scaleEvent(ctx, r, after)
	return after, nil
}

// pendingScale reads the scale requests of *inf that no pass has applied
// yet, with targets of the same moment. A pass applies requests to the
// targets and deletes them in one store write, so between reading the
// targets and the requests a pass could have moved requests into targets
// this read does not see, and the limits would be checked against too
// few: when the targets changed meanwhile, both are read again.
func (m *Manager) pendingScale(ctx context.Context, inf *store.Infra) ([]store.ScaleRequest, error) {
	for {
		reqs, err := m.opt.Store.ScaleRequests(ctx, inf.ID)
		if err != nil {
			return nil, err
		}
		now, err := m.opt.Store.Infra(ctx, inf.ID)
		if err != nil {
			return nil, err
		}
		if maps.Equal(now.Targets, inf.Targets) {
			return reqs, nil
		}
		*inf = now
	}
}

// Plan returns what the next pass would do; with next, what `build -i`
// with that description would do.
func (m *Manager) Plan(ctx context.Context, id string, next *descr.Infra) ([]engine.Action, error) {
	if m.opt.Store == nil {
		return nil, ErrNoStore
	}
	return m.eng.PlanFor(ctx, id, next)
}

// Events returns events of an infrastructure after a sequence number.
func (m *Manager) Events(ctx context.Context, id string, after int64, limit int) ([]store.Event, error) {
	if m.opt.Store == nil {
		return nil, ErrNoStore
	}
	return m.opt.Store.Events(ctx, id, after, limit)
}

// Close stops every background loop and waits for them. The store stays
// open (it belongs to the caller).
func (m *Manager) Close() error {
	m.mu.Lock()
	m.closed = true
	if m.stopScan != nil {
		m.stopScan()
	}
	var stops []context.CancelFunc
	for id, stop := range m.loops {
		stops = append(stops, stop)
		delete(m.loops, id)
	}
	m.mu.Unlock()
	// Outside m.mu (each waits for its loop, which takes m.mu to end),
	// all at once; wg waits for them.
	for _, stop := range stops {
		go stop()
	}
	m.wg.Wait()
	return m.eng.Close()
}
