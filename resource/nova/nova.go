// Package nova runs nodes on OpenStack Nova (`type: nova`), through
// gophercloud v2, with Keystone v3 authentication.
//
// Resource section keys (as in Occopus):
//
//	endpoint:         Keystone URL, with or without /v3 (https://keystone:5000/v3)
//	project_id:       project to scope to (or the deprecated tenant_name: project name)
//	user_domain_name: domain of the user (default "Default")
//	project_domain_name: domain of tenant_name's project (default user_domain_name)
//	region_name:      region of the compute and network endpoints in the catalog
//	image_id, flavor_name (name, or id), network_id, key_name, security_groups,
//	server_name (default <node name>-<node id>)
//	floating_ip:      yes/true to give the server a floating IP from
//	floating_ip_pool: the external network (name or id) to allocate it from
//	volume_size:      GB; boot from a volume made from image_id
//	volume_persist:   keep that volume when the server is deleted
//
// auth_data: username and password, or type: application_credential with
// id and secret.
//
// Every server carries the metadata occopus_infra_id, occopus_node_id and
// occopus_node_name; Create looks for it before creating (idempotency per
// node id, also across a lost answer), and List/Find use it. A floating IP
// carries the description "occopus:<infra id>:<node id>", so a retried
// Create reuses it and Destroy releases it even without the handle's data.
package nova

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/flavors"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"

	"github.com/occopus-go/occopus/internal/cloudapi"
	"github.com/occopus-go/occopus/internal/keylock"
	"github.com/occopus-go/occopus/resource"
)

// Metadata keys put on every server.
const (
	MetaInfraID  = "occopus_infra_id"
	MetaNodeID   = "occopus_node_id"
	MetaNodeName = "occopus_node_name"
)

// Defaults of the wait for ACTIVE before a floating IP is associated.
const (
	defaultPollFirst   = 2 * time.Second
	defaultPollMax     = 15 * time.Second
	defaultActiveLimit = 15 * time.Minute
)

// Handler runs node instances as Nova servers of one project at one
// Keystone endpoint.
type Handler struct {
	identity      string // Keystone v3 URL, ending in /v3/
	region        string
	projectID     string
	tenantName    string
	userDomain    string
	projectDomain string
	creds         credentials
	defaults      map[string]any
	log           *slog.Logger

	policy    cloudapi.Policy
	limiters  *cloudapi.Limiters
	transport http.RoundTripper // nil: http.DefaultTransport

	pollFirst, pollMax time.Duration
	activeLimit        time.Duration

	connMu sync.Mutex
	conn   *clients

	mu      sync.Mutex
	locks   keylock.Locks     // per node id
	flavors map[string]string // flavor_name → id
}

var (
	_ resource.Handler = (*Handler)(nil)
	_ resource.Lister  = (*Handler)(nil)
	_ resource.Finder  = (*Handler)(nil)
)

// New builds a Handler from a resource section and its auth_data entry.
// It does not contact the cloud: authentication happens at the first call.
func New(cfg resource.Config) (resource.Handler, error) {
	return newHandler(cfg)
}

func newHandler(cfg resource.Config) (*Handler, error) {
	ep := str(cfg.Resource, "endpoint")
	if ep == "" {
		return nil, errors.New("nova: the resource section has no endpoint (the Keystone URL)")
	}
	identity, err := identityEndpoint(ep)
	if err != nil {
		return nil, err
	}
	creds, err := credentialsFrom(cfg.Auth, ep)
	if err != nil {
		return nil, err
	}
	h := &Handler{
		identity:    identity,
		region:      str(cfg.Resource, "region_name"),
		projectID:   str(cfg.Resource, "project_id"),
		tenantName:  str(cfg.Resource, "tenant_name"),
		userDomain:  cmp.Or(str(cfg.Resource, "user_domain_name"), str(cfg.Auth, "user_domain_name"), "Default"),
		creds:       creds,
		defaults:    cfg.Resource,
		limiters:    cloudapi.Shared(), // per endpoint (scheme://host), process-wide
		pollFirst:   defaultPollFirst,
		pollMax:     defaultPollMax,
		activeLimit: defaultActiveLimit,
		flavors:     map[string]string{},
	}
	h.projectDomain = cmp.Or(str(cfg.Resource, "project_domain_name"), h.userDomain)
	if h.projectID == "" && h.tenantName == "" && creds.appCredID == "" {
		return nil, fmt.Errorf("nova: endpoint %s: the resource section needs project_id (or the deprecated tenant_name) to scope the password login", ep)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	h.log = log.With("backend", "nova", "endpoint", identity)
	return h, nil
}

// handleData is the backend-private part of a Handle.
type handleData struct {
	InfraID      string `json:"infra_id,omitempty"`
	NodeID       string `json:"node_id,omitempty"`
	FloatingIPID string `json:"floating_ip_id,omitempty"`
	FloatingIP   string `json:"floating_ip,omitempty"`
}

func parseData(h resource.Handle) handleData {
	var d handleData
	if len(h.Data) > 0 {
		_ = json.Unmarshal(h.Data, &d)
	}
	return d
}

func makeHandle(id string, d handleData) resource.Handle {
	b, _ := json.Marshal(d)
	return resource.Handle{ID: id, Data: b}
}

// createOptions is what Create needs from the resource section.
type createOptions struct {
	imageID, flavorName, networkID, keyName, serverName string
	securityGroups                                      []string
	floatingIP                                          bool
	pool                                                string
	volumeSize                                          int
	volumePersist                                       bool
}

func (h *Handler) createOptions(spec resource.Spec) (createOptions, error) {
	res := spec.Resource
	if res == nil {
		res = h.defaults
	}
	get := func(k string) any {
		if v, ok := res[k]; ok {
			return v
		}
		return h.defaults[k]
	}
	s := func(k string) string { v, _ := get(k).(string); return strings.TrimSpace(v) }
	o := createOptions{
		imageID:    s("image_id"),
		flavorName: s("flavor_name"),
		networkID:  s("network_id"),
		keyName:    s("key_name"),
		serverName: s("server_name"),
		pool:       s("floating_ip_pool"),
	}
	if o.imageID == "" {
		return o, fmt.Errorf("nova: node %s: the resource section has no image_id", spec.NodeID)
	}
	if o.flavorName == "" {
		return o, fmt.Errorf("nova: node %s: the resource section has no flavor_name", spec.NodeID)
	}
	if o.serverName == "" {
		o.serverName = defaultServerName(spec)
	}
	switch v := get("security_groups").(type) {
	case nil:
	case string:
		if v != "" {
			o.securityGroups = []string{v}
		}
	case []string:
		o.securityGroups = v
	case []any:
		for _, x := range v {
			if sg, ok := x.(string); ok && sg != "" {
				o.securityGroups = append(o.securityGroups, sg)
			} else {
				return o, fmt.Errorf("nova: node %s: security_groups holds %v, want names", spec.NodeID, x)
			}
		}
	default:
		return o, fmt.Errorf("nova: node %s: security_groups is %T, want a list of names", spec.NodeID, v)
	}
	var err error
	if o.floatingIP, err = boolOf(get("floating_ip")); err != nil {
		return o, fmt.Errorf("nova: node %s: floating_ip: %v", spec.NodeID, err)
	}
	if o.volumePersist, err = boolOf(get("volume_persist")); err != nil {
		return o, fmt.Errorf("nova: node %s: volume_persist: %v", spec.NodeID, err)
	}
	if o.volumeSize, err = intOf(get("volume_size")); err != nil || o.volumeSize < 0 {
		return o, fmt.Errorf("nova: node %s: volume_size %v is not a size in GB", spec.NodeID, get("volume_size"))
	}
	return o, nil
}

// defaultServerName is <node name>-<node id>, kept to Nova's 255 characters.
func defaultServerName(spec resource.Spec) string {
	name := spec.NodeID
	if spec.NodeName != "" && !strings.HasPrefix(spec.NodeID, spec.NodeName) {
		name = spec.NodeName + "-" + spec.NodeID
	}
	if name == "" {
		name = "occopus-node"
	}
	if len(name) > 255 {
		name = name[:255]
	}
	return name
}

func boolOf(v any) (bool, error) {
	switch x := v.(type) {
	case nil:
		return false, nil
	case bool:
		return x, nil
	case string:
		switch strings.ToLower(strings.TrimSpace(x)) {
		case "yes", "y", "true", "on", "1":
			return true, nil
		case "no", "n", "false", "off", "0", "":
			return false, nil
		}
	case int:
		return x != 0, nil
	case int64:
		return x != 0, nil
	case float64:
		return x != 0, nil
	}
	return false, fmt.Errorf("%v is not yes/no or true/false", v)
}

func intOf(v any) (int, error) {
	switch x := v.(type) {
	case nil:
		return 0, nil
	case int:
		return x, nil
	case int64:
		return int(x), nil
	case uint64:
		return int(x), nil
	case float64:
		if x != float64(int(x)) {
			return 0, fmt.Errorf("%v is not whole", x)
		}
		return int(x), nil
	case string:
		if strings.TrimSpace(x) == "" {
			return 0, nil
		}
		return strconv.Atoi(strings.TrimSpace(x))
	case json.Number:
		n, err := x.Int64()
		return int(n), err
	}
	return 0, fmt.Errorf("%v is not a number", v)
}

// Create starts a server for spec.NodeID, or returns the one that already
// carries its metadata. With floating_ip it waits for ACTIVE and
// associates a floating IP before returning.
func (h *Handler) Create(ctx context.Context, spec resource.Spec) (resource.Handle, error) {
	if spec.NodeID == "" || spec.InfraID == "" {
		return resource.Handle{}, errors.New("nova: Create needs an infra id and a node id")
	}
	opts, err := h.createOptions(spec)
	if err != nil {
		return resource.Handle{}, err
	}
	defer h.locks.Lock(spec.NodeID)()

	c, err := h.connect(ctx)
	if err != nil {
		return resource.Handle{}, err
	}
	srv, found, err := h.find(ctx, c, spec.InfraID, spec.NodeID)
	if err != nil {
		return resource.Handle{}, err
	}
	if found {
		h.log.Info("server already exists", "node", spec.NodeID, "server", srv.ID)
	} else {
		if srv, err = h.createServer(ctx, c, spec, opts); err != nil {
			return resource.Handle{}, err
		}
	}
	d := handleData{InfraID: spec.InfraID, NodeID: spec.NodeID}
	if opts.floatingIP {
		fip, err := h.attachFloatingIP(ctx, c, spec, srv.ID, opts)
		if err != nil {
			return resource.Handle{}, err
		}
		d.FloatingIPID, d.FloatingIP = fip.ID, fip.FloatingIP
	}
	return makeHandle(srv.ID, d), nil
}

func (h *Handler) createServer(ctx context.Context, c *clients, spec resource.Spec, o createOptions) (*servers.Server, error) {
	flavorID, err := h.flavorID(ctx, c, spec.NodeID, o.flavorName)
	if err != nil {
		return nil, err
	}
	co := servers.CreateOpts{
		Name:           o.serverName,
		ImageRef:       o.imageID,
		FlavorRef:      flavorID,
		SecurityGroups: o.securityGroups,
		Metadata: map[string]string{
			MetaInfraID:  spec.InfraID,
			MetaNodeID:   spec.NodeID,
			MetaNodeName: spec.NodeName,
		},
	}
	if spec.Context.UserData != "" {
		co.UserData = []byte(spec.Context.UserData)
	}
	if o.networkID != "" {
		co.Networks = []servers.Network{{UUID: o.networkID}}
	}
	if o.volumeSize > 0 {
		co.ImageRef = ""
		co.BlockDevice = []servers.BlockDevice{{
			SourceType:          servers.SourceImage,
			UUID:                o.imageID,
			DestinationType:     servers.DestinationVolume,
			VolumeSize:          o.volumeSize,
			BootIndex:           0,
			DeleteOnTermination: !o.volumePersist,
		}}
	}
	var created *servers.Server
	attempt := 0
	err = h.do(ctx, "create server", spec.NodeID, func(ctx context.Context) error {
		attempt++
		if attempt > 1 {
			// The previous try may have reached Nova and lost its answer.
			s, found, err := h.findOnce(ctx, c, spec.InfraID, spec.NodeID)
			if err != nil {
				return err
			}
			if found {
				created = s
				return nil
			}
		}
		var opts servers.CreateOptsBuilder = co
		if o.keyName != "" {
			opts = keyPairOpts{co, o.keyName}
		}
		s, err := servers.Create(ctx, c.compute, opts, nil).Extract()
		if err != nil {
			return err
		}
		created = s
		return nil
	})
	if err != nil {
		return nil, err
	}
	h.log.Info("server created", "node", spec.NodeID, "server", created.ID, "name", o.serverName)
	return created, nil
}

// keyPairOpts adds key_name to the create request (the keypairs extension
// of gophercloud does the same).
type keyPairOpts struct {
	servers.CreateOptsBuilder
	keyName string
}

func (o keyPairOpts) ToServerCreateMap() (map[string]any, error) {
	b, err := o.CreateOptsBuilder.ToServerCreateMap()
	if err != nil {
		return nil, err
	}
	b["server"].(map[string]any)["key_name"] = o.keyName
	return b, nil
}

// flavorID resolves flavor_name: a flavor of that name, else one with
// that id (the tutorials put ids there too).
func (h *Handler) flavorID(ctx context.Context, c *clients, node, name string) (string, error) {
	h.mu.Lock()
	id, ok := h.flavors[name]
	h.mu.Unlock()
	if ok {
		return id, nil
	}
	var all []flavors.Flavor
	err := h.do(ctx, "list flavors", node, func(ctx context.Context) error {
		pages, err := flavors.ListDetail(c.compute, flavors.ListOpts{}).AllPages(ctx)
		if err != nil {
			return err
		}
		all, err = flavors.ExtractFlavors(pages)
		return err
	})
	if err != nil {
		return "", err
	}
	var names []string
	for _, f := range all {
		if f.Name == name {
			id = f.ID
			break
		}
		names = append(names, f.Name)
	}
	if id == "" {
		for _, f := range all {
			if f.ID == name {
				id = f.ID
				break
			}
		}
	}
	if id == "" {
		sort.Strings(names)
		return "", fmt.Errorf("nova: node %s: no flavor named %q at %s (have: %s)", node, name, c.compute.Endpoint, strings.Join(names, ", "))
	}
	h.mu.Lock()
	h.flavors[name] = id
	h.mu.Unlock()
	return id, nil
}

// find returns the live server carrying the node's metadata.
func (h *Handler) find(ctx context.Context, c *clients, infraID, nodeID string) (*servers.Server, bool, error) {
	var (
		s     *servers.Server
		found bool
	)
	err := h.do(ctx, "find server", nodeID, func(ctx context.Context) error {
		var err error
		s, found, err = h.findOnce(ctx, c, infraID, nodeID)
		return err
	})
	return s, found, err
}

// findOnce is one lookup, for use inside a retried call.
func (h *Handler) findOnce(ctx context.Context, c *clients, infraID, nodeID string) (*servers.Server, bool, error) {
	all, err := h.listOnce(ctx, c)
	if err != nil {
		return nil, false, err
	}
	var match []servers.Server
	for _, s := range all {
		if s.Metadata[MetaInfraID] == infraID && s.Metadata[MetaNodeID] == nodeID && !gone(s) {
			match = append(match, s)
		}
	}
	if len(match) == 0 {
		return nil, false, nil
	}
	// Oldest first: should two ever exist, every caller adopts the same one.
	slices.SortFunc(match, func(a, b servers.Server) int {
		return cmp.Or(a.Created.Compare(b.Created), strings.Compare(a.ID, b.ID))
	})
	return &match[0], true, nil
}

func (h *Handler) listOnce(ctx context.Context, c *clients) ([]servers.Server, error) {
	pages, err := servers.List(c.compute, servers.ListOpts{}).AllPages(ctx)
	if err != nil {
		return nil, err
	}
	return servers.ExtractServers(pages)
}

// gone: deleted, or being deleted.
func gone(s servers.Server) bool {
	switch strings.ToUpper(s.Status) {
	case "DELETED", "SOFT_DELETED":
		return true
	}
	return s.TaskState == "deleting"
}

// Find returns the server made for one node id.
func (h *Handler) Find(ctx context.Context, infraID, nodeID string) (resource.Handle, bool, error) {
	c, err := h.connect(ctx)
	if err != nil {
		return resource.Handle{}, false, err
	}
	s, found, err := h.find(ctx, c, infraID, nodeID)
	if err != nil || !found {
		return resource.Handle{}, false, err
	}
	return h.handleOf(ctx, c, *s), true, nil
}

// handleOf rebuilds a Handle for a found server, with its floating IP when
// the network service knows one made for the node.
func (h *Handler) handleOf(ctx context.Context, c *clients, s servers.Server) resource.Handle {
	d := handleData{InfraID: s.Metadata[MetaInfraID], NodeID: s.Metadata[MetaNodeID]}
	if c.network != nil {
		if fips, err := h.floatingIPsOf(ctx, c, d.InfraID, d.NodeID); err == nil && len(fips) > 0 {
			d.FloatingIPID, d.FloatingIP = fips[0].ID, fips[0].FloatingIP
		}
	}
	return makeHandle(s.ID, d)
}

// List returns every live server carrying the infra id.
func (h *Handler) List(ctx context.Context, infraID string) ([]resource.Owned, error) {
	c, err := h.connect(ctx)
	if err != nil {
		return nil, err
	}
	var all []servers.Server
	err = h.do(ctx, "list servers", "", func(ctx context.Context) error {
		var err error
		all, err = h.listOnce(ctx, c)
		return err
	})
	if err != nil {
		return nil, err
	}
	var out []resource.Owned
	for _, s := range all {
		if s.Metadata[MetaInfraID] != infraID || gone(s) {
			continue
		}
		out = append(out, resource.Owned{
			Handle:   makeHandle(s.ID, handleData{InfraID: infraID, NodeID: s.Metadata[MetaNodeID]}),
			InfraID:  infraID,
			NodeID:   s.Metadata[MetaNodeID],
			NodeName: s.Metadata[MetaNodeName],
		})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].NodeID < out[j].NodeID })
	return out, nil
}

// get fetches a server; a 404 is resource.ErrNotFound.
func (h *Handler) get(ctx context.Context, c *clients, op, id string) (*servers.Server, error) {
	var s *servers.Server
	err := h.do(ctx, op, "", func(ctx context.Context) error {
		var err error
		s, err = servers.Get(ctx, c.compute, id).Extract()
		return err
	})
	if IsNotFound(err) {
		return nil, fmt.Errorf("%w: server %s at %s", resource.ErrNotFound, id, c.compute.Endpoint)
	}
	return s, err
}

// State maps the Nova status: ACTIVE→running, BUILD (and other transient
// states)→pending, SHUTOFF/DELETED/SOFT_DELETED (and paused, suspended,
// shelved, being deleted)→shutdown, ERROR→failed.
func (h *Handler) State(ctx context.Context, hd resource.Handle) (resource.State, error) {
	c, err := h.connect(ctx)
	if err != nil {
		return resource.StateUnknown, err
	}
	s, err := h.get(ctx, c, "get server "+hd.ID, hd.ID)
	if err != nil {
		return resource.StateUnknown, err
	}
	return stateOf(*s), nil
}

func stateOf(s servers.Server) resource.State {
	if s.TaskState == "deleting" {
		return resource.StateShutdown
	}
	switch strings.ToUpper(s.Status) {
	case "ACTIVE":
		return resource.StateRunning
	case "BUILD", "REBUILD", "REBOOT", "HARD_REBOOT", "RESIZE", "VERIFY_RESIZE", "REVERT_RESIZE", "MIGRATING", "PASSWORD":
		return resource.StatePending
	case "SHUTOFF", "DELETED", "SOFT_DELETED", "STOPPED", "PAUSED", "SUSPENDED", "SHELVED", "SHELVED_OFFLOADED":
		return resource.StateShutdown
	case "ERROR":
		return resource.StateFailed
	}
	return resource.StateUnknown
}

// Addresses: the floating IP is public, the fixed IP private; without a
// floating IP both are the fixed IP.
func (h *Handler) Addresses(ctx context.Context, hd resource.Handle) (resource.Addresses, error) {
	c, err := h.connect(ctx)
	if err != nil {
		return resource.Addresses{}, err
	}
	s, err := h.get(ctx, c, "get server "+hd.ID, hd.ID)
	if err != nil {
		return resource.Addresses{}, err
	}
	if gone(*s) {
		return resource.Addresses{}, fmt.Errorf("%w: server %s at %s is being deleted", resource.ErrNotFound, hd.ID, c.compute.Endpoint)
	}
	a := addressesOf(*s)
	if fip := parseData(hd).FloatingIP; fip != "" && a.Public == a.Private {
		a.Public = fip // Nova's address cache may lag behind Neutron
	}
	if a.Public == "" {
		a.Public = a.Private
	}
	return a, nil
}

func addressesOf(s servers.Server) resource.Addresses {
	type ip struct {
		addr     string
		version  int
		floating bool
	}
	var ips []ip
	nets := make([]string, 0, len(s.Addresses))
	for n := range s.Addresses {
		nets = append(nets, n)
	}
	sort.Strings(nets)
	for _, n := range nets {
		list, _ := s.Addresses[n].([]any)
		for _, e := range list {
			m, _ := e.(map[string]any)
			addr, _ := m["addr"].(string)
			if addr == "" {
				continue
			}
			v, _ := m["version"].(float64)
			typ, _ := m["OS-EXT-IPS:type"].(string)
			ips = append(ips, ip{addr, int(v), typ == "floating"})
		}
	}
	// IPv4 first, keeping the network order otherwise.
	sort.SliceStable(ips, func(i, j int) bool { return ips[i].version != 6 && ips[j].version == 6 })
	var a resource.Addresses
	for _, x := range ips {
		if x.floating && a.Public == "" {
			a.Public = x.addr
		}
		if !x.floating && a.Private == "" {
			a.Private = x.addr
		}
	}
	if a.Public == "" {
		a.Public = cmp.Or(s.AccessIPv4, a.Private)
	}
	if a.Private == "" {
		a.Private = a.Public
	}
	return a
}

// Destroy releases the node's floating IP and deletes the server. A
// server already gone is success.
func (h *Handler) Destroy(ctx context.Context, hd resource.Handle) error {
	if hd.ID == "" {
		return nil
	}
	c, err := h.connect(ctx)
	if err != nil {
		return err
	}
	d := parseData(hd)
	if d.NodeID == "" {
		// A handle without data (an old record): the metadata names the node.
		s, err := h.get(ctx, c, "get server "+hd.ID, hd.ID)
		switch {
		case errors.Is(err, resource.ErrNotFound):
		case err != nil:
			return err
		default:
			d.InfraID, d.NodeID = s.Metadata[MetaInfraID], s.Metadata[MetaNodeID]
		}
	}
	if err := h.releaseFloatingIPs(ctx, c, d); err != nil {
		return err
	}
	err = h.do(ctx, "delete server "+hd.ID, d.NodeID, func(ctx context.Context) error {
		return servers.Delete(ctx, c.compute, hd.ID).ExtractErr()
	})
	if err != nil && !IsNotFound(err) {
		return err
	}
	h.log.Info("server deleted", "node", d.NodeID, "server", hd.ID)
	return nil
}

// waitActive polls the server until ACTIVE, with a growing delay. ERROR
// ends the wait with Nova's fault message.
func (h *Handler) waitActive(ctx context.Context, c *clients, node, id string) (*servers.Server, error) {
	ctx, cancel := context.WithTimeout(ctx, h.activeLimit)
	defer cancel()
	delay := h.pollFirst
	for {
		s, err := h.get(ctx, c, "get server "+id, id)
		if err != nil {
			return nil, err
		}
		switch stateOf(*s) {
		case resource.StateRunning:
			return s, nil
		case resource.StateFailed:
			msg := s.Fault.Message
			if msg == "" {
				msg = "no fault message"
			}
			return s, &Error{Op: "boot server " + id, Node: node, Endpoint: c.compute.Endpoint, Code: s.Fault.Code, Message: "status ERROR: " + h.scrub(msg)}
		case resource.StateShutdown:
			return s, &Error{Op: "boot server " + id, Node: node, Endpoint: c.compute.Endpoint, Message: "server is " + s.Status + " instead of ACTIVE"}
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("nova: waiting for server %s of node %s to become ACTIVE (last status %s): %w", id, node, s.Status, ctx.Err())
		case <-t.C:
		}
		delay = min(delay*3/2+1, h.pollMax)
	}
}
