// Package allocator hands out the overlay's addresses inside store
// transactions: a block per node when it registers, a VIP and published
// ports per service when it is created or updated, an address per task when
// it is placed. What is in use is read from the same transaction that
// records the new allocation, so an allocation is exactly as consistent as
// the Raft log: no manager can hand out an address twice, and a failed-over
// leader needs no allocator state of its own.
package allocator

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/internal/network/ipam"
	"github.com/warren-project/warren/internal/spec"
	"github.com/warren-project/warren/internal/state"
)

// ErrPortInUse is returned when a published port is taken by another service.
var ErrPortInUse = errors.New("published port in use")

// Plan returns the cluster's address plan (the defaults for a cluster made
// before the overlay existed).
func Plan(tx state.ReadTx) (ipam.Plan, error) {
	nc := tx.GetCluster().GetSpec().GetNetwork()
	return ipam.ParsePlan(nc.GetSubnet(), int(nc.GetNodePrefixLength()), nc.GetVipPool())
}

// NetworkConfig is plan as the cluster records it.
func NetworkConfig(p ipam.Plan) *api.NetworkConfig {
	return &api.NetworkConfig{Subnet: p.Subnet.String(), NodePrefixLength: uint32(p.NodePrefixLength), VipPool: p.VIPPool.String()}
}

// NodeNetwork records the WireGuard key and endpoint node n reported and
// gives it a block if it has none. A node that reports no overlay (nil)
// keeps what it has and gets no block: it runs host-network tasks only. It
// changes n in place and tells whether anything changed.
func NodeNetwork(tx state.ReadTx, n *api.Node, reported *api.NodeNetwork) (bool, error) {
	cur := n.GetNetwork()
	if reported == nil {
		return false, nil
	}
	next := &api.NodeNetwork{
		Block:              cur.GetBlock(),
		WireguardPublicKey: reported.GetWireguardPublicKey(),
		WireguardEndpoint:  reported.GetWireguardEndpoint(),
	}
	if next.Block == "" {
		plan, err := Plan(tx)
		if err != nil {
			return false, err
		}
		used := map[netip.Prefix]bool{}
		for _, o := range tx.ListNodes() {
			if b, err := netip.ParsePrefix(o.GetNetwork().GetBlock()); err == nil && o.GetId() != n.GetId() {
				used[b] = true
			}
		}
		b, err := plan.NodeBlock(used)
		if err != nil {
			return false, err
		}
		next.Block = b.String()
	}
	if cur.GetBlock() == next.Block && cur.GetWireguardPublicKey() == next.WireguardPublicKey &&
		cur.GetWireguardEndpoint() == next.WireguardEndpoint {
		return false, nil
	}
	n.Network = next
	return true, nil
}

// ServiceEndpoint sets svc.Endpoint from its spec: a VIP on the overlay
// (kept across updates, released with host networking) and the published
// ports, which no other service may hold.
func ServiceEndpoint(tx state.ReadTx, svc *api.Service) error {
	taken := map[string]string{}
	var vips map[netip.Addr]bool
	for _, o := range tx.ListServices() {
		if o.GetId() == svc.GetId() {
			continue
		}
		for _, p := range o.GetEndpoint().GetPorts() {
			taken[spec.PortKey(p)] = o.GetSpec().GetName()
		}
		if v, err := netip.ParseAddr(o.GetEndpoint().GetVip()); err == nil {
			if vips == nil {
				vips = map[netip.Addr]bool{}
			}
			vips[v] = true
		}
	}
	ports := svc.GetSpec().GetEndpoint().GetPorts()
	for _, p := range ports {
		if other, ok := taken[spec.PortKey(p)]; ok {
			return fmt.Errorf("port %s is already published by service %s: publish another port, or remove it there first: %w", spec.PortKey(p), other, ErrPortInUse)
		}
	}
	ep := &api.Endpoint{Vip: svc.GetEndpoint().GetVip(), Ports: slices.Clone(ports)}
	switch {
	case svc.GetSpec().GetTask().GetContainer().GetNetwork() == spec.NetworkHost:
		ep.Vip = ""
	case ep.Vip == "":
		plan, err := Plan(tx)
		if err != nil {
			return err
		}
		v, err := ipam.VIP(plan.VIPPool, vips, netip.Addr{})
		if err != nil {
			return err
		}
		ep.Vip = v.String()
	}
	svc.Endpoint = ep
	return nil
}

// HoldsAddress tells whether task t's address is still in use: from its
// placement until its node reports it stopped for good (the node releases
// the container's network before it says so).
func HoldsAddress(t *api.Task) bool {
	return t.GetAddress() != "" && t.GetStatus().GetState() < api.TaskState_TASK_STATE_COMPLETE
}

// UsedAddresses returns the addresses held by tasks on node nodeID.
func UsedAddresses(tx state.ReadTx, nodeID string) map[netip.Addr]bool {
	used := map[netip.Addr]bool{}
	for _, t := range tx.ListTasks(state.ByNode(nodeID)) {
		if a, err := netip.ParseAddr(t.GetAddress()); err == nil && HoldsAddress(t) {
			used[a] = true
		}
	}
	return used
}

// TaskAddress returns a free address of node n's block, searching after
// prev (the last one handed out on n), and adds it to used (from
// UsedAddresses, plus what the same transaction handed out).
func TaskAddress(n *api.Node, used map[netip.Addr]bool, prev netip.Addr) (netip.Addr, error) {
	block, err := netip.ParsePrefix(n.GetNetwork().GetBlock())
	if err != nil {
		return netip.Addr{}, fmt.Errorf("node %s has no address block yet", n.GetId())
	}
	a, err := ipam.TaskAddress(block, used, prev)
	if err != nil {
		return netip.Addr{}, err
	}
	used[a] = true
	return a, nil
}
