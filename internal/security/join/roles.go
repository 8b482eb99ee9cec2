package join

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/internal/fsutil"
	"github.com/warren-project/warren/internal/security/ca"
)

// Files only a manager holds, besides CADir/ca.key. (keys/ also holds the
// node's WireGuard key, which every node has.)
const (
	// DataKeyFile seals secrets in the state (see package seal).
	DataKeyFile = "keys/data.key"
	// RaftDir holds the Raft log, stable store and snapshots.
	RaftDir = "raft"
	// ImagesDir holds the image archives managers keep for nodes.
	ImagesDir = "images"
)

// ErrRoleChanged: the cluster gave the node another role than its
// certificate has. The node switches role rather than renew into it.
var ErrRoleChanged = errors.New("the cluster changed this node's role")

// ManagerIdentity is a manager's identity.json. A worker's (see Save) has
// the same node_id, cluster_id and role, so whichever role wrote a data
// dir, its role reads the same (ReadRole).
type ManagerIdentity struct {
	NodeID    string `json:"node_id"`
	ClusterID string `json:"cluster_id"`
	Role      string `json:"role"`
	// Founder is set on the manager that created the cluster: only it may
	// bootstrap Raft. A manager that joined asks to be added instead.
	Founder bool `json:"founder,omitempty"`
	// JoinAddrs are the managers a joined manager may ask to add it.
	JoinAddrs []string `json:"join_addrs,omitempty"`
}

// Save writes the identity into dataDir atomically: the last file a
// manager's data dir gets.
func (id ManagerIdentity) Save(dataDir string) error {
	raw, err := json.MarshalIndent(id, "", "  ")
	if err != nil {
		return fmt.Errorf("encode %s: %w", IdentityFile, err)
	}
	return fsutil.WriteFileAtomic(filepath.Join(dataDir, IdentityFile), append(raw, '\n'), 0o600)
}

// ReadRole is the role the identity in dataDir names (ca.RoleManager or
// ca.RoleWorker); fs.ErrNotExist when the node has not joined yet.
func ReadRole(dataDir string) (string, error) {
	path := filepath.Join(dataDir, IdentityFile)
	raw, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	var id ManagerIdentity
	if err := json.Unmarshal(raw, &id); err != nil || (id.Role != ca.RoleManager && id.Role != ca.RoleWorker) {
		return "", damaged(dataDir, fmt.Errorf("%s names role %q (%v)", IdentityFile, id.Role, err))
	}
	return id.Role, nil
}

// SaveManager writes manager credentials in a manager's layout: the root
// key beside the CA certificate, the certificate followed by the CA's
// (managers serve the chain, so a joining node can check its pin), the
// data key, and identity.json last, naming the managers to ask for Raft
// membership (join_addrs).
func (c *Credentials) SaveManager(dataDir string) error {
	sec := c.ManagerSecrets
	if sec == nil || len(sec.GetCaKey()) == 0 || len(sec.GetDataKey()) == 0 {
		return errors.New("the manager credentials lack the cluster's keys: is the manager that sent them an older version?")
	}
	root, err := ca.FromPEM(c.CAPEM, sec.GetCaKey())
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(filepath.Join(dataDir, DataKeyFile)), 0o700); err != nil {
		return err
	}
	if err := root.Save(filepath.Join(dataDir, CADir)); err != nil {
		return err
	}
	if err := ca.SaveKeyPair(filepath.Join(dataDir, CertsDir), KeyPairName, append(c.CertPEM, c.CAPEM...), c.KeyPEM); err != nil {
		return err
	}
	if err := fsutil.WriteFileAtomic(filepath.Join(dataDir, DataKeyFile), sec.GetDataKey(), 0o600); err != nil {
		return fmt.Errorf("write the data key: %w", err)
	}
	id := ManagerIdentity{NodeID: c.NodeID, ClusterID: c.ClusterID, Role: ca.RoleManager, JoinAddrs: c.ManagerAddrs}
	return id.Save(dataDir)
}

// Promote turns the worker credentials in dataDir into a manager's, once
// the cluster has made the node a manager: it asks for a certificate with
// a new key (RenewCertificate issues the role the state gives the node,
// with the keys every manager holds) and saves them with SaveManager.
// managerAddrs are the managers to ask for Raft membership.
func Promote(ctx context.Context, client api.NodeCAClient, dataDir string, managerAddrs []string) error {
	cur, err := Load(dataDir)
	if err != nil {
		return err
	}
	resp, keyPEM, err := requestCert(ctx, client, cur.NodeID)
	if err != nil {
		return fmt.Errorf("ask for a manager certificate: %w", err)
	}
	kp, err := ca.NewKeyPair(resp.GetCertificate(), keyPEM)
	if err != nil {
		return fmt.Errorf("the manager's certificate is unusable: %w", err)
	}
	id, err := ca.IdentityFromCert(kp.Leaf())
	if err != nil {
		return err
	}
	if id.NodeID != cur.NodeID || id.ClusterID != cur.ClusterID || id.Role != ca.RoleManager {
		return fmt.Errorf("asked for a manager certificate of node %s, got one of %s (%s, cluster %s): the promotion may have been undone", cur.NodeID, id.NodeID, id.Role, id.ClusterID)
	}
	promoted := *cur
	promoted.Role, promoted.CertPEM, promoted.KeyPEM = ca.RoleManager, resp.GetCertificate(), keyPEM
	promoted.ManagerAddrs, promoted.ManagerSecrets = managerAddrs, resp.GetManagerSecrets()
	// A worker holds no manager files, unless an earlier attempt stopped
	// half way: the root key would not be written over.
	if err := RemoveManagerFiles(dataDir); err != nil {
		return err
	}
	return promoted.SaveManager(dataDir)
}

// RemoveManagerFiles deletes what only a manager holds from dataDir: the
// root key, the data key, the Raft state and the image archives. A demoted
// manager calls it once its worker identity is saved (and a worker on
// start, in case a demotion stopped half way).
func RemoveManagerFiles(dataDir string) error {
	var errs []error
	for _, p := range []string{filepath.Join(CADir, ca.KeyFile), DataKeyFile, RaftDir, ImagesDir} {
		if err := os.RemoveAll(filepath.Join(dataDir, p)); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
