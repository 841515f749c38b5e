package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/google/uuid"
	"github.com/spf13/cobra"

	"github.com/occopus-go/occopus/compile"
	"github.com/occopus-go/occopus/descr"
	"github.com/occopus-go/occopus/resolve"
)

type renderOpts struct {
	nodes   []string
	infraID string
	nodeIDs []string
	ips     []string
	privIPs []string
}

// RenderOutput is what `occopus render` prints.
type RenderOutput struct {
	InfraID string                  `json:"infra_id"`
	Nodes   map[string]RenderedNode `json:"nodes"`
}

// RenderedNode is one node of the render output.
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

func newRender(e *env) *cobra.Command {
	o := &renderOpts{}
	cmd := &cobra.Command{
		Use:   "render [--nodes FILE]... [--infra-id ID] [--node-id NODE=ID]... [--ip NODE=ADDR]... [--privip NODE=ADDR]... INFRA_FILE",
		Short: "Resolve every node of a description without touching any backend, and print it as JSON",
		Long: `Resolve every node of an infrastructure description as a build would, without
touching any backend or the store, and print JSON:

  {"infra_id": ID, "nodes": {NAME: {"node_id": ID, "implementations": [
      {"resource": {...}, "contextualisation": {...}, "config_management": {...}}]}}}

one entry per implementation that passes the node's filter, fully rendered.
Node types come from the --nodes files, else from the store. Addresses not
given with --ip/--privip are documentation addresses (192.0.2.x and
198.51.100.x), announced on stderr.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			out, err := e.render(cmd, o, args[0])
			if err != nil {
				return err
			}
			b, err := json.MarshalIndent(out, "", "  ")
			if err != nil {
				return err
			}
			fmt.Fprintln(e.stdout, string(b))
			return nil
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&o.nodes, "nodes", nil, "node definition file (repeatable); default: the store")
	f.StringVar(&o.infraID, "infra-id", "", "infrastructure id (a UUID; default: a new one)")
	f.StringArrayVar(&o.nodeIDs, "node-id", nil, "NODE=ID: the node id of a node (a UUID; repeatable)")
	f.StringArrayVar(&o.ips, "ip", nil, "NODE=ADDR: the address getip(NODE) returns (repeatable)")
	f.StringArrayVar(&o.privIPs, "privip", nil, "NODE=ADDR: the address getprivip(NODE) returns (repeatable)")
	return cmd
}

func (e *env) render(cmd *cobra.Command, o *renderOpts, file string) (*RenderOutput, error) {
	cfg, err := e.config()
	if err != nil {
		return nil, err
	}
	in, err := descr.LoadInfra(file, descr.LoadOptions{})
	if err != nil {
		return nil, e.descrFailure(err)
	}
	st, err := compile.Compile(in)
	if err != nil {
		return nil, e.descrFailure(err)
	}
	infraID := o.infraID
	if infraID == "" {
		infraID = uuid.NewString()
	} else if _, err := uuid.Parse(infraID); err != nil {
		return nil, fmt.Errorf("--infra-id %q: not a UUID", infraID)
	}
	nodeIDs, err := nodeFlag(st, "--node-id", o.nodeIDs, func(v string) error {
		_, err := uuid.Parse(v)
		if err != nil {
			return fmt.Errorf("not a UUID")
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	isAddr := func(v string) error {
		if _, err := netip.ParseAddr(v); err != nil {
			return fmt.Errorf("not an IP address")
		}
		return nil
	}
	ips, err := nodeFlag(st, "--ip", o.ips, isAddr)
	if err != nil {
		return nil, err
	}
	privIPs, err := nodeFlag(st, "--privip", o.privIPs, isAddr)
	if err != nil {
		return nil, err
	}
	addrs := docAddresses{infra: st.Name, ip: map[string]string{}, priv: map[string]string{}}
	var defaulted []string
	for i, n := range st.Nodes {
		if _, ok := nodeIDs[n.Name]; !ok {
			nodeIDs[n.Name] = uuid.NewString()
		}
		addrs.ip[n.Name] = ips[n.Name]
		if addrs.ip[n.Name] == "" {
			addrs.ip[n.Name] = fmt.Sprintf("192.0.2.%d", i%254+1)
			defaulted = append(defaulted, n.Name+"="+addrs.ip[n.Name])
		}
		addrs.priv[n.Name] = privIPs[n.Name]
		if addrs.priv[n.Name] == "" {
			addrs.priv[n.Name] = fmt.Sprintf("198.51.100.%d", i%254+1)
		}
	}
	if len(defaulted) > 0 {
		fmt.Fprintf(e.stderr, "render: no --ip for %s; using documentation addresses (private: 198.51.100.x)\n", strings.Join(defaulted, ", "))
	}
	defs, err := e.loadDefs(cmd.Context(), st, o.nodes)
	if err != nil {
		var des descr.Errors
		if errors.As(err, &des) {
			return nil, e.descrFailure(err)
		}
		return nil, err
	}
	out := &RenderOutput{InfraID: infraID, Nodes: map[string]RenderedNode{}}
	var errs descr.Errors
	for _, n := range st.Nodes {
		rn := RenderedNode{NodeID: nodeIDs[n.Name], Implementations: []RenderedImpl{}}
		cands := resolve.Candidates(n, defs[n.Type])
		if len(cands) == 0 {
			errs = append(errs, &descr.Error{Pos: n.Desc.Src.Pos, Path: n.Desc.Path + ".filter",
				Msg: fmt.Sprintf("no implementation of node type %q passes the filter %v", n.Type, n.Filter)})
			continue
		}
		input := resolve.Input{InfraID: infraID, InfraName: st.Name, UserID: st.UserID, NodeID: rn.NodeID, Node: n,
			Addresses: addrs, AllowCmd: cfg.AllowCmd}
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
	}
	if len(errs) > 0 {
		return nil, e.descrFailure(errs)
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

// nodeFlag parses repeated NODE=VALUE flags; an unknown node name or a bad
// value is an error.
func nodeFlag(st *compile.Static, flag string, vals []string, check func(string) error) (map[string]string, error) {
	out := map[string]string{}
	for _, kv := range vals {
		name, v, ok := strings.Cut(kv, "=")
		if !ok || name == "" || v == "" {
			return nil, fmt.Errorf("%s %q: want NODE=VALUE", flag, kv)
		}
		if _, known := st.ByName[name]; !known {
			return nil, fmt.Errorf("%s %q: no node named %q in infrastructure %q", flag, kv, name, st.Name)
		}
		if err := check(v); err != nil {
			return nil, fmt.Errorf("%s %q: %v", flag, kv, err)
		}
		out[name] = v
	}
	return out, nil
}

// docAddresses answers getip & co. for render.
type docAddresses struct {
	infra    string
	ip, priv map[string]string
}

func (a docAddresses) IP(node string) (string, error) {
	if v, ok := a.ip[node]; ok {
		return v, nil
	}
	return "", fmt.Errorf("no node named %q in infrastructure %q", node, a.infra)
}

func (a docAddresses) PrivIP(node string) (string, error) {
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
