package main

import (
	"errors"
	"net"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/warren-project/warren/internal/daemon"
	"github.com/warren-project/warren/internal/manager"
	"github.com/warren-project/warren/internal/node"
	"github.com/warren-project/warren/internal/security/ca"
	"github.com/warren-project/warren/internal/security/token"
)

// newClusterJoinCmd runs a worker in the foreground: it joins with a token
// the first time, and resumes from its data dir afterwards.
func newClusterJoinCmd() *cobra.Command {
	cfg := node.Config{DataDir: "/var/lib/warren", ContainerdSocket: "/run/containerd/containerd.sock"}
	mcfg := manager.DefaultConfig()
	cmd := &cobra.Command{
		Use:   "join --token TOKEN MANAGER_ADDR",
		Short: "Join a cluster as a worker (or, with a manager token, as a manager) and run it in the foreground",
		Long: `Joins the cluster of the manager at MANAGER_ADDR (HOST:2377) with a join token
(print one with "warren cluster join-token worker" on a manager), then runs the
node's agent in the foreground. The node makes its own key; only a certificate
request leaves it. The token pins the cluster's CA: a manager presenting another
CA is refused before the token is sent.

With a manager token ("warren cluster join-token manager") the node joins as a
manager: it receives the cluster's keys, becomes a Raft voter, holds the whole
state, serves the API and runs tasks like the first manager.

Restarted with the same data dir, the node resumes as the same node, with no token.
Promoted ("warren node promote") or demoted, it switches role in place, and a
later start resumes it in its new role; the manager-only flags apply once it
is a manager. SIGTERM or Ctrl-C stops it; containers keep running.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				cfg.ManagerAddr = withDefaultPort(args[0], "2377")
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGTERM, syscall.SIGINT)
			defer stop()
			if mcfg.ManagerOnly && tokenRole(cfg.Token) != ca.RoleManager && cfg.Token != "" {
				return errors.New("--manager-only is for managers: join with the manager token (`warren cluster join-token manager`)")
			}
			mcfg.DataDir, mcfg.JoinAddr, mcfg.JoinToken = cfg.DataDir, cfg.ManagerAddr, cfg.Token
			mcfg.AdvertiseAddr, mcfg.ContainerdSocket, mcfg.Overlay = cfg.AdvertiseAddr, cfg.ContainerdSocket, cfg.Overlay
			return daemon.Run(ctx, daemon.Config{Manager: mcfg, Node: cfg, FirstRole: tokenRole(cfg.Token)})
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Token, "token", "", "join token (needed the first time only)")
	f.StringVar(&cfg.DataDir, "data-dir", cfg.DataDir, "directory of the node's credentials, state and logs")
	f.StringVar(&cfg.AdvertiseAddr, "advertise-addr", "", "address other nodes reach this node at")
	f.StringVar(&cfg.ContainerdSocket, "containerd-socket", cfg.ContainerdSocket, "containerd to use; when none answers there, warren runs its own under the data dir")
	addOverlayFlags(f, &cfg.Overlay)
	f.StringVar(&mcfg.ListenAddr, "listen-addr", mcfg.ListenAddr, "manager only: address of the gRPC API and node sessions")
	f.StringVar(&mcfg.RaftAddr, "raft-addr", mcfg.RaftAddr, "manager only: address of the Raft transport between managers")
	f.StringVar(&mcfg.RESTAddr, "rest-addr", mcfg.RESTAddr, `manager only: address of the JSON gateway; "" disables it`)
	f.StringVar(&mcfg.SocketPath, "socket", mcfg.SocketPath, "manager only: root-only unix socket of the local CLI")
	f.BoolVar(&mcfg.ManagerOnly, "manager-only", false, "manager only: run no tasks here; the node joins drained (`warren node update --availability active` undoes it)")
	f.DurationVar(&mcfg.HeartbeatPeriod, "heartbeat-period", mcfg.HeartbeatPeriod, "manager only: how often nodes heartbeat while this manager leads")
	return cmd
}

// tokenRole is the role a node joining with tok starts in: a manager
// token's makes a manager. A data dir that holds an identity keeps its own.
func tokenRole(tok string) string {
	if t, err := token.Parse(tok); err == nil && t.Role == token.RoleManager {
		return ca.RoleManager
	}
	return ca.RoleWorker
}

// withDefaultPort adds port to an address that has none.
func withDefaultPort(addr, port string) string {
	if _, _, err := net.SplitHostPort(addr); err == nil {
		return addr
	}
	return net.JoinHostPort(addr, port)
}
