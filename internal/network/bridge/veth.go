package bridge

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// ensureVeth returns the host end of the task's veth pair, making the pair
// if it is missing. Half a pair (its other end belongs to a namespace or
// a link gone by) is removed and the pair made again.
func (b *Bridge) ensureVeth(host, task *netlink.Handle, ns netns.NsHandle, name string, br netlink.Link) (netlink.Link, error) {
	hostEnd, herr := host.LinkByName(name)
	peer, perr := task.LinkByName(peerName)
	if herr != nil && !isNotFound(herr) {
		return nil, fmt.Errorf("look up veth %s: %w", name, herr)
	}
	if perr != nil && !isNotFound(perr) {
		return nil, fmt.Errorf("look up %s in the task's namespace: %w", peerName, perr)
	}
	if herr == nil && perr == nil && peer.Type() == "veth" {
		return hostEnd, nil
	}
	if herr == nil {
		if err := host.LinkDel(hostEnd); err != nil && !isNotFound(err) {
			return nil, fmt.Errorf("remove stale veth %s: %w", name, err)
		}
	}
	if perr == nil {
		if err := task.LinkDel(peer); err != nil && !isNotFound(err) {
			return nil, fmt.Errorf("remove stale %s in the task's namespace: %w", peerName, err)
		}
	}
	attrs := netlink.NewLinkAttrs()
	attrs.Name, attrs.MTU, attrs.MasterIndex = name, b.cfg.MTU, br.Attrs().Index
	// The peer is made in the task's namespace under its final name, so
	// no temporary name is ever seen in the host namespace.
	veth := &netlink.Veth{LinkAttrs: attrs, PeerName: peerName, PeerNamespace: netlink.NsFd(ns)}
	if err := host.LinkAdd(veth); err != nil {
		return nil, fmt.Errorf("create veth %s: %w", name, err)
	}
	hostEnd, err := host.LinkByName(name)
	if err != nil {
		return nil, fmt.Errorf("look up new veth %s: %w", name, err)
	}
	return hostEnd, nil
}

// setupHostEnd puts the host end on the bridge with the bridge's MTU and
// brings it up. It gets no IPv6 link-local address: a bridge port needs
// none, and it would only send solicitations to the containers.
func (b *Bridge) setupHostEnd(h *netlink.Handle, l, br netlink.Link) error {
	name := l.Attrs().Name
	if l.Attrs().MasterIndex != br.Attrs().Index {
		if err := h.LinkSetMasterByIndex(l, br.Attrs().Index); err != nil {
			return fmt.Errorf("put veth %s on bridge %s: %w", name, b.cfg.Bridge, err)
		}
	}
	// Hairpin lets a frame leave by the port it came in on: a container
	// reaching its own service's VIP may be DNATed back to itself, and
	// with br_netfilter that frame is bridged, not routed.
	if err := h.LinkSetHairpin(l, true); err != nil {
		return fmt.Errorf("set hairpin mode on veth %s: %w", name, err)
	}
	if l.Attrs().MTU != b.cfg.MTU {
		if err := h.LinkSetMTU(l, b.cfg.MTU); err != nil {
			return fmt.Errorf("set MTU of veth %s: %w", name, err)
		}
	}
	if l.Attrs().Flags&net.FlagUp != 0 {
		return nil
	}
	if err := h.LinkSetIP6AddrGenMode(l, nl.IN6_ADDR_GEN_MODE_NONE); err != nil {
		b.log.Debug("cannot turn off IPv6 addresses on veth", "link", name, "err", err)
	}
	if err := h.LinkSetUp(l); err != nil {
		return fmt.Errorf("bring up veth %s: %w", name, err)
	}
	return nil
}

// setupPeer configures the task's namespace: eth0 with the MTU and the
// task's address (and no other IPv4 address), lo, and the default route.
func (b *Bridge) setupPeer(h *netlink.Handle, addr netip.Prefix) error {
	eth, err := h.LinkByName(peerName)
	if err != nil {
		return fmt.Errorf("look up %s in the task's namespace: %w", peerName, err)
	}
	if eth.Attrs().MTU != b.cfg.MTU {
		if err := h.LinkSetMTU(eth, b.cfg.MTU); err != nil {
			return fmt.Errorf("set MTU of %s: %w", peerName, err)
		}
	}
	if err := setOnlyAddress(h, eth, addr); err != nil {
		return err
	}
	if err := h.LinkSetUp(eth); err != nil {
		return fmt.Errorf("bring up %s: %w", peerName, err)
	}
	lo, err := h.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("look up lo in the task's namespace: %w", err)
	}
	if err := h.LinkSetUp(lo); err != nil {
		return fmt.Errorf("bring up lo: %w", err)
	}
	gw := b.cfg.Gateway.Addr().AsSlice()
	if err := h.RouteReplace(&netlink.Route{LinkIndex: eth.Attrs().Index, Gw: gw}); err != nil {
		return fmt.Errorf("set default route via %s: %w", b.cfg.Gateway.Addr(), err)
	}
	return nil
}

// setOnlyAddress leaves addr as the link's only IPv4 address.
func setOnlyAddress(h *netlink.Handle, l netlink.Link, addr netip.Prefix) error {
	name := l.Attrs().Name
	addrs, err := addrList(h, l)
	if err != nil {
		return fmt.Errorf("list addresses of %s: %w", name, err)
	}
	want := ipNet(addr)
	found, removed := false, 0
	for _, a := range addrs {
		if a.IPNet.String() == want.String() {
			found = true
			continue
		}
		if err := h.AddrDel(l, &a); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) {
			return fmt.Errorf("remove old address %s from %s: %w", a.IPNet, name, err)
		}
		removed++
	}
	// Removing a primary address takes its secondaries with it, so after
	// any removal the wanted one is added again rather than trusted.
	if found && removed == 0 {
		return nil
	}
	if err := h.AddrAdd(l, &netlink.Addr{IPNet: want}); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("add address %s to %s: %w", addr, name, err)
	}
	return nil
}

// vethName names the host end of a task's veth: "wrn" and 12 hex digits
// of a hash of the task ID, within the 15 characters a link name has.
func vethName(taskID string) string {
	sum := sha256.Sum256([]byte(taskID))
	return "wrn" + hex.EncodeToString(sum[:6])
}
