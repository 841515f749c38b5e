// Package engine is the reconcile pass of DESIGN.md (Occopus's enactor and
// infrastructure processor): it reads the desired state (the stored
// description, targets and scale requests) and the actual state (instance
// records refreshed from the backends and health checks), computes the
// delta (Plan) and carries it out, recording every step in the store before
// and after each backend call so any process can pick up after a crash.
package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sort"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/occopus-go/occopus/auth"
	"github.com/occopus-go/occopus/compile"
	"github.com/occopus-go/occopus/descr"
	"github.com/occopus-go/occopus/health"
	"github.com/occopus-go/occopus/internal/cloudapi"
	"github.com/occopus-go/occopus/internal/proc"
	"github.com/occopus-go/occopus/resource"
	"github.com/occopus-go/occopus/store"
)

// Defaults of Options.
const (
	DefaultPollFirst     = 5 * time.Millisecond
	DefaultPollRemote    = 200 * time.Millisecond
	DefaultPollMax       = 3 * time.Second
	DefaultCreateTimeout = 10 * time.Minute
	DefaultParallel      = 8
)

// AuthSelector picks credentials for a resource section (package auth).
type AuthSelector interface {
	Select(section string, res map[string]any) (map[string]any, error)
}

// Options configure an Engine. The zero value works: sequential, default
// timeouts, no credentials, no cmd().
type Options struct {
	// Home is $OCCOPUS_HOME, handed to backends that keep files.
	Home string
	Log  *slog.Logger
	// AllowCmd lets templates run programs with cmd().
	AllowCmd bool
	// AllowNetworkCmd lets descriptions stored with store.OriginNetwork
	// run cmd() too (AllowCmd must be set as well). The policy follows the
	// stored origin, so a description POSTed to a service and maintained
	// later by the CLI is still refused.
	AllowNetworkCmd bool
	// Auth selects credentials; nil means none are configured.
	Auth AuthSelector
	// Parallelize runs a level's creations, and the drops, concurrently,
	// at most Parallel at a time (default 8).
	Parallelize bool
	Parallel    int
	// While an instance starts, the engine polls it (backend state,
	// addresses, health checks) after a delay of 4 % of the time since its
	// record was made, so that a passing check is seen within 5 % of the
	// time the instance took; but never sooner than PollFirst for a
	// resource.Nearby backend (Docker on a unix socket, local processes:
	// default 5 ms) or PollRemote for the others (clouds, whose request
	// rates are limited: default 200 ms, or PollFirst when only that is
	// set), and never later than PollMax (default 3 s).
	PollFirst, PollRemote, PollMax time.Duration
	// CreateTimeout bounds how long a new instance may take to become
	// ready when neither the node nor its implementation says
	// (create_timeout).
	CreateTimeout time.Duration
	// OnEvent, when set, is called for every event as it is recorded (the
	// CLI prints progress from it). It must not block. Calls are
	// serialised, also when the engine works concurrently (--parallelize,
	// destroy), so it may write to an unsynchronised writer.
	OnEvent func(store.Event)
	// OnBackendCall, when set, is called after every call to a backend
	// (op: create, destroy, state, addresses, find, list, list_all) with its
	// duration and error. It must not block.
	OnBackendCall func(backend, op string, d time.Duration, err error)
	// OnProbe, when set, is called with every health-check result.
	OnProbe func(infraID, node string, r health.Result)
	// Now is the clock (tests inject one).
	Now func() time.Time
	// RateLimit and RateBurst bound the calls per second to each cloud
	// endpoint, shared by every handler of this engine (default
	// cloudapi.DefaultRate with a burst of cloudapi.DefaultBurst; a burst
	// of 0 is twice the rate).
	RateLimit float64
	RateBurst int
	// HandlerIdle is how long an unused backend handler stays cached
	// (default DefaultHandlerIdle); dropped handlers are closed.
	HandlerIdle time.Duration
	// Limits cap instance counts per node, infrastructure and engine
	// (default DefaultLimits).
	Limits Limits
	// Secrets are removed from every error, message and log line the
	// engine stores, reports or logs ("[REDACTED]"); nil: taken from Auth
	// when it can tell them (auth.Data.Secrets).
	Secrets []string
}

// Engine runs reconcile passes against a store.
type Engine struct {
	store store.Store
	opt   Options
	log   *slog.Logger
	owner string // this process, for records of creations in flight

	handlers *handlerCache
	limiter  *cloudapi.Limiters
	cms      cmCache // config managers (configmgr.go)
	sid      storeIDCache

	eventMu sync.Mutex // serialises Options.OnEvent
}

// New returns an Engine working on st.
func New(st store.Store, opt Options) *Engine {
	if opt.Log == nil {
		opt.Log = slog.New(slog.DiscardHandler)
	}
	if opt.PollRemote <= 0 {
		opt.PollRemote = DefaultPollRemote
		if opt.PollFirst > 0 {
			opt.PollRemote = opt.PollFirst // the one delay of before PollRemote
		}
	}
	if opt.PollFirst <= 0 {
		opt.PollFirst = DefaultPollFirst
	}
	if opt.PollMax <= 0 {
		opt.PollMax = DefaultPollMax
	}
	if opt.CreateTimeout <= 0 {
		opt.CreateTimeout = DefaultCreateTimeout
	}
	if opt.Parallel <= 0 {
		opt.Parallel = DefaultParallel
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.Secrets == nil {
		if s, ok := opt.Auth.(interface{ Secrets() []string }); ok {
			opt.Secrets = s.Secrets()
		}
	}
	if len(opt.Secrets) > 0 {
		secrets := opt.Secrets
		opt.Log = slog.New(auth.RedactHandler(opt.Log.Handler(), secrets))
	}
	if opt.HandlerIdle <= 0 {
		opt.HandlerIdle = DefaultHandlerIdle
	}
	if opt.RateLimit <= 0 {
		opt.RateLimit, opt.RateBurst = cloudapi.DefaultRate, cloudapi.DefaultBurst
	}
	if opt.RateBurst <= 0 {
		opt.RateBurst = max(1, int(opt.RateLimit*2))
	}
	return &Engine{store: st, opt: opt, log: opt.Log.With("component", "engine"), owner: proc.Self(),
		handlers: newHandlerCache(opt.HandlerIdle, opt.Now), limiter: cloudapi.NewLimiters(opt.RateLimit, opt.RateBurst)}
}

// Store returns the engine's store.
func (e *Engine) Store() store.Store { return e.store }

// ErrUnknownInfra is returned for an infrastructure id the store does not know.
var ErrUnknownInfra = errors.New("unknown infrastructure")

// SubmitOption qualifies a Submit or Update.
type SubmitOption func(*submitOptions)

type submitOptions struct{ origin string }

// FromNetwork marks the description as received over the network
// (store.OriginNetwork): cmd() in its templates then needs
// Options.AllowNetworkCmd at every pass, wherever the pass runs.
func FromNetwork() SubmitOption {
	return func(o *submitOptions) { o.origin = store.OriginNetwork }
}

func originOf(opts []SubmitOption) string {
	o := submitOptions{origin: store.OriginLocal}
	for _, f := range opts {
		f(&o)
	}
	return o.origin
}

// cmdPolicy is what a template of inf may do with cmd(): allowed, and
// whether a refusal should name allow_network_cmd.
func (e *Engine) cmdPolicy(inf store.Infra) (allow, network bool) {
	network = inf.Origin == store.OriginNetwork
	return e.opt.AllowCmd && (!network || e.opt.AllowNetworkCmd), network
}

// Submit checks and stores a new infrastructure; id may be empty (a new
// UUID is made). Every node type must have a definition in the store.
func (e *Engine) Submit(ctx context.Context, in *descr.Infra, id string, opts ...SubmitOption) (string, error) {
	st, err := compile.Compile(in)
	if err != nil {
		return "", err
	}
	if err := e.checkTypes(ctx, st); err != nil {
		return "", err
	}
	if err := CheckLimits(st, e.opt.Limits); err != nil {
		return "", err
	}
	if err := e.checkTotal(ctx, st, id); err != nil {
		return "", err
	}
	if id == "" {
		id = uuid.NewString()
	} else if _, err := uuid.Parse(id); err != nil {
		return "", fmt.Errorf("infrastructure id %q is not a UUID", id)
	}
	raw, err := descr.MarshalJSON(in.Root.Interface())
	if err != nil {
		return "", fmt.Errorf("encode description: %w", err)
	}
	now := e.opt.Now()
	// Targets start at the minimums, so that the service-wide limit counts
	// an infrastructure before its first pass.
	targets := make(map[string]int, len(st.Nodes))
	for _, n := range st.Nodes {
		targets[n.Name] = n.Min
	}
	if err := e.store.CreateInfra(ctx, store.Infra{ID: id, Name: st.Name, Description: raw, Targets: targets, Origin: originOf(opts), CreatedAt: now, UpdatedAt: now}); err != nil {
		return "", fmt.Errorf("store infrastructure %s: %w", id, err)
	}
	e.event(ctx, store.Event{InfraID: id, Kind: "infra.created", Message: fmt.Sprintf("infrastructure %q submitted with %d node(s)", st.Name, len(st.Nodes))})
	return id, nil
}

// Update replaces the description of an existing infrastructure (build -i):
// the next pass adds and removes nodes and applies new scaling limits;
// running instances keep the variables they were made with. The origin is
// the new description's (local unless FromNetwork is given).
func (e *Engine) Update(ctx context.Context, id string, in *descr.Infra, opts ...SubmitOption) error {
	inf, err := e.infra(ctx, id)
	if err != nil {
		return err
	}
	st, err := compile.Compile(in)
	if err != nil {
		return err
	}
	if err := e.checkTypes(ctx, st); err != nil {
		return err
	}
	if err := CheckLimits(st, e.opt.Limits); err != nil {
		return err
	}
	if err := e.checkTotal(ctx, st, id); err != nil {
		return err
	}
	raw, err := descr.MarshalJSON(in.Root.Interface())
	if err != nil {
		return fmt.Errorf("encode description: %w", err)
	}
	targets := map[string]int{}
	for name, t := range inf.Targets {
		if _, ok := st.ByName[name]; ok {
			targets[name] = t
		}
	}
	inf.Name, inf.Description, inf.Targets, inf.Origin, inf.UpdatedAt = st.Name, raw, targets, originOf(opts), e.opt.Now()
	if err := e.store.UpdateInfra(ctx, inf); err != nil {
		return fmt.Errorf("update infrastructure %s: %w", id, err)
	}
	e.event(ctx, store.Event{InfraID: id, Kind: "infra.updated", Message: fmt.Sprintf("description replaced: %d node(s)", len(st.Nodes))})
	return nil
}

func (e *Engine) infra(ctx context.Context, id string) (store.Infra, error) {
	inf, err := e.store.Infra(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return inf, fmt.Errorf("%w: %s", ErrUnknownInfra, id)
	}
	return inf, err
}

// Static compiles the stored description of an infrastructure.
func (e *Engine) Static(ctx context.Context, id string) (store.Infra, *compile.Static, error) {
	inf, err := e.infra(ctx, id)
	if err != nil {
		return inf, nil, err
	}
	st, err := staticOf(inf)
	return inf, st, Terminal(err)
}

func staticOf(inf store.Infra) (*compile.Static, error) {
	v, err := descr.DecodeJSON(inf.Description)
	if err != nil {
		return nil, fmt.Errorf("stored description of %s: %w", inf.ID, err)
	}
	in, err := descr.DecodeInfra("stored:"+inf.ID, descr.FromValue(v))
	if err != nil {
		return nil, fmt.Errorf("stored description of %s: %w", inf.ID, err)
	}
	return compile.Compile(in)
}

// checkTypes refuses a description whose node types have no definition
// in the store, or a definition that names a section type this build has
// no plugin for (a definition imported by another build, or by Occopus).
func (e *Engine) checkTypes(ctx context.Context, st *compile.Static) error {
	var errs descr.Errors
	checked := map[string]bool{}
	for _, n := range st.Nodes {
		p := descr.Pos{}
		if n.Desc.Src != nil && n.Desc.Src.Get("type") != nil {
			p = n.Desc.Src.Get("type").Pos
		}
		impls, err := Implementations(ctx, e.store, n.Type)
		if errors.Is(err, store.ErrNotFound) {
			errs = append(errs, &descr.Error{Pos: p, Path: n.Desc.Path + ".type",
				Msg: fmt.Sprintf("node type %q has no definition in the store (import it with `occopus import FILE`)", n.Type)})
			continue
		} else if err != nil {
			return err
		}
		if checked[n.Type] {
			continue
		}
		checked[n.Type] = true
		for _, im := range impls {
			for _, kind := range []string{descr.SectionResource, descr.SectionContextualise, descr.SectionConfigManagement} {
				sec := im.Section(kind)
				if sec == nil {
					continue
				}
				typ, _ := sec["type"].(string)
				if err := descr.SupportedType(kind, typ); err != nil {
					errs = append(errs, &descr.Error{Pos: p, Path: n.Desc.Path + ".type",
						Msg: fmt.Sprintf("node type %q (%s): %v", n.Type, im.Path(), err)})
				}
			}
		}
	}
	return errs.Err()
}

// defs reads the implementations of every node type of st.
func (e *Engine) defs(ctx context.Context, st *compile.Static) (map[string][]*descr.Impl, error) {
	out := map[string][]*descr.Impl{}
	for _, n := range st.Nodes {
		if _, ok := out[n.Type]; ok {
			continue
		}
		impls, err := Implementations(ctx, e.store, n.Type)
		if err != nil {
			return nil, fmt.Errorf("node %s: %w", n.Name, err)
		}
		out[n.Type] = impls
	}
	return out, nil
}

// Implementations reads the implementations of a node type from a store;
// a type never imported is an error wrapping store.ErrNotFound that says
// how to import it.
func Implementations(ctx context.Context, st store.Store, typ string) ([]*descr.Impl, error) {
	raw, err := st.NodeDef(ctx, typ)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("node type %q has no definition in the store (import it with `occopus import FILE`): %w", typ, store.ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	return descr.ImplsFromJSON(typ, raw)
}

func handleOf(in store.Instance) (resource.Handle, bool) {
	var h resource.Handle
	if len(in.Handle) == 0 || json.Unmarshal(in.Handle, &h) != nil || h.ID == "" {
		return h, false
	}
	return h, true
}

// setState records a state change of an instance and its event.
func (e *Engine) setState(ctx context.Context, in *store.Instance, to, msg string) error {
	from := in.State
	in.State = to
	in.UpdatedAt = e.opt.Now()
	msg = e.Redact(msg)
	if to == store.StateFailed || to == store.StateShutdown {
		in.Error = msg
	}
	if err := e.putInstance(ctx, in); err != nil {
		return err
	}
	if from != to {
		e.event(ctx, store.Event{InfraID: in.InfraID, NodeName: in.NodeName, NodeID: in.NodeID, Kind: "instance.state", From: from, To: to, Message: msg})
	}
	return nil
}

func (e *Engine) event(ctx context.Context, ev store.Event) {
	if ev.Time.IsZero() {
		ev.Time = e.opt.Now()
	}
	ev.Message = e.Redact(ev.Message)
	// The event log must not stop the work: a failure is logged only.
	// Work whose lease ended records nothing more (it would be fenced).
	if store.LeaseLost(ctx) {
		e.log.Debug("event not recorded: the lease was lost", "kind", ev.Kind)
	} else {
		wctx, cancel := store.WithoutCancelUnlessLost(ctx)
		if err := e.store.AppendEvent(wctx, ev); err != nil {
			e.log.Warn("recording event failed", "err", err, "kind", ev.Kind)
		}
		cancel()
	}
	e.notify(ev)
}

// notify tells the observers of an event without storing it.
func (e *Engine) notify(ev store.Event) {
	if ev.Time.IsZero() {
		ev.Time = e.opt.Now()
	}
	ev.Message = e.Redact(ev.Message)
	if e.opt.OnEvent != nil {
		e.eventMu.Lock()
		defer e.eventMu.Unlock()
		e.opt.OnEvent(ev)
	}
}

// putInstance stores an instance record, its error scrubbed of secrets: a
// provider's answer may quote a credential.
func (e *Engine) putInstance(ctx context.Context, in *store.Instance) error {
	in.Error = e.Redact(in.Error)
	return e.store.PutInstance(ctx, *in)
}

// Redact removes the engine's secrets from s.
func (e *Engine) Redact(s string) string { return auth.Redact(s, e.opt.Secrets) }

// limit runs fns with the engine's concurrency (1 when not parallel) and
// returns their errors joined.
func (e *Engine) limit(fns []func() error) error {
	n := 1
	if e.opt.Parallelize {
		n = e.opt.Parallel
	}
	return limitN(n, fns)
}

// limitN runs fns, at most n at a time, and joins their errors.
func limitN(n int, fns []func() error) error {
	errs := make([]error, len(fns))
	sem := make(chan struct{}, n)
	var wg sync.WaitGroup
	for i, fn := range fns {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			// A panicking backend call must fail its job, not the process
			// that maintains every infrastructure.
			defer func() {
				if v := recover(); v != nil {
					errs[i] = Recovered(v)
				}
			}()
			errs[i] = fn()
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// shuffled returns the implementations in random order: Occopus picks one
// at random among those passing the filter; the rest are fallbacks.
func shuffled(impls []*descr.Impl) []*descr.Impl {
	out := append([]*descr.Impl(nil), impls...)
	rand.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

// sortInstances orders instances by creation time, ties by node id.
func sortInstances(ins []store.Instance) {
	sort.SliceStable(ins, func(i, j int) bool {
		if !ins[i].CreatedAt.Equal(ins[j].CreatedAt) {
			return ins[i].CreatedAt.Before(ins[j].CreatedAt)
		}
		return ins[i].NodeID < ins[j].NodeID
	})
}
