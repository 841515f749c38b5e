package occopus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"strings"

	"github.com/google/uuid"

	"github.com/occopus-go/occopus/compile"
	"github.com/occopus-go/occopus/descr"
	"github.com/occopus-go/occopus/engine"
	"github.com/occopus-go/occopus/resolve"
	"github.com/occopus-go/occopus/store"
)

// RenderRequest asks for every node of a description resolved as a build
// would resolve it, without touching any backend.
type RenderRequest struct {
	Infra *descr.Infra
	// NodeDefs are node definition files; node types found in none of them
	// come from the store (an error when there is no store).
	NodeDefs []*descr.NodeDefs
	// InfraID is the infrastructure id the templates see; "" means a new
	// UUID.
	InfraID string
	// NodeIDs, IPs and PrivIPs give, per node name, the node id and the
	// addresses getip()/getprivip() return. Nodes without an address get
	// documentation addresses (192.0.2.x, 198.51.100.x), listed in
	// Rendered.Defaulted.
	NodeIDs, IPs, PrivIPs map[string]string
}

// Rendered is what `occopus render` prints.
type Rendered struct {
	InfraID string                  `json:"infra_id"`
	Nodes   map[string]RenderedNode `json:"nodes"`
	// Defaulted lists "NODE=ADDR" for the nodes given a documentation
	// address because the request had none.
	Defaulted []string `json:"-"`
	// Warnings are what may fail at build time though it renders here: a
	// node using the address of a node it does not depend on.
	Warnings descr.Errors `json:"-"`
	// Source says where the node definitions came from.
	Source string `json:"-"`
}

// RenderedNode is one node of a Rendered description.
type RenderedNode struct {
	NodeID          string         `json:"node_id"`
	Implementations []RenderedImpl `json:"implementations"`
}

// RenderedImpl is one implementation that passed the node's filter.
type RenderedImpl struct {
	Resource          map[string]any `json:"resource"`
	Contextualisation map[string]any `json:"contextualisation,omitempty"`
	ConfigManagement  map[string]any `json:"config_management,omitempty"`
}

// Render resolves every node of a description: implementation filter,
// variables, templates, config manager and contextualisation. Problems
// are descr.Errors naming file, line and key; an unknown node name in the
// request's maps wraps ErrUnknownNode; an id that is not a UUID or an
// address that is not an IP wraps ErrInvalid.
func (m *Manager) Render(ctx context.Context, req RenderRequest) (*Rendered, error) {
	st, err := compile.Compile(req.Infra)
	if err != nil {
		return nil, err
	}
	infraID := req.InfraID
	if infraID == "" {
		infraID = uuid.NewString()
	} else if _, err := uuid.Parse(infraID); err != nil {
		return nil, fmt.Errorf("%w: infrastructure id %q is not a UUID", ErrInvalid, infraID)
	}
	for what, vals := range map[string]map[string]string{"node id": req.NodeIDs, "address": req.IPs, "private address": req.PrivIPs} {
		for name := range vals {
			if _, ok := st.ByName[name]; !ok {
				return nil, fmt.Errorf("%w: %s for %q: no node named %q in infrastructure %q", ErrUnknownNode, what, name, name, st.Name)
			}
		}
	}
	for name, id := range req.NodeIDs {
		if _, err := uuid.Parse(id); err != nil {
			return nil, fmt.Errorf("%w: node id %q of %s is not a UUID", ErrInvalid, id, name)
		}
	}
	for _, vals := range []map[string]string{req.IPs, req.PrivIPs} {
		for name, a := range vals {
			if _, err := netip.ParseAddr(a); err != nil {
				return nil, fmt.Errorf("%w: address %q of %s is not an IP address", ErrInvalid, a, name)
			}
		}
	}
	out := &Rendered{InfraID: infraID, Nodes: map[string]RenderedNode{}}
	nodeIDs := map[string]string{}
	addrs := docAddresses{infra: st.Name, ip: map[string]string{}, priv: map[string]string{}}
	for i, n := range st.Nodes {
		nodeIDs[n.Name] = req.NodeIDs[n.Name]
		if nodeIDs[n.Name] == "" {
			nodeIDs[n.Name] = uuid.NewString()
		}
		addrs.ip[n.Name] = req.IPs[n.Name]
		if addrs.ip[n.Name] == "" {
			addrs.ip[n.Name] = fmt.Sprintf("192.0.2.%d", i%254+1)
			out.Defaulted = append(out.Defaulted, n.Name+"="+addrs.ip[n.Name])
		}
		addrs.priv[n.Name] = req.PrivIPs[n.Name]
		if addrs.priv[n.Name] == "" {
			addrs.priv[n.Name] = fmt.Sprintf("198.51.100.%d", i%254+1)
		}
	}
	defs, err := m.renderDefs(ctx, st, req.NodeDefs)
	if err != nil {
		return nil, err
	}
	out.Source = "the store's node definitions"
	if len(req.NodeDefs) > 0 {
		names := make([]string, len(req.NodeDefs))
		for i, f := range req.NodeDefs {
			names[i] = f.File
		}
		out.Source = "the node definitions of " + strings.Join(names, ", ")
	}
	var errs descr.Errors
	for _, n := range st.Nodes {
		rn := RenderedNode{NodeID: nodeIDs[n.Name], Implementations: []RenderedImpl{}}
		cands := resolve.Candidates(n, defs[n.Type])
		if len(cands) == 0 {
			pos := n.Desc.Src.Pos
			if f := n.Desc.Src.Get("filter"); f != nil {
				pos = f.Pos
			}
			var have []string
			for _, im := range defs[n.Type] {
				b, _ := json.Marshal(im.Section("resource"))
				have = append(have, string(b))
			}
			want, _ := json.Marshal(n.Filter)
			errs = append(errs, &descr.Error{Pos: pos, Path: n.Desc.Path + ".filter",
				Msg: fmt.Sprintf("no implementation of node type %q passes the filter %s (its %d implementation(s): %s)", n.Type, want, len(have), strings.Join(have, "; "))})
			continue
		}
		addrs.used = map[string]bool{}
		input := resolve.Input{InfraID: infraID, InfraName: st.Name, UserID: st.UserID, NodeID: rn.NodeID, Node: n,
			Addresses: addrs, AllowCmd: m.opt.AllowCmd}
		for _, im := range cands {
			r, err := resolve.Resolve(input, im)
			if err != nil {
				de := resolveError(err)
				de.Msg += fmt.Sprintf(" (rendering node %s)", n.Name)
				errs = append(errs, de)
				continue
			}
			rn.Implementations = append(rn.Implementations, RenderedImpl{
				Resource: r.Resource, Contextualisation: r.Contextualisation, ConfigManagement: r.ConfigManagement,
			})
		}
		out.Nodes[n.Name] = rn
		for _, used := range sortedSet(addrs.used) {
			if _, known := st.ByName[used]; !known || used == n.Name || dependsOn(st, n.Name, used) {
				continue
			}
			out.Warnings = append(out.Warnings, &descr.Error{Pos: n.Desc.Src.Pos, Path: n.Desc.Path, Warning: true,
				Msg: fmt.Sprintf("node %s uses the address of node %s (getip, getprivip or getipall) but does not depend on it: %s may have no address yet when %s is made (add the dependency [%s, %s])", n.Name, used, used, n.Name, n.Name, used)})
		}
	}
	if err := errs.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

func resolveError(err error) *descr.Error {
	var re *resolve.Error
	if errors.As(err, &re) {
		return &descr.Error{Pos: re.Pos, Path: re.Path, Msg: re.Err.Error()}
	}
	return &descr.Error{Msg: err.Error()}
}

// renderDefs gathers the implementations of the types a description
// uses: from the given files, else from the store. A type found nowhere
// is an error naming the node that uses it.
func (m *Manager) renderDefs(ctx context.Context, st *compile.Static, files []*descr.NodeDefs) (map[string][]*descr.Impl, error) {
	out := map[string][]*descr.Impl{}
	for _, f := range files {
		for _, t := range f.Types {
			out[t] = f.Impls[t]
		}
	}
	var errs descr.Errors
	for _, n := range st.Nodes {
		if _, ok := out[n.Type]; ok {
			continue
		}
		if len(files) == 0 && m.opt.Store != nil {
			impls, err := engine.Implementations(ctx, m.opt.Store, n.Type)
			if err == nil {
				out[n.Type] = impls
				continue
			}
			if !errors.Is(err, store.ErrNotFound) {
				return nil, err
			}
		}
		where := "in the store (import it with `occopus import FILE`)"
		if len(files) > 0 {
			known := make([]string, 0, len(out))
			for t := range out {
				known = append(known, t)
			}
			sort.Strings(known)
			names := make([]string, len(files))
			for i, f := range files {
				names[i] = f.File
			}
			where = fmt.Sprintf("in %s (types there: %s)", strings.Join(names, ", "), strings.Join(known, ", "))
		}
		errs = append(errs, &descr.Error{Pos: n.Desc.Src.Get("type").Pos, Path: n.Desc.Path + ".type",
			Msg: fmt.Sprintf("node type %q has no definition %s", n.Type, where)})
	}
	if err := errs.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// docAddresses answers getip & co. for Render.
type docAddresses struct {
	infra    string
	ip, priv map[string]string
	// used collects the node names asked for, to tell a node that uses an
	// address it does not depend on.
	used map[string]bool
}

func (a docAddresses) IP(node string) (string, error) {
	if a.used != nil {
		a.used[node] = true
	}
	if v, ok := a.ip[node]; ok {
		return v, nil
	}
	return "", fmt.Errorf("no node named %q in infrastructure %q", node, a.infra)
}

func (a docAddresses) PrivIP(node string) (string, error) {
	if a.used != nil {
		a.used[node] = true
	}
	if v, ok := a.priv[node]; ok {
		return v, nil
	}
	return "", fmt.Errorf("no node named %q in infrastructure %q", node, a.infra)
}

func (a docAddresses) AllIPs(node string) ([]string, error) {
	v, err := a.IP(node)
	if err != nil {
		return nil, err
	}
	return []string{v}, nil
}

func sortedSet(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// dependsOn reports whether node from needs node to, directly or through
// other nodes.
func dependsOn(st *compile.Static, from, to string) bool {
	seen := map[string]bool{}
	var walk func(string) bool
	walk = func(n string) bool {
		if seen[n] {
			return false
		}
		seen[n] = true
		for _, d := range st.ByName[n].DependsOn {
			if d == to || walk(d) {
				return true
			}
		}
		return false
	}
	return walk(from)
}
