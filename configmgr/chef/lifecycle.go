package chef

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"sort"
	"strings"

	gochef "github.com/go-chef/chef"

	"github.com/occopus-go/occopus/configmgr"
	"github.com/occopus-go/occopus/descr"
	"github.com/occopus-go/occopus/internal/cloudapi"
)

// ConnectRecipe is what Occopus 1.10 puts after the role in every run
// list: the cookbook that turns the `connections` attribute into the
// attributes it names, read from the nodes of the source roles.
const ConnectRecipe = "recipe[connect]"

// Bounds of what DropInfra goes through, so a huge organization cannot
// make a destroy loop without end.
const (
	maxListed = 10000
)

// RoleName is the role of a node of an infrastructure: {infra_id}_{name}.
func RoleName(infraID, node string) string { return infraID + "_" + node }

// describe names a node instance in errors: "web (3f2a…)".
func describe(name, nodeID string) string {
	if name == "" {
		return nodeID
	}
	return name + " (" + nodeID + ")"
}

// Register implements configmgr.Registrar: the node's role, then the node
// itself, each created when missing and the node updated when it differs.
func (m *Manager) Register(ctx context.Context, n configmgr.Node) error {
	who := describe(n.Name, n.NodeID)
	var inst Instance
	if err := descr.Decode("config_management", n.Section, &inst); err != nil {
		return m.cloud.Fail("register node", who, err)
	}
	role := RoleName(n.InfraID, n.Name)
	if err := m.ensureRole(ctx, who, role, n.InfraID, n.Name); err != nil {
		return err
	}
	normal, err := NormalAttributes(n.InfraID, n.Attributes, n.Inbound)
	if err != nil {
		return m.cloud.Fail("register node", who, err)
	}
	want := gochef.Node{Name: n.NodeID, Environment: m.environment(n.InfraID), ChefType: "node", JsonClass: "Chef::Node",
		RunList: RunList(role, inst.RunList), NormalAttributes: normal}
	return m.ensureNode(ctx, who, want)
}

// ensureRole creates the role when missing. An existing one is left as it
// is (as Occopus does): users may have given it a run list or attributes.
func (m *Manager) ensureRole(ctx context.Context, who, role, infraID, node string) error {
	var got gochef.Role
	err := m.call(ctx, "read role "+role, who, http.MethodGet, "roles/"+url.PathEscape(role), nil, &got)
	if err == nil || !cloudapi.IsNotFound(err) {
		return err
	}
	r := gochef.Role{Name: role, Description: fmt.Sprintf("Occopus node %s of infrastructure %s", node, infraID),
		ChefType: "role", JsonClass: "Chef::Role", RunList: gochef.RunList{},
		DefaultAttributes: map[string]any{}, OverrideAttributes: map[string]any{}}
	err = m.call(ctx, "create role "+role, who, http.MethodPost, "roles", r, nil)
	if isConflict(err) {
		return nil // made meanwhile by a registration of another instance
	}
	return err
}

// ensureNode creates the node, or brings an existing one (a retried or
// resumed registration) to the wanted environment, run list and normal
// attributes, keeping what chef-client wrote (automatic, default,
// override, and normal attributes recipes set). Nothing is written when
// it is as wanted already.
func (m *Manager) ensureNode(ctx context.Context, who string, want gochef.Node) error {
	path := "nodes/" + url.PathEscape(want.Name)
	for range 2 {
		var got gochef.Node
		err := m.call(ctx, "read node "+want.Name, who, http.MethodGet, path, nil, &got)
		switch {
		case cloudapi.IsNotFound(err):
			err = m.call(ctx, "create node "+want.Name, who, http.MethodPost, "nodes", want, nil)
			if !isConflict(err) {
				return err
			}
			continue // made meanwhile: read it and update it
		case err != nil:
			return err
		}
		merged := mergeAttributes(got.NormalAttributes, want.NormalAttributes)
		if got.Environment == want.Environment && slices.Equal(got.RunList, want.RunList) && reflect.DeepEqual(merged, orEmpty(got.NormalAttributes)) {
			return nil
		}
		got.Name, got.Environment, got.RunList, got.NormalAttributes = want.Name, want.Environment, want.RunList, merged
		got.ChefType, got.JsonClass = "node", "Chef::Node"
		return m.call(ctx, "update node "+want.Name, who, http.MethodPut, path, got, nil)
	}
	return m.cloud.Fail("register node "+want.Name, who, errors.New("the node was created and deleted again while being registered"))
}

// Converged implements configmgr.Reporter: the node has
// automatic.ohai_time once chef-client has run and saved it.
func (m *Manager) Converged(ctx context.Context, n configmgr.Ref) (configmgr.Status, error) {
	nodeID := n.NodeID
	var got gochef.Node
	err := m.call(ctx, "read node "+nodeID, describe(n.Name, nodeID), http.MethodGet, "nodes/"+url.PathEscape(nodeID), nil, &got)
	switch {
	case cloudapi.IsNotFound(err):
		return configmgr.Status{Detail: fmt.Sprintf("chef server %s has no node %s (deleted, or never registered)", m.server, nodeID)}, nil
	case err != nil:
		return configmgr.Status{}, err
	}
	if t, ok := got.AutomaticAttributes["ohai_time"]; ok && t != nil {
		return configmgr.Status{Converged: true, Detail: fmt.Sprintf("node %s converged at chef server %s (ohai_time %v)", nodeID, m.server, t)}, nil
	}
	return configmgr.Status{Detail: fmt.Sprintf("node %s at chef server %s has not converged yet (no automatic.ohai_time: chef-client has not completed a run)", nodeID, m.server)}, nil
}

// DropNode implements configmgr.NodeDropper: the node and the client
// chef-client registered for it (Occopus leaves clients behind).
func (m *Manager) DropNode(ctx context.Context, n configmgr.Ref) error {
	return m.dropNode(ctx, describe(n.Name, n.NodeID), n.NodeID)
}

func (m *Manager) dropNode(ctx context.Context, who, nodeID string) error {
	var errs []error
	for _, kind := range []string{"node", "client"} {
		err := m.call(ctx, "delete "+kind+" "+nodeID, who, http.MethodDelete, kind+"s/"+url.PathEscape(nodeID), nil, nil)
		if err != nil && !cloudapi.IsNotFound(err) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// DropInfra implements configmgr.InfraDropper. Everything is found by
// name: the nodes in the environment (with their clients), the roles
// named {infra_id}_*, the environment. In an environment of the user's,
// only nodes whose run list holds one of the infrastructure's roles are
// deleted, and the environment stays.
func (m *Manager) DropInfra(ctx context.Context, infraID string) error {
	env := m.environment(infraID)
	prefix := RoleName(infraID, "")
	var errs []error
	var nodes map[string]string
	err := m.call(ctx, "list nodes of environment "+env, "", http.MethodGet, "environments/"+url.PathEscape(env)+"/nodes", nil, &nodes)
	if err != nil && !cloudapi.IsNotFound(err) {
		return err
	}
	for _, name := range firstSorted(nodes) {
		if m.env != "" {
			var got gochef.Node
			err := m.call(ctx, "read node "+name, name, http.MethodGet, "nodes/"+url.PathEscape(name), nil, &got)
			if cloudapi.IsNotFound(err) {
				continue
			}
			if err != nil {
				errs = append(errs, err)
				continue
			}
			if !slices.ContainsFunc(got.RunList, func(s string) bool { return strings.HasPrefix(s, "role["+prefix) }) {
				continue
			}
		}
		if err := m.dropNode(ctx, name, name); err != nil {
			errs = append(errs, err)
		}
	}
	var roles map[string]string
	if err := m.call(ctx, "list roles", "", http.MethodGet, "roles", nil, &roles); err != nil {
		return errors.Join(append(errs, err)...)
	}
	for _, role := range firstSorted(roles) {
		if !strings.HasPrefix(role, prefix) {
			continue
		}
		err := m.call(ctx, "delete role "+role, "", http.MethodDelete, "roles/"+url.PathEscape(role), nil, nil)
		if err != nil && !cloudapi.IsNotFound(err) {
			errs = append(errs, err)
		}
	}
	if m.env == "" {
		err := m.call(ctx, "delete environment "+env, "", http.MethodDelete, "environments/"+url.PathEscape(env), nil, nil)
		if err != nil && !cloudapi.IsNotFound(err) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// firstSorted is the keys of a listing, sorted, at most maxListed.
func firstSorted(m map[string]string) []string {
	keys := slices.Sorted(maps.Keys(m))
	if len(keys) > maxListed {
		keys = keys[:maxListed]
	}
	return keys
}

// RunList is a node's run list as Occopus 1.10 assembles it: the
// section's items, with recipe[connect] and then the node's role put in
// front when not there already (a bare item is a recipe, as Chef reads
// it).
func RunList(role string, items []string) []string {
	out := make([]string, 0, len(items)+2)
	for _, it := range items {
		if it = strings.TrimSpace(it); it == "" {
			continue
		}
		if !strings.HasSuffix(it, "]") {
			it = "recipe[" + it + "]"
		}
		out = append(out, it)
	}
	for _, first := range []string{ConnectRecipe, "role[" + role + "]"} {
		if !slices.Contains(out, first) {
			out = slices.Insert(out, 0, first)
		}
	}
	return out
}

// Connections is the `connections` attribute Occopus gives a node, read
// by the connect cookbook: one entry per attribute mapping of each
// dependency (by the depended-on node's name, sorted), naming that node's
// role and the two attributes.
func Connections(infraID string, inbound map[string][]descr.Mapping) []any {
	out := []any{}
	for _, dep := range slices.Sorted(maps.Keys(inbound)) {
		for _, mp := range inbound[dep] {
			out = append(out, map[string]any{"source_role": RoleName(infraID, dep),
				"source_attribute": mp.Attributes[0], "destination_attribute": mp.Attributes[1]})
		}
	}
	return out
}

// NormalAttributes are a node's normal attributes: its merged attributes
// plus `connections`, each top-level key split at its dots into nested
// mappings (PyChef's set_dotted, which Occopus uses). Keys are applied in
// sorted order, so "a" is set before "a.b" lands inside it. The values
// are copied through JSON, as the server will store them.
func NormalAttributes(infraID string, attrs map[string]any, inbound map[string][]descr.Mapping) (map[string]any, error) {
	flat := make(map[string]any, len(attrs)+1)
	maps.Copy(flat, attrs)
	flat["connections"] = Connections(infraID, inbound)
	raw, err := json.Marshal(flat)
	if err != nil {
		return nil, fmt.Errorf("attributes: %w", err)
	}
	var plain map[string]any
	if err := json.Unmarshal(raw, &plain); err != nil {
		return nil, fmt.Errorf("attributes: %w", err)
	}
	out := map[string]any{}
	keys := slices.Collect(maps.Keys(plain))
	sort.Strings(keys)
	for _, k := range keys {
		parts := strings.Split(k, ".")
		if slices.Contains(parts, "") {
			return nil, fmt.Errorf("attribute %q has an empty part between its dots", k)
		}
		at := out
		for _, p := range parts[:len(parts)-1] {
			next, ok := at[p].(map[string]any)
			if !ok {
				next = map[string]any{}
				at[p] = next
			}
			at = next
		}
		at[parts[len(parts)-1]] = plain[k]
	}
	return out, nil
}

// mergeAttributes is have with want laid over it, nested mappings merged
// key by key (want wins); neither is changed.
func mergeAttributes(have, want map[string]any) map[string]any {
	out := make(map[string]any, len(have)+len(want))
	maps.Copy(out, have)
	for k, w := range want {
		hm, hok := out[k].(map[string]any)
		wm, wok := w.(map[string]any)
		if hok && wok {
			out[k] = mergeAttributes(hm, wm)
			continue
		}
		out[k] = w
	}
	return out
}

func orEmpty(m map[string]any) map[string]any {
	if m == nil {
		return map[string]any{}
	}
	return m
}
