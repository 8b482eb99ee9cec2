package main

import (
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/warren-project/warren/internal/manager"
)

// newClusterInitCmd runs a manager in the foreground: a new cluster on an
// empty data dir, the same cluster resumed on an existing one.
func newClusterInitCmd() *cobra.Command {
	cfg := manager.DefaultConfig()
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Start a cluster (or resume it from its data dir) and run its manager in the foreground",
		Long: `Runs a manager in the foreground, like dockerd. On an empty data dir it creates
a new cluster: its CA, the manager's certificate, and an admin client bundle in
DATA_DIR/admin. On an existing data dir it resumes the same cluster and adopts the
containers already running. The manager also runs tasks, so one machine is a
complete cluster. SIGTERM or Ctrl-C stops the manager; containers keep running.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGTERM, syscall.SIGINT)
			defer stop()
			m, err := manager.New(cfg)
			if err != nil {
				return err
			}
			return m.Run(ctx)
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
	return cmd
}
