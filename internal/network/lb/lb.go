// Package lb owns the kernel rules that load-balance service traffic on a
// node. Every node holds the rules of every service: a connection to a VIP is
// DNATed at the node where it starts, to one healthy task chosen at random by
// weight, and published ports answer on every local address (the routing
// mesh) or, in host mode, only where a task runs.
//
// The rules live in one nftables table of our own (ip warren by default),
// written through netlink with github.com/google/nftables. Every Sync replaces
// that table whole in one netlink batch (delete-table, add-table, chains,
// maps and rules in a single transaction), so the kernel never sees half a
// ruleset. NAT chains are consulted only for the first packet of a
// connection and the translation is kept in conntrack, so connections already
// open keep flowing to a backend that left the set, while new ones cannot
// reach it from the moment Sync returns (the Swarm bug moby#30321 this avoids).
//
// Plan is the pure half: it turns services into a Ruleset a test can read
// (String renders it like `nft list table`); Sync writes that Ruleset.
package lb

import (
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sync"

	"github.com/google/nftables"
	"github.com/warren-project/warren/internal/network/bridge"
	"github.com/warren-project/warren/internal/network/ipam"
	"github.com/warren-project/warren/internal/network/wireguard"
)

// Config says which names and addresses the rules use.
type Config struct {
	Table     string       // our nftables table (family ip): "warren"
	Bridge    string       // the containers' bridge: "warren0"
	WireGuard string       // the mesh link to other nodes: "warren-wg"
	Subnet    netip.Prefix // the cluster subnet holding task addresses: 10.200.0.0/16
	Logger    *slog.Logger
}

// DefaultConfig returns Warren's default names and cluster subnet.
func DefaultConfig() Config {
	return Config{
		Table:     "warren",
		Bridge:    bridge.DefaultName,
		WireGuard: wireguard.DefaultName,
		Subnet:    netip.MustParsePrefix(ipam.DefaultSubnet),
		Logger:    slog.Default(),
	}
}

// withDefaults fills the fields cfg leaves empty from DefaultConfig.
func (cfg Config) withDefaults() Config {
	def := DefaultConfig()
	if cfg.Table == "" {
		cfg.Table = def.Table
	}
	if cfg.Bridge == "" {
		cfg.Bridge = def.Bridge
	}
	if cfg.WireGuard == "" {
		cfg.WireGuard = def.WireGuard
	}
	if !cfg.Subnet.IsValid() {
		cfg.Subnet = def.Subnet
	}
	if cfg.Logger == nil {
		cfg.Logger = def.Logger
	}
	return cfg
}

// Protocol is a transport protocol of a published port.
type Protocol string

// Protocols a port may be published with.
const (
	TCP Protocol = "tcp"
	UDP Protocol = "udp"
)

// PublishMode says where a published port answers.
type PublishMode int

const (
	// Ingress publishes on every node (the routing mesh): backends may be
	// on other nodes and are reached through the mesh.
	Ingress PublishMode = iota
	// Host publishes only on nodes where a task of the service runs, and
	// only to the tasks of that node.
	Host
)

// Port is a published port: connections to Published on a node reach
// Target on a backend.
type Port struct {
	Protocol  Protocol
	Target    uint16
	Published uint16 // 0: not published (the entry is ignored)
	Mode      PublishMode
}

// Backend is one task of a service that may receive connections.
type Backend struct {
	Addr   netip.Addr
	Weight uint32 // relative share of new connections; 0 means 1
	Local  bool   // the task runs on this node
}

// Service is what the rules need to know of a service.
type Service struct {
	ID, Name string
	VIP      netip.Addr // invalid: the service has no VIP
	Ports    []Port
	Backends []Backend // healthy running tasks only: the caller filters
}

// LB writes the load-balancing rules of a node.
type LB struct {
	cfg Config
	log *slog.Logger

	mu          sync.Mutex          // one Sync or Close at a time
	lastSkipped []string            // to warn about a skipped service once, not every Sync
	backends    map[netip.Addr]bool // as of the last Sync, to flush the UDP flows of those that leave
	// forwardChecked is set once other tables' forward chains were checked.
	forwardChecked bool
}

// New checks cfg (empty fields take DefaultConfig's values) and returns an
// LB. It does not touch the kernel until Sync.
func New(cfg Config) (*LB, error) {
	cfg = cfg.withDefaults()
	if !cfg.Subnet.Addr().Is4() {
		return nil, fmt.Errorf("lb: cluster subnet %s is not IPv4: the table is of family ip", cfg.Subnet)
	}
	for _, n := range []string{cfg.Bridge, cfg.WireGuard} {
		if len(n) >= ifNameSize {
			return nil, fmt.Errorf("lb: interface name %q is longer than the kernel's %d bytes", n, ifNameSize-1)
		}
	}
	return &LB{cfg: cfg, log: cfg.Logger.With("module", "lb", "lb.table", cfg.Table)}, nil
}

// Sync makes the kernel's rules match services exactly: it replaces our
// table in one atomic batch, then sets the sysctls the rules rely on. It is
// idempotent. When it returns, a backend no longer listed gets no new
// connections; connections it already has continue.
func (l *LB) Sync(services []Service) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	rs := Plan(l.cfg, services)
	l.warnSkipped(rs.Skipped)
	conn, err := nftables.New()
	if err != nil {
		return fmt.Errorf("lb: open nftables netlink socket: %w", err)
	}
	l.warnForwardDrops(conn)
	if err := writeRuleset(conn, rs); err != nil {
		return fmt.Errorf("lb: replace nftables table ip %s (%d services, %d chains): %w; "+
			"the previous rules stay in force: check that warren runs as root (CAP_NET_ADMIN) "+
			"and the kernel has nf_tables with nat", l.cfg.Table, len(services), len(rs.Chains), err)
	}
	l.log.Debug("load-balancing rules written", "lb.services", len(services), "lb.chains", len(rs.Chains))
	now := backendAddrs(services)
	var gone []netip.Addr
	for a := range l.backends {
		if !now[a] {
			gone = append(gone, a)
		}
	}
	l.backends = now
	l.flushUDP(gone)
	if err := setSysctls(); err != nil {
		return fmt.Errorf("lb: rules written, but: %w", err)
	}
	return nil
}

// warnSkipped logs the services and ports Plan left out, once per change.
func (l *LB) warnSkipped(skipped []string) {
	for _, s := range skipped {
		if !slices.Contains(l.lastSkipped, s) {
			l.log.Warn("service rule skipped", "lb.reason", s)
		}
	}
	l.lastSkipped = skipped
}

// Close deletes our table: no more VIPs or published ports on this node.
// Connections already translated keep their conntrack entries.
func (l *LB) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	conn, err := nftables.New()
	if err != nil {
		return fmt.Errorf("lb: open nftables netlink socket: %w", err)
	}
	if err := deleteTable(conn, l.cfg.Table); err != nil {
		return fmt.Errorf("lb: delete nftables table ip %s: %w; remove it by hand with "+
			"`nft delete table ip %s`", l.cfg.Table, err, l.cfg.Table)
	}
	return nil
}
