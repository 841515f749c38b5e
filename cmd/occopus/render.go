package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/google/uuid"
	"github.com/spf13/cobra"

	"github.com/occopus-go/occopus"
	"github.com/occopus-go/occopus/descr"
)

type renderOpts struct {
	nodes   []string
	infraID string
	nodeIDs []string
	ips     []string
	privIPs []string
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
		Example: "  occopus render --nodes nodes/node_definitions.yaml --ip receiver=10.0.0.5 infra-docker-ping.yaml",
		Args:    needArgs("INFRA_FILE"),
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

func (e *env) render(cmd *cobra.Command, o *renderOpts, file string) (*occopus.Rendered, error) {
	cfg, err := e.config()
	if err != nil {
		return nil, err
	}
	in, err := descr.LoadInfra(file, e.loadOptions())
	if err != nil {
		return nil, e.descrFailure(err)
	}
	req := occopus.RenderRequest{Infra: in, InfraID: o.infraID}
	if o.infraID != "" {
		if _, err := uuid.Parse(o.infraID); err != nil {
			return nil, fmt.Errorf("--infra-id %q: not a UUID", o.infraID)
		}
	}
	isUUID := func(v string) error {
		if _, err := uuid.Parse(v); err != nil {
			return fmt.Errorf("not a UUID")
		}
		return nil
	}
	isAddr := func(v string) error {
		if _, err := netip.ParseAddr(v); err != nil {
			return fmt.Errorf("not an IP address")
		}
		return nil
	}
	for _, f := range []struct {
		flag  string
		vals  []string
		check func(string) error
		dst   *map[string]string
	}{{"--node-id", o.nodeIDs, isUUID, &req.NodeIDs}, {"--ip", o.ips, isAddr, &req.IPs}, {"--privip", o.privIPs, isAddr, &req.PrivIPs}} {
		if *f.dst, err = nodeFlag(in, f.flag, f.vals, f.check); err != nil {
			return nil, err
		}
	}
	var errs descr.Errors
	for _, f := range o.nodes {
		defs, err := descr.LoadNodeDefs(f, e.loadOptions())
		if err != nil {
			errs = append(errs, descr.AsErrors(err)...)
			continue
		}
		req.NodeDefs = append(req.NodeDefs, defs)
	}
	if len(errs) > 0 {
		return nil, e.descrFailure(errs)
	}
	opt := e.managerOptions(cfg, nil)
	if len(o.nodes) == 0 {
		// Node types come from the store only when no file gives them.
		st, err := e.openStore(cmd.Context(), cfg)
		if err != nil {
			return nil, err
		}
		defer st.Close()
		opt.Store = st
	}
	m, err := occopus.New(opt)
	if err != nil {
		return nil, err
	}
	defer m.Close()
	out, err := m.Render(cmd.Context(), req)
	if err != nil {
		var des descr.Errors
		if errors.As(err, &des) {
			return nil, e.descrFailure(err)
		}
		return nil, err
	}
	if len(out.Defaulted) > 0 {
		fmt.Fprintf(e.stderr, "render: no --ip for %s; using documentation addresses (private: 198.51.100.x)\n", strings.Join(out.Defaulted, ", "))
	}
	return out, nil
}

// nodeFlag parses repeated NODE=VALUE flags; an unknown node name or a bad
// value is an error.
func nodeFlag(in *descr.Infra, flag string, vals []string, check func(string) error) (map[string]string, error) {
	out := map[string]string{}
	for _, kv := range vals {
		name, v, ok := strings.Cut(kv, "=")
		if !ok || name == "" || v == "" {
			return nil, fmt.Errorf("%s %q: want NODE=VALUE", flag, kv)
		}
		if !slices.ContainsFunc(in.Nodes, func(n *descr.NodeDesc) bool { return n.Name == name }) {
			return nil, fmt.Errorf("%s %q: no node named %q in infrastructure %q", flag, kv, name, in.Name)
		}
		if err := check(v); err != nil {
			return nil, fmt.Errorf("%s %q: %v", flag, kv, err)
		}
		out[name] = v
	}
	return out, nil
}
