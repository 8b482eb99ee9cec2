package overlay

import (
	"log/slog"
	"net"
	"net/netip"

	"github.com/warren-project/warren/internal/network/wireguard"
)

// Options are a node's overlay settings, as the CLI sets them.
type Options struct {
	// Enabled runs the overlay; without it the node runs host-network
	// tasks only.
	Enabled bool
	// ListenPort is WireGuard's UDP port (default 51820).
	ListenPort int
	Mode       wireguard.Mode
}

// Start makes the overlay controller of node nodeID, or returns nil when
// opts disable it. advertise is the host other nodes reach this one at
// (an IP; otherwise managers take the address the node's session comes
// from).
func Start(opts Options, nodeID, dataDir, advertise string, log *slog.Logger) (*Controller, error) {
	if !opts.Enabled {
		return nil, nil
	}
	host := advertise
	if h, _, err := net.SplitHostPort(advertise); err == nil {
		host = h
	}
	ep, _ := netip.ParseAddr(host)
	if ep.IsUnspecified() {
		ep = netip.Addr{}
	}
	return New(Config{NodeID: nodeID, DataDir: dataDir, EndpointAddr: ep, ListenPort: opts.ListenPort, Mode: opts.Mode, Logger: log})
}
