package manager

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/internal/fsutil"
	"github.com/warren-project/warren/internal/ids"
	"github.com/warren-project/warren/internal/manager/backupfile"
	"github.com/warren-project/warren/internal/raftnode"
	"github.com/warren-project/warren/internal/security/ca"
	"github.com/warren-project/warren/internal/state"
)

// seedPath is where Restore leaves the state for the manager's first
// start, which hands it to Raft as its first snapshot and deletes it.
func seedPath(dataDir string) string { return filepath.Join(dataDir, "restore", "state.pb") }

// RestoreResult is what Restore made of a backup.
type RestoreResult struct {
	DataDir   string `json:"data_dir"`
	ClusterID string `json:"cluster_id"`
	// NodeID is the restored manager's: a new one.
	NodeID        string `json:"node_id"`
	CAFingerprint string `json:"ca_fingerprint"`
	// The backup's description, from its manifest.
	StateIndex    uint64    `json:"state_index"`
	CreatedAt     time.Time `json:"created_at"`
	WarrenVersion string    `json:"warren_version"`
	Nodes         int       `json:"nodes"`
	Services      int       `json:"services"`
	Tasks         int       `json:"tasks"`
	// OldManagers are the managers the state records: they are gone, and
	// stay in the state as nodes until removed.
	OldManagers []OldManager `json:"old_managers"`
	// ImageRefs name the images imported into the cluster: their archives
	// were on the old managers, not in the backup, and must be imported
	// again.
	ImageRefs []string `json:"image_refs,omitempty"`
}

// OldManager is a manager recorded in a restored state.
type OldManager struct {
	ID       string `json:"id"`
	Hostname string `json:"hostname"`
	APIAddr  string `json:"api_addr"`
}

// Restore prepares dataDir, which must be empty or absent, so that a
// manager started on it (`warren cluster init --data-dir`) runs the
// backed-up cluster as its only manager: the same cluster ID, CA, join
// tokens and state, under a new node ID with its own certificate. It runs
// offline. The backup is read and checked whole before anything is
// written, and a failed restore removes what it wrote.
func Restore(file, dataDir string) (*RestoreResult, error) {
	dir, err := filepath.Abs(dataDir)
	if err != nil {
		return nil, err
	}
	exists, err := checkRestoreDir(dir)
	if err != nil {
		return nil, err
	}
	b, man, err := backupfile.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("cannot restore from %s: %w; nothing was written (use another copy of the backup)", file, err)
	}
	if err := state.NewMemoryStore(nil).Restore(b.State); err != nil {
		return nil, fmt.Errorf("cannot restore from %s: its state cannot be loaded (%w); nothing was written", file, err)
	}
	root, err := ca.FromPEM(b.CACert, b.CAKey) // Read checked they match
	if err != nil {
		return nil, err
	}
	creds := &managerCreds{
		identity: identity{NodeID: ids.New(), ClusterID: man.ClusterID, Role: ca.RoleManager, Founder: true},
		CA:       root,
	}
	if !exists {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("create %s: %w", dir, err)
		}
	}
	if err := writeRestored(dir, b, creds); err != nil {
		undoRestore(dir, !exists)
		return nil, err
	}
	return resultOf(dir, creds, b, man), nil
}

func resultOf(dir string, creds *managerCreds, b *backupfile.Backup, man *backupfile.Manifest) *RestoreResult {
	res := &RestoreResult{
		DataDir: dir, ClusterID: man.ClusterID, NodeID: creds.NodeID, CAFingerprint: creds.CA.Fingerprint(),
		StateIndex: man.StateIndex, CreatedAt: man.CreatedAt, WarrenVersion: man.WarrenVersion,
		Nodes: len(b.State.GetNodes()), Services: len(b.State.GetServices()), Tasks: len(b.State.GetTasks()),
	}
	cluster, _ := backupfile.ClusterOf(b.State)
	for _, a := range cluster.GetImageArchives() {
		res.ImageRefs = append(res.ImageRefs, a.GetRefs()...)
	}
	for _, n := range b.State.GetNodes() {
		if n.IsManager() {
			res.OldManagers = append(res.OldManagers, OldManager{
				ID: n.GetId(), Hostname: n.GetDescription().GetHostname(), APIAddr: n.GetManagerStatus().GetApiAddr(),
			})
		}
	}
	return res
}

// checkRestoreDir refuses a data dir of a manager (its identity would be
// lost) and any dir that is not empty.
func checkRestoreDir(dir string) (exists bool, err error) {
	fi, err := os.Stat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if !fi.IsDir() {
		return true, fmt.Errorf("%s is not a directory: restore into an empty or new directory", dir)
	}
	if _, err := os.Stat(filepath.Join(dir, identityFile)); err == nil {
		return true, fmt.Errorf("%s is the data dir of a manager (it holds %s): restoring there would destroy that manager; "+
			"restore into an empty or new directory, or move %s away first", dir, identityFile, dir)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return true, err
	}
	if len(entries) > 0 {
		names := make([]string, 0, 3)
		for _, e := range entries[:min(3, len(entries))] {
			names = append(names, e.Name())
		}
		if len(entries) > len(names) {
			names = append(names, "...")
		}
		return true, fmt.Errorf("%s is not empty (it holds %s): restore into an empty or new directory", dir, strings.Join(names, ", "))
	}
	return true, nil
}

// writeRestored lays out a manager's data dir as createCredentials and
// joinCluster do, plus the state to seed Raft with. The identity comes
// last: a data dir without one is not a manager's yet.
func writeRestored(dir string, b *backupfile.Backup, creds *managerCreds) error {
	if err := os.MkdirAll(filepath.Dir(dataKeyPath(dir)), 0o700); err != nil {
		return err
	}
	if err := fsutil.WriteFileAtomic(dataKeyPath(dir), b.DataKey, 0o600); err != nil {
		return fmt.Errorf("write the data key: %w", err)
	}
	state, err := proto.Marshal(b.State)
	if err != nil {
		return fmt.Errorf("encode the state: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(seedPath(dir)), 0o700); err != nil {
		return err
	}
	if err := fsutil.WriteFileAtomic(seedPath(dir), state, 0o600); err != nil {
		return err
	}
	// The certificate names no host yet: the manager reissues it for its
	// addresses when it starts (see loadOrCreateCredentials).
	return saveCredentials(dir, creds, nil)
}

// undoRestore removes what a failed restore wrote into dir, which was
// empty before (or absent: then dir goes too).
func undoRestore(dir string, created bool) {
	if created {
		_ = os.RemoveAll(dir)
		return
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		_ = os.RemoveAll(filepath.Join(dir, e.Name()))
	}
}

// loadSeed reads the state Restore left for this manager's first start;
// nil when there is none.
func loadSeed(dataDir, clusterID string) (*raftnode.Seed, error) {
	path := seedPath(dataDir)
	raw, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the restored state: %w", err)
	}
	var snap api.StoreSnapshot
	if err := proto.Unmarshal(raw, &snap); err != nil {
		return nil, fmt.Errorf("the restored state %s is damaged (%v): restore the backup again into an empty directory", path, err)
	}
	if c, err := backupfile.ClusterOf(&snap); err != nil || c.GetId() != clusterID {
		return nil, fmt.Errorf("the restored state %s is not of this manager's cluster %s: restore the backup again into an empty directory", path, clusterID)
	}
	return &raftnode.Seed{Data: raw, Index: snap.GetIndex()}, nil
}

// dropSeed deletes the restored state once Raft holds it. Raft ignores a
// seed when it already has state: restore writes only into an empty
// directory, so that seed is one a start planted before it stopped short
// of deleting it, and Raft's state (as new, or newer) wins.
func (m *Manager) dropSeed(n *raftnode.Node, seed *raftnode.Seed) {
	if seed == nil {
		return
	}
	path := seedPath(m.cfg.DataDir)
	if n.Seeded() {
		m.log.Info("started from a restored backup", "state.index", seed.Index, "cluster.id", m.creds.ClusterID)
	} else {
		m.log.Warn("deleting a restored state left from an earlier start: Raft holds its own state already", "file", path)
	}
	if err := os.RemoveAll(filepath.Dir(path)); err != nil {
		m.log.Warn("could not delete the restored state", "file", path, "err", err)
	}
}
