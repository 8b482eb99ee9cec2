package main

import (
	"net"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/warren-project/warren/internal/daemon"
	"github.com/warren-project/warren/internal/manager"
	"github.com/warren-project/warren/internal/network/ipam"
	"github.com/warren-project/warren/internal/network/overlay"
	"github.com/warren-project/warren/internal/network/wireguard"
	"github.com/warren-project/warren/internal/node"
	"github.com/warren-project/warren/internal/security/ca"
)

// newClusterInitCmd runs a manager in the foreground: a new cluster on an
// empty data dir, the same cluster resumed on an existing one.
func newClusterInitCmd() *cobra.Command {
	cfg := manager.DefaultConfig()
	var subnet, vipPool string
	var blockBits int
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Start a cluster (or resume it from its data dir) and run its manager in the foreground",
		Long: `Runs a manager in the foreground, like dockerd. On an empty data dir it creates
a new cluster: its CA, the manager's certificate, and an admin client bundle in
DATA_DIR/admin. On an existing data dir it resumes the same cluster and adopts the
containers already running. The manager also runs tasks, so one machine is a
complete cluster. SIGTERM or Ctrl-C stops the manager; containers keep running.

Demoted ("warren node demote"), the node goes on as a worker, and a later
start with the same data dir resumes it as one.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGTERM, syscall.SIGINT)
			defer stop()
			plan, err := ipam.ParsePlan(subnet, blockBits, vipPool)
			if err != nil {
				return err
			}
			cfg.AddressPlan = plan
			return daemon.Run(ctx, daemon.Config{Manager: cfg, Node: nodeConfigOf(cfg), FirstRole: ca.RoleManager})
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.DataDir, "data-dir", cfg.DataDir, "directory of the cluster's state, certificates and logs")
	f.StringVar(&cfg.ClusterName, "cluster-name", cfg.ClusterName, "name of a new cluster")
	f.StringVar(&cfg.ListenAddr, "listen-addr", cfg.ListenAddr, "address of the gRPC API and node sessions (mutual TLS)")
	f.StringVar(&cfg.AdvertiseAddr, "advertise-addr", cfg.AdvertiseAddr, "address other nodes reach this manager at (default: the listen address)")
	f.StringVar(&cfg.RaftAddr, "raft-addr", cfg.RaftAddr, "address of the Raft transport between managers (mutual TLS)")
	f.StringVar(&cfg.RESTAddr, "rest-addr", cfg.RESTAddr, `address of the JSON gateway (mutual TLS); "" disables it`)
	f.StringVar(&cfg.SocketPath, "socket", cfg.SocketPath, "root-only unix socket of the local CLI")
	f.StringVar(&cfg.ContainerdSocket, "containerd-socket", cfg.ContainerdSocket, "containerd to use; when none answers there, warren runs its own under the data dir")
	f.DurationVar(&cfg.NodeCertTTL, "cert-expiry", 0, "lifetime of node certificates, at least 1m (default 2160h, 90 days); nodes renew them well before")
	f.DurationVar(&cfg.HeartbeatPeriod, "heartbeat-period", cfg.HeartbeatPeriod, "how often nodes heartbeat")
	f.StringVar(&subnet, "subnet", ipam.DefaultSubnet, "overlay subnet of a new cluster, split into one block per node")
	f.IntVar(&blockBits, "node-block-size", ipam.DefaultNodePrefixLength, "prefix length of each node's block of the subnet (24: 253 tasks per node)")
	f.StringVar(&vipPool, "vip-pool", ipam.DefaultVIPPool, "range of a new cluster's service virtual IPs")
	addOverlayFlags(f, &cfg.Overlay)
	f.BoolVar(&cfg.ForceNewCluster, "force-new-cluster", false, "on an existing data dir: make this manager the cluster's only manager, keeping its state (after losing a majority of managers for good); join others again afterwards")
	f.BoolVar(&cfg.ManagerOnly, "manager-only", false, "run no tasks here: the manager's node starts drained (`warren node update --availability active` undoes it)")
	f.Uint64Var(&cfg.SnapshotThreshold, "snapshot-threshold", 0, "Raft log entries between snapshots (default 8192)")
	return cmd
}

// nodeConfigOf is how a manager's host runs once demoted to a worker.
func nodeConfigOf(m manager.Config) node.Config {
	adv := m.AdvertiseAddr
	if h, _, err := net.SplitHostPort(adv); err == nil {
		adv = h // the worker advertises a host; the port was the API's
	}
	return node.Config{DataDir: m.DataDir, AdvertiseAddr: adv, ContainerdSocket: m.ContainerdSocket, Overlay: m.Overlay}
}

// addOverlayFlags are a node's overlay flags, for init and join.
func addOverlayFlags(f *pflag.FlagSet, o *overlay.Options) {
	o.Enabled = true
	f.BoolVar(&o.Enabled, "overlay", true, "run the overlay network (bridge, WireGuard mesh, VIPs, DNS); false runs host-network tasks only")
	f.IntVar(&o.ListenPort, "wireguard-port", wireguard.DefaultPort, "UDP port of the node's WireGuard link")
}
