package rest

import (
	"encoding/json"
	"net/http"
	"regexp"
	"sort"
	"sync"
	"time"

	"github.com/occopus-go/occopus"
	"github.com/occopus-go/occopus/auth"
	"github.com/occopus-go/occopus/health"
	"github.com/occopus-go/occopus/store"
)

// maxProbeNodes bounds the nodes whose last health-check results the
// service remembers (infrastructure, node); the oldest entry goes first.
const maxProbeNodes = 10000

// sinceWindow is how many of an infrastructure's newest events the detail
// view reads to tell how long each instance has been in its state.
const sinceWindow = 2000

// dashState is what the service remembers for the dashboard beyond the
// store: the last result of each health-check primitive per node (the
// store keeps none; they are refreshed by every pass).
type dashState struct {
	mu     sync.Mutex
	probes map[probeKey]*probeEntry
	unsub  func()
}

type probeKey struct{ infra, node string }

type probeEntry struct {
	at      time.Time
	results map[string]health.Result // by primitive
}

func newDashState(m *occopus.Manager) *dashState {
	d := &dashState{probes: map[probeKey]*probeEntry{}}
	d.unsub = m.Subscribe(occopus.Observer{Probe: d.probe})
	return d
}

func (d *dashState) close() { d.unsub() }

func (d *dashState) probe(infra, node string, r occopus.ProbeResult) {
	d.mu.Lock()
	defer d.mu.Unlock()
	k := probeKey{infra, node}
	e := d.probes[k]
	if e == nil {
		if len(d.probes) >= maxProbeNodes {
			d.evictOldest()
		}
		e = &probeEntry{results: map[string]health.Result{}}
		d.probes[k] = e
	}
	e.at = r.Time
	e.results[r.Primitive] = r
}

func (d *dashState) evictOldest() {
	var oldest probeKey
	var at time.Time
	first := true
	for k, e := range d.probes {
		if first || e.at.Before(at) {
			oldest, at, first = k, e.at, false
		}
	}
	delete(d.probes, oldest)
}

// health returns the last results of a node, by primitive name.
func (d *dashState) health(infra, node string) []health.Result {
	d.mu.Lock()
	defer d.mu.Unlock()
	e := d.probes[probeKey{infra, node}]
	out := []health.Result{}
	if e == nil {
		return out
	}
	for _, r := range e.results {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Primitive < out[j].Primitive })
	return out
}

// Overview is the body of GET /overview.
type Overview struct {
	Infrastructures []*occopus.Status `json:"infrastructures"`
}

// overview: GET /overview, the status of every infrastructure at once
// (the dashboard's first view), oldest first.
func (s *Server) overview(w http.ResponseWriter, r *http.Request) {
	infras, err := s.m.List(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := Overview{Infrastructures: make([]*occopus.Status, 0, len(infras))}
	for _, inf := range infras {
		// The list has the records: only the instances are read per
		// infrastructure.
		ins, err := s.m.Store().Instances(r.Context(), inf.ID)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		st := &occopus.Status{InfraID: inf.ID, Name: inf.Name, Attached: inf.Attached, Origin: inf.Origin,
			CreatedAt: inf.CreatedAt, UpdatedAt: inf.UpdatedAt, Instances: map[string]int{}}
		if inf.LastPass.Result != "" {
			lp := inf.LastPass
			lp.Error = s.redact(lp.Error)
			st.LastPass = &lp
		}
		for _, in := range ins {
			st.Instances[in.State]++
		}
		out.Infrastructures = append(out.Infrastructures, st)
	}
	s.writeJSON(w, http.StatusOK, out)
}

// Detail is the body of GET /infrastructures/{id}/detail: the status, the
// graph and every instance with what it was made from.
type Detail struct {
	*occopus.Status
	Levels [][]string   `json:"levels"`
	Nodes  []DetailNode `json:"nodes"`
	// Members are the instances, oldest first.
	Members []DetailInstance `json:"members"`
}

// DetailNode is one node of a Detail.
type DetailNode struct {
	occopus.TopologyNode
	// Health holds the last result of each health-check primitive of the
	// node's instances, as this service last saw them (empty until a
	// pass checked them, and after a restart of the service).
	Health []health.Result `json:"health"`
}

// DetailInstance is one instance of a Detail.
type DetailInstance struct {
	Node   string `json:"node"`
	NodeID string `json:"node_id"`
	State  string `json:"state"`
	// Since is when the instance entered State (the event that says so,
	// else its creation).
	Since       time.Time `json:"since"`
	Address     string    `json:"address,omitempty"`
	PrivAddress string    `json:"priv_address,omitempty"`
	Backend     string    `json:"backend"`
	// Impl is the index of the implementation chosen in the node
	// definition.
	Impl  int    `json:"impl"`
	Error string `json:"error,omitempty"`
	// Resource is the rendered resource section, its secrets (values of
	// auth_data and keys that name one) shown as [REDACTED].
	Resource  any       `json:"resource,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

// detail: GET /infrastructures/{id}/detail.
func (s *Server) detail(w http.ResponseWriter, r *http.Request) {
	ctx, id := r.Context(), r.PathValue("id")
	st, err := s.m.Status(ctx, id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if st.LastPass != nil {
		st.LastPass.Error = s.redact(st.LastPass.Error)
	}
	topo, err := s.m.Topology(ctx, id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	ins, err := s.m.Instances(ctx, id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	evs, err := store.TailEvents(ctx, s.m.Store(), id, sinceWindow)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	since := map[string]store.Event{} // node id: its last state event
	for _, ev := range evs {
		if ev.Kind == "instance.state" && ev.NodeID != "" {
			since[ev.NodeID] = ev
		}
	}
	d := Detail{Status: st, Levels: topo.Levels, Nodes: make([]DetailNode, 0, len(topo.Nodes)), Members: make([]DetailInstance, 0, len(ins))}
	for _, n := range topo.Nodes {
		d.Nodes = append(d.Nodes, DetailNode{TopologyNode: n, Health: s.dash.health(id, n.Name)})
	}
	for _, in := range ins {
		di := DetailInstance{Node: in.NodeName, NodeID: in.NodeID, State: in.State, Since: in.CreatedAt, Address: in.Address,
			PrivAddress: in.PrivAddress, Backend: in.Backend, Impl: in.Impl, Error: s.redact(in.Error), CreatedAt: in.CreatedAt}
		if ev, ok := since[in.NodeID]; ok && ev.To == in.State {
			di.Since = ev.Time
		}
		if len(in.Resource) > 0 {
			var v any
			if json.Unmarshal(in.Resource, &v) == nil {
				di.Resource = redactValue(v, s.cfg.Secrets)
			}
		}
		d.Members = append(d.Members, di)
	}
	s.writeJSON(w, http.StatusOK, d)
}

// secretKey matches the keys of a resource section whose values are
// credentials whatever auth_data says.
var secretKey = regexp.MustCompile(`(?i)(password|passwd|secret|token|credential|private_?key|access_?key|api_?key|auth)`)

// redactValue replaces the values of secret keys, and every secret of
// auth_data inside strings, with [REDACTED].
func redactValue(v any, secrets []string) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, val := range x {
			if secretKey.MatchString(k) {
				out[k] = auth.Redacted
				continue
			}
			out[k] = redactValue(val, secrets)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, val := range x {
			out[i] = redactValue(val, secrets)
		}
		return out
	case string:
		return auth.Redact(x, secrets)
	}
	return v
}
