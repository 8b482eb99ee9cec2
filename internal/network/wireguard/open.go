package wireguard

import (
	"errors"
	"fmt"
	"log/slog"

	"github.com/vishvananda/netlink"
)

// Open creates the link (or adopts an existing kernel link of that name),
// sets its key, port, address and MTU and brings it up. A TUN left behind
// under the name is deleted and made anew. The link starts with no peers:
// existing peers of an adopted kernel link stay until the first SetPeers.
func Open(cfg Config) (*Link, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	log := cfg.Logger.With("module", "network.wireguard", "link", cfg.Name)
	if err := clearLeftover(cfg, log); err != nil {
		return nil, err
	}
	dev, mode, err := openBackend(cfg, log)
	if err != nil {
		return nil, err
	}
	l := &Link{cfg: cfg, mode: mode, log: log, dev: dev}
	if err := l.setUp(); err != nil {
		_ = dev.close()
		return nil, err
	}
	log.Info("wireguard link up", "mode", mode, "listen_port", cfg.ListenPort,
		"address", cfg.Address, "public_key", l.PublicKey())
	return l, nil
}

// openBackend creates the device in the mode cfg asks for; ModeAuto tries
// the kernel and falls back to userspace only when the kernel lacks
// WireGuard, never on other failures, which would hide a real problem.
func openBackend(cfg Config, log *slog.Logger) (backend, Mode, error) {
	if cfg.Mode == ModeUserspace {
		return userspaceBackend(cfg, log)
	}
	k, err := openKernel(cfg)
	switch {
	case err == nil:
		return k, ModeKernel, nil
	case cfg.Mode == ModeAuto && errors.Is(err, errNoKernelWireGuard):
		log.Info("kernel has no WireGuard; using wireguard-go in this process", "reason", err)
		return userspaceBackend(cfg, log)
	}
	return nil, cfg.Mode, err
}

// userspaceBackend keeps a nil *userspace out of the backend interface.
func userspaceBackend(cfg Config, log *slog.Logger) (backend, Mode, error) {
	u, err := openUserspace(cfg, log)
	if err != nil {
		return nil, ModeUserspace, err
	}
	return u, ModeUserspace, nil
}

// clearLeftover deletes an interface of our name that we cannot use: the
// TUN of a dead process (a live Warren holding it would also hold the
// UDP port, so Open would fail anyway), or a kernel link when userspace is
// forced. A kernel link is otherwise kept and adopted, so its sessions
// survive a restart. An interface of any other kind is not ours to delete.
func clearLeftover(cfg Config, log *slog.Logger) error {
	old, err := netlink.LinkByName(cfg.Name)
	if errors.As(err, &netlink.LinkNotFoundError{}) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("look up interface %s: %w", cfg.Name, err)
	}
	switch typ := old.Type(); {
	case typ == "wireguard" && cfg.Mode != ModeUserspace:
		return nil
	case typ == "tuntap" || typ == "tun" || typ == "wireguard":
		log.Warn("deleting leftover interface", "type", typ)
		if err := netlink.LinkDel(old); err != nil {
			return fmt.Errorf("delete leftover %s interface %s: %w (delete it by hand: ip link del %[2]s)", typ, cfg.Name, err)
		}
		return nil
	default:
		return fmt.Errorf("interface %s exists and is a %s, not WireGuard: remove it or configure another name", cfg.Name, typ)
	}
}

// setUp gives the interface its address and MTU and brings it up.
func (l *Link) setUp() error {
	name := l.cfg.Name
	link, err := netlink.LinkByName(name)
	if err != nil {
		return fmt.Errorf("find new wireguard interface %s: %w", name, err)
	}
	l.ifx = link.Attrs().Index
	if err := netlink.LinkSetMTU(link, l.cfg.MTU); err != nil {
		return fmt.Errorf("set MTU %d on %s: %w", l.cfg.MTU, name, err)
	}
	if err := l.syncAddress(link); err != nil {
		return err
	}
	if err := netlink.LinkSetUp(link); err != nil {
		return fmt.Errorf("bring %s up: %w", name, err)
	}
	if u, ok := l.dev.(*userspace); ok {
		return u.up()
	}
	return nil
}

// syncAddress makes the configured address the link's only one: an
// adopted link may still carry the address of an earlier block.
func (l *Link) syncAddress(link netlink.Link) error {
	want := l.cfg.Address
	addrs, err := netlink.AddrList(link, netlink.FAMILY_ALL)
	if err != nil {
		return fmt.Errorf("list addresses of %s: %w", l.cfg.Name, err)
	}
	for _, a := range addrs {
		if a.IPNet.String() == want.String() || a.IP.IsLinkLocalUnicast() {
			continue
		}
		if err := netlink.AddrDel(link, &a); err != nil {
			return fmt.Errorf("remove stale address %s from %s: %w", a.IPNet, l.cfg.Name, err)
		}
	}
	addr := &netlink.Addr{IPNet: prefixToIPNet(want)}
	if err := netlink.AddrReplace(link, addr); err != nil {
		return fmt.Errorf("set address %s on %s: %w", want, l.cfg.Name, err)
	}
	return nil
}
