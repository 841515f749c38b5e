package engine

import (
	"fmt"
	"math"
	"sort"

	"github.com/occopus-go/occopus/compile"
	"github.com/occopus-go/occopus/store"
)

// Op is what an action does.
type Op string

const (
	OpDrop   Op = "drop"
	OpCreate Op = "create"
)

// Action is one step of a reconcile pass.
type Action struct {
	Op   Op     `json:"op"`
	Node string `json:"node"`
	// NodeID names the instance dropped; empty for a creation.
	NodeID string `json:"node_id,omitempty"`
	// Level is the node's dependency level (creations run level by level).
	Level  int    `json:"level"`
	Reason string `json:"reason"`
}

func (a Action) String() string {
	if a.Op == OpDrop {
		return fmt.Sprintf("drop   %s %s (%s)", a.Node, a.NodeID, a.Reason)
	}
	return fmt.Sprintf("create %s (level %d, %s)", a.Node, a.Level, a.Reason)
}

// Scaling is the outcome of applying scale requests to a node.
type Scaling struct {
	Target int `json:"target"`
	Min    int `json:"min"`
	Max    int `json:"max"`
	// Victims are node ids or addresses that scale-down requests named.
	Victims []string `json:"victims,omitempty"`
	// Clamped is set when requests asked for a count outside [min, max].
	Clamped string `json:"clamped,omitempty"`
}

// Targets computes each node's target count: the stored target (else min),
// then every pending request in order (absolute ones set it, relative ones
// add to it), clamped to [min, max]. It is pure; the caller stores the
// result and consumes the requests.
func Targets(st *compile.Static, stored map[string]int, reqs []store.ScaleRequest) map[string]Scaling {
	out := make(map[string]Scaling, len(st.Nodes))
	for _, n := range st.Nodes {
		t, ok := stored[n.Name]
		if !ok {
			t = n.Min
		}
		s := Scaling{Min: n.Min, Max: n.Max}
		for _, r := range reqs {
			if r.NodeName != n.Name {
				continue
			}
			// Clamped tells of the last request: an earlier one held to a
			// limit is history once a later one applies.
			s.Clamped = ""
			if r.Set != nil {
				t = *r.Set
			}
			t = addSaturating(t, r.Delta)
			if r.Victim != "" {
				s.Victims = append(s.Victims, r.Victim)
			}
			// Each request is held to [min, max] as it applies, so that
			// requests never pile up past a limit: ten scale-ups at max and
			// one scale-down leave max-1, not max+9.
			t = clampTarget(&s, n, t)
		}
		t = clampTarget(&s, n, t)
		s.Target = t
		out[n.Name] = s
	}
	return out
}

// clampTarget holds t to the node's limits, saying so in s.
func clampTarget(s *Scaling, n *compile.Node, t int) int {
	switch {
	case t < n.Min:
		s.Clamped = fmt.Sprintf("target %d of node %s raised to its minimum %d", t, n.Name, n.Min)
		return n.Min
	case t > n.Max:
		s.Clamped = fmt.Sprintf("target %d of node %s lowered to its maximum %d", t, n.Name, n.Max)
		return n.Max
	}
	return t
}

// addSaturating is a+b held at the ends of int's range: a scale request
// of 2^63-1 on a node at 3 is "as many as allowed", never a wrap-around
// to a negative count.
func addSaturating(a, b int) int {
	c := a + b
	switch {
	case b > 0 && c < a:
		return math.MaxInt
	case b < 0 && c > a:
		return math.MinInt
	}
	return c
}

// Plan is the delta of a reconcile pass, in the order it is carried out:
// drop failed and shut-down instances (auto-heal); drop instances of node
// names no longer described; drop instances above each node's target, those
// named by scale-down requests first, then the newest; then create, level by
// level, up to each target. actual must be refreshed and ordered by
// creation time. Plan is a pure function.
func Plan(st *compile.Static, targets map[string]Scaling, actual []store.Instance) []Action {
	var drops []Action
	alive := map[string][]store.Instance{}
	for _, in := range actual {
		n, described := st.ByName[in.NodeName]
		switch {
		case in.State == store.StateFailed || in.State == store.StateShutdown:
			drops = append(drops, Action{Op: OpDrop, Node: in.NodeName, NodeID: in.NodeID, Level: level(n), Reason: in.State})
		case in.State == store.StateDestroying:
			drops = append(drops, Action{Op: OpDrop, Node: in.NodeName, NodeID: in.NodeID, Level: level(n), Reason: "an earlier destroy did not finish"})
		case !described:
			drops = append(drops, Action{Op: OpDrop, Node: in.NodeName, NodeID: in.NodeID, Reason: "node removed from the description"})
		default:
			alive[in.NodeName] = append(alive[in.NodeName], in)
		}
	}
	sort.SliceStable(drops, func(i, j int) bool { return dropRank(drops[i]) < dropRank(drops[j]) })
	var creates []Action
	for _, n := range st.Nodes {
		s := targets[n.Name]
		ins := alive[n.Name]
		excess := len(ins) - s.Target
		if excess > 0 {
			dropped := map[string]bool{}
			for _, v := range s.Victims {
				for _, in := range ins {
					if excess > 0 && !dropped[in.NodeID] && in.State != store.StateCreating && namedBy(in, v) {
						dropped[in.NodeID] = true
						excess--
						drops = append(drops, Action{Op: OpDrop, Node: n.Name, NodeID: in.NodeID, Level: n.Level, Reason: "scale down (requested)"})
					}
				}
			}
			// Newest first; a creation still in flight is never chosen (its
			// process records the instance when it finishes).
			for i := len(ins) - 1; i >= 0 && excess > 0; i-- {
				if !dropped[ins[i].NodeID] && ins[i].State != store.StateCreating {
					dropped[ins[i].NodeID] = true
					excess--
					drops = append(drops, Action{Op: OpDrop, Node: n.Name, NodeID: ins[i].NodeID, Level: n.Level, Reason: fmt.Sprintf("above target %d", s.Target)})
				}
			}
		}
		for i := len(ins); i < s.Target; i++ {
			creates = append(creates, Action{Op: OpCreate, Node: n.Name, Level: n.Level, Reason: fmt.Sprintf("%d of target %d", i+1, s.Target)})
		}
	}
	sort.SliceStable(creates, func(i, j int) bool { return creates[i].Level < creates[j].Level })
	return append(drops, creates...)
}

// namedBy reports whether a scale-down request's victim (node id or
// address) names the instance.
func namedBy(in store.Instance, victim string) bool {
	return victim != "" && (in.NodeID == victim || in.Address == victim || in.PrivAddress == victim)
}

// Deferred splits scale requests into those a pass applies now and those
// that must wait: a scale-down naming an instance still being created
// waits until it exists (dropping it half-made, or dropping another
// instance in its place, would not be what was asked).
func Deferred(reqs []store.ScaleRequest, actual []store.Instance) (now, later []store.ScaleRequest) {
	for _, r := range reqs {
		wait := false
		for _, in := range actual {
			if in.NodeName == r.NodeName && in.State == store.StateCreating && namedBy(in, r.Victim) {
				wait = true
				break
			}
		}
		if wait {
			later = append(later, r)
		} else {
			now = append(now, r)
		}
	}
	return now, later
}

func level(n *compile.Node) int {
	if n == nil {
		return 0
	}
	return n.Level
}

// dropRank orders heal drops before drops of removed nodes.
func dropRank(a Action) int {
	if a.Reason == "node removed from the description" {
		return 1
	}
	return 0
}
