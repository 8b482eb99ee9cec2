// Package backupfile is the format of a Warren cluster backup: what
// `warren cluster backup` writes and `warren cluster restore` reads. It
// only encodes and decodes; making and restoring backups is the manager's.
//
// Format version 1 is a gzip-compressed tar holding these regular files,
// in this order:
//
//	manifest.json  the Manifest: format_version, cluster_id, created_at,
//	               warren_version, state_index, counts, and the sha256
//	               (hex) of each other member
//	state.pb       the whole replicated state: an api.StoreSnapshot in
//	               protobuf binary, exactly what Raft snapshots hold
//	ca.crt         the cluster's root certificate (PEM)
//	ca.key         the root key (PEM): whoever holds a backup holds the
//	               cluster
//	data.key       the key that seals credentials in the state (32 bytes)
//
// The manifest comes first so that a reader learns the version before
// anything else. A reader refuses a file whose manifest is missing or of
// another version, a member that is missing, unknown, or whose checksum
// differs, a truncated stream, a key that does not match its certificate,
// and a state of another cluster or CA than the manifest and certificate
// say. A new layout gets a new format version.
package backupfile

import (
	"errors"
	"fmt"
	"time"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/internal/security/ca"
	"github.com/warren-project/warren/internal/security/seal"
)

// FormatVersion is the version this package writes and the only one it reads.
const FormatVersion = 1

// The members of a version 1 backup, in the order they are written.
const (
	MemberManifest = "manifest.json"
	MemberState    = "state.pb"
	MemberCACert   = "ca.crt"
	MemberCAKey    = "ca.key"
	MemberDataKey  = "data.key"
)

// members after the manifest, with the most bytes each may hold: a limit
// so that a hostile file cannot make a reader allocate without bound.
var members = []struct {
	name string
	max  int64
}{
	{MemberState, 4 << 30},
	{MemberCACert, 64 << 10},
	{MemberCAKey, 64 << 10},
	{MemberDataKey, 64 << 10},
}

const maxManifest = 1 << 20

var (
	// ErrNotBackup: the file is not a Warren backup at all.
	ErrNotBackup = errors.New("not a Warren cluster backup")
	// ErrCorrupt: the file is a backup, but damaged or cut short.
	ErrCorrupt = errors.New("the backup is damaged")
	// ErrUnsupportedVersion: a backup of a format this build cannot read.
	ErrUnsupportedVersion = errors.New("unsupported backup format version")
	// ErrInconsistent: the members are intact but do not belong together
	// (a CA key that does not match the certificate, say).
	ErrInconsistent = errors.New("the backup's contents do not belong together")
)

// Backup is what a backup holds.
type Backup struct {
	// CreatedAt and WarrenVersion describe the backup; Write fills them
	// when they are zero.
	CreatedAt     time.Time
	WarrenVersion string
	// State is the replicated state as of State.Index.
	State *api.StoreSnapshot
	// CACert and CAKey are the root certificate and key, PEM.
	CACert, CAKey []byte
	// DataKey seals credentials in the state.
	DataKey []byte
}

// Manifest describes a backup; it is the archive's first member.
type Manifest struct {
	FormatVersion int       `json:"format_version"`
	ClusterID     string    `json:"cluster_id"`
	CreatedAt     time.Time `json:"created_at"`
	WarrenVersion string    `json:"warren_version"`
	StateIndex    uint64    `json:"state_index"`
	// Counts of the state's objects, for people reading the manifest.
	Nodes    int `json:"nodes"`
	Services int `json:"services"`
	Tasks    int `json:"tasks"`
	// SHA256 is the hex SHA-256 of each member but the manifest.
	SHA256 map[string]string `json:"sha256"`
}

// ClusterOf returns the state's one cluster object, or why there is none.
func ClusterOf(s *api.StoreSnapshot) (*api.Cluster, error) {
	if n := len(s.GetClusters()); n != 1 {
		return nil, fmt.Errorf("%w: the state holds %d cluster objects, want 1", ErrInconsistent, n)
	}
	return s.GetClusters()[0], nil
}

// check makes sure the contents can rebuild a cluster: a state of format 1
// with its cluster, a root key that matches the certificate the state
// names, and a data key of the right size.
func (b *Backup) check() error {
	if b.State == nil {
		return fmt.Errorf("%w: no state", ErrInconsistent)
	}
	if f := b.State.GetFormat(); f != 1 {
		return fmt.Errorf("%w: state format %d, this build reads format 1", ErrUnsupportedVersion, f)
	}
	cluster, err := ClusterOf(b.State)
	if err != nil {
		return err
	}
	if cluster.GetId() == "" {
		return fmt.Errorf("%w: the state's cluster has no ID", ErrInconsistent)
	}
	root, err := ca.FromPEM(b.CACert, b.CAKey)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrInconsistent, err)
	}
	if fp := cluster.GetCaFingerprint(); fp != "" && fp != root.Fingerprint() {
		return fmt.Errorf("%w: the state's CA is %s but ca.crt is %s", ErrInconsistent, fp, root.Fingerprint())
	}
	if len(b.DataKey) != seal.KeySize {
		return fmt.Errorf("%w: the data key is %d bytes, want %d", ErrInconsistent, len(b.DataKey), seal.KeySize)
	}
	return nil
}
