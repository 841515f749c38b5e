package azure

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/compute/armcompute/v7"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/containerinstance/armcontainerinstance/v2"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/network/armnetwork/v7"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/resources/armresources"

	"github.com/occopus-go/occopus/internal/cloudapi"
)

// Resource types the backends make.
const (
	TypeVM             = "Microsoft.Compute/virtualMachines"
	TypeDisk           = "Microsoft.Compute/disks"
	TypeContainerGroup = "Microsoft.ContainerInstance/containerGroups"
	TypeNIC            = "Microsoft.Network/networkInterfaces"
	TypeNSG            = "Microsoft.Network/networkSecurityGroups"
	TypePublicIP       = "Microsoft.Network/publicIPAddresses"
	TypeVNet           = "Microsoft.Network/virtualNetworks"
	TypeSubnet         = "Microsoft.Network/virtualNetworks/subnets"
)

// deleteRank is the order of Delete: what uses a resource goes before it
// (ARM refuses to delete a NIC attached to a VM, a public IP or NSG
// attached to a NIC, a subnet with NICs or container groups in it).
var deleteRank = []string{TypeVM, TypeDisk, TypeContainerGroup, TypeNIC, TypeNSG, TypePublicIP, TypeSubnet, TypeVNet}

// ID is the resource id of a top-level resource of the session's group,
// with ARM's canonical spelling, so ids built here compare equal.
func (s *Session) ID(typ, name string) string {
	return fmt.Sprintf("/subscriptions/%s/resourceGroups/%s/providers/%s/%s", s.Subscription, s.ResourceGroup, typ, name)
}

// SubnetID is the id of a subnet of a virtual network of the group.
func (s *Session) SubnetID(vnet, subnet string) string {
	return s.ID(TypeVNet, vnet) + "/subnets/" + subnet
}

// ParseID splits a resource id into its type, resource group, parent
// name (subnets: the virtual network) and name.
func ParseID(id string) (typ, group, parent, name string, err error) {
	r, err := arm.ParseResourceID(id)
	if err != nil {
		return "", "", "", "", fmt.Errorf("resource id %q: %w", id, err)
	}
	if r.Parent != nil && r.Parent.ResourceType.String() != "Microsoft.Resources/resourceGroups" {
		parent = r.Parent.Name
	}
	return r.ResourceType.String(), r.ResourceGroupName, parent, r.Name, nil
}

// EnsureGroup creates the resource group when it is missing (in location);
// it is never deleted. A group known to exist is not asked about again.
func (s *Session) EnsureGroup(ctx context.Context, location, node string) error {
	key := strings.ToLower(s.ResourceGroup)
	s.mu.Lock()
	ok := s.groupsOK[key]
	s.mu.Unlock()
	if ok {
		return nil
	}
	err := s.Do(ctx, "get resource group "+s.ResourceGroup, node, func(ctx context.Context) error {
		_, err := s.Groups.Get(ctx, s.ResourceGroup, nil)
		return err
	})
	if IsNotFound(err) {
		err = s.Do(ctx, "create resource group "+s.ResourceGroup, node, func(ctx context.Context) error {
			_, err := s.Groups.CreateOrUpdate(ctx, s.ResourceGroup, armresources.ResourceGroup{Location: to.Ptr(location)}, nil)
			return err
		})
		if err == nil {
			s.Log.Info("resource group created", "location", location)
		}
	}
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.groupsOK[key] = true
	s.mu.Unlock()
	return nil
}

// Network says which subnet a node's NIC or container group goes into.
type Network struct {
	// Base names what is made: <Base>-vnet, <Base>-subnet.
	Base     string
	Location string
	// VNet and Subnet are the user's (vnet_name, subnet_name); "" makes
	// one: a virtual network 10.0.0.0/16, a subnet 10.0.0.0/24 in it (or
	// the first free /24 of the user's virtual network).
	VNet, Subnet string
	// Delegation is the service a made subnet is delegated to
	// (Microsoft.ContainerInstance/containerGroups); "" none.
	Delegation string
	Tags       map[string]*string
}

// EnsureSubnet finds or makes the node's subnet. It returns its id and the
// ids of what is the node's own (made now, or by an earlier try for the
// same node: the names are the node's), virtual network first.
func (s *Session) EnsureSubnet(ctx context.Context, node string, n Network) (subnetID string, ours []string, err error) {
	vnetName, ownVNet := n.VNet, n.VNet == ""
	if ownVNet {
		vnetName = n.Base + "-vnet"
	}
	subnetName, ownSubnet := n.Subnet, n.Subnet == ""
	if ownSubnet {
		subnetName = n.Base + "-subnet"
	}
	// Subnets of one virtual network are written one at a time: ARM
	// refuses concurrent changes (AnotherOperationInProgress) and two
	// nodes would pick the same free range.
	unlock := s.lockVNet(vnetName)
	defer unlock()

	vnet, found, err := s.getVNet(ctx, node, vnetName)
	if err != nil {
		return "", nil, err
	}
	if !found {
		if !ownVNet {
			return "", nil, s.Fail("find virtual network "+vnetName, node,
				fmt.Errorf("vnet_name %q: no virtual network of that name in resource group %s", vnetName, s.ResourceGroup))
		}
		vnet, err = s.putVNet(ctx, node, vnetName, n)
		if err != nil {
			return "", nil, err
		}
	} else if ownVNet {
		if other := TagValue(vnet.Tags, TagNodeID); other != "" && other != *n.Tags[TagNodeID] {
			return "", nil, s.Fail("create virtual network "+vnetName, node,
				fmt.Errorf("virtual network %s already exists for node %s (a name clash: not touched)", vnetName, other))
		}
	}
	if ownVNet {
		ours = append(ours, s.ID(TypeVNet, vnetName))
	}
	id := s.SubnetID(vnetName, subnetName)
	var existing []string
	if vnet.Properties != nil {
		for _, sn := range vnet.Properties.Subnets {
			if sn == nil || sn.Name == nil {
				continue
			}
			if strings.EqualFold(*sn.Name, subnetName) {
				if ownVNet || ownSubnet {
					ours = append(ours, id)
				}
				return id, ours, nil
			}
			if sn.Properties != nil {
				if sn.Properties.AddressPrefix != nil {
					existing = append(existing, *sn.Properties.AddressPrefix)
				}
				for _, p := range sn.Properties.AddressPrefixes {
					if p != nil {
						existing = append(existing, *p)
					}
				}
			}
		}
	}
	if !ownVNet && !ownSubnet {
		return "", nil, s.Fail("find subnet "+subnetName, node,
			fmt.Errorf("subnet_name %q: virtual network %s has no subnet of that name", subnetName, vnetName))
	}
	prefix := "10.0.0.0/24"
	if !ownVNet {
		var space []string
		if vnet.Properties != nil && vnet.Properties.AddressSpace != nil {
			for _, p := range vnet.Properties.AddressSpace.AddressPrefixes {
				if p != nil {
					space = append(space, *p)
				}
			}
		}
		if prefix, err = FreePrefix(space, existing); err != nil {
			return "", nil, s.Fail("create subnet "+subnetName, node, fmt.Errorf("virtual network %s: %w", vnetName, err))
		}
	}
	sn := armnetwork.Subnet{Properties: &armnetwork.SubnetPropertiesFormat{AddressPrefix: to.Ptr(prefix)}}
	if n.Delegation != "" {
		sn.Properties.Delegations = []*armnetwork.Delegation{{
			Name:       to.Ptr("aci"),
			Properties: &armnetwork.ServiceDelegationPropertiesFormat{ServiceName: to.Ptr(n.Delegation)},
		}}
	}
	_, err = Await(ctx, s, "create subnet "+subnetName, node, func(ctx context.Context) (*runtime.Poller[armnetwork.SubnetsClientCreateOrUpdateResponse], error) {
		return s.Subnets.BeginCreateOrUpdate(ctx, s.ResourceGroup, vnetName, subnetName, sn, nil)
	})
	if err != nil {
		return "", ours, err
	}
	s.Log.Info("subnet created", "node", node, "vnet", vnetName, "subnet", subnetName, "prefix", prefix)
	return id, append(ours, id), nil
}

// OwnSubnet is the id of the subnet EnsureSubnet makes for n ("" when
// the user names both the network and the subnet): subnets take no
// tags, so Destroy finds the node's own by its name.
func (s *Session) OwnSubnet(n Network) string {
	switch {
	case n.VNet == "":
		return s.SubnetID(n.Base+"-vnet", cmp.Or(n.Subnet, n.Base+"-subnet"))
	case n.Subnet == "":
		return s.SubnetID(n.VNet, n.Base+"-subnet")
	}
	return ""
}

func (s *Session) lockVNet(name string) func() {
	key := strings.ToLower(name)
	s.mu.Lock()
	m, ok := s.vnetLock[key]
	if !ok {
		m = &sync.Mutex{}
		s.vnetLock[key] = m
	}
	s.mu.Unlock()
	m.Lock()
	return m.Unlock
}

func (s *Session) getVNet(ctx context.Context, node, name string) (armnetwork.VirtualNetwork, bool, error) {
	var v armnetwork.VirtualNetwork
	err := s.Do(ctx, "get virtual network "+name, node, func(ctx context.Context) error {
		r, err := s.VNets.Get(ctx, s.ResourceGroup, name, nil)
		v = r.VirtualNetwork
		return err
	})
	if IsNotFound(err) {
		return v, false, nil
	}
	return v, err == nil, err
}

// putVNet makes the node's own virtual network. It carries no subnets:
// they are made apart, and a later PUT of it never happens (a PUT without
// its subnets would ask ARM to delete them).
func (s *Session) putVNet(ctx context.Context, node, name string, n Network) (armnetwork.VirtualNetwork, error) {
	body := armnetwork.VirtualNetwork{
		Location: to.Ptr(n.Location),
		Tags:     n.Tags,
		Properties: &armnetwork.VirtualNetworkPropertiesFormat{
			AddressSpace: &armnetwork.AddressSpace{AddressPrefixes: []*string{to.Ptr("10.0.0.0/16")}},
		},
	}
	r, err := Await(ctx, s, "create virtual network "+name, node, func(ctx context.Context) (*runtime.Poller[armnetwork.VirtualNetworksClientCreateOrUpdateResponse], error) {
		return s.VNets.BeginCreateOrUpdate(ctx, s.ResourceGroup, name, body, nil)
	})
	if err != nil {
		return armnetwork.VirtualNetwork{}, err
	}
	s.Log.Info("virtual network created", "node", node, "vnet", name)
	return r.VirtualNetwork, nil
}

// FreePrefix picks the first /24 of an address space (the whole prefix
// when it is smaller) that overlaps none of the used prefixes.
func FreePrefix(space, used []string) (string, error) {
	var taken []netip.Prefix
	for _, u := range used {
		if p, err := netip.ParsePrefix(u); err == nil {
			taken = append(taken, p.Masked())
		}
	}
	free := func(p netip.Prefix) bool {
		return !slices.ContainsFunc(taken, func(t netip.Prefix) bool { return t.Overlaps(p) })
	}
	for _, sp := range space {
		p, err := netip.ParsePrefix(sp)
		if err != nil || !p.Addr().Is4() {
			continue
		}
		p = p.Masked()
		if p.Bits() >= 24 {
			if free(p) {
				return p.String(), nil
			}
			continue
		}
		// Walk the /24s of the space, a bounded number of them.
		a := p.Addr().As4()
		base := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8
		n := uint32(1) << (24 - p.Bits())
		for i := uint32(0); i < n && i < 4096; i++ {
			v := base + i<<8
			c := netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), 0}), 24)
			if free(c) {
				return c.String(), nil
			}
		}
	}
	return "", fmt.Errorf("no free /24 in its address space %v (subnets use %v); give subnet_name", space, used)
}

// Tagged is one resource found by its tags.
type Tagged struct {
	ID, Type, Name string
	Tags           map[string]string
}

// Tagged lists the resources of the session's resource group whose tag
// equals value (ARM filters on one tag at a time). A missing resource
// group holds nothing.
func (s *Session) Tagged(ctx context.Context, op, node, tag, value string) ([]Tagged, error) {
	filter := fmt.Sprintf("tagName eq '%s' and tagValue eq '%s'", tag, strings.ReplaceAll(value, "'", "''"))
	what := fmt.Sprintf("resources tagged %s=%s", tag, value)
	return s.listTagged(ctx, op, node, &filter, what, func(t Tagged) bool {
		// The filter is ARM's business, but a server that ignored
		// it must not make us adopt or delete strangers.
		return t.Tags[strings.ToLower(tag)] == value
	})
}

// TaggedAny lists the resources of the session's resource group that
// carry the tag with any value. ARM's $filter takes a tag name only with
// its value, so the whole group is listed (its pages carry the tags) and
// the rest is left out here.
func (s *Session) TaggedAny(ctx context.Context, op, tag string) ([]Tagged, error) {
	return s.listTagged(ctx, op, "", nil, "resources", func(t Tagged) bool { return t.Tags[strings.ToLower(tag)] != "" })
}

func (s *Session) listTagged(ctx context.Context, op, node string, filter *string, what string, keep func(Tagged) bool) ([]Tagged, error) {
	pager := s.Resources.NewListByResourceGroupPager(s.ResourceGroup, &armresources.ClientListByResourceGroupOptions{Filter: filter})
	var out []Tagged
	for pages := 0; pager.More(); pages++ {
		if pages == maxPages {
			return nil, s.Fail(op, node, fmt.Errorf("more than %d pages of %s in resource group %s", maxPages, what, s.ResourceGroup))
		}
		var page armresources.ClientListByResourceGroupResponse
		err := s.Do(ctx, op, node, func(ctx context.Context) (err error) {
			page, err = pager.NextPage(ctx)
			return err
		})
		if IsNotFound(err) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		for _, r := range page.Value {
			if r == nil || r.ID == nil {
				continue
			}
			t := Tagged{ID: *r.ID, Type: deref(r.Type), Name: deref(r.Name), Tags: map[string]string{}}
			for k, v := range r.Tags {
				if v != nil {
					t.Tags[strings.ToLower(k)] = *v
				}
			}
			if !keep(t) {
				continue
			}
			out = append(out, t)
		}
	}
	return out, nil
}

// ByNode groups an infrastructure's tagged resources by node id.
func ByNode(items []Tagged, infraID string) map[string][]Tagged {
	out := map[string][]Tagged{}
	for _, t := range items {
		if t.Tags[TagInfraID] != infraID || t.Tags[TagNodeID] == "" {
			continue
		}
		out[t.Tags[TagNodeID]] = append(out[t.Tags[TagNodeID]], t)
	}
	return out
}

// NodeKey is one node of one infrastructure, as its resources' tags name it.
type NodeKey struct{ InfraID, NodeID string }

// ByInfraNode groups tagged resources by infra id and node id (those
// without both are left out), in a stable order.
func ByInfraNode(items []Tagged) ([]NodeKey, map[NodeKey][]Tagged) {
	out := map[NodeKey][]Tagged{}
	var keys []NodeKey
	for _, t := range items {
		k := NodeKey{t.Tags[TagInfraID], t.Tags[TagNodeID]}
		if k.InfraID == "" || k.NodeID == "" {
			continue
		}
		if _, ok := out[k]; !ok {
			keys = append(keys, k)
		}
		out[k] = append(out[k], t)
	}
	slices.SortFunc(keys, func(a, b NodeKey) int {
		return cmp.Or(strings.Compare(a.InfraID, b.InfraID), strings.Compare(a.NodeID, b.NodeID))
	})
	return keys, out
}

// StoreOf is the store id the node's resources carry ("" when none does).
func StoreOf(items []Tagged) string {
	for _, t := range items {
		if id := t.Tags[TagStoreID]; id != "" {
			return id
		}
	}
	return ""
}

// Has reports whether one of the resources is of type typ.
func Has(items []Tagged, typ string) bool {
	return slices.ContainsFunc(items, func(t Tagged) bool { return strings.EqualFold(t.Type, typ) })
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// Delete removes resources by id, in the order that ARM accepts (VMs,
// disks, container groups, NICs, NSGs, public IPs, subnets, virtual
// networks), waiting for each; one already gone is done. It stops at the
// first failure: what follows depends on it.
func (s *Session) Delete(ctx context.Context, node string, ids []string) error {
	seen := map[string]bool{}
	type item struct {
		id, typ, group, parent, name string
		rank                         int
	}
	var items []item
	for _, id := range ids {
		if id == "" || seen[strings.ToLower(id)] {
			continue
		}
		seen[strings.ToLower(id)] = true
		typ, group, parent, name, err := ParseID(id)
		if err != nil {
			return s.Fail("delete "+id, node, err)
		}
		rank := slices.IndexFunc(deleteRank, func(t string) bool { return strings.EqualFold(t, typ) })
		if rank < 0 {
			return s.Fail("delete "+id, node, fmt.Errorf("resource type %s is not one this backend makes", typ))
		}
		items = append(items, item{id, typ, group, parent, name, rank})
	}
	sort.SliceStable(items, func(i, j int) bool { return items[i].rank < items[j].rank })
	for _, it := range items {
		if err := s.deleteOne(ctx, node, it.typ, it.group, it.parent, it.name); err != nil && !IsNotFound(err) {
			return err
		}
	}
	return nil
}

func (s *Session) deleteOne(ctx context.Context, node, typ, group, parent, name string) error {
	var err error
	switch deleteRank[slices.IndexFunc(deleteRank, func(t string) bool { return strings.EqualFold(t, typ) })] {
	case TypeVM:
		_, err = Await(ctx, s, "delete VM "+name, node, func(ctx context.Context) (*runtime.Poller[armcompute.VirtualMachinesClientDeleteResponse], error) {
			return s.VMs.BeginDelete(ctx, group, name, nil)
		})
	case TypeDisk:
		_, err = Await(ctx, s, "delete disk "+name, node, func(ctx context.Context) (*runtime.Poller[armcompute.DisksClientDeleteResponse], error) {
			return s.Disks.BeginDelete(ctx, group, name, nil)
		})
	case TypeContainerGroup:
		_, err = Await(ctx, s, "delete container group "+name, node, func(ctx context.Context) (*runtime.Poller[armcontainerinstance.ContainerGroupsClientDeleteResponse], error) {
			return s.ContainerGroups.BeginDelete(ctx, group, name, nil)
		})
	case TypeNIC:
		_, err = Await(ctx, s, "delete network interface "+name, node, func(ctx context.Context) (*runtime.Poller[armnetwork.InterfacesClientDeleteResponse], error) {
			return s.NICs.BeginDelete(ctx, group, name, nil)
		})
	case TypeNSG:
		_, err = Await(ctx, s, "delete network security group "+name, node, func(ctx context.Context) (*runtime.Poller[armnetwork.SecurityGroupsClientDeleteResponse], error) {
			return s.NSGs.BeginDelete(ctx, group, name, nil)
		})
	case TypePublicIP:
		_, err = Await(ctx, s, "delete public IP "+name, node, func(ctx context.Context) (*runtime.Poller[armnetwork.PublicIPAddressesClientDeleteResponse], error) {
			return s.PublicIPs.BeginDelete(ctx, group, name, nil)
		})
	case TypeSubnet:
		_, err = Await(ctx, s, "delete subnet "+name, node, func(ctx context.Context) (*runtime.Poller[armnetwork.SubnetsClientDeleteResponse], error) {
			return inUseRetry(s.Subnets.BeginDelete(ctx, group, parent, name, nil))
		})
	case TypeVNet:
		_, err = Await(ctx, s, "delete virtual network "+name, node, func(ctx context.Context) (*runtime.Poller[armnetwork.VirtualNetworksClientDeleteResponse], error) {
			return inUseRetry(s.VNets.BeginDelete(ctx, group, name, nil))
		})
	}
	if err == nil {
		s.Log.Info("deleted", "node", node, "type", typ, "name", name)
	}
	return err
}

// inUseRetry makes "subnet in use" worth another try: a container group
// just deleted holds its subnet for a while (its service association
// link goes away after the group).
func inUseRetry[T any](p *runtime.Poller[T], err error) (*runtime.Poller[T], error) {
	var re *azcore.ResponseError
	if errors.As(err, &re) && re.ErrorCode == "InUseSubnetCannotBeDeleted" {
		return nil, &cloudapi.Retryable{Err: err}
	}
	return p, err
}
