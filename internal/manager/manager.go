// Package manager is the composition root of a Warren manager: it opens the
// data dir, starts Raft and the state store, serves the API, runs the
// control pipeline while it leads, and runs the local node's agent.
package manager

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"time"

	"google.golang.org/grpc"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/internal/manager/dispatcher"
	"github.com/warren-project/warren/internal/raftnode"
	"github.com/warren-project/warren/internal/runtime"
	"github.com/warren-project/warren/internal/security/ca"
	"github.com/warren-project/warren/internal/security/join"
	"github.com/warren-project/warren/internal/state"
)

// Manager is one running manager.
type Manager struct {
	cfg   Config
	log   *slog.Logger
	creds *managerCreds
	store *state.MemoryStore
	raft  *raftnode.Node
	exec  runtime.Executor

	local, remote *grpc.Server
	dispatcher    *dispatcher.Dispatcher
	rest          *http.Server

	inproc            *inProcess
	leader            *leaderConn
	probes            peerProbes // when the other managers last answered (peers.go)
	leaderCh          chan bool
	tcpAddr, restAddr net.Addr
	ready             chan struct{}
	// demoted is closed when this node's session says it is a worker now.
	demoted    chan struct{}
	demoteOnce sync.Once
	fallback   agentFallback // the agent's way to a leader when Raft knows none
	joinedNow  bool          // this start joined the cluster (ManagerOnly drains it)
}

// New checks cfg; Run does the work.
func New(cfg Config) (*Manager, error) {
	if cfg.DataDir == "" {
		return nil, errors.New("a data dir is required (--data-dir)")
	}
	abs, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	cfg.DataDir = abs
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.NodeCertTTL != 0 && cfg.NodeCertTTL < ca.MinCertTTL {
		return nil, fmt.Errorf("certificate expiry %s is too short: use at least %s (--cert-expiry)", cfg.NodeCertTTL, ca.MinCertTTL)
	}
	if cfg.HeartbeatPeriod == 0 {
		cfg.HeartbeatPeriod = DefaultConfig().HeartbeatPeriod
	}
	if cfg.ClusterName == "" {
		cfg.ClusterName = "warren"
	}
	return &Manager{cfg: cfg, log: cfg.Logger.With("module", "manager"), ready: make(chan struct{}), demoted: make(chan struct{})}, nil
}

// Ready is closed once the manager serves its API.
func (m *Manager) Ready() <-chan struct{} { return m.ready }

// Addr is the address of the TLS gRPC API (useful with port 0).
func (m *Manager) Addr() net.Addr { return m.tcpAddr }

// RESTAddr is the address of the JSON gateway, nil when disabled.
func (m *Manager) RESTAddr() net.Addr { return m.restAddr }

// NodeID is this manager's node ID.
func (m *Manager) NodeID() string { return m.creds.NodeID }

// Store is the manager's state store (for tests and tools).
func (m *Manager) Store() *state.MemoryStore { return m.store }

// Run starts everything and blocks until ctx ends, then stops cleanly.
// Containers keep running after it returns. When the cluster demotes this
// manager, Run turns its data dir into a worker's and returns an error
// matching join.ErrRoleChanged: the caller runs the node as a worker.
func (m *Manager) Run(ctx context.Context) error {
	if err := m.run(ctx); err != nil {
		return err
	}
	select {
	case <-m.demoted:
	default:
		return nil
	}
	if err := m.becomeWorker(); err != nil {
		return fmt.Errorf("this manager was demoted, but could not turn its data dir %s into a worker's: %w", m.cfg.DataDir, err)
	}
	m.log.Info("demoted: this node now runs as a worker", "node.id", m.creds.NodeID)
	return fmt.Errorf("%w: it is now a worker", join.ErrRoleChanged)
}

func (m *Manager) run(ctx context.Context) (err error) {
	var stops []func()
	defer func() {
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i]()
		}
	}()
	onStop := func(f func()) { stops = append(stops, f) }

	if m.cfg.JoinToken != "" {
		if err := m.joinCluster(ctx); err != nil {
			return err
		}
	}
	if m.creds, err = loadOrCreateCredentials(m.cfg.DataDir, m.cfg.ClusterName, m.certHosts()); err != nil {
		return err
	}
	m.leader = &leaderConn{m: m}
	onStop(m.leader.forget)
	rctx, stopRenewal := context.WithCancel(ctx)
	go m.renewOwnCertificate(rctx)
	onStop(stopRenewal)
	// A manager demoted while it was away learns it at start: from the
	// other managers, or from the leader refusing its first write.
	demotedAway := func(err error) bool {
		if errors.Is(err, errDemotedAway) || isDemotedRefusal(err) {
			m.log.Warn("this manager was demoted while it was away: going on as a worker", "err", err)
			m.onRole(api.NodeRole_NODE_ROLE_WORKER)
			return true // Run turns the data dir into a worker's
		}
		return false
	}
	if err := m.startRaft(ctx, onStop); err != nil {
		if demotedAway(err) {
			return nil
		}
		return err
	}
	if err := m.startExecutor(ctx, onStop); err != nil {
		return err
	}
	if err := m.retryStartupWrite(ctx, m.ensureClusterObjects); err != nil {
		if demotedAway(err) {
			return nil
		}
		return err
	}
	if err := m.serve(ctx, onStop); err != nil {
		return err
	}
	if err := m.retryStartupWrite(ctx, m.recordManagerStatus); err != nil {
		if demotedAway(err) {
			return nil
		}
		return err
	}
	m.startLeading(ctx, onStop)
	m.startPeerProbes(ctx, onStop)
	if err := m.startAgent(ctx, onStop); err != nil {
		return err
	}
	close(m.ready)
	m.log.Info("manager ready", "node.id", m.creds.NodeID, "cluster.id", m.creds.ClusterID,
		"api", m.tcpAddr, "socket", m.cfg.SocketPath)
	select {
	case <-ctx.Done():
		m.log.Info("manager stopping; containers keep running")
	case <-m.demoted:
		m.log.Info("demoted and out of Raft: stopping the manager; containers keep running")
	}
	return nil
}

// certHosts are the names the manager's certificate is valid for: its
// advertised and listen hosts, or this host's address when both are
// wildcards (127.0.0.1 and localhost are always in).
func (m *Manager) certHosts() []string {
	hosts := []string{}
	for _, a := range []string{m.cfg.AdvertiseAddr, m.cfg.ListenAddr} {
		h, _, err := net.SplitHostPort(a)
		if err != nil {
			h = a // an advertise address may be a bare host
		}
		if h != "" && h != "0.0.0.0" && h != "::" {
			hosts = append(hosts, h)
		}
	}
	if len(hosts) == 0 {
		if h := hostAddr(); h != "" {
			hosts = append(hosts, h)
		}
	}
	return hosts
}

// raftAdvertise is the Raft address peers are told: the advertised host
// with the Raft port.
func (m *Manager) raftAdvertise() string {
	_, port, err := net.SplitHostPort(m.cfg.RaftAddr)
	if err != nil {
		return ""
	}
	host := "127.0.0.1"
	if hosts := m.certHosts(); len(hosts) > 0 {
		host = hosts[0]
	}
	if port == "0" {
		return "" // an ephemeral port: let the transport report what it bound
	}
	return net.JoinHostPort(host, port)
}

func (m *Manager) startRaft(ctx context.Context, onStop func(func())) error {
	m.store = state.NewMemoryStore(nil)
	pool := m.creds.CA.Pool()
	leaderCh := make(chan bool, 8)
	cfg := raftnode.Config{
		NodeID: m.creds.NodeID, DataDir: m.cfg.DataDir,
		BindAddr: m.cfg.RaftAddr, AdvertiseAddr: m.raftAdvertise(),
		ServerTLS: ca.ServerTLSConfig(pool, m.creds.Cert.Certificate, true),
		ClientTLS: func(name string) *tls.Config { return ca.ClientTLSConfig(pool, m.creds.Cert.Certificate, name) },
		FSM:       &state.FSM{Store: m.store}, Logger: m.cfg.Logger, LeaderNotify: leaderCh, Forward: m.forward,
		ForceNewCluster:  m.cfg.ForceNewCluster,
		HeartbeatTimeout: m.cfg.RaftHeartbeat, ElectionTimeout: m.cfg.RaftElection,
		LeaderLeaseTimeout: m.cfg.RaftLeaderLease, SnapshotThreshold: m.cfg.SnapshotThreshold, TrailingLogs: m.cfg.RaftTrailingLogs,
		SnapshotInterval: m.cfg.RaftSnapshotInterval,
	}
	if m.cfg.ForceNewCluster {
		cfg.RecoverFSM = &state.FSM{Store: state.NewMemoryStore(nil)}
	}
	// A data dir made by `warren cluster restore` starts from the backup's
	// state, planted as Raft's first snapshot.
	seed, err := loadSeed(m.cfg.DataDir, m.creds.ClusterID)
	if err != nil {
		return err
	}
	cfg.Seed = seed
	n, err := raftnode.Start(cfg, m.creds.Founder)
	if err != nil {
		return err
	}
	m.dropSeed(n, seed)
	m.raft = n
	m.leaderCh = leaderCh
	m.store.SetProposer(n)
	onStop(func() {
		if err := n.Shutdown(); err != nil {
			m.log.Warn("raft shutdown", "err", err)
		}
	})
	if err := m.addSelf(ctx); err != nil {
		return err
	}
	if err := m.waitLeaderAtStart(ctx); err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := n.WaitApplied(wctx); err != nil {
		return err
	}
	return m.waitReplicated(wctx)
}

// waitLeaderAtStart waits up to a minute for a Raft leader. Each few
// seconds without one, it asks the other managers whether this one was
// demoted while it was away: no leader would ever contact it again.
func (m *Manager) waitLeaderAtStart(ctx context.Context) error {
	deadline := time.Now().Add(time.Minute)
	for {
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := m.raft.WaitForLeader(wctx)
		cancel()
		if err == nil || ctx.Err() != nil {
			return err
		}
		if m.demotedWhileAway(ctx) {
			return errDemotedAway
		}
		if time.Now().After(deadline) {
			return err
		}
	}
}

// waitReplicated waits, on a follower, until the replicated state has
// reached it (the cluster and its own node), before start-up looks at it.
// A follower may know the leader from a heartbeat before it knows what is
// committed, and a restarted founder that sees no cluster would create it
// again. A leader's state is complete once WaitApplied's barrier passed;
// only there may the founder find the cluster still to be made.
func (m *Manager) waitReplicated(ctx context.Context) error {
	if m.raft.IsLeader() {
		return nil
	}
	ok := m.store.WaitUntil(ctx, func(tx state.ReadTx) bool {
		return tx.GetCluster() != nil && tx.GetNode(m.creds.NodeID) != nil
	})
	if !ok {
		return fmt.Errorf("the cluster's state did not reach this manager: %w", ctx.Err())
	}
	return nil
}
