// Package daemon runs this host's part of the cluster: a manager or a
// worker, as its data dir says, switching in process when the cluster
// promotes or demotes the node. Containers run on through a switch: the
// agent of the new role adopts them, as after a restart.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"

	"github.com/warren-project/warren/internal/manager"
	"github.com/warren-project/warren/internal/node"
	"github.com/warren-project/warren/internal/security/ca"
	"github.com/warren-project/warren/internal/security/join"
)

// Config is how the node runs in either role. Both configs name the same
// data dir.
type Config struct {
	Manager manager.Config
	Node    node.Config
	// FirstRole is the role to start in when the data dir holds no
	// identity yet: ca.RoleManager to create a cluster or join one with a
	// manager token, ca.RoleWorker to join with a worker token. An
	// identity, once written, decides.
	FirstRole string
	// OnStart, when set, hears each manager or worker as it is made, before
	// it runs (tests wait on its Ready).
	OnStart func(role string, part any)
	Logger  *slog.Logger
}

// Run runs the node until ctx ends, or until it fails.
func Run(ctx context.Context, cfg Config) error {
	if cfg.Manager.DataDir != cfg.Node.DataDir {
		return fmt.Errorf("the manager and node configs name different data dirs (%s, %s)", cfg.Manager.DataDir, cfg.Node.DataDir)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	for {
		role, err := roleOf(cfg.Node.DataDir, cfg.FirstRole)
		if err != nil {
			return err
		}
		err = runAs(ctx, role, cfg)
		if !errors.Is(err, join.ErrRoleChanged) || ctx.Err() != nil {
			return err
		}
		log.Info("switching role", "from", role, "reason", err)
		// A token and a forced new cluster were for the first start only.
		cfg.Node.Token, cfg.Manager.JoinToken, cfg.Manager.ForceNewCluster = "", "", false
	}
}

func runAs(ctx context.Context, role string, cfg Config) error {
	if role == ca.RoleManager {
		m, err := manager.New(cfg.Manager)
		if err != nil {
			return err
		}
		if cfg.OnStart != nil {
			cfg.OnStart(role, m)
		}
		return m.Run(ctx)
	}
	n, err := node.New(cfg.Node)
	if err != nil {
		return err
	}
	if cfg.OnStart != nil {
		cfg.OnStart(role, n)
	}
	return n.Run(ctx)
}

// roleOf is the role the identity in dataDir names, or first when there is
// none yet.
func roleOf(dataDir, first string) (string, error) {
	role, err := join.ReadRole(dataDir)
	if errors.Is(err, fs.ErrNotExist) {
		return first, nil
	}
	return role, err
}
