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
// Every server carries the metadata occopus_infra_id, occopus_node_id,
// occopus_node_name and (when the store has an id) occopus_store_id;
// Create looks for it before creating (idempotency per node id, also
// across a lost answer), and List/Find/ListAll use it. A floating IP
// carries the description "occopus:<infra id>:<node id>", so a retried
// Create reuses it and Destroy releases it even without the handle's data.
//
// Every HTTP request, token requests and pages of listings included, waits
// for the client-side rate limit of its host (resource.Config.Limiter,
// shared by the handlers of one Manager); every API call goes through a
// cloudapi.Caller (retries, a timeout per attempt, cloudapi.Error);
// gophercloud retries nothing itself.
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
	"strings"
	"sync"
	"time"

	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/flavors"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"

	"github.com/occopus-go/occopus/descr"
	"github.com/occopus-go/occopus/internal/cloudapi"
	"github.com/occopus-go/occopus/internal/keylock"
	"github.com/occopus-go/occopus/resource"
)

// Metadata keys put on every server.
const (
	MetaInfraID  = "occopus_infra_id"
	MetaNodeID   = "occopus_node_id"
	MetaNodeName = "occopus_node_name"
	MetaStoreID  = "occopus_store_id"
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
	defaults      map[string]any // the section New got: Create's when a spec has none
	log           *slog.Logger

	cloud     *cloudapi.Caller
	limiter   cloudapi.Waiter   // nil: no rate limit
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
	_ resource.Sweeper = (*Handler)(nil)
)

// New builds a Handler from a resource section and its auth_data entry.
// It does not contact the cloud: authentication happens at the first call.
func New(cfg resource.Config) (resource.Handler, error) {
	return newHandler(cfg)
}

func newHandler(cfg resource.Config) (*Handler, error) {
	// The instance keys are Create's to decode and check, per node.
	var set Connection
	if err := descr.Decode("resource", cfg.Resource, &set); err != nil {
		if set.Endpoint == "" {
			return nil, errors.New("nova: the resource section has no endpoint (the Keystone URL)")
		}
		return nil, fmt.Errorf("nova: %w", err)
	}
	ep := set.Endpoint
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
		region:      set.RegionName,
		projectID:   set.ProjectID,
		tenantName:  set.TenantName,
		userDomain:  cmp.Or(set.UserDomainName, creds.userDomain, "Default"),
		creds:       creds,
		defaults:    cfg.Resource,
		limiter:     cfg.Limiter,
		pollFirst:   defaultPollFirst,
		pollMax:     defaultPollMax,
		activeLimit: defaultActiveLimit,
		flavors:     map[string]string{},
	}
	h.projectDomain = cmp.Or(set.ProjectDomainName, h.userDomain)
	if h.projectID == "" && h.tenantName == "" && creds.appCredID == "" {
		return nil, fmt.Errorf("nova: endpoint %s: the resource section needs project_id (or the deprecated tenant_name) to scope the password login", ep)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	h.log = log.With("backend", "nova", "endpoint", identity)
	h.cloud = &cloudapi.Caller{Provider: "nova", Endpoint: identity, Classify: classify,
		Secrets: creds.secrets(), Log: h.log}
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

// settings decodes the spec's resource section (the handler's when the
// spec has none) and checks what Create needs.
func (h *Handler) settings(spec resource.Spec) (Instance, error) {
	res := spec.Resource
	if res == nil {
		res = h.defaults
	}
	var o Instance
	derr := descr.Decode("resource", res, &o)
	if o.ImageID == "" {
		return o, fmt.Errorf("nova: node %s: the resource section has no image_id", spec.NodeID)
	}
	if o.FlavorName == "" {
		return o, fmt.Errorf("nova: node %s: the resource section has no flavor_name", spec.NodeID)
	}
	if derr != nil {
		return o, fmt.Errorf("nova: node %s: %w", spec.NodeID, derr)
	}
	if o.VolumeSize < 0 {
		return o, fmt.Errorf("nova: node %s: volume_size %d is not a size in GB", spec.NodeID, o.VolumeSize)
	}
	if o.ServerName == "" {
		o.ServerName = defaultServerName(spec)
	}
	o.SecurityGroups = slices.DeleteFunc(o.SecurityGroups, func(g string) bool { return g == "" })
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

// Create starts a server for spec.NodeID, or returns the one that already
// carries its metadata. With floating_ip it waits for ACTIVE and
// associates a floating IP before returning.
func (h *Handler) Create(ctx context.Context, spec resource.Spec) (resource.Handle, error) {
	if spec.NodeID == "" || spec.InfraID == "" {
		return resource.Handle{}, errors.New("nova: Create needs an infra id and a node id")
	}
	opts, err := h.settings(spec)
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
	if opts.FloatingIP {
		fip, err := h.attachFloatingIP(ctx, c, spec, srv.ID, opts)
		if err != nil {
			return resource.Handle{}, err
		}
		d.FloatingIPID, d.FloatingIP = fip.ID, fip.FloatingIP
	}
	return makeHandle(srv.ID, d), nil
}

func (h *Handler) createServer(ctx context.Context, c *clients, spec resource.Spec, o Instance) (*servers.Server, error) {
	flavorID, err := h.flavorID(ctx, c, spec.NodeID, o.FlavorName)
	if err != nil {
		return nil, err
	}
	co := servers.CreateOpts{
		Name:           o.ServerName,
		ImageRef:       o.ImageID,
		FlavorRef:      flavorID,
		SecurityGroups: o.SecurityGroups,
		Metadata: map[string]string{
			MetaInfraID:  spec.InfraID,
			MetaNodeID:   spec.NodeID,
			MetaNodeName: spec.NodeName,
		},
	}
	if spec.StoreID != "" {
		co.Metadata[MetaStoreID] = spec.StoreID
	}
	if spec.Context.UserData != "" {
		co.UserData = []byte(spec.Context.UserData)
	}
	if o.NetworkID != "" {
		co.Networks = []servers.Network{{UUID: o.NetworkID}}
	}
	if o.VolumeSize > 0 {
		co.ImageRef = ""
		co.BlockDevice = []servers.BlockDevice{{
			SourceType:          servers.SourceImage,
			UUID:                o.ImageID,
			DestinationType:     servers.DestinationVolume,
			VolumeSize:          o.VolumeSize,
			BootIndex:           0,
			DeleteOnTermination: !o.VolumePersist,
		}}
	}
	var created *servers.Server
	attempt := 0
	err = h.cloud.Do(ctx, "create server", spec.NodeID, func(ctx context.Context) error {
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
		if o.KeyName != "" {
			opts = keyPairOpts{co, o.KeyName}
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
	h.log.Info("server created", "node", spec.NodeID, "server", created.ID, "name", o.ServerName)
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
	err := h.cloud.Do(ctx, "list flavors", node, func(ctx context.Context) error {
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

// Label puts the metadata Create puts on its own servers on one made by
// someone else (taken over), so that List, Find and ListAll see it as
// ours. Nova merges it with the server's other metadata.
func (h *Handler) Label(ctx context.Context, hd resource.Handle, spec resource.Spec) error {
	if hd.ID == "" || spec.InfraID == "" || spec.NodeID == "" {
		return errors.New("nova: label: handle has no server id or spec no infra id or node id")
	}
	c, err := h.connect(ctx)
	if err != nil {
		return err
	}
	md := servers.MetadataOpts{MetaInfraID: spec.InfraID, MetaNodeID: spec.NodeID, MetaNodeName: spec.NodeName}
	if spec.StoreID != "" {
		md[MetaStoreID] = spec.StoreID
	}
	err = h.cloud.Do(ctx, "set metadata of server "+hd.ID, spec.NodeID, func(ctx context.Context) error {
		_, err := servers.UpdateMetadata(ctx, c.compute, hd.ID, md).Extract()
		return err
	})
	if err != nil && cloudapi.IsNotFound(err) {
		return fmt.Errorf("nova: set metadata of server %s: %w", hd.ID, resource.ErrNotFound)
	}
	return err
}

// find returns the live server carrying the node's metadata.
func (h *Handler) find(ctx context.Context, c *clients, infraID, nodeID string) (*servers.Server, bool, error) {
	var (
		s     *servers.Server
		found bool
	)
	err := h.cloud.Do(ctx, "find server", nodeID, func(ctx context.Context) error {
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
	return h.listWhere(ctx, func(s servers.Server) bool { return s.Metadata[MetaInfraID] == infraID })
}

// ListAll returns every live server of the project carrying an infra id
// and a node id in its metadata, whoever made it.
func (h *Handler) ListAll(ctx context.Context) ([]resource.Owned, error) {
	return h.listWhere(ctx, func(s servers.Server) bool { return s.Metadata[MetaInfraID] != "" && s.Metadata[MetaNodeID] != "" })
}

func (h *Handler) listWhere(ctx context.Context, keep func(servers.Server) bool) ([]resource.Owned, error) {
	c, err := h.connect(ctx)
	if err != nil {
		return nil, err
	}
	var all []servers.Server
	err = h.cloud.Do(ctx, "list servers", "", func(ctx context.Context) error {
		var err error
		all, err = h.listOnce(ctx, c)
		return err
	})
	if err != nil {
		return nil, err
	}
	var out []resource.Owned
	for _, s := range all {
		if !keep(s) || gone(s) {
			continue
		}
		if len(out) == resource.MaxSweep {
			h.log.Warn("more servers than one listing reads; the rest wait for a later one", "max", resource.MaxSweep)
			break
		}
		out = append(out, resource.Owned{
			Handle:   makeHandle(s.ID, handleData{InfraID: s.Metadata[MetaInfraID], NodeID: s.Metadata[MetaNodeID]}),
			InfraID:  s.Metadata[MetaInfraID],
			NodeID:   s.Metadata[MetaNodeID],
			NodeName: s.Metadata[MetaNodeName],
			StoreID:  s.Metadata[MetaStoreID],
		})
	}
	sort.Slice(out, func(i, j int) bool {
		return cmp.Or(strings.Compare(out[i].InfraID, out[j].InfraID), strings.Compare(out[i].NodeID, out[j].NodeID)) < 0
	})
	return out, nil
}

// get fetches a server; a 404 is resource.ErrNotFound.
func (h *Handler) get(ctx context.Context, c *clients, op, id string) (*servers.Server, error) {
	var s *servers.Server
	err := h.cloud.Do(ctx, op, "", func(ctx context.Context) error {
		var err error
		s, err = servers.Get(ctx, c.compute, id).Extract()
		return err
	})
	if cloudapi.IsNotFound(err) {
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
	err = h.cloud.Do(ctx, "delete server "+hd.ID, d.NodeID, func(ctx context.Context) error {
		return servers.Delete(ctx, c.compute, hd.ID).ExtractErr()
	})
	if err != nil && !cloudapi.IsNotFound(err) {
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
			return s, h.cloud.NewError("boot server "+id, node, cloudapi.Class{Endpoint: c.compute.Endpoint, Code: s.Fault.Code, Message: "status ERROR: " + msg}, nil)
		case resource.StateShutdown:
			return s, h.cloud.NewError("boot server "+id, node, cloudapi.Class{Endpoint: c.compute.Endpoint, Message: "server is " + s.Status + " instead of ACTIVE"}, nil)
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
