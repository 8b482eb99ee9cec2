package wireguard

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// RouteProtocol marks the routes the link owns (`ip route` shows it as
// "proto 87"), so syncing never deletes a route someone else put on the
// interface and an adopted link's old routes are recognised as ours.
const RouteProtocol = 87

// syncRoutes leaves exactly one route of ours through the link per
// prefix in want, in the main table: missing ones are added, stale ones
// deleted, ones with another source address replaced.
func (l *Link) syncRoutes(want []netip.Prefix) error {
	filter := &netlink.Route{LinkIndex: l.ifx, Protocol: RouteProtocol}
	have, err := netlink.RouteListFiltered(netlink.FAMILY_ALL, filter, netlink.RT_FILTER_OIF|netlink.RT_FILTER_PROTOCOL)
	if err != nil {
		return fmt.Errorf("list routes through %s: %w", l.cfg.Name, err)
	}
	wanted := make(map[netip.Prefix]bool, len(want))
	for _, p := range want {
		wanted[p] = true
	}
	current := make(map[netip.Prefix]bool, len(have))
	for _, r := range have {
		dst := routeDst(r)
		if wanted[dst] && !current[dst] && srcEqual(r, l.routeSrc(dst)) {
			current[dst] = true
			continue
		}
		if err := netlink.RouteDel(&r); err != nil && !errors.Is(err, unix.ESRCH) {
			return fmt.Errorf("delete stale route %s via %s: %w", dst, l.cfg.Name, err)
		}
		l.log.Info("route removed", "route.dst", dst)
	}
	for _, p := range sortedPrefixes(want) {
		if current[p] {
			continue
		}
		current[p] = true
		if err := netlink.RouteReplace(l.route(p)); err != nil {
			return fmt.Errorf("add route %s via %s: %w", p, l.cfg.Name, err)
		}
		l.log.Info("route added", "route.dst", p)
	}
	return nil
}

func (l *Link) route(dst netip.Prefix) *netlink.Route {
	r := &netlink.Route{
		LinkIndex: l.ifx,
		Dst:       prefixToIPNet(dst),
		Scope:     netlink.SCOPE_LINK,
		Protocol:  RouteProtocol,
	}
	if src := l.routeSrc(dst); src.IsValid() {
		r.Src = src.AsSlice()
	}
	return r
}

// routeSrc is the source for traffic to dst: the link's own address when
// the families match, so the far node can route its answers back.
func (l *Link) routeSrc(dst netip.Prefix) netip.Addr {
	if a := l.cfg.Address.Addr(); a.Is4() == dst.Addr().Is4() {
		return a
	}
	return netip.Addr{}
}

func routeDst(r netlink.Route) netip.Prefix {
	if r.Dst == nil {
		return netip.Prefix{}
	}
	if ps := ipNetsToPrefixes([]net.IPNet{*r.Dst}); len(ps) == 1 {
		return ps[0]
	}
	return netip.Prefix{}
}

func srcEqual(r netlink.Route, want netip.Addr) bool {
	got, _ := netip.AddrFromSlice(r.Src)
	return got.Unmap() == want
}
