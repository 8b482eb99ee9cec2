// Package wireguard owns a node's WireGuard link, the one interface that
// carries all cross-node container traffic. The link has the node's key,
// listens on one UDP port, holds the node's own address (its bridge
// gateway's, so host-originated packets have a source the peers route
// back) and has one peer per other node, whose AllowedIPs are that node's
// address block; each block also gets a route through the link.
//
// The kernel's WireGuard is used where the kernel has it; elsewhere
// wireguard-go runs in this process on a TUN device and is configured
// directly (IpcSet/IpcGet), with no UAPI socket in /var/run, so several
// nodes can share one host in tests. The userspace device opens its UDP
// socket in the network namespace of whichever thread brings it up: call
// Open from a process (not just a thread) in the namespace the link
// belongs in.
package wireguard

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"
)

// Defaults Open uses for zero Config fields.
const (
	DefaultName = "warren-wg"
	DefaultPort = 51820
	// DefaultMTU leaves room for WireGuard's 80 bytes of overhead (IPv6
	// outer header) on a 1500-byte underlay.
	DefaultMTU = 1420
	// Keepalive is every peer's persistent keepalive: it keeps NAT
	// mappings open so a node behind NAT stays reachable.
	Keepalive = 25 * time.Second
)

// Mode says which WireGuard implementation carries the link.
type Mode int

const (
	// ModeAuto uses the kernel's WireGuard when the kernel can create a
	// wireguard link, wireguard-go otherwise.
	ModeAuto Mode = iota
	// ModeKernel requires the kernel module.
	ModeKernel
	// ModeUserspace runs wireguard-go on a TUN device in this process.
	ModeUserspace
)

func (m Mode) String() string {
	switch m {
	case ModeAuto:
		return "auto"
	case ModeKernel:
		return "kernel"
	case ModeUserspace:
		return "userspace"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// Config describes the link. Zero Name, ListenPort, MTU and Logger take
// the defaults above.
type Config struct {
	Name       string
	PrivateKey wgtypes.Key
	ListenPort int
	// Address is the node's own address on the link, e.g. 10.200.3.1/32.
	Address netip.Prefix
	MTU     int
	Mode    Mode
	Logger  *slog.Logger
}

// DefaultConfig returns a Config with the defaults filled in; the caller
// still sets PrivateKey and Address.
func DefaultConfig() Config {
	return Config{Name: DefaultName, ListenPort: DefaultPort, MTU: DefaultMTU, Logger: slog.Default()}
}

// Peer is another node as the cluster knows it.
type Peer struct {
	PublicKey  wgtypes.Key
	Endpoint   netip.AddrPort // the node's underlay address and port
	AllowedIPs []netip.Prefix // the node's block(s)
}

// PeerStatus is a peer as the link sees it.
type PeerStatus struct {
	PublicKey  wgtypes.Key
	Endpoint   netip.AddrPort // the live endpoint: it follows a roaming peer
	AllowedIPs []netip.Prefix
	// LastHandshake is zero until a handshake has completed.
	LastHandshake time.Time
	RxBytes       int64
	TxBytes       int64
}

// Link is an open WireGuard link. Its methods are safe for concurrent use.
type Link struct {
	cfg  Config
	mode Mode
	log  *slog.Logger
	ifx  int // the interface index, for routes

	mu  sync.Mutex
	dev backend
	// endpoints holds what SetPeers last configured per peer, so a
	// peer that roamed is not pulled back on every call with the same set.
	endpoints map[wgtypes.Key]netip.AddrPort
}

// backend is one WireGuard implementation behind the link.
type backend interface {
	peers() ([]peerState, error)
	apply(changes []peerChange) error
	close() error
}

// peerState is a live peer in netip terms.
type peerState struct {
	key       wgtypes.Key
	endpoint  netip.AddrPort
	allowed   []netip.Prefix
	keepalive time.Duration
	handshake time.Time
	rx, tx    int64
}

// peerChange adds, updates (replacing its allowed IPs) or removes a peer.
type peerChange struct {
	key       wgtypes.Key
	remove    bool
	endpoint  netip.AddrPort
	allowed   []netip.Prefix
	keepalive time.Duration
}

// ErrClosed is returned by methods of a closed Link.
var ErrClosed = errors.New("wireguard link is closed")

// Mode reports which implementation carries the link: ModeKernel or
// ModeUserspace, never ModeAuto.
func (l *Link) Mode() Mode { return l.mode }

// Name is the interface's name.
func (l *Link) Name() string { return l.cfg.Name }

// PublicKey is the node's public key, the one peers configure.
func (l *Link) PublicKey() wgtypes.Key { return l.cfg.PrivateKey.PublicKey() }

// Close takes the link away: the userspace device closes (its TUN
// disappears), a kernel link is deleted. Routes through it go with it.
func (l *Link) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.dev == nil {
		return nil
	}
	err := l.dev.close()
	l.dev = nil
	if err != nil {
		return fmt.Errorf("close wireguard link %s: %w", l.cfg.Name, err)
	}
	l.log.Info("wireguard link closed")
	return nil
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.Name == "" {
		c.Name = d.Name
	}
	if c.ListenPort == 0 {
		c.ListenPort = d.ListenPort
	}
	if c.MTU == 0 {
		c.MTU = d.MTU
	}
	if c.Logger == nil {
		c.Logger = d.Logger
	}
	return c
}

func (c Config) validate() error {
	switch {
	case len(c.Name) > 15:
		return fmt.Errorf("wireguard: interface name %q is longer than 15 bytes", c.Name)
	case c.PrivateKey == wgtypes.Key{}:
		return errors.New("wireguard: no private key (use LoadOrCreateKey)")
	case c.ListenPort < 0 || c.ListenPort > 65535:
		return fmt.Errorf("wireguard: listen port %d out of range", c.ListenPort)
	case !c.Address.IsValid():
		return errors.New("wireguard: no link address (the node's gateway address, e.g. 10.200.3.1/32)")
	case c.MTU < 1280 || c.MTU > 65535:
		return fmt.Errorf("wireguard: MTU %d out of range 1280–65535", c.MTU)
	case c.Mode < ModeAuto || c.Mode > ModeUserspace:
		return fmt.Errorf("wireguard: unknown mode %v", c.Mode)
	}
	return nil
}
