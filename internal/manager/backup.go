package manager

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/warren-project/warren/internal/manager/backupfile"
	"github.com/warren-project/warren/internal/version"
)

// Backup writes a backup of the cluster to w (see package backupfile):
// the state as of a consistent read, so every write acknowledged before
// the call is in it, with the CA, its root key and the data key, which
// are not in the replicated state. It serves BackupCluster.
func (m *Manager) Backup(ctx context.Context, w io.Writer) error {
	if err := m.consistentRead(ctx); err != nil {
		return status.Errorf(codes.Unavailable,
			"a backup needs the leader's latest state, and this manager could not reach it (%v): try again once `warren cluster info` shows a leader", err)
	}
	// The snapshot is taken after the read: it holds the leader's state as
	// of the call, or later.
	snap := m.store.Snapshot()
	keyPEM, err := m.creds.CA.KeyPEM()
	if err != nil {
		return fmt.Errorf("encode the root key: %w", err)
	}
	if keyPEM == nil {
		return status.Error(codes.FailedPrecondition, "this manager holds no root key to back up: ask another manager")
	}
	dataKey, err := os.ReadFile(dataKeyPath(m.cfg.DataDir))
	if err != nil {
		return fmt.Errorf("read the data key: %w", err)
	}
	man, err := backupfile.Write(w, &backupfile.Backup{
		CreatedAt: time.Now(), WarrenVersion: version.Version, State: snap,
		CACert: m.creds.CA.CertPEM(), CAKey: keyPEM, DataKey: dataKey,
	})
	if err != nil {
		return fmt.Errorf("write the backup: %w", err)
	}
	m.log.Info("backup written", "state.index", man.StateIndex, "nodes", man.Nodes, "services", man.Services, "tasks", man.Tasks)
	return nil
}
