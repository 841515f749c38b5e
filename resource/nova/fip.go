package nova

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/external"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/layer3/floatingips"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/networks"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/ports"

	"github.com/occopus-go/occopus/internal/cloudapi"
	"github.com/occopus-go/occopus/resource"
)

// fipDescription tags a floating IP with its node, so that a retried
// Create reuses it and Destroy finds it without the handle's data.
func fipDescription(infraID, nodeID string) string {
	return "occopus:" + infraID + ":" + nodeID
}

// attachFloatingIP waits for the server to be ACTIVE, then allocates (or
// reuses) the node's floating IP from the pool and associates it with the
// server's port. On a permanent failure the server and the IP are removed,
// so nothing is left behind for a node whose Create failed.
func (h *Handler) attachFloatingIP(ctx context.Context, c *clients, spec resource.Spec, serverID string, o Instance) (*floatingips.FloatingIP, error) {
	fip, err := h.associate(ctx, c, spec, serverID, o)
	if err == nil {
		return fip, nil
	}
	if ctx.Err() == nil {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
		defer cancel()
		d := handleData{InfraID: spec.InfraID, NodeID: spec.NodeID}
		if fip != nil {
			d.FloatingIPID = fip.ID
		}
		if derr := h.Destroy(cctx, makeHandle(serverID, d)); derr != nil {
			h.log.Warn("cleanup after failed create", "node", spec.NodeID, "server", serverID, "err", derr)
			return nil, errors.Join(err, derr)
		}
	}
	return nil, err
}

func (h *Handler) associate(ctx context.Context, c *clients, spec resource.Spec, serverID string, o Instance) (*floatingips.FloatingIP, error) {
	if c.network == nil {
		return nil, fmt.Errorf("nova: node %s wants a floating IP, but the service catalog of %s has no network endpoint", spec.NodeID, h.identity)
	}
	if _, err := h.waitActive(ctx, c, spec.NodeID, serverID); err != nil {
		return nil, err
	}
	port, err := h.serverPort(ctx, c, spec.NodeID, serverID, o.NetworkID)
	if err != nil {
		return nil, err
	}
	fip, err := h.allocate(ctx, c, spec, o.FloatingIPPool)
	if err != nil {
		return nil, err
	}
	if fip.PortID == port {
		return fip, nil
	}
	err = h.cloud.Do(ctx, "associate floating IP "+fip.FloatingIP, spec.NodeID, func(ctx context.Context) error {
		updated, err := floatingips.Update(ctx, c.network, fip.ID, floatingips.UpdateOpts{PortID: &port}).Extract()
		if err != nil {
			return err
		}
		fip = updated
		return nil
	})
	if err != nil {
		return fip, err
	}
	h.log.Info("floating IP associated", "node", spec.NodeID, "server", serverID, "ip", fip.FloatingIP)
	return fip, nil
}

// serverPort finds the server's Neutron port (on network_id when given).
// A port may show up a moment after ACTIVE, so an empty answer is polled.
func (h *Handler) serverPort(ctx context.Context, c *clients, node, serverID, networkID string) (string, error) {
	delay := h.pollFirst
	for tries := 0; ; tries++ {
		var list []ports.Port
		err := h.cloud.Do(ctx, "list ports of server "+serverID, node, func(ctx context.Context) error {
			pages, err := ports.List(c.network, ports.ListOpts{DeviceID: serverID}).AllPages(ctx)
			if err != nil {
				return err
			}
			list, err = ports.ExtractPorts(pages)
			return err
		})
		if err != nil {
			return "", err
		}
		for _, p := range list {
			if p.DeviceID == serverID && (networkID == "" || p.NetworkID == networkID) {
				return p.ID, nil
			}
		}
		if tries >= 5 {
			return "", fmt.Errorf("nova: node %s: server %s has no port%s at %s", node, serverID, map[bool]string{true: " on network " + networkID}[networkID != ""], c.network.Endpoint)
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return "", ctx.Err()
		case <-t.C:
		}
		delay = min(delay*2, h.pollMax)
	}
}

// floatingIPsOf lists the floating IPs tagged for a node.
func (h *Handler) floatingIPsOf(ctx context.Context, c *clients, infraID, nodeID string) ([]floatingips.FloatingIP, error) {
	var out []floatingips.FloatingIP
	err := h.cloud.Do(ctx, "list floating IPs", nodeID, func(ctx context.Context) error {
		var err error
		out, err = h.floatingIPsOnce(ctx, c, infraID, nodeID)
		return err
	})
	return out, err
}

func (h *Handler) floatingIPsOnce(ctx context.Context, c *clients, infraID, nodeID string) ([]floatingips.FloatingIP, error) {
	desc := fipDescription(infraID, nodeID)
	pages, err := floatingips.List(c.network, floatingips.ListOpts{Description: desc}).AllPages(ctx)
	if err != nil {
		return nil, err
	}
	all, err := floatingips.ExtractFloatingIPs(pages)
	if err != nil {
		return nil, err
	}
	var out []floatingips.FloatingIP
	for _, f := range all {
		if f.Description == desc { // also when the filter is not supported
			out = append(out, f)
		}
	}
	return out, nil
}

// allocate returns the node's floating IP, allocating one from the pool
// when there is none. A retried allocation looks for the tagged IP first,
// so a lost answer does not cost a second address.
func (h *Handler) allocate(ctx context.Context, c *clients, spec resource.Spec, pool string) (*floatingips.FloatingIP, error) {
	existing, err := h.floatingIPsOf(ctx, c, spec.InfraID, spec.NodeID)
	if err != nil {
		return nil, err
	}
	if len(existing) > 0 {
		return &existing[0], nil
	}
	netID, err := h.poolNetwork(ctx, c, spec.NodeID, pool)
	if err != nil {
		return nil, err
	}
	var fip *floatingips.FloatingIP
	attempt := 0
	err = h.cloud.Do(ctx, "allocate floating IP from "+cmp.Or(pool, netID), spec.NodeID, func(ctx context.Context) error {
		attempt++
		if attempt > 1 {
			found, err := h.floatingIPsOnce(ctx, c, spec.InfraID, spec.NodeID)
			if err != nil {
				return err
			}
			if len(found) > 0 {
				fip = &found[0]
				return nil
			}
		}
		created, err := floatingips.Create(ctx, c.network, floatingips.CreateOpts{
			FloatingNetworkID: netID,
			Description:       fipDescription(spec.InfraID, spec.NodeID),
		}).Extract()
		if err != nil {
			return err
		}
		fip = created
		return nil
	})
	if err != nil {
		return nil, err
	}
	h.log.Info("floating IP allocated", "node", spec.NodeID, "ip", fip.FloatingIP, "pool", pool)
	return fip, nil
}

// poolNetwork resolves floating_ip_pool (an external network's name or
// id); without a pool, the only external network.
func (h *Handler) poolNetwork(ctx context.Context, c *clients, node, pool string) (string, error) {
	var list []networks.Network
	yes := true
	err := h.cloud.Do(ctx, "list external networks", node, func(ctx context.Context) error {
		pages, err := networks.List(c.network, external.ListOptsExt{ListOptsBuilder: networks.ListOpts{}, External: &yes}).AllPages(ctx)
		if err != nil {
			return err
		}
		list, err = networks.ExtractNetworks(pages)
		return err
	})
	if err != nil {
		return "", err
	}
	var names []string
	for _, n := range list {
		if pool != "" && (n.Name == pool || n.ID == pool) {
			return n.ID, nil
		}
		names = append(names, n.Name)
	}
	if pool == "" && len(list) == 1 {
		return list[0].ID, nil
	}
	if pool == "" {
		return "", fmt.Errorf("nova: node %s wants a floating IP: give floating_ip_pool, one of the external networks at %s: %s", node, c.network.Endpoint, strings.Join(names, ", "))
	}
	return "", fmt.Errorf("nova: node %s: floating_ip_pool %q is no external network at %s (have: %s)", node, pool, c.network.Endpoint, strings.Join(names, ", "))
}

// releaseFloatingIPs deletes the handle's floating IP and any other tagged
// for the node. Already gone is fine.
func (h *Handler) releaseFloatingIPs(ctx context.Context, c *clients, d handleData) error {
	if c.network == nil {
		return nil
	}
	ids := map[string]string{}
	if d.FloatingIPID != "" {
		ids[d.FloatingIPID] = d.FloatingIP
	}
	if d.NodeID != "" {
		found, err := h.floatingIPsOf(ctx, c, d.InfraID, d.NodeID)
		if err != nil && !cloudapi.IsNotFound(err) {
			return err
		}
		for _, f := range found {
			ids[f.ID] = f.FloatingIP
		}
	}
	for id, ip := range ids {
		err := h.cloud.Do(ctx, "release floating IP "+cmp.Or(ip, id), d.NodeID, func(ctx context.Context) error {
			return floatingips.Delete(ctx, c.network, id).ExtractErr()
		})
		if err != nil && !cloudapi.IsNotFound(err) {
			return err
		}
		h.log.Info("floating IP released", "node", d.NodeID, "ip", ip)
	}
	return nil
}
