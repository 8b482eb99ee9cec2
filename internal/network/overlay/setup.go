package overlay

import (
	"fmt"
	"net"
	"net/netip"
	"path/filepath"

	"github.com/vishvananda/netlink"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/internal/network/bridge"
	"github.com/warren-project/warren/internal/network/dns"
	"github.com/warren-project/warren/internal/network/ipam"
	"github.com/warren-project/warren/internal/network/lb"
	"github.com/warren-project/warren/internal/network/wireguard"
)

// setUp brings up the bridge, the WireGuard link, the rules and the DNS
// server the first time the node knows its block.
func (c *Controller) setUp(m *api.NetworkMap, block netip.Prefix) error {
	if c.block.IsValid() {
		return nil
	}
	gw := ipam.Gateway(block)
	subnet, err := netip.ParsePrefix(m.GetConfig().GetSubnet())
	if err != nil {
		return fmt.Errorf("cluster subnet %q: %w", m.GetConfig().GetSubnet(), err)
	}
	br, err := bridge.New(bridge.Config{Bridge: c.cfg.Bridge, Gateway: netip.PrefixFrom(gw, block.Bits()), MTU: wireguard.DefaultMTU, Dir: filepath.Join(c.cfg.DataDir, "network", "netns"), Logger: c.log})
	if err != nil {
		return err
	}
	if err := br.Ensure(); err != nil {
		return fmt.Errorf("bridge %s: %w", c.cfg.Bridge, err)
	}
	if err := c.routeVIPs(m, gw); err != nil {
		return err
	}
	link, err := wireguard.Open(wireguard.Config{Name: c.cfg.WireGuard, PrivateKey: c.key, ListenPort: c.cfg.ListenPort, Address: netip.PrefixFrom(gw, 32), MTU: wireguard.DefaultMTU, Mode: c.cfg.Mode, Logger: c.log})
	if err != nil {
		return fmt.Errorf("WireGuard link %s: %w", c.cfg.WireGuard, err)
	}
	rules, err := lb.New(lb.Config{Table: c.cfg.Table, Bridge: c.cfg.Bridge, WireGuard: c.cfg.WireGuard, Subnet: subnet, Logger: c.log})
	if err != nil {
		_ = link.Close()
		return err
	}
	srv, err := dns.New(dns.Config{Addrs: []string{net.JoinHostPort(gw.String(), "53")}, Table: c.names, Logger: c.log})
	if err == nil {
		err = srv.Start()
	}
	if err != nil {
		_ = link.Close()
		return fmt.Errorf("DNS server on %s:53: %w", gw, err)
	}
	c.br, c.link, c.rules, c.dnsSrv, c.block = br, link, rules, srv, block
	close(c.ready)
	c.log.Info("overlay up", "block", block, "gateway", gw, "wireguard.mode", link.Mode(), "wireguard.port", c.cfg.ListenPort)
	return nil
}

// routeVIPs routes the VIP pool to the bridge from this node's gateway
// address: the node's own connections to a VIP need a route before the
// rules rewrite them, and with this source the answers come back through
// the mesh wherever the backend runs.
func (c *Controller) routeVIPs(m *api.NetworkMap, gw netip.Addr) error {
	pool, err := netip.ParsePrefix(m.GetConfig().GetVipPool())
	if err != nil {
		return fmt.Errorf("VIP pool %q: %w", m.GetConfig().GetVipPool(), err)
	}
	br, err := netlink.LinkByName(c.cfg.Bridge)
	if err != nil {
		return fmt.Errorf("bridge %s: %w", c.cfg.Bridge, err)
	}
	r := &netlink.Route{
		LinkIndex: br.Attrs().Index, Scope: netlink.SCOPE_LINK,
		Dst: &net.IPNet{IP: pool.Addr().AsSlice(), Mask: net.CIDRMask(pool.Bits(), 32)},
		Src: gw.AsSlice(),
	}
	if err := netlink.RouteReplace(r); err != nil {
		return fmt.Errorf("route the VIP pool %s to %s: %w", pool, c.cfg.Bridge, err)
	}
	return nil
}
