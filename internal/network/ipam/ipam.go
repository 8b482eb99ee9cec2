// Package ipam carves the overlay's address space: a block of the cluster
// subnet per node, an address in its node's block per task, and a virtual
// IP per service from the VIP pool. It is pure: callers pass what is in
// use (from the replicated state) and record what they get in the same
// transaction, so two managers can never hand out one address twice.
package ipam

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
)

// ErrExhausted is returned when no address or block is free.
var ErrExhausted = errors.New("address space exhausted")

// Defaults of a cluster's address plan.
const (
	DefaultSubnet           = "10.200.0.0/16"
	DefaultNodePrefixLength = 24
	DefaultVIPPool          = "10.201.0.0/16"
)

// Plan is a cluster's address plan.
type Plan struct {
	Subnet           netip.Prefix
	NodePrefixLength int
	VIPPool          netip.Prefix
}

// ParsePlan checks an address plan as a user gives it; empty values take
// the defaults.
func ParsePlan(subnet string, nodePrefixLength int, vipPool string) (Plan, error) {
	if subnet == "" {
		subnet = DefaultSubnet
	}
	if nodePrefixLength == 0 {
		nodePrefixLength = DefaultNodePrefixLength
	}
	if vipPool == "" {
		vipPool = DefaultVIPPool
	}
	var p Plan
	var err error
	if p.Subnet, err = parseIPv4Prefix("subnet", subnet); err != nil {
		return Plan{}, err
	}
	if p.VIPPool, err = parseIPv4Prefix("VIP pool", vipPool); err != nil {
		return Plan{}, err
	}
	if nodePrefixLength <= p.Subnet.Bits() || nodePrefixLength > 29 {
		return Plan{}, fmt.Errorf("node block size /%d does not fit subnet %s: use a length between /%d and /29", nodePrefixLength, p.Subnet, p.Subnet.Bits()+1)
	}
	p.NodePrefixLength = nodePrefixLength
	if p.Subnet.Overlaps(p.VIPPool) {
		return Plan{}, fmt.Errorf("subnet %s and VIP pool %s overlap: choose ranges that do not", p.Subnet, p.VIPPool)
	}
	return p, nil
}

func parseIPv4Prefix(what, s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%s %q is not a CIDR such as 10.200.0.0/16: %w", what, s, err)
	}
	if !p.Addr().Is4() {
		return netip.Prefix{}, fmt.Errorf("%s %q: only IPv4 is supported", what, s)
	}
	if p.Bits() > 30 {
		return netip.Prefix{}, fmt.Errorf("%s %q is too small: use /30 or larger", what, s)
	}
	return p.Masked(), nil
}

// NodeBlock returns the lowest block of the plan's subnet that is not in used.
func (p Plan) NodeBlock(used map[netip.Prefix]bool) (netip.Prefix, error) {
	n := 1 << (p.NodePrefixLength - p.Subnet.Bits())
	size := uint64(1) << (32 - p.NodePrefixLength)
	for i := range n {
		b := netip.PrefixFrom(addrAdd(p.Subnet.Addr(), uint64(i)*size), p.NodePrefixLength)
		if !used[b] {
			return b, nil
		}
	}
	return netip.Prefix{}, fmt.Errorf("all %d node blocks of %s are taken: remove nodes that are gone (`warren node rm`) or re-create the cluster with a larger --subnet: %w", n, p.Subnet, ErrExhausted)
}

// Gateway is a block's first address: the node's bridge, containers'
// default gateway and DNS server.
func Gateway(block netip.Prefix) netip.Addr {
	return block.Masked().Addr().Next()
}

// TaskAddress returns a free address of block for a task: neither the
// network address, the gateway, the broadcast address nor in used. The
// search starts after prev (the last address handed out in this block, or
// the zero Addr), so a just-released address is not reused at once while
// caches and connections may still name it.
func TaskAddress(block netip.Prefix, used map[netip.Addr]bool, prev netip.Addr) (netip.Addr, error) {
	first := Gateway(block).Next()
	last := Broadcast(block).Prev()
	a, err := scan(first, last, used, prev)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("node block %s has no free address: %w", block, err)
	}
	return a, nil
}

// TaskAddresses is how many task addresses block holds: all but the
// network address, the gateway and the broadcast address.
func TaskAddresses(block netip.Prefix) int {
	return 1<<(32-block.Bits()) - 3
}

// VIP returns a free virtual IP of pool, searching after prev.
func VIP(pool netip.Prefix, used map[netip.Addr]bool, prev netip.Addr) (netip.Addr, error) {
	a, err := scan(pool.Masked().Addr().Next(), Broadcast(pool).Prev(), used, prev)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("VIP pool %s has no free address: remove unused services: %w", pool, err)
	}
	return a, nil
}

// scan finds the first address of [first, last] not in used, starting
// after prev and wrapping around.
func scan(first, last netip.Addr, used map[netip.Addr]bool, prev netip.Addr) (netip.Addr, error) {
	start := first
	if prev.IsValid() && prev.Compare(first) >= 0 && prev.Compare(last) < 0 {
		start = prev.Next()
	}
	for a := start; a.Compare(last) <= 0; a = a.Next() {
		if !used[a] {
			return a, nil
		}
	}
	for a := first; a.Compare(start) < 0; a = a.Next() {
		if !used[a] {
			return a, nil
		}
	}
	return netip.Addr{}, ErrExhausted
}

// Broadcast is the last address of IPv4 prefix p.
func Broadcast(p netip.Prefix) netip.Addr {
	size := uint64(1) << (32 - p.Bits())
	return addrAdd(p.Masked().Addr(), size-1)
}

func addrAdd(a netip.Addr, n uint64) netip.Addr {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], uint32(uint64(binary.BigEndian.Uint32(a.AsSlice()))+n))
	return netip.AddrFrom4(b)
}
