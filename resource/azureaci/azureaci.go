// Package azureaci runs nodes as Azure Container Instances container
// groups (`type: azure_aci`), through the official Azure SDK (azidentity,
// armresources, armnetwork, armcontainerinstance). Credentials, clouds,
// TLS, retries, tags and names are package azure's (see there).
//
// Resource section keys (as in Occopus and its tutorials):
//
//	endpoint:        Azure Resource Manager URL (https://management.azure.com)
//	resource_group:  created when missing, never deleted
//	location:        region (westeurope)
//	cpu_cores, memory (GB), image, os_type (linux|windows)
//	network_type:    public or private (any case)
//	ports:           numbers, or "80/UDP"
//	gpu_type, gpu_count: optional GPU (K80, P100, V100)
//	vnet_name, subnet_name: a private group's network (made otherwise)
//
// The container's environment and command are the docker
// contextualisation section's (rendered: getip works there).
//
// Create makes one group of one container, named and labelled like
// Occopus's VMs but in lowercase (container group names and DNS labels
// take nothing else; Occopus keeps the case, which ACI refuses), tagged
// with the infra id, node id and node name. A public group gets that name
// as its DNS label and, as Occopus does, the variable
// _OCCOPUS_ALLOCATED_FQDN=<label>.<location>.azurecontainer.io in its
// environment; a private one goes into a subnet delegated to
// Microsoft.ContainerInstance/containerGroups: the user's, or a virtual
// network <group>-vnet 10.0.0.0/16 with a subnet <group>-subnet made for
// it. The group's creation is waited for (Occopus does not wait); a
// failure deletes what this Create made.
//
// State: provisioningState Pending/Creating/Updating/Repairing → pending;
// Succeeded with the group Running and every container Running →
// running (containers still Waiting → pending); a Stopped group or
// Deleting → shutdown; Failed (and Canceled) → failed; anything else →
// unknown (Occopus raises there and aborts its pass).
//
// Addresses: the group's IP address (public or private) for both getip
// and getprivip: it is what the health checks probe and what the other
// nodes reach. The FQDN Occopus also reports is in the log and in the
// group's _OCCOPUS_ALLOCATED_FQDN.
//
// Destroy deletes the group, then the subnet and virtual network made for
// it (ARM keeps a subnet a little while after its group is gone: that
// refusal is tried again).
package azureaci

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/containerinstance/armcontainerinstance/v2"

	"github.com/occopus-go/occopus/descr"
	"github.com/occopus-go/occopus/internal/keylock"
	"github.com/occopus-go/occopus/resource"
	"github.com/occopus-go/occopus/resource/azure"
)

// Provider is the backend's type and the prefix of its errors.
const Provider = "azure_aci"

// Delegation is the service a private group's subnet is delegated to.
const Delegation = "Microsoft.ContainerInstance/containerGroups"

// EnvFQDN is the variable Occopus gives a public group: its FQDN.
const EnvFQDN = "_OCCOPUS_ALLOCATED_FQDN"

// Limits of a group's definition.
const (
	maxEnv     = 1000
	maxCommand = 1000
	maxPorts   = 100
)

// rollbackLimit bounds the clean-up of a failed Create.
const rollbackLimit = 10 * time.Minute

// Handler runs node instances as container groups in one resource group
// of one subscription.
type Handler struct {
	s        *azure.Session
	defaults map[string]any
	log      *slog.Logger
	locks    keylock.Locks
}

var (
	_ resource.Handler = (*Handler)(nil)
	_ resource.Lister  = (*Handler)(nil)
	_ resource.Finder  = (*Handler)(nil)
	_ resource.Sweeper = (*Handler)(nil)
)

// New builds a Handler from a resource section and its auth_data entry.
// It contacts nothing.
func New(cfg resource.Config) (resource.Handler, error) { return newHandler(cfg, azure.Options{}) }

func newHandler(cfg resource.Config, o azure.Options) (*Handler, error) {
	s, err := azure.NewSession(Provider, cfg, o)
	if err != nil {
		return nil, err
	}
	return &Handler{s: s, defaults: cfg.Resource, log: s.Log}, nil
}

type handleData struct {
	InfraID  string   `json:"infra_id,omitempty"`
	NodeID   string   `json:"node_id,omitempty"`
	NodeName string   `json:"node_name,omitempty"`
	Created  []string `json:"created,omitempty"`
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

// settings are the checked instance keys of a spec.
type settings struct {
	Instance
	osType  armcontainerinstance.OperatingSystemTypes
	public  bool
	gpu     *armcontainerinstance.GpuResource
	env     []*armcontainerinstance.EnvironmentVariable
	command []*string
}

func (h *Handler) settings(spec resource.Spec) (settings, error) {
	res := spec.Resource
	if res == nil {
		res = h.defaults
	}
	var o settings
	if err := descr.Decode("resource", res, &o.Instance); err != nil {
		return o, err
	}
	switch strings.ToLower(o.OSType) {
	case "linux":
		o.osType = armcontainerinstance.OperatingSystemTypesLinux
	case "windows":
		o.osType = armcontainerinstance.OperatingSystemTypesWindows
	default:
		return o, fmt.Errorf("os_type %q is not linux or windows", o.OSType)
	}
	switch strings.ToLower(o.NetworkType) {
	case "public":
		o.public = true
		if len(o.Ports) == 0 {
			return o, errors.New("network_type public needs ports: ACI gives a public IP only with ports open")
		}
		if o.VNetName != "" || o.SubnetName != "" {
			return o, errors.New("vnet_name and subnet_name are for network_type private")
		}
	case "private":
	default:
		return o, fmt.Errorf("network_type %q is not public or private", o.NetworkType)
	}
	if len(o.Ports) > maxPorts {
		return o, fmt.Errorf("%d ports: at most %d", len(o.Ports), maxPorts)
	}
	if o.GPUType != "" || o.GPUCount > 0 {
		sku := armcontainerinstance.GpuSKU(strings.ToUpper(o.GPUType))
		if o.GPUType == "" || !contains(armcontainerinstance.PossibleGpuSKUValues(), sku) {
			return o, fmt.Errorf("gpu_type %q is not one of %v", o.GPUType, armcontainerinstance.PossibleGpuSKUValues())
		}
		count := max(o.GPUCount, 1)
		if count > 4 {
			return o, fmt.Errorf("gpu_count %d: a container takes at most 4 GPUs", count)
		}
		o.gpu = &armcontainerinstance.GpuResource{SKU: to.Ptr(sku), Count: to.Ptr(int32(count))}
	}
	if len(spec.Context.Env) > maxEnv || len(spec.Context.Command) > maxCommand {
		return o, fmt.Errorf("the contextualisation has %d environment variables and %d command words: at most %d and %d", len(spec.Context.Env), len(spec.Context.Command), maxEnv, maxCommand)
	}
	for i, kv := range spec.Context.Env {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || strings.TrimSpace(k) == "" {
			return o, fmt.Errorf("contextualisation env[%d] %q is not NAME=VALUE", i, kv)
		}
		if k == EnvFQDN {
			continue // Occopus's own, set below
		}
		o.env = append(o.env, &armcontainerinstance.EnvironmentVariable{Name: to.Ptr(k), Value: to.Ptr(v)})
	}
	for _, c := range spec.Context.Command {
		o.command = append(o.command, to.Ptr(c))
	}
	return o, nil
}

func contains[T comparable](list []T, v T) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// name is the node's group name (lowercase).
func name(infraID, nodeName, nodeID string) string {
	return azure.UniqueName("", infraID, nodeName, nodeID, azure.NameMax, true)
}

// FQDN is where ACI publishes a public group: <label>.<location>.azurecontainer.io.
func FQDN(label, location string) string {
	return label + "." + strings.ReplaceAll(strings.ToLower(location), " ", "") + ".azurecontainer.io"
}

// Create makes the node's container group, or returns the one an earlier
// Create made.
func (h *Handler) Create(ctx context.Context, spec resource.Spec) (resource.Handle, error) {
	if spec.InfraID == "" || spec.NodeID == "" {
		return resource.Handle{}, h.s.Fail("create container group", spec.NodeID, errors.New("the spec has no infra id or node id"))
	}
	node := spec.NodeID
	o, err := h.settings(spec)
	if err != nil {
		return resource.Handle{}, h.s.Fail("create container group for node "+spec.NodeName, node, err)
	}
	defer h.locks.Lock(node)()
	group := name(spec.InfraID, spec.NodeName, node)
	id := h.s.ID(azure.TypeContainerGroup, group)
	existing, found, err := h.get(ctx, node, group)
	if err != nil {
		return resource.Handle{}, err
	}
	if found {
		if other := azure.TagValue(existing.Tags, azure.TagNodeID); other != node {
			return resource.Handle{}, h.s.Fail("create container group "+group, node, fmt.Errorf("a container group named %s exists for node %q (a name clash): not touched", group, other))
		}
		h.log.Info("container group already exists", "node", node, "group", group)
		return makeHandle(id, handleData{InfraID: spec.InfraID, NodeID: node, NodeName: spec.NodeName, Created: h.ownedIDs(ctx, spec.InfraID, node, group)}), nil
	}
	var made []string
	hd, err := h.create(ctx, spec, o, group, &made)
	if err == nil {
		return hd, nil
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), rollbackLimit)
	defer cancel()
	if rerr := h.s.Delete(rctx, node, made); rerr != nil {
		h.log.Warn("rollback of a failed create incomplete", "node", node, "error", h.s.Scrub(rerr.Error()))
		return resource.Handle{}, fmt.Errorf("%w; rollback incomplete: %w", err, rerr)
	}
	h.log.Info("rolled back a failed create", "node", node, "deleted", len(made))
	return resource.Handle{}, err
}

func (h *Handler) create(ctx context.Context, spec resource.Spec, o settings, group string, made *[]string) (resource.Handle, error) {
	node := spec.NodeID
	tags := azure.Tags(spec.InfraID, node, spec.NodeName, spec.StoreID)
	if err := h.s.EnsureGroup(ctx, o.Location, node); err != nil {
		return resource.Handle{}, err
	}
	var owned []string
	props := &armcontainerinstance.ContainerGroupPropertiesProperties{OSType: to.Ptr(o.osType)}
	env := o.env
	var gports []*armcontainerinstance.Port
	var cports []*armcontainerinstance.ContainerPort
	for _, p := range o.Ports {
		gp, cp := armcontainerinstance.ContainerGroupNetworkProtocolTCP, armcontainerinstance.ContainerNetworkProtocolTCP
		if p.UDP {
			gp, cp = armcontainerinstance.ContainerGroupNetworkProtocolUDP, armcontainerinstance.ContainerNetworkProtocolUDP
		}
		gports = append(gports, &armcontainerinstance.Port{Port: to.Ptr(int32(p.Number)), Protocol: to.Ptr(gp)})
		cports = append(cports, &armcontainerinstance.ContainerPort{Port: to.Ptr(int32(p.Number)), Protocol: to.Ptr(cp)})
	}
	if o.public {
		fqdn := FQDN(group, o.Location)
		env = append(env, &armcontainerinstance.EnvironmentVariable{Name: to.Ptr(EnvFQDN), Value: to.Ptr(fqdn)})
		props.IPAddress = &armcontainerinstance.IPAddress{Type: to.Ptr(armcontainerinstance.ContainerGroupIPAddressTypePublic), Ports: gports, DNSNameLabel: to.Ptr(group)}
	} else {
		subnetID, ours, err := h.s.EnsureSubnet(ctx, node, azure.Network{Base: group, Location: o.Location, VNet: o.VNetName, Subnet: o.SubnetName, Delegation: Delegation, Tags: tags})
		*made = append(*made, ours...)
		owned = append(owned, ours...)
		if err != nil {
			return resource.Handle{}, err
		}
		props.SubnetIDs = []*armcontainerinstance.ContainerGroupSubnetID{{ID: to.Ptr(subnetID)}}
		if len(gports) > 0 {
			props.IPAddress = &armcontainerinstance.IPAddress{Type: to.Ptr(armcontainerinstance.ContainerGroupIPAddressTypePrivate), Ports: gports}
		}
	}
	props.Containers = []*armcontainerinstance.Container{{
		Name: to.Ptr(group),
		Properties: &armcontainerinstance.ContainerProperties{
			Image:                to.Ptr(o.Image),
			Command:              o.command,
			EnvironmentVariables: env,
			Ports:                cports,
			Resources: &armcontainerinstance.ResourceRequirements{Requests: &armcontainerinstance.ResourceRequests{
				CPU: to.Ptr(float64(o.CPUCores)), MemoryInGB: to.Ptr(float64(o.Memory)), Gpu: o.gpu,
			}},
		},
	}}
	body := armcontainerinstance.ContainerGroup{Location: to.Ptr(o.Location), Tags: tags, Properties: props}
	id := h.s.ID(azure.TypeContainerGroup, group)
	*made = append([]string{id}, *made...)
	r, err := azure.Await(ctx, h.s, "create container group "+group, node, func(ctx context.Context) (*runtime.Poller[armcontainerinstance.ContainerGroupsClientCreateOrUpdateResponse], error) {
		return h.s.ContainerGroups.BeginCreateOrUpdate(ctx, h.s.ResourceGroup, group, body, nil)
	})
	if err != nil {
		return resource.Handle{}, err
	}
	ip, fqdn := addressOf(r.ContainerGroup)
	h.log.Info("container group created", "node", node, "name", spec.NodeName, "group", group, "ip", ip, "fqdn", fqdn)
	return makeHandle(id, handleData{InfraID: spec.InfraID, NodeID: node, NodeName: spec.NodeName, Created: owned}), nil
}

func addressOf(g armcontainerinstance.ContainerGroup) (ip, fqdn string) {
	if g.Properties == nil || g.Properties.IPAddress == nil {
		return "", ""
	}
	return deref(g.Properties.IPAddress.IP), deref(g.Properties.IPAddress.Fqdn)
}

func (h *Handler) get(ctx context.Context, node, group string) (armcontainerinstance.ContainerGroup, bool, error) {
	var g armcontainerinstance.ContainerGroup
	err := h.s.Do(ctx, "get container group "+group, node, func(ctx context.Context) error {
		r, err := h.s.ContainerGroups.Get(ctx, h.s.ResourceGroup, group, nil)
		g = r.ContainerGroup
		return err
	})
	if azure.IsNotFound(err) {
		return g, false, nil
	}
	return g, err == nil, err
}

func (h *Handler) groupOf(hd resource.Handle) (string, error) {
	typ, _, _, group, err := azure.ParseID(hd.ID)
	if err != nil {
		return "", h.s.Fail("read handle", "", err)
	}
	if !strings.EqualFold(typ, azure.TypeContainerGroup) {
		return "", h.s.Fail("read handle", "", fmt.Errorf("handle %s is no container group", hd.ID))
	}
	return group, nil
}

// fetch gets the group of a handle; ErrNotFound when gone.
func (h *Handler) fetch(ctx context.Context, hd resource.Handle) (armcontainerinstance.ContainerGroup, error) {
	group, err := h.groupOf(hd)
	if err != nil {
		return armcontainerinstance.ContainerGroup{}, err
	}
	g, found, err := h.get(ctx, parseData(hd).NodeID, group)
	if err == nil && !found {
		err = fmt.Errorf("%s: container group %s at %s: %w", Provider, group, h.s.Endpoint, resource.ErrNotFound)
	}
	return g, err
}

// State maps the group's provisioning state and its containers' states.
func (h *Handler) State(ctx context.Context, hd resource.Handle) (resource.State, error) {
	g, err := h.fetch(ctx, hd)
	if err != nil {
		return resource.StateUnknown, err
	}
	var prov, groupState string
	var containers []string
	if p := g.Properties; p != nil {
		prov = deref(p.ProvisioningState)
		if p.InstanceView != nil {
			groupState = deref(p.InstanceView.State)
		}
		for _, c := range p.Containers {
			st := ""
			if c != nil && c.Properties != nil && c.Properties.InstanceView != nil && c.Properties.InstanceView.CurrentState != nil {
				st = deref(c.Properties.InstanceView.CurrentState.State)
			}
			containers = append(containers, st)
		}
	}
	return StateOf(prov, groupState, containers), nil
}

// StateOf maps a group's provisioningState, its instance view state and
// its containers' current states.
func StateOf(provisioning, group string, containers []string) resource.State {
	switch strings.ToLower(provisioning) {
	case "pending", "creating", "updating", "repairing":
		return resource.StatePending
	case "deleting":
		return resource.StateShutdown
	case "failed", "canceled":
		return resource.StateFailed
	case "succeeded":
	default:
		return resource.StateUnknown
	}
	switch strings.ToLower(group) {
	case "stopped":
		return resource.StateShutdown
	case "failed":
		return resource.StateFailed
	case "pending", "":
		return resource.StatePending
	case "running", "succeeded":
	default:
		return resource.StateUnknown
	}
	for _, c := range containers {
		switch strings.ToLower(c) {
		case "running":
		case "waiting", "":
			return resource.StatePending
		case "terminated":
			// Restarted by the group's policy (Always): not there yet.
			return resource.StatePending
		default:
			return resource.StateUnknown
		}
	}
	return resource.StateRunning
}

// Addresses: the group's IP address for both (see the package comment).
func (h *Handler) Addresses(ctx context.Context, hd resource.Handle) (resource.Addresses, error) {
	g, err := h.fetch(ctx, hd)
	if err != nil {
		return resource.Addresses{}, err
	}
	if g.Properties != nil && strings.EqualFold(deref(g.Properties.ProvisioningState), "Deleting") {
		return resource.Addresses{}, fmt.Errorf("%s: container group %s is being deleted: %w", Provider, hd.ID, resource.ErrNotFound)
	}
	ip, _ := addressOf(g)
	return resource.Addresses{Public: ip, Private: ip}, nil
}

// Destroy deletes the group and what was made for it. What is already
// gone is success.
func (h *Handler) Destroy(ctx context.Context, hd resource.Handle) error {
	group, err := h.groupOf(hd)
	if err != nil {
		return err
	}
	d := parseData(hd)
	if d.NodeID == "" {
		g, found, err := h.get(ctx, "", group)
		if err != nil {
			return err
		}
		if found {
			d.InfraID, d.NodeID = azure.TagValue(g.Tags, azure.TagInfraID), azure.TagValue(g.Tags, azure.TagNodeID)
		}
	}
	ids := append([]string{hd.ID}, d.Created...)
	if d.NodeID != "" {
		ids = append(ids, h.ownedIDs(ctx, d.InfraID, d.NodeID, group)...)
	}
	if err := h.s.Delete(ctx, d.NodeID, ids); err != nil {
		return err
	}
	h.log.Info("container group destroyed", "node", d.NodeID, "group", group)
	return nil
}

// ownedIDs are what is the node's own besides its group: its tagged
// virtual network and the subnet made for it.
func (h *Handler) ownedIDs(ctx context.Context, infraID, nodeID, group string) []string {
	tagged, err := h.s.Tagged(ctx, "list resources of node "+nodeID, nodeID, azure.TagNodeID, nodeID)
	if err != nil {
		h.log.Warn("listing the resources of a node failed", "node", nodeID, "error", h.s.Scrub(err.Error()))
	}
	var out []string
	for _, t := range tagged {
		if t.Tags[azure.TagInfraID] == infraID && !strings.EqualFold(t.Type, azure.TypeContainerGroup) && !vmish(t.Type) {
			out = append(out, t.ID)
		}
	}
	var o Instance
	_ = descr.Decode("resource", h.defaults, &o)
	if strings.EqualFold(o.NetworkType, "private") {
		if id := h.s.OwnSubnet(azure.Network{Base: group, VNet: o.VNetName, Subnet: o.SubnetName}); id != "" {
			out = append(out, id)
		}
	}
	return out
}

// vmish: made for an azure_vm node.
func vmish(typ string) bool {
	for _, t := range []string{azure.TypeVM, azure.TypeNIC, azure.TypePublicIP, azure.TypeNSG, azure.TypeDisk} {
		if strings.EqualFold(t, typ) {
			return true
		}
	}
	return false
}

// List finds every node of the infrastructure with a container group or
// what a crash left of its network.
func (h *Handler) List(ctx context.Context, infraID string) ([]resource.Owned, error) {
	tagged, err := h.s.Tagged(ctx, "list resources of infrastructure "+infraID, "", azure.TagInfraID, infraID)
	if err != nil {
		return nil, err
	}
	var out []resource.Owned
	for nodeID, items := range azure.ByNode(tagged, infraID) {
		if ours(items) {
			out = append(out, h.owned(infraID, nodeID, items))
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].NodeID < out[j].NodeID })
	return out, nil
}

// ListAll finds every node of any infrastructure with a container group
// or what a crash left of its network in the resource group, but the
// azure_vm nodes sharing the group.
func (h *Handler) ListAll(ctx context.Context) ([]resource.Owned, error) {
	tagged, err := h.s.TaggedAny(ctx, "list tagged resources", azure.TagInfraID)
	if err != nil {
		return nil, err
	}
	keys, byNode := azure.ByInfraNode(tagged)
	var out []resource.Owned
	for _, k := range keys {
		if !ours(byNode[k]) {
			continue
		}
		if len(out) == resource.MaxSweep {
			h.log.Warn("more nodes than one sweep looks at; the rest wait for a later one", "max", resource.MaxSweep)
			break
		}
		out = append(out, h.owned(k.InfraID, k.NodeID, byNode[k]))
	}
	return out, nil
}

// ours: a node with a container group, or only a network left.
func ours(items []azure.Tagged) bool {
	for _, t := range items {
		if vmish(t.Type) {
			return false
		}
	}
	return len(items) > 0
}

// Find returns the handle of what was made for one node id.
func (h *Handler) Find(ctx context.Context, infraID, nodeID string) (resource.Handle, bool, error) {
	tagged, err := h.s.Tagged(ctx, "find node "+nodeID, nodeID, azure.TagNodeID, nodeID)
	if err != nil {
		return resource.Handle{}, false, err
	}
	items := azure.ByNode(tagged, infraID)[nodeID]
	if !ours(items) {
		return resource.Handle{}, false, nil
	}
	return h.owned(infraID, nodeID, items).Handle, true, nil
}

func (h *Handler) owned(infraID, nodeID string, items []azure.Tagged) resource.Owned {
	nodeName := items[0].Tags[azure.TagNodeName]
	group := name(infraID, nodeName, nodeID)
	d := handleData{InfraID: infraID, NodeID: nodeID, NodeName: nodeName}
	for _, t := range items {
		if strings.EqualFold(t.Type, azure.TypeContainerGroup) {
			group = t.Name
			continue
		}
		d.Created = append(d.Created, t.ID)
	}
	return resource.Owned{Handle: makeHandle(h.s.ID(azure.TypeContainerGroup, group), d), InfraID: infraID, NodeID: nodeID, NodeName: nodeName, StoreID: azure.StoreOf(items)}
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}
