// Package overlay is a node's part of the cluster network. It turns the
// network map managers send into the node's bridge, its WireGuard link to
// every other node, the load-balancing rules of every service and the
// answers of its DNS server, and it gives each overlay task a network
// namespace on the bridge. It keeps the last map on disk, so a node that
// restarts while no manager answers rebuilds its network all the same.
package overlay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/internal/network/bridge"
	"github.com/warren-project/warren/internal/network/dns"
	"github.com/warren-project/warren/internal/network/ipam"
	"github.com/warren-project/warren/internal/network/lb"
	"github.com/warren-project/warren/internal/network/wireguard"
	"github.com/warren-project/warren/internal/runtime"
)

// Config sets up a node's overlay.
type Config struct {
	NodeID string
	// DataDir holds the WireGuard key (keys/wireguard.key), the last map
	// (network/map.pb) and the tasks' namespaces (network/netns).
	DataDir string
	// EndpointAddr is the address other nodes reach this one at; the
	// WireGuard endpoint is EndpointAddr:ListenPort.
	EndpointAddr netip.Addr
	ListenPort   int
	// Bridge, WireGuard and Table name the node's interfaces and its
	// nftables table (defaults warren0, warren-wg, warren).
	Bridge, WireGuard, Table string
	Mode                     wireguard.Mode
	Logger                   *slog.Logger
}

// Controller is a node's overlay. Its methods are safe for concurrent use.
type Controller struct {
	cfg   Config
	log   *slog.Logger
	key   wgtypes.Key
	names *dns.Table

	mu      sync.Mutex
	cur     *api.NetworkMap
	block   netip.Prefix // this node's block, once a map named it
	ready   chan struct{}
	br      *bridge.Bridge
	link    *wireguard.Link
	rules   *lb.LB
	dnsSrv  *dns.Server
	lastErr error
}

// New loads (or makes) the node's WireGuard key and applies the map kept
// from the last run, if any.
func New(cfg Config) (*Controller, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.ListenPort == 0 {
		cfg.ListenPort = wireguard.DefaultPort
	}
	if cfg.Bridge == "" {
		cfg.Bridge = bridge.DefaultName
	}
	if cfg.WireGuard == "" {
		cfg.WireGuard = wireguard.DefaultName
	}
	c := &Controller{cfg: cfg, log: cfg.Logger.With("module", "overlay"), names: dns.NewTable(), ready: make(chan struct{})}
	k, err := wireguard.LoadOrCreateKey(filepath.Join(cfg.DataDir, "keys", "wireguard.key"))
	if err != nil {
		return nil, err
	}
	c.key = k
	if m, err := c.loadMap(); err != nil {
		c.log.Warn("ignoring the saved network map; waiting for a manager's", "err", err)
	} else if m != nil {
		c.Apply(m)
	}
	return c, nil
}

// Registration is what the node tells managers of its overlay.
func (c *Controller) Registration() *api.NodeNetwork {
	// Without a known address the endpoint is ":port": managers fill in
	// the address the node's session comes from.
	ep := ":" + strconv.Itoa(c.cfg.ListenPort)
	if c.cfg.EndpointAddr.IsValid() {
		ep = netip.AddrPortFrom(c.cfg.EndpointAddr, uint16(c.cfg.ListenPort)).String()
	}
	return &api.NodeNetwork{WireguardPublicKey: c.key.PublicKey().String(), WireguardEndpoint: ep}
}

// Apply makes the node's network match m; an older map than the current
// one is ignored. Failures are logged and kept for MeshStatus: the next
// map tries again.
func (c *Controller) Apply(m *api.NetworkMap) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cur != nil && m.GetVersion() < c.cur.GetVersion() {
		return
	}
	err := c.applyLocked(m)
	c.lastErr = err
	if err != nil {
		c.log.Error("network map not fully applied; the overlay may not work on this node", "version", m.GetVersion(), "err", err)
		return
	}
	c.cur = m
	if err := c.saveMap(m); err != nil {
		c.log.Warn("cannot keep the network map for a restart", "err", err)
	}
}

func (c *Controller) applyLocked(m *api.NetworkMap) error {
	block, err := c.ownBlock(m)
	if err != nil {
		return err
	}
	if !block.IsValid() {
		return nil // not in the mesh yet: the manager has not seen our key
	}
	if err := c.setUp(m, block); err != nil {
		return err
	}
	var errs []error
	ps, skipped := peers(m, c.cfg.NodeID)
	for _, s := range skipped {
		c.log.Warn("peer skipped", "reason", s)
	}
	if err := c.link.SetPeers(ps); err != nil {
		errs = append(errs, fmt.Errorf("WireGuard peers: %w", err))
	}
	rules, names := services(m, c.cfg.NodeID)
	if err := c.rules.Sync(rules); err != nil {
		errs = append(errs, fmt.Errorf("load-balancing rules: %w", err))
	}
	c.names.Set(names)
	return errors.Join(errs...)
}

// ownBlock is this node's block in m, which must not change once set:
// running containers hold addresses of it.
func (c *Controller) ownBlock(m *api.NetworkMap) (netip.Prefix, error) {
	for _, n := range m.GetNodes() {
		if n.GetNodeId() != c.cfg.NodeID {
			continue
		}
		b, err := netip.ParsePrefix(n.GetBlock())
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("this node's block %q: %w", n.GetBlock(), err)
		}
		if c.block.IsValid() && b != c.block {
			return netip.Prefix{}, fmt.Errorf("this node's block changed from %s to %s: restart warren to renumber its tasks", c.block, b)
		}
		return b, nil
	}
	return netip.Prefix{}, nil
}

// readyTimeout bounds how long a task waits for the node's overlay: past
// it the task is rejected, and managers place it again.
const readyTimeout = 30 * time.Second

// Attach gives task t its network namespace, waiting (up to readyTimeout)
// for the first map that names this node's block.
func (c *Controller) Attach(ctx context.Context, t *api.Task) (*runtime.NetworkAttachment, error) {
	addr, err := netip.ParseAddr(t.GetAddress())
	if err != nil {
		return nil, fmt.Errorf("task %s has no overlay address (%q)", t.GetId(), t.GetAddress())
	}
	wait := time.NewTimer(readyTimeout)
	defer wait.Stop()
	select {
	case <-c.ready:
	case <-ctx.Done():
		return nil, fmt.Errorf("the overlay is not up on this node yet (waiting for the network map): %w", ctx.Err())
	case <-wait.C:
		c.mu.Lock()
		why := c.lastErr
		c.mu.Unlock()
		if why == nil {
			why = errors.New("no network map naming this node came from managers")
		}
		return nil, fmt.Errorf("the overlay did not come up on this node within %v: %w", readyTimeout, why)
	}
	c.mu.Lock()
	br, gw := c.br, ipam.Gateway(c.block)
	c.mu.Unlock()
	host := hostname(t)
	a, err := br.Attach(ctx, bridge.AttachOptions{TaskID: t.GetId(), Address: addr, Hostname: host, DNS: gw})
	if err != nil {
		return nil, err
	}
	return &runtime.NetworkAttachment{NetNSPath: a.NetNS, ResolvConf: a.ResolvConf, Hosts: a.Hosts, Hostname: a.Hostname, HostName: host}, nil
}

// hostname is a task's host name inside its container: the first 12
// characters of its ID, as Docker names containers.
func hostname(t *api.Task) string {
	id := t.GetId()
	if len(id) > 12 {
		id = id[:12]
	}
	return id
}

// Detach releases task id's namespace; nothing to do is fine.
func (c *Controller) Detach(id string) error {
	c.mu.Lock()
	br := c.br
	c.mu.Unlock()
	if br == nil {
		return nil
	}
	return br.Detach(id)
}

// Attached lists the tasks holding a namespace, for the orphan sweep.
func (c *Controller) Attached() ([]string, error) {
	c.mu.Lock()
	br := c.br
	c.mu.Unlock()
	if br == nil {
		return nil, nil
	}
	return br.Attached()
}

// MeshStatus is the node's view of its peers, for managers.
func (c *Controller) MeshStatus() *api.MeshStatus {
	c.mu.Lock()
	link, m, lastErr := c.link, c.cur, c.lastErr
	c.mu.Unlock()
	st := &api.MeshStatus{}
	if lastErr != nil {
		st.Error = lastErr.Error()
	}
	if link == nil {
		return st
	}
	ps, err := link.Peers()
	if err != nil {
		st.Error = err.Error()
		return st
	}
	nodes := nodeOfKey(m)
	for _, p := range ps {
		mp := &api.MeshPeer{NodeId: nodes[p.PublicKey], RxBytes: uint64(p.RxBytes), TxBytes: uint64(p.TxBytes)}
		if p.Endpoint.IsValid() {
			mp.Endpoint = p.Endpoint.String()
		}
		if !p.LastHandshake.IsZero() {
			mp.LastHandshake = timestamppb.New(p.LastHandshake)
		}
		st.Peers = append(st.Peers, mp)
	}
	return st
}

// Close stops what lives in this process: the DNS server and a userspace
// WireGuard device. The bridge, the namespaces and the rules stay, so
// containers on this node keep talking to each other while warren restarts.
func (c *Controller) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var errs []error
	if c.dnsSrv != nil {
		errs = append(errs, c.dnsSrv.Close())
	}
	if c.link != nil && c.link.Mode() == wireguard.ModeUserspace {
		errs = append(errs, c.link.Close())
	}
	return errors.Join(errs...)
}
