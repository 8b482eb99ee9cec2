package wireguard

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
	"golang.zx2c4.com/wireguard/wgctrl"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"
)

// errNoKernelWireGuard marks the failures that mean "this kernel has no
// WireGuard", the only ones ModeAuto falls back on.
var errNoKernelWireGuard = errors.New("kernel has no WireGuard support")

// kernel is a link of type wireguard configured over generic netlink.
type kernel struct {
	name   string
	client *wgctrl.Client
}

// openKernel creates (or adopts) the kernel link and sets its key and port.
func openKernel(cfg Config) (*kernel, error) {
	created, err := addKernelLink(cfg)
	if err != nil {
		return nil, err
	}
	k := &kernel{name: cfg.Name}
	fail := func(err error) (*kernel, error) {
		if created {
			_ = k.deleteLink()
		}
		return nil, err
	}
	k.client, err = wgctrl.New()
	if err != nil {
		return fail(fmt.Errorf("open WireGuard netlink client: %w", err))
	}
	port := cfg.ListenPort
	err = k.client.ConfigureDevice(cfg.Name, wgtypes.Config{PrivateKey: &cfg.PrivateKey, ListenPort: &port})
	if err != nil {
		_ = k.client.Close()
		return fail(fmt.Errorf("configure key and port %d on %s: %w (is the port taken?)", port, cfg.Name, err))
	}
	return k, nil
}

// addKernelLink creates the link unless a wireguard link of that name is
// already there (clearLeftover removed anything else), reporting whether
// it created one.
func addKernelLink(cfg Config) (bool, error) {
	if old, err := netlink.LinkByName(cfg.Name); err == nil && old.Type() == "wireguard" {
		return false, nil
	}
	attrs := netlink.NewLinkAttrs()
	attrs.Name, attrs.MTU = cfg.Name, cfg.MTU
	err := netlink.LinkAdd(&netlink.Wireguard{LinkAttrs: attrs})
	if err == nil {
		return true, nil
	}
	// The kernel answers an unknown link kind with EOPNOTSUPP after
	// failing to load its module; the others come from odd kernels and
	// sandboxes that lack the module support altogether.
	for _, e := range []error{unix.EOPNOTSUPP, unix.ENODEV, unix.ENOENT, unix.EPROTONOSUPPORT, unix.EAFNOSUPPORT} {
		if errors.Is(err, e) {
			return false, fmt.Errorf("create link %s of type wireguard: %w: %w (load the wireguard module or use userspace mode)",
				cfg.Name, errNoKernelWireGuard, err)
		}
	}
	return false, fmt.Errorf("create link %s of type wireguard: %w", cfg.Name, err)
}

func (k *kernel) peers() ([]peerState, error) {
	d, err := k.client.Device(k.name)
	if err != nil {
		return nil, fmt.Errorf("read WireGuard device %s: %w", k.name, err)
	}
	out := make([]peerState, 0, len(d.Peers))
	for _, p := range d.Peers {
		out = append(out, peerState{
			key:       p.PublicKey,
			endpoint:  udpAddrToAddrPort(p.Endpoint),
			allowed:   ipNetsToPrefixes(p.AllowedIPs),
			keepalive: p.PersistentKeepaliveInterval,
			handshake: p.LastHandshakeTime,
			rx:        p.ReceiveBytes,
			tx:        p.TransmitBytes,
		})
	}
	return out, nil
}

func (k *kernel) apply(changes []peerChange) error {
	cfg := wgtypes.Config{Peers: make([]wgtypes.PeerConfig, 0, len(changes))}
	for _, c := range changes {
		pc := wgtypes.PeerConfig{PublicKey: c.key, Remove: c.remove}
		if !c.remove {
			keepalive := c.keepalive
			pc.PersistentKeepaliveInterval = &keepalive
			if c.endpoint.IsValid() {
				pc.Endpoint = net.UDPAddrFromAddrPort(c.endpoint)
			}
			pc.ReplaceAllowedIPs = true
			for _, p := range c.allowed {
				pc.AllowedIPs = append(pc.AllowedIPs, *prefixToIPNet(p))
			}
		}
		cfg.Peers = append(cfg.Peers, pc)
	}
	if err := k.client.ConfigureDevice(k.name, cfg); err != nil {
		return fmt.Errorf("configure peers of %s: %w", k.name, err)
	}
	return nil
}

func (k *kernel) close() error {
	err := k.deleteLink()
	return errors.Join(err, k.client.Close())
}

func (k *kernel) deleteLink() error {
	link, err := netlink.LinkByName(k.name)
	if errors.As(err, &netlink.LinkNotFoundError{}) {
		return nil
	}
	if err == nil {
		err = netlink.LinkDel(link)
	}
	if err != nil {
		return fmt.Errorf("delete link %s: %w", k.name, err)
	}
	return nil
}

func prefixToIPNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

func ipNetsToPrefixes(nets []net.IPNet) []netip.Prefix {
	out := make([]netip.Prefix, 0, len(nets))
	for _, n := range nets {
		addr, ok := netip.AddrFromSlice(n.IP)
		ones, bits := n.Mask.Size()
		if !ok {
			continue
		}
		if addr.Is4In6() && bits == 128 {
			ones -= 96 // an IPv4 prefix written in IPv6 form
		}
		out = append(out, netip.PrefixFrom(addr.Unmap(), ones))
	}
	return out
}

func udpAddrToAddrPort(a *net.UDPAddr) netip.AddrPort {
	if a == nil {
		return netip.AddrPort{}
	}
	ap := a.AddrPort()
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}
