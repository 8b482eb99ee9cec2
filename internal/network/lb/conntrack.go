package lb

import (
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// backendAddrs are the addresses of every backend in services.
func backendAddrs(services []Service) map[netip.Addr]bool {
	out := map[netip.Addr]bool{}
	for _, s := range services {
		for _, b := range s.Backends {
			out[b.Addr] = true
		}
	}
	return out
}

// flushUDP deletes the UDP conntrack entries answered by backends that
// left. A TCP connection to a removed backend ends on its own, but a UDP
// client that keeps its source port (a DNS or syslog client, say) would
// keep reaching the removed backend until its entry expired, since the NAT
// decision lives in the entry, not the rules (kube-proxy does the same).
func (l *LB) flushUDP(gone []netip.Addr) {
	if len(gone) == 0 {
		return
	}
	filters := make([]netlink.CustomConntrackFilter, 0, len(gone))
	for _, a := range gone {
		f := &netlink.ConntrackFilter{}
		if err := f.AddProtocol(unix.IPPROTO_UDP); err != nil {
			continue
		}
		if err := f.AddIP(netlink.ConntrackReplySrcIP, a.AsSlice()); err != nil {
			continue
		}
		filters = append(filters, f)
	}
	n, err := netlink.ConntrackDeleteFilters(netlink.ConntrackTable, unix.AF_INET, filters...)
	if err != nil {
		l.log.Warn("cannot flush UDP flows of removed backends; they end when their conntrack entries expire", "err", err)
		return
	}
	if n > 0 {
		l.log.Debug("flushed UDP flows of removed backends", "lb.flows", n, "lb.backends", len(gone))
	}
}
