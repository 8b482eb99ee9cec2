// Package bridge owns the node-local half of the overlay's data path: the
// node's bridge (warren0), whose address is the containers' default
// gateway, and one network namespace per task with a veth on the bridge,
// plus the task's resolv.conf, hosts and hostname files. Everything is done
// in this process with netlink and system calls, so it works the same with
// no iproute2 installed.
//
// A task's namespace is a file, Dir/<taskID>, with the namespace
// bind-mounted on it: it outlives any process, the runtime joins it by
// path, and a restarted warren finds it again. Every operation converges
// (it makes what exists match what is asked and leaves alone what already
// does), so the node controller may call Ensure and Attach as often as it
// likes.
package bridge

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"path/filepath"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"github.com/warren-project/warren/internal/keylock"
	"github.com/warren-project/warren/internal/network/ipam"
	"golang.org/x/sys/unix"
)

// Defaults New uses for zero Config fields.
const (
	DefaultName = "warren0"
	// DefaultMTU is WireGuard's default: container packets leave the node
	// through the WireGuard link, so they must fit in its payload.
	DefaultMTU = 1420
)

// Config describes the node's bridge and where task namespaces live.
type Config struct {
	Bridge string // default DefaultName
	// Gateway is the bridge's address and the containers' default
	// gateway, with the node block's length, e.g. 10.200.3.1/24.
	Gateway netip.Prefix
	MTU     int // default DefaultMTU
	// Dir holds one bind-mounted network namespace file per task
	// (Dir/<taskID>) and the per-task files (Dir/<taskID>.d/resolv.conf,
	// hosts, hostname). It must be an absolute path.
	Dir string
	// HostNetNS is the path of the network namespace that holds the bridge
	// and the host ends of the veths; empty means this process's own. It
	// lets tests (and one-machine simulations) put a node in a namespace
	// without moving the whole process there.
	HostNetNS string
	Logger    *slog.Logger // default slog.Default()
}

// Bridge manages the node's bridge and the tasks attached to it. Its
// methods are safe for concurrent use.
type Bridge struct {
	cfg   Config
	log   *slog.Logger
	tasks keylock.Map // serialises Attach and Detach of one task
}

// New checks cfg and returns a Bridge; it touches nothing.
func New(cfg Config) (*Bridge, error) {
	if cfg.Bridge == "" {
		cfg.Bridge = DefaultName
	}
	if cfg.MTU == 0 {
		cfg.MTU = DefaultMTU
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if err := validate(cfg); err != nil {
		return nil, fmt.Errorf("bridge config: %w", err)
	}
	return &Bridge{cfg: cfg, log: cfg.Logger.With("module", "network.bridge", "bridge", cfg.Bridge)}, nil
}

func validate(cfg Config) error {
	if len(cfg.Bridge) > unix.IFNAMSIZ-1 {
		return fmt.Errorf("bridge name %q is longer than %d characters", cfg.Bridge, unix.IFNAMSIZ-1)
	}
	g := cfg.Gateway
	if !g.IsValid() || !g.Addr().Is4() {
		return fmt.Errorf("gateway %v must be an IPv4 address with its block's length, e.g. 10.200.3.1/24", g)
	}
	if g.Bits() > 30 {
		return fmt.Errorf("gateway %v: the block must be /30 or larger to hold containers", g)
	}
	if g.Addr() == g.Masked().Addr() || g.Addr() == ipam.Broadcast(g) {
		return fmt.Errorf("gateway %v is its block's network or broadcast address: use a host address such as the first", g)
	}
	if cfg.MTU < 576 || cfg.MTU > 65535 {
		return fmt.Errorf("MTU %d is out of range 576..65535", cfg.MTU)
	}
	if !filepath.IsAbs(cfg.Dir) {
		return fmt.Errorf("dir %q must be an absolute path (the runtime opens namespace files by path)", cfg.Dir)
	}
	return nil
}

// Ensure makes the bridge exist as configured: created or adopted, IPv6
// off, the MTU and the gateway address (and no other IPv4 address) set,
// up; and IPv4 forwarding on in the host namespace. It is idempotent and
// cheap when nothing has to change.
func (b *Bridge) Ensure() error {
	h, err := b.hostHandle()
	if err != nil {
		return err
	}
	defer h.Close()
	br, err := b.ensureLink(h)
	if err != nil {
		return err
	}
	// Before the link is up, so it never sends router solicitations or
	// takes a link-local address: containers get no IPv6 noise from it.
	if err := b.inHostNS(func() error { return disableIPv6(b.cfg.Bridge) }); err != nil {
		return fmt.Errorf("bridge %s: disable IPv6: %w", b.cfg.Bridge, err)
	}
	if br.Attrs().MTU != b.cfg.MTU {
		if err := h.LinkSetMTU(br, b.cfg.MTU); err != nil {
			return fmt.Errorf("bridge %s: set MTU %d: %w", b.cfg.Bridge, b.cfg.MTU, err)
		}
	}
	// An old block's address goes, after the node's block changed.
	if err := setOnlyAddress(h, br, b.cfg.Gateway); err != nil {
		return fmt.Errorf("bridge %s: %w", b.cfg.Bridge, err)
	}
	if err := h.LinkSetUp(br); err != nil {
		return fmt.Errorf("bridge %s: bring up: %w", b.cfg.Bridge, err)
	}
	if err := b.inHostNS(func() error { return writeSysctl("net/ipv4/ip_forward", "1") }); err != nil {
		return fmt.Errorf("enable IPv4 forwarding (containers reach other nodes through it): %w", err)
	}
	return nil
}

// ensureLink returns the bridge, creating it if it is missing.
func (b *Bridge) ensureLink(h *netlink.Handle) (netlink.Link, error) {
	br, err := h.LinkByName(b.cfg.Bridge)
	if err == nil {
		if br.Type() != "bridge" {
			return nil, fmt.Errorf("interface %s exists but is a %s, not a bridge: remove it or configure another bridge name", b.cfg.Bridge, br.Type())
		}
		return br, nil
	}
	if !isNotFound(err) {
		return nil, fmt.Errorf("bridge %s: look up: %w", b.cfg.Bridge, err)
	}
	attrs := netlink.NewLinkAttrs()
	attrs.Name, attrs.MTU = b.cfg.Bridge, b.cfg.MTU
	// A bridge without a MAC of its own takes the lowest of its ports',
	// so the gateway's MAC would change as tasks come and go and
	// containers' ARP caches would go stale.
	attrs.HardwareAddr = randomMAC()
	err = h.LinkAdd(&netlink.Bridge{LinkAttrs: attrs})
	if err != nil && !errors.Is(err, unix.EEXIST) { // EEXIST: a concurrent Ensure won
		return nil, fmt.Errorf("bridge %s: create: %w", b.cfg.Bridge, err)
	}
	if err == nil {
		b.log.Info("bridge created", "gateway", b.cfg.Gateway, "mtu", b.cfg.MTU)
	}
	if br, err = h.LinkByName(b.cfg.Bridge); err != nil {
		return nil, fmt.Errorf("bridge %s: look up after create: %w", b.cfg.Bridge, err)
	}
	return br, nil
}

// hostHandle returns a netlink handle on the host namespace.
func (b *Bridge) hostHandle() (*netlink.Handle, error) {
	if b.cfg.HostNetNS == "" {
		h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
		if err != nil {
			return nil, fmt.Errorf("open netlink: %w", err)
		}
		return h, nil
	}
	return handleAt(b.cfg.HostNetNS)
}

// inHostNS runs fn on a thread in the host namespace.
func (b *Bridge) inHostNS(fn func() error) error {
	if b.cfg.HostNetNS == "" {
		return fn()
	}
	return runInNetNS(b.cfg.HostNetNS, fn)
}

// handleAt returns a netlink handle whose socket lives in the namespace at
// path; the socket stays there, so no thread has to.
func handleAt(path string) (*netlink.Handle, error) {
	ns, err := netns.GetFromPath(path)
	if err != nil {
		return nil, fmt.Errorf("open network namespace %s: %w", path, err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("open netlink in namespace %s: %w", path, err)
	}
	return h, nil
}

func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}
