package manager

import (
	"log/slog"
	"time"

	"github.com/warren-project/warren/internal/network/ipam"
	"github.com/warren-project/warren/internal/network/overlay"
	"github.com/warren-project/warren/internal/worker"

	"github.com/warren-project/warren/internal/runtime"
)

// Config of a manager. DefaultConfig gives the production values.
type Config struct {
	// DataDir holds the Raft log, the CA, certificates and the node's files.
	DataDir     string
	ClusterName string
	// ListenAddr serves the gRPC API and node sessions over mutual TLS.
	ListenAddr string
	// AdvertiseAddr is the address other nodes reach this manager at
	// (default: the listen address, or this host's address when that is
	// a wildcard).
	AdvertiseAddr string
	// JoinAddr and JoinToken make a manager with an empty data dir join an
	// existing cluster (a manager token) instead of creating one.
	JoinAddr  string
	JoinToken string
	// ForceNewCluster makes this manager the only Raft member, keeping the
	// state: recovery when a majority of managers is lost for good.
	ForceNewCluster bool
	// ManagerOnly makes this manager's node drained when it is created (at
	// init) or joins: it runs no tasks until an operator makes it active.
	ManagerOnly bool
	// RaftAddr is where the Raft transport listens (mutual TLS, managers only).
	RaftAddr string
	// RESTAddr serves the JSON gateway over mutual TLS; empty disables it.
	RESTAddr string
	// SocketPath is the root-only unix socket of the local CLI.
	SocketPath string
	// ContainerdSocket is the containerd to use; when none answers there
	// and a containerd binary is on PATH, the manager runs its own.
	ContainerdSocket string
	// NodeCertTTL is the lifetime of node certificates (0 keeps the
	// cluster's setting, 90 days by default); nodes renew well before.
	NodeCertTTL time.Duration
	// AddressPlan is the overlay's address plan, fixed when the cluster is
	// made (zero values take ipam's defaults); later starts ignore it.
	AddressPlan ipam.Plan
	// Overlay sets up this node's part of the cluster network.
	Overlay overlay.Options
	// Network replaces the overlay controller (tests pass a fake).
	Network worker.Network
	// Executor replaces containerd (tests pass a fake).
	Executor runtime.Executor

	Logger *slog.Logger

	// Timing, shortened by tests.
	HeartbeatPeriod   time.Duration
	RaftHeartbeat     time.Duration
	RaftElection      time.Duration
	RaftLeaderLease   time.Duration
	SnapshotThreshold uint64
	// RaftTrailingLogs is how many entries a snapshot leaves in the log
	// for slow followers (hashicorp/raft's 10240 by default).
	RaftTrailingLogs uint64
	// RaftSnapshotInterval is how often the threshold is checked (2 min).
	RaftSnapshotInterval time.Duration
}

// DefaultConfig returns the production defaults.
func DefaultConfig() Config {
	return Config{
		DataDir:          "/var/lib/warren",
		ClusterName:      "warren",
		ListenAddr:       "0.0.0.0:2377",
		RaftAddr:         "0.0.0.0:2379",
		RESTAddr:         "0.0.0.0:2378",
		SocketPath:       "/run/warren/warren.sock",
		ContainerdSocket: "/run/containerd/containerd.sock",
		HeartbeatPeriod:  3 * time.Second, // a silent node is down after 3 periods
	}
}
