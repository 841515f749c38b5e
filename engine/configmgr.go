package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"strings"
	"sync"

	"github.com/occopus-go/occopus/compile"
	"github.com/occopus-go/occopus/configmgr"
	"github.com/occopus-go/occopus/descr"
	"github.com/occopus-go/occopus/resolve"
	"github.com/occopus-go/occopus/store"
	"github.com/occopus-go/occopus/tmpl"
)

// The config manager's part of the reconcile pass (configmgr's lifecycle
// interfaces): prepare the infrastructure once per pass before the first
// registration, register each instance before its VM is created, ask
// whether it converged as part of readiness, drop it after its VM, drop
// the infrastructure on destroy.
//
// The store keeps no config_management section per instance, so later
// calls rebuild it from the stored description: the instance's
// implementation's section rendered with the instance's template data
// (without addresses and without cmd(), which a poll must not run again).
// For an instance whose node left the description, its node is dropped at
// the config managers the description still uses.

// maxConfigManagers bounds the cache of managers (one per rendered
// section and credentials); the oldest is dropped first.
const maxConfigManagers = 64

// cmCache keeps the config managers built, so that a pass's calls share
// one client per server.
type cmCache struct {
	mu    sync.Mutex
	m     map[string]configmgr.Manager
	order []string
}

// configManager returns the manager of a rendered section with the
// credentials auth_data has for it.
func (e *Engine) configManager(section map[string]any) (configmgr.Manager, error) {
	authData, authErr := e.cmCredentials(section)
	key, err := json.Marshal([]any{section, authData})
	if err != nil {
		return nil, fmt.Errorf("config_management: %w", err)
	}
	c := &e.cms
	c.mu.Lock()
	defer c.mu.Unlock()
	if m, ok := c.m[string(key)]; ok {
		return m, nil
	}
	// Constructors do not contact their server (configmgr.Plugin.New).
	m, err := configmgr.New(configmgr.Config{Section: section, Auth: authData, Limiter: e.limiter, Logger: e.opt.Log})
	if err != nil {
		if authErr != nil {
			err = fmt.Errorf("%w (%v)", err, authErr)
		}
		return nil, err
	}
	if c.m == nil {
		c.m = map[string]configmgr.Manager{}
	}
	if len(c.order) >= maxConfigManagers {
		delete(c.m, c.order[0])
		c.order = c.order[1:]
	}
	c.m[string(key)] = m
	c.order = append(c.order, string(key))
	return m, nil
}

// cmCredentials selects the auth_data of a config_management section; a
// miss is nil, with the selector's explanation for the plugin's refusal.
func (e *Engine) cmCredentials(section map[string]any) (map[string]any, error) {
	if e.opt.Auth == nil {
		typ, _ := section["type"].(string)
		return nil, fmt.Errorf("no credentials for config_management type %q: no auth_data file is configured (--auth_data_path or $OCCOPUS_HOME/auth_data.yaml)", typ)
	}
	return e.opt.Auth.Select(descr.SectionConfigManagement, section)
}

// prepared remembers, for one pass, which managers prepared the
// infrastructure (and how that went), so that it happens once per pass.
type prepared struct {
	mu   sync.Mutex
	done map[string]*prepareOnce
}

type prepareOnce struct {
	once sync.Once
	err  error
}

// prepareInfra runs PrepareInfra of a manager once in this pass.
func (v *view) prepareInfra(ctx context.Context, p configmgr.InfraPreparer, m configmgr.Manager) error {
	v.prepared.mu.Lock()
	if v.prepared.done == nil {
		v.prepared.done = map[string]*prepareOnce{}
	}
	po, ok := v.prepared.done[m.String()]
	if !ok {
		po = &prepareOnce{}
		v.prepared.done[m.String()] = po
	}
	v.prepared.mu.Unlock()
	po.once.Do(func() { po.err = p.PrepareInfra(ctx, v.inf.ID) })
	return po.err
}

// registerNode registers a new instance with its config manager before
// its VM is created: the infrastructure first (once per pass), then the
// node with its merged attributes and dependency mappings.
func (e *Engine) registerNode(ctx context.Context, v *view, n *compile.Node, r *resolve.Resolved, nodeID string, addrs tmpl.Addresses) error {
	if r.ConfigManagement == nil {
		return nil
	}
	m, err := e.configManager(r.ConfigManagement)
	if err != nil {
		return fmt.Errorf("config_management: %w", err)
	}
	if p, ok := m.(configmgr.InfraPreparer); ok {
		if err := v.prepareInfra(ctx, p, m); err != nil {
			return err
		}
	}
	reg, ok := m.(configmgr.Registrar)
	if !ok {
		return nil
	}
	attrs, err := e.nodeAttributes(v.inf, n, r, addrs)
	if err != nil {
		return err
	}
	return reg.Register(ctx, configmgr.Node{Ref: configmgr.Ref{InfraID: v.inf.ID, NodeID: nodeID, Name: n.Name},
		Section: r.ConfigManagement, Attributes: attrs, Inbound: n.Inbound})
}

// nodeAttributes are a node's attributes as Occopus merges them: those
// of the implementation's contextualisation section (rendered already),
// overridden key by key by the node's own in the description, rendered
// here with the instance's data.
func (e *Engine) nodeAttributes(inf store.Infra, n *compile.Node, r *resolve.Resolved, addrs tmpl.Addresses) (map[string]any, error) {
	out := map[string]any{}
	if a, ok := r.Contextualisation["attributes"].(map[string]any); ok {
		maps.Copy(out, a)
	}
	allow, network := e.cmdPolicy(inf)
	opt := tmpl.Options{AllowCmd: allow, FromNetwork: network, Addresses: addrs}
	for k, v := range n.Attributes {
		rv, err := renderValue(v, r.Data, opt)
		if err != nil {
			return nil, fmt.Errorf("node %s: attributes.%s: %w", n.Name, k, err)
		}
		out[k] = rv
	}
	return out, nil
}

// renderValue renders every template string inside v.
func renderValue(v any, data tmpl.Data, opt tmpl.Options) (any, error) {
	switch v := v.(type) {
	case string:
		if !tmpl.HasTemplate(v) {
			return v, nil
		}
		return tmpl.Render(v, data, opt)
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, x := range v {
			rx, err := renderValue(x, data, opt)
			if err != nil {
				return nil, err
			}
			out[k] = rx
		}
		return out, nil
	case []any:
		out := make([]any, len(v))
		for i, x := range v {
			rx, err := renderValue(x, data, opt)
			if err != nil {
				return nil, err
			}
			out[i] = rx
		}
		return out, nil
	}
	return v, nil
}

// valueRenderer is a configmgr.Renderer over one instance's data.
type valueRenderer struct {
	data tmpl.Data
	opt  tmpl.Options
}

func (r valueRenderer) Render(path string, v any) (any, error) {
	out, err := renderValue(v, r.data, r.opt)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return out, nil
}

// lazyAddresses answers getip & co. from the address book, read from the
// store the first time a template asks (most sections never do).
type lazyAddresses struct {
	once sync.Once
	load func() (*addresses, error)
	book *addresses
	err  error
}

func (l *lazyAddresses) get() (*addresses, error) {
	l.once.Do(func() { l.book, l.err = l.load() })
	return l.book, l.err
}

func (l *lazyAddresses) IP(node string) (string, error) {
	b, err := l.get()
	if err != nil {
		return "", err
	}
	return b.IP(node)
}

func (l *lazyAddresses) PrivIP(node string) (string, error) {
	b, err := l.get()
	if err != nil {
		return "", err
	}
	return b.PrivIP(node)
}

func (l *lazyAddresses) AllIPs(node string) ([]string, error) {
	b, err := l.get()
	if err != nil {
		return nil, err
	}
	return b.AllIPs(node)
}

var _ tmpl.Addresses = (*lazyAddresses)(nil)

// lazyBook is the address book of v, read when first needed.
func (e *Engine) lazyBook(ctx context.Context, v *view) *lazyAddresses {
	return &lazyAddresses{load: func() (*addresses, error) { return e.addressBook(ctx, v) }}
}

// sectionFor rebuilds the rendered config_management section of an
// implementation for one instance (nodeID "" for the infrastructure);
// nil when the implementation has none.
func sectionFor(v *view, n *compile.Node, im *descr.Impl, nodeID string, addrs tmpl.Addresses) (map[string]any, error) {
	sec := im.Section(descr.SectionConfigManagement)
	if sec == nil {
		return nil, nil
	}
	typ, _ := sec["type"].(string)
	res, err := configmgr.Get(typ)
	if err != nil {
		return nil, err
	}
	data := resolve.Data(resolve.Input{InfraID: v.inf.ID, InfraName: v.st.Name, UserID: v.st.UserID, NodeID: nodeID, Node: n}, im)
	out, _, err := res.Resolve(descr.SectionConfigManagement, sec, valueRenderer{data: data, opt: tmpl.Options{Addresses: addrs}})
	if err != nil {
		return nil, fmt.Errorf("%s.config_management: %w", im.Path(), err)
	}
	return out, nil
}

// instanceCM is the config manager of a recorded instance; nil when its
// implementation has none (or its node left the description).
func (e *Engine) instanceCM(ctx context.Context, v *view, in *store.Instance) (configmgr.Manager, error) {
	n := v.st.ByName[in.NodeName]
	im := implOf(v, in)
	if n == nil || im == nil {
		return nil, nil
	}
	sec, err := sectionFor(v, n, im, in.NodeID, e.lazyBook(ctx, v))
	if err != nil || sec == nil {
		return nil, err
	}
	m, err := e.configManager(sec)
	if err != nil {
		return nil, fmt.Errorf("config_management: %w", err)
	}
	return m, nil
}

// converged asks an instance's config manager whether the node has been
// configured. It answers true when there is nothing to ask, and otherwise
// why not: the manager's word, or the failed question.
func (e *Engine) converged(ctx context.Context, v *view, in *store.Instance) (bool, string) {
	m, err := e.instanceCM(ctx, v, in)
	if err != nil {
		return false, err.Error()
	}
	rep, ok := m.(configmgr.Reporter)
	if !ok {
		return true, ""
	}
	st, err := rep.Converged(ctx, refOf(*in))
	switch {
	case err != nil:
		return false, err.Error()
	case !st.Converged:
		return false, st.Detail
	}
	return true, ""
}

// allCMs lists the distinct config managers an infrastructure's
// description uses, each section rendered for its node (nodeID ""). Those
// that cannot be rebuilt are returned as errors, to be reported.
func (e *Engine) allCMs(ctx context.Context, v *view) ([]configmgr.Manager, []error) {
	seen := map[string]bool{}
	var out []configmgr.Manager
	var errs []error
	book := e.lazyBook(ctx, v)
	for _, n := range v.st.Nodes {
		for _, im := range v.defs[n.Type] {
			sec, err := sectionFor(v, n, im, "", book)
			if err == nil && sec == nil {
				continue
			}
			var m configmgr.Manager
			if err == nil {
				m, err = e.configManager(sec)
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("node %s: %w", n.Name, err))
				continue
			}
			if !seen[m.String()] {
				seen[m.String()] = true
				out = append(out, m)
			}
		}
	}
	return out, errs
}

func refOf(in store.Instance) configmgr.Ref {
	return configmgr.Ref{InfraID: in.InfraID, NodeID: in.NodeID, Name: in.NodeName}
}

// viewOf loads the view of an infrastructure for calls outside a pass
// (drops, destroy).
func (e *Engine) viewOf(ctx context.Context, inf store.Infra) (*view, error) {
	st, err := staticOf(inf)
	if err != nil {
		return nil, err
	}
	defs, err := e.defs(ctx, st)
	if err != nil {
		return nil, err
	}
	return &view{inf: inf, st: st, defs: defs}, nil
}

// dropAtConfigManager drops a destroyed instance's node at its config
// manager (for a node gone from the description: at every manager the
// description uses; "already gone" is success there). What cannot be
// rebuilt is reported as an event and a warning, not as a failed drop:
// the VM is gone, and a destroy must be able to finish.
func (e *Engine) dropAtConfigManager(ctx context.Context, in store.Instance) error {
	inf, err := e.store.Infra(ctx, in.InfraID)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	} else if err != nil {
		return err
	}
	v, err := e.viewOf(ctx, inf)
	if err != nil {
		e.cmWarning(ctx, in, fmt.Errorf("cannot tell its config manager: %w", err))
		return nil
	}
	var mgrs []configmgr.Manager
	var errs []error
	if m, err := e.instanceCM(ctx, v, &in); err != nil {
		errs = append(errs, err)
	} else if m != nil {
		mgrs = append(mgrs, m)
	} else if v.st.ByName[in.NodeName] == nil {
		mgrs, errs = e.allCMs(ctx, v)
	}
	for _, err := range errs {
		e.cmWarning(ctx, in, err)
	}
	var failed []error
	for _, m := range mgrs {
		if d, ok := m.(configmgr.NodeDropper); ok {
			if err := d.DropNode(ctx, refOf(in)); err != nil {
				failed = append(failed, err)
			}
		}
	}
	return errors.Join(failed...)
}

// dropInfraAtConfigManagers drops the infrastructure at every config
// manager its description uses (destroy).
func (e *Engine) dropInfraAtConfigManagers(ctx context.Context, inf store.Infra) error {
	v, err := e.viewOf(ctx, inf)
	if err != nil {
		e.cmWarning(ctx, store.Instance{InfraID: inf.ID}, fmt.Errorf("cannot tell its config managers: %w", err))
		return nil
	}
	mgrs, errs := e.allCMs(ctx, v)
	for _, err := range errs {
		e.cmWarning(ctx, store.Instance{InfraID: inf.ID}, err)
	}
	var failed []error
	for _, m := range mgrs {
		if d, ok := m.(configmgr.InfraDropper); ok {
			if err := d.DropInfra(ctx, inf.ID); err != nil {
				failed = append(failed, fmt.Errorf("infrastructure %s at %s: %w", inf.ID, m, err))
			}
		}
	}
	return errors.Join(failed...)
}

// cmWarning records what could not be done at a config manager.
func (e *Engine) cmWarning(ctx context.Context, in store.Instance, err error) {
	e.log.Warn("config manager", "infra", in.InfraID, "node", in.NodeName, "node_id", in.NodeID, "err", err)
	e.event(ctx, store.Event{InfraID: in.InfraID, NodeName: in.NodeName, NodeID: in.NodeID, Kind: "configmgr.warning",
		Message: err.Error()})
}

// waits collects what a starting instance is waiting for: its backend,
// its health checks, its config manager.
type waits struct {
	what, why []string
}

func (w *waits) add(what, why string) {
	w.what = append(w.what, what)
	w.why = append(w.why, why)
}

func (w waits) empty() bool { return len(w.what) == 0 }

// reason is why, for a failure ("health checks failing: ...; ...").
func (w waits) reason() string { return strings.Join(w.why, "; ") }

// pending is the instance's message while it waits: "waiting for the
// health checks and the config manager: <why>; <why>".
func (w waits) pending() string {
	return "waiting for " + strings.Join(w.what, " and ") + ": " + w.reason()
}

// waitingFor is the head of a pending message (what is waited for),
// "" for any other message.
func waitingFor(msg string) string {
	if !strings.HasPrefix(msg, "waiting for ") {
		return ""
	}
	head, _, _ := strings.Cut(msg, ": ")
	return head
}

// waitingEvent records an "instance.waiting" event when a pending
// instance starts waiting for something else (the backend, then the
// health checks, then the config manager), so that the event log says
// which of them a build is waiting for. State changes carry their own
// message in "instance.state".
func (e *Engine) waitingEvent(ctx context.Context, before, after store.Instance) {
	if before.State != store.StatePending || after.State != store.StatePending {
		return
	}
	head := waitingFor(after.Error)
	if head == "" || head == waitingFor(before.Error) {
		return
	}
	e.event(ctx, store.Event{InfraID: after.InfraID, NodeName: after.NodeName, NodeID: after.NodeID, Kind: "instance.waiting",
		From: store.StatePending, To: store.StatePending, Message: after.Error})
}
