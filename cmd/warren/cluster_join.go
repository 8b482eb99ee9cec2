package main

import (
	"net"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/warren-project/warren/internal/node"
)

// newClusterJoinCmd runs a worker in the foreground: it joins with a token
// the first time, and resumes from its data dir afterwards.
func newClusterJoinCmd() *cobra.Command {
	cfg := node.Config{DataDir: "/var/lib/warren", ContainerdSocket: "/run/containerd/containerd.sock"}
	cmd := &cobra.Command{
		Use:   "join --token TOKEN MANAGER_ADDR",
		Short: "Join a cluster as a worker and run its agent in the foreground",
		Long: `Joins the cluster of the manager at MANAGER_ADDR (HOST:2377) with a join token
(print one with "warren cluster join-token worker" on a manager), then runs the
node's agent in the foreground. The node makes its own key; only a certificate
request leaves it. The token pins the cluster's CA: a manager presenting another
CA is refused before the token is sent.

Restarted with the same data dir, the node resumes as the same node, with no token.
SIGTERM or Ctrl-C stops the agent; containers keep running.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				cfg.ManagerAddr = withDefaultPort(args[0], "2377")
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGTERM, syscall.SIGINT)
			defer stop()
			n, err := node.New(cfg)
			if err != nil {
				return err
			}
			return n.Run(ctx)
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Token, "token", "", "join token (needed the first time only)")
	f.StringVar(&cfg.DataDir, "data-dir", cfg.DataDir, "directory of the node's credentials, state and logs")
	f.StringVar(&cfg.AdvertiseAddr, "advertise-addr", "", "address other nodes reach this node at")
	f.StringVar(&cfg.ContainerdSocket, "containerd-socket", cfg.ContainerdSocket, "containerd to use; when none answers there, warren runs its own under the data dir")
	addOverlayFlags(f, &cfg.Overlay)
	return cmd
}

// withDefaultPort adds port to an address that has none.
func withDefaultPort(addr, port string) string {
	if _, _, err := net.SplitHostPort(addr); err == nil {
		return addr
	}
	return net.JoinHostPort(addr, port)
}
