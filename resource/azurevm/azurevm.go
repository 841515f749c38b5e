// Package azurevm runs nodes as Azure virtual machines (`type: azure_vm`),
// through the official Azure SDK (azidentity, armresources, armnetwork,
// armcompute). Credentials, clouds, TLS, retries, tags and names are
// package azure's (see there).
//
// Resource section keys (as in Occopus and its tutorials):
//
//	endpoint:        Azure Resource Manager URL (https://management.azure.com)
//	resource_group:  where everything goes; created when missing, never deleted
//	location:        region (westeurope)
//	vm_size:         Standard_B1s, ...
//	publisher, offer, sku, version: the marketplace image
//	username:        the admin user
//	password, ssh_key_data: how it logs in (one of them, or both)
//	vnet_name, subnet_name: the user's network (optional: made otherwise)
//	nic_name:        the user's network interface (optional)
//	public_ip_needed: yes to give the VM a public IP
//	server_name:     host name (default the VM's name)
//
// Create makes, each only when missing (a retried Create finds what an
// earlier try made), every one tagged with the infra id, node id and node
// name: the resource group; without vnet_name a virtual network
// <vm>-vnet (10.0.0.0/16), without subnet_name a subnet <vm>-subnet (a
// /24: 10.0.0.0/24 in the VM's own network, the first free one in the
// user's); with public_ip_needed a Standard static public IP <vm>-pubip
// (Basic SKUs were retired in 2025) and, since a Standard IP lets nothing
// in by default, a network security group <vm>-nsg letting in ICMP (the
// ping health check) and SSH; the NIC <vm>-nic; the VM, with
// osProfile.customData the base64 of the rendered cloud-init and its OS
// disk <vm>-osdisk (deleteOption Delete). The VM name is Occopus's
// occopus-…-<node name>-<node id[:8]> (see azure.UniqueName), so ARM's
// create-or-update by name never makes a second VM for a node. Every
// long-running operation is waited for; a failure (QuotaExceeded, ...)
// deletes what this Create made before it returns.
//
// State: provisioningState Creating/Updating → pending; Succeeded with
// PowerState/running → running (starting → pending); deallocating,
// deallocated, stopping, stopped, deleting → shutdown; Failed (and
// Canceled) → failed; anything else → unknown, which the engine waits
// out (Occopus aborts its whole pass there).
//
// Addresses: the NIC's public IP, else its private IP; the private IP is
// what getprivip gives.
//
// Destroy deletes the VM, its disks, then what this backend made for it,
// in the order ARM accepts: NIC, NSG, public IP, subnet, virtual network
// (ARM refuses to delete a public IP still attached to a NIC, so the NIC
// goes first). The resource group and everything the user named are
// never touched.
package azurevm

import (
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/compute/armcompute/v7"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/network/armnetwork/v7"

	"github.com/occopus-go/occopus/descr"
	"github.com/occopus-go/occopus/internal/keylock"
	"github.com/occopus-go/occopus/resource"
	"github.com/occopus-go/occopus/resource/azure"
)

// Provider is the backend's type and the prefix of its errors.
const Provider = "azure_vm"

// MaxCustomData is Azure's limit on custom data before base64 encoding.
const MaxCustomData = 65535

// rollbackLimit bounds the clean-up of a failed Create.
const rollbackLimit = 10 * time.Minute

// Handler runs node instances as VMs in one resource group of one
// subscription.
type Handler struct {
	s        *azure.Session
	defaults map[string]any // the section New got: Create's when a spec has none
	log      *slog.Logger
	locks    keylock.Locks // per node id
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
	var sk secretKeys
	_ = descr.Decode("resource", cfg.Resource, &sk) // Create reports a bad value
	if sk.Password != "" {
		o.Secrets = append(o.Secrets, string(sk.Password))
	}
	s, err := azure.NewSession(Provider, cfg, o)
	if err != nil {
		return nil, err
	}
	return &Handler{s: s, defaults: cfg.Resource, log: s.Log}, nil
}

// handleData is the backend-private part of a Handle.
type handleData struct {
	InfraID  string `json:"infra_id,omitempty"`
	NodeID   string `json:"node_id,omitempty"`
	NodeName string `json:"node_name,omitempty"`
	// Created are the ids of what was made for the VM besides it.
	Created []string `json:"created,omitempty"`
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
// spec has none) and checks what Create needs, before any call.
func (h *Handler) settings(spec resource.Spec) (Instance, error) {
	res := spec.Resource
	if res == nil {
		res = h.defaults
	}
	var o Instance
	if err := descr.Decode("resource", res, &o); err != nil {
		return o, err
	}
	if o.Password == "" && strings.TrimSpace(o.SSHKeyData) == "" {
		return o, errors.New("the resource section needs password or ssh_key_data for username " + o.Username)
	}
	if o.NICName != "" && (o.PublicIPNeeded || o.VNetName != "" || o.SubnetName != "") {
		return o, fmt.Errorf("nic_name %s is the user's network interface, used as it is: public_ip_needed, vnet_name and subnet_name cannot go with it", o.NICName)
	}
	if o.SubnetName != "" && o.VNetName == "" {
		// Occopus looks the subnet up in the VM's own new network, where
		// it cannot exist; here it is made there with that name.
		h.log.Debug("subnet_name without vnet_name: the subnet is made in the VM's own virtual network", "subnet", o.SubnetName)
	}
	if n := len(spec.Context.UserData); n > MaxCustomData {
		return o, fmt.Errorf("the rendered cloud-init is %d bytes; Azure takes at most %d bytes of custom data", n, MaxCustomData)
	}
	return o, nil
}

// name is the node's VM name.
func name(infraID, nodeName, nodeID string) string {
	return azure.UniqueName("", infraID, nodeName, nodeID, azure.NameMax, false)
}

// Create makes the node's VM and what it needs, or returns the one an
// earlier Create made.
func (h *Handler) Create(ctx context.Context, spec resource.Spec) (resource.Handle, error) {
	if spec.InfraID == "" || spec.NodeID == "" {
		return resource.Handle{}, h.s.Fail("create VM", spec.NodeID, errors.New("the spec has no infra id or node id"))
	}
	node := spec.NodeID
	o, err := h.settings(spec)
	if err != nil {
		return resource.Handle{}, h.s.Fail("create VM for node "+spec.NodeName, node, err)
	}
	defer h.locks.Lock(node)()
	vm := name(spec.InfraID, spec.NodeName, node)
	vmID := h.s.ID(azure.TypeVM, vm)
	existing, found, err := h.getVM(ctx, node, vm, false)
	if err != nil {
		return resource.Handle{}, err
	}
	if found {
		if other := azure.TagValue(existing.Tags, azure.TagNodeID); other != node {
			return resource.Handle{}, h.s.Fail("create VM "+vm, node, fmt.Errorf("a VM named %s exists for node %q (a name clash): not touched", vm, other))
		}
		h.log.Info("VM already exists", "node", node, "vm", vm)
		return makeHandle(vmID, handleData{InfraID: spec.InfraID, NodeID: node, NodeName: spec.NodeName,
			Created: h.ownedIDs(ctx, spec.InfraID, node, vm)}), nil
	}
	var made []string
	hd, err := h.create(ctx, spec, o, vm, &made)
	if err == nil {
		return hd, nil
	}
	// Clean up on our own time, also when ctx was cancelled: the wait
	// stopped at once, what was made goes now.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), rollbackLimit)
	defer cancel()
	if rerr := h.s.Delete(rctx, node, made); rerr != nil {
		h.log.Warn("rollback of a failed create incomplete", "node", node, "error", h.s.Scrub(rerr.Error()))
		return resource.Handle{}, fmt.Errorf("%w; rollback incomplete: %w", err, rerr)
	}
	h.log.Info("rolled back a failed create", "node", node, "deleted", len(made))
	return resource.Handle{}, err
}

// create makes the resources in order, appending each id to made as soon
// as its creation was asked for (so a rollback also removes one whose
// operation failed).
func (h *Handler) create(ctx context.Context, spec resource.Spec, o Instance, vm string, made *[]string) (resource.Handle, error) {
	node := spec.NodeID
	tags := azure.Tags(spec.InfraID, node, spec.NodeName, spec.StoreID)
	if err := h.s.EnsureGroup(ctx, o.Location, node); err != nil {
		return resource.Handle{}, err
	}
	var owned []string
	nicID := ""
	if o.NICName != "" {
		nic, err := h.getNIC(ctx, node, o.NICName)
		if err != nil {
			if azure.IsNotFound(err) {
				return resource.Handle{}, h.s.Fail("find network interface "+o.NICName, node,
					fmt.Errorf("nic_name %q: no network interface of that name in resource group %s", o.NICName, h.s.ResourceGroup))
			}
			return resource.Handle{}, err
		}
		nicID = *nic.ID
	} else {
		subnetID, ours, err := h.s.EnsureSubnet(ctx, node, azure.Network{Base: vm, Location: o.Location, VNet: o.VNetName, Subnet: o.SubnetName, Tags: tags})
		*made = append(*made, ours...)
		owned = append(owned, ours...)
		if err != nil {
			return resource.Handle{}, err
		}
		var pipID, nsgID string
		if o.PublicIPNeeded {
			if nsgID, err = h.ensureNSG(ctx, node, vm+"-nsg", o.Location, tags, made); err != nil {
				return resource.Handle{}, err
			}
			if pipID, err = h.ensurePublicIP(ctx, node, vm+"-pubip", o.Location, tags, made); err != nil {
				return resource.Handle{}, err
			}
			owned = append(owned, nsgID, pipID)
		}
		if nicID, err = h.ensureNIC(ctx, node, vm, o.Location, subnetID, pipID, nsgID, tags, made); err != nil {
			return resource.Handle{}, err
		}
		owned = append(owned, nicID)
	}
	body := h.vmBody(spec, o, vm, nicID, tags)
	vmID := h.s.ID(azure.TypeVM, vm)
	*made = append([]string{vmID, h.s.ID(azure.TypeDisk, vm+"-osdisk")}, *made...)
	_, err := azure.Await(ctx, h.s, "create VM "+vm, node, func(ctx context.Context) (*runtime.Poller[armcompute.VirtualMachinesClientCreateOrUpdateResponse], error) {
		return h.s.VMs.BeginCreateOrUpdate(ctx, h.s.ResourceGroup, vm, body, nil)
	})
	if err != nil {
		return resource.Handle{}, err
	}
	h.log.Info("VM created", "node", node, "name", spec.NodeName, "vm", vm, "size", o.VMSize)
	return makeHandle(vmID, handleData{InfraID: spec.InfraID, NodeID: node, NodeName: spec.NodeName, Created: owned}), nil
}

func (h *Handler) vmBody(spec resource.Spec, o Instance, vm, nicID string, tags map[string]*string) armcompute.VirtualMachine {
	osp := &armcompute.OSProfile{
		ComputerName:  to.Ptr(cmp.Or(o.ServerName, vm)),
		AdminUsername: to.Ptr(o.Username),
	}
	if spec.Context.UserData != "" {
		osp.CustomData = to.Ptr(base64.StdEncoding.EncodeToString([]byte(spec.Context.UserData)))
	}
	linux := &armcompute.LinuxConfiguration{DisablePasswordAuthentication: to.Ptr(o.Password == "")}
	if o.Password != "" {
		osp.AdminPassword = to.Ptr(string(o.Password))
	}
	if key := strings.TrimSpace(o.SSHKeyData); key != "" {
		linux.SSH = &armcompute.SSHConfiguration{PublicKeys: []*armcompute.SSHPublicKey{{
			Path: to.Ptr("/home/" + o.Username + "/.ssh/authorized_keys"), KeyData: to.Ptr(key),
		}}}
	}
	osp.LinuxConfiguration = linux
	return armcompute.VirtualMachine{
		Location: to.Ptr(o.Location),
		Tags:     tags,
		Properties: &armcompute.VirtualMachineProperties{
			HardwareProfile: &armcompute.HardwareProfile{VMSize: to.Ptr(armcompute.VirtualMachineSizeTypes(o.VMSize))},
			StorageProfile: &armcompute.StorageProfile{
				ImageReference: &armcompute.ImageReference{Publisher: to.Ptr(o.Publisher), Offer: to.Ptr(o.Offer), SKU: to.Ptr(o.SKU), Version: to.Ptr(o.Version)},
				// Named, so that Destroy finds it without the VM; deleted
				// with the VM, so a crash in between leaves none.
				OSDisk: &armcompute.OSDisk{
					Name:         to.Ptr(vm + "-osdisk"),
					CreateOption: to.Ptr(armcompute.DiskCreateOptionTypesFromImage),
					DeleteOption: to.Ptr(armcompute.DiskDeleteOptionTypesDelete),
				},
			},
			OSProfile: osp,
			NetworkProfile: &armcompute.NetworkProfile{NetworkInterfaces: []*armcompute.NetworkInterfaceReference{{
				ID: to.Ptr(nicID),
				// The NIC is deleted by Destroy itself (it may be the
				// user's); the VM must not take it along.
				Properties: &armcompute.NetworkInterfaceReferenceProperties{Primary: to.Ptr(true), DeleteOption: to.Ptr(armcompute.DeleteOptionsDetach)},
			}}},
		},
	}
}

// ensureNSG makes the NSG of a VM with a public IP: a Standard public IP
// lets nothing in without one. ICMP and SSH come in.
func (h *Handler) ensureNSG(ctx context.Context, node, name, location string, tags map[string]*string, made *[]string) (string, error) {
	id := h.s.ID(azure.TypeNSG, name)
	err := h.s.Do(ctx, "get network security group "+name, node, func(ctx context.Context) error {
		_, err := h.s.NSGs.Get(ctx, h.s.ResourceGroup, name, nil)
		return err
	})
	if err == nil || !azure.IsNotFound(err) {
		return id, err
	}
	rule := func(name string, prio int32, proto armnetwork.SecurityRuleProtocol, port string) *armnetwork.SecurityRule {
		return &armnetwork.SecurityRule{Name: to.Ptr(name), Properties: &armnetwork.SecurityRulePropertiesFormat{
			Protocol: to.Ptr(proto), Access: to.Ptr(armnetwork.SecurityRuleAccessAllow), Direction: to.Ptr(armnetwork.SecurityRuleDirectionInbound),
			Priority: to.Ptr(prio), SourceAddressPrefix: to.Ptr("*"), SourcePortRange: to.Ptr("*"),
			DestinationAddressPrefix: to.Ptr("*"), DestinationPortRange: to.Ptr(port),
		}}
	}
	body := armnetwork.SecurityGroup{Location: to.Ptr(location), Tags: tags, Properties: &armnetwork.SecurityGroupPropertiesFormat{
		SecurityRules: []*armnetwork.SecurityRule{
			rule("occopus-allow-icmp", 1000, armnetwork.SecurityRuleProtocolIcmp, "*"),
			rule("occopus-allow-ssh", 1010, armnetwork.SecurityRuleProtocolTCP, "22"),
		},
	}}
	*made = append(*made, id)
	_, err = azure.Await(ctx, h.s, "create network security group "+name, node, func(ctx context.Context) (*runtime.Poller[armnetwork.SecurityGroupsClientCreateOrUpdateResponse], error) {
		return h.s.NSGs.BeginCreateOrUpdate(ctx, h.s.ResourceGroup, name, body, nil)
	})
	return id, err
}

func (h *Handler) ensurePublicIP(ctx context.Context, node, name, location string, tags map[string]*string, made *[]string) (string, error) {
	id := h.s.ID(azure.TypePublicIP, name)
	err := h.s.Do(ctx, "get public IP "+name, node, func(ctx context.Context) error {
		_, err := h.s.PublicIPs.Get(ctx, h.s.ResourceGroup, name, nil)
		return err
	})
	if err == nil || !azure.IsNotFound(err) {
		return id, err
	}
	body := armnetwork.PublicIPAddress{
		Location: to.Ptr(location), Tags: tags,
		// Basic public IPs were retired on 2025-09-30: Standard, static.
		SKU: &armnetwork.PublicIPAddressSKU{Name: to.Ptr(armnetwork.PublicIPAddressSKUNameStandard), Tier: to.Ptr(armnetwork.PublicIPAddressSKUTierRegional)},
		Properties: &armnetwork.PublicIPAddressPropertiesFormat{
			PublicIPAllocationMethod: to.Ptr(armnetwork.IPAllocationMethodStatic),
			PublicIPAddressVersion:   to.Ptr(armnetwork.IPVersionIPv4),
		},
	}
	*made = append(*made, id)
	_, err = azure.Await(ctx, h.s, "create public IP "+name, node, func(ctx context.Context) (*runtime.Poller[armnetwork.PublicIPAddressesClientCreateOrUpdateResponse], error) {
		return h.s.PublicIPs.BeginCreateOrUpdate(ctx, h.s.ResourceGroup, name, body, nil)
	})
	return id, err
}

func (h *Handler) ensureNIC(ctx context.Context, node, vm, location, subnetID, pipID, nsgID string, tags map[string]*string, made *[]string) (string, error) {
	name := vm + "-nic"
	id := h.s.ID(azure.TypeNIC, name)
	if _, err := h.getNIC(ctx, node, name); err == nil || !azure.IsNotFound(err) {
		return id, err
	}
	ipc := &armnetwork.InterfaceIPConfigurationPropertiesFormat{
		Subnet:                    &armnetwork.Subnet{ID: to.Ptr(subnetID)},
		PrivateIPAllocationMethod: to.Ptr(armnetwork.IPAllocationMethodDynamic),
		Primary:                   to.Ptr(true),
	}
	if pipID != "" {
		ipc.PublicIPAddress = &armnetwork.PublicIPAddress{ID: to.Ptr(pipID)}
	}
	body := armnetwork.Interface{Location: to.Ptr(location), Tags: tags, Properties: &armnetwork.InterfacePropertiesFormat{
		IPConfigurations: []*armnetwork.InterfaceIPConfiguration{{Name: to.Ptr(vm + "-ipconfig"), Properties: ipc}},
	}}
	if nsgID != "" {
		body.Properties.NetworkSecurityGroup = &armnetwork.SecurityGroup{ID: to.Ptr(nsgID)}
	}
	*made = append(*made, id)
	_, err := azure.Await(ctx, h.s, "create network interface "+name, node, func(ctx context.Context) (*runtime.Poller[armnetwork.InterfacesClientCreateOrUpdateResponse], error) {
		return h.s.NICs.BeginCreateOrUpdate(ctx, h.s.ResourceGroup, name, body, nil)
	})
	return id, err
}

func (h *Handler) getNIC(ctx context.Context, node, name string) (armnetwork.Interface, error) {
	var nic armnetwork.Interface
	err := h.s.Do(ctx, "get network interface "+name, node, func(ctx context.Context) error {
		r, err := h.s.NICs.Get(ctx, h.s.ResourceGroup, name, nil)
		nic = r.Interface
		return err
	})
	return nic, err
}

// getVM fetches a VM (with its instance view when asked); found is false
// when ARM has none of that name.
func (h *Handler) getVM(ctx context.Context, node, vm string, view bool) (armcompute.VirtualMachine, bool, error) {
	var opts *armcompute.VirtualMachinesClientGetOptions
	if view {
		opts = &armcompute.VirtualMachinesClientGetOptions{Expand: to.Ptr(armcompute.InstanceViewTypesInstanceView)}
	}
	var v armcompute.VirtualMachine
	err := h.s.Do(ctx, "get VM "+vm, node, func(ctx context.Context) error {
		r, err := h.s.VMs.Get(ctx, h.s.ResourceGroup, vm, opts)
		v = r.VirtualMachine
		return err
	})
	if azure.IsNotFound(err) {
		return v, false, nil
	}
	return v, err == nil, err
}

// vmOf reads the VM name out of a handle.
func (h *Handler) vmOf(hd resource.Handle) (string, error) {
	typ, _, _, vm, err := azure.ParseID(hd.ID)
	if err != nil {
		return "", h.s.Fail("read handle", "", err)
	}
	if !strings.EqualFold(typ, azure.TypeVM) {
		return "", h.s.Fail("read handle", "", fmt.Errorf("handle %s is no VM", hd.ID))
	}
	return vm, nil
}

// State maps the VM's provisioning state and power state.
func (h *Handler) State(ctx context.Context, hd resource.Handle) (resource.State, error) {
	vm, err := h.vmOf(hd)
	if err != nil {
		return resource.StateUnknown, err
	}
	v, found, err := h.getVM(ctx, parseData(hd).NodeID, vm, true)
	if err != nil {
		return resource.StateUnknown, err
	}
	if !found {
		return resource.StateUnknown, fmt.Errorf("%s: VM %s at %s: %w", Provider, vm, h.s.Endpoint, resource.ErrNotFound)
	}
	var prov string
	var codes []string
	if p := v.Properties; p != nil {
		prov = deref(p.ProvisioningState)
		if p.InstanceView != nil {
			for _, s := range p.InstanceView.Statuses {
				if s != nil && s.Code != nil {
					codes = append(codes, *s.Code)
				}
			}
		}
	}
	return StateOf(prov, codes), nil
}

// StateOf maps a VM's provisioningState and instance view status codes
// (ProvisioningState/…, PowerState/…).
func StateOf(provisioning string, codes []string) resource.State {
	power := ""
	for _, c := range codes {
		if p, ok := strings.CutPrefix(c, "PowerState/"); ok {
			power = strings.ToLower(p)
		}
	}
	switch strings.ToLower(provisioning) {
	case "creating", "updating", "migrating":
		return resource.StatePending
	case "deleting":
		return resource.StateShutdown
	case "failed", "canceled":
		return resource.StateFailed
	case "succeeded":
		switch power {
		case "running":
			return resource.StateRunning
		case "starting", "":
			return resource.StatePending
		case "stopping", "stopped", "deallocating", "deallocated":
			return resource.StateShutdown
		}
	}
	return resource.StateUnknown
}

// Addresses: the NIC's public IP (the private one when it has none) and
// its private IP.
func (h *Handler) Addresses(ctx context.Context, hd resource.Handle) (resource.Addresses, error) {
	vm, err := h.vmOf(hd)
	if err != nil {
		return resource.Addresses{}, err
	}
	node := parseData(hd).NodeID
	v, found, err := h.getVM(ctx, node, vm, false)
	if err != nil {
		return resource.Addresses{}, err
	}
	if !found || (v.Properties != nil && strings.EqualFold(deref(v.Properties.ProvisioningState), "Deleting")) {
		return resource.Addresses{}, fmt.Errorf("%s: VM %s at %s: %w", Provider, vm, h.s.Endpoint, resource.ErrNotFound)
	}
	nicID := ""
	if v.Properties != nil && v.Properties.NetworkProfile != nil {
		for _, n := range v.Properties.NetworkProfile.NetworkInterfaces {
			if n == nil || n.ID == nil {
				continue
			}
			if nicID == "" || (n.Properties != nil && n.Properties.Primary != nil && *n.Properties.Primary) {
				nicID = *n.ID
			}
		}
	}
	if nicID == "" {
		return resource.Addresses{}, nil
	}
	_, _, _, nicName, err := azure.ParseID(nicID)
	if err != nil {
		return resource.Addresses{}, h.s.Fail("addresses of VM "+vm, node, err)
	}
	nic, err := h.getNIC(ctx, node, nicName)
	if err != nil {
		return resource.Addresses{}, err
	}
	var a resource.Addresses
	var pipID string
	if nic.Properties != nil {
		for _, c := range nic.Properties.IPConfigurations {
			if c == nil || c.Properties == nil {
				continue
			}
			if a.Private == "" || (c.Properties.Primary != nil && *c.Properties.Primary) {
				a.Private = deref(c.Properties.PrivateIPAddress)
				pipID = ""
				if c.Properties.PublicIPAddress != nil {
					pipID = deref(c.Properties.PublicIPAddress.ID)
				}
			}
		}
	}
	if pipID != "" {
		_, group, _, pipName, err := azure.ParseID(pipID)
		if err != nil {
			return resource.Addresses{}, h.s.Fail("addresses of VM "+vm, node, err)
		}
		err = h.s.Do(ctx, "get public IP "+pipName, node, func(ctx context.Context) error {
			r, err := h.s.PublicIPs.Get(ctx, group, pipName, nil)
			if err == nil && r.Properties != nil {
				a.Public = deref(r.Properties.IPAddress)
			}
			return err
		})
		if err != nil && !azure.IsNotFound(err) {
			return resource.Addresses{}, err
		}
	}
	if a.Public == "" {
		a.Public = a.Private
	}
	return a, nil
}

// Destroy deletes the VM, its disks and what was made for it. What is
// already gone is success.
func (h *Handler) Destroy(ctx context.Context, hd resource.Handle) error {
	vm, err := h.vmOf(hd)
	if err != nil {
		return err
	}
	d := parseData(hd)
	ids := []string{hd.ID}
	v, found, err := h.getVM(ctx, d.NodeID, vm, false)
	if err != nil {
		return err
	}
	if found {
		if d.NodeID == "" {
			d.InfraID, d.NodeID = azure.TagValue(v.Tags, azure.TagInfraID), azure.TagValue(v.Tags, azure.TagNodeID)
		}
		ids = append(ids, disksOf(v)...)
	}
	ids = append(ids, h.s.ID(azure.TypeDisk, vm+"-osdisk"))
	ids = append(ids, d.Created...)
	if d.NodeID != "" {
		// What a handle without data (or an earlier Create) does not name.
		ids = append(ids, h.ownedIDs(ctx, d.InfraID, d.NodeID, vm)...)
	}
	if err := h.s.Delete(ctx, d.NodeID, ids); err != nil {
		return err
	}
	h.log.Info("VM destroyed", "node", d.NodeID, "vm", vm)
	return nil
}

func disksOf(v armcompute.VirtualMachine) []string {
	var out []string
	if v.Properties == nil || v.Properties.StorageProfile == nil {
		return nil
	}
	sp := v.Properties.StorageProfile
	if sp.OSDisk != nil && sp.OSDisk.ManagedDisk != nil && sp.OSDisk.ManagedDisk.ID != nil {
		out = append(out, *sp.OSDisk.ManagedDisk.ID)
	}
	for _, dd := range sp.DataDisks {
		if dd != nil && dd.ManagedDisk != nil && dd.ManagedDisk.ID != nil {
			out = append(out, *dd.ManagedDisk.ID)
		}
	}
	return out
}

// ownedIDs are the ids of what is the node's own besides its VM: the
// resources tagged with its node id (and its infra id) that a VM uses,
// and the subnet made for it (subnets take no tags: its name is the
// node's).
func (h *Handler) ownedIDs(ctx context.Context, infraID, nodeID, vm string) []string {
	tagged, err := h.s.Tagged(ctx, "list resources of node "+nodeID, nodeID, azure.TagNodeID, nodeID)
	if err != nil {
		h.log.Warn("listing the resources of a node failed", "node", nodeID, "error", h.s.Scrub(err.Error()))
	}
	var out []string
	for _, t := range tagged {
		if t.Tags[azure.TagInfraID] != infraID || strings.EqualFold(t.Type, azure.TypeVM) || strings.EqualFold(t.Type, azure.TypeContainerGroup) {
			continue
		}
		out = append(out, t.ID)
	}
	var o Instance
	_ = descr.Decode("resource", h.defaults, &o)
	if o.NICName == "" {
		if id := h.s.OwnSubnet(azure.Network{Base: vm, VNet: o.VNetName, Subnet: o.SubnetName}); id != "" {
			out = append(out, id)
		}
	}
	return out
}

// List finds every node of the infrastructure with something tagged in
// the resource group: its VM, or what a crash left of its network.
func (h *Handler) List(ctx context.Context, infraID string) ([]resource.Owned, error) {
	tagged, err := h.s.Tagged(ctx, "list resources of infrastructure "+infraID, "", azure.TagInfraID, infraID)
	if err != nil {
		return nil, err
	}
	var out []resource.Owned
	for nodeID, items := range azure.ByNode(tagged, infraID) {
		if azure.Has(items, azure.TypeContainerGroup) {
			continue // an azure_aci node
		}
		out = append(out, h.owned(infraID, nodeID, items))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].NodeID < out[j].NodeID })
	return out, nil
}

// ListAll finds every node of any infrastructure with something tagged
// in the resource group (its VM, or what a crash left of its network),
// but the azure_aci nodes sharing the group.
func (h *Handler) ListAll(ctx context.Context) ([]resource.Owned, error) {
	tagged, err := h.s.TaggedAny(ctx, "list tagged resources", azure.TagInfraID)
	if err != nil {
		return nil, err
	}
	keys, byNode := azure.ByInfraNode(tagged)
	var out []resource.Owned
	for _, k := range keys {
		items := byNode[k]
		if azure.Has(items, azure.TypeContainerGroup) {
			continue // an azure_aci node
		}
		if len(out) == resource.MaxSweep {
			h.log.Warn("more nodes than one sweep looks at; the rest wait for a later one", "max", resource.MaxSweep)
			break
		}
		out = append(out, h.owned(k.InfraID, k.NodeID, items))
	}
	return out, nil
}

// Find returns the handle of what was made for one node id.
func (h *Handler) Find(ctx context.Context, infraID, nodeID string) (resource.Handle, bool, error) {
	tagged, err := h.s.Tagged(ctx, "find node "+nodeID, nodeID, azure.TagNodeID, nodeID)
	if err != nil {
		return resource.Handle{}, false, err
	}
	items := azure.ByNode(tagged, infraID)[nodeID]
	if len(items) == 0 || azure.Has(items, azure.TypeContainerGroup) {
		return resource.Handle{}, false, nil
	}
	return h.owned(infraID, nodeID, items).Handle, true, nil
}

func (h *Handler) owned(infraID, nodeID string, items []azure.Tagged) resource.Owned {
	nodeName := items[0].Tags[azure.TagNodeName]
	vmID := h.s.ID(azure.TypeVM, name(infraID, nodeName, nodeID))
	d := handleData{InfraID: infraID, NodeID: nodeID, NodeName: nodeName}
	for _, t := range items {
		if strings.EqualFold(t.Type, azure.TypeVM) {
			vmID = t.ID
			continue
		}
		d.Created = append(d.Created, t.ID)
	}
	// The id as this backend spells it, so that it compares equal to the
	// one Create returned.
	if _, _, _, vm, err := azure.ParseID(vmID); err == nil {
		vmID = h.s.ID(azure.TypeVM, vm)
	}
	return resource.Owned{Handle: makeHandle(vmID, d), InfraID: infraID, NodeID: nodeID, NodeName: nodeName, StoreID: azure.StoreOf(items)}
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}
