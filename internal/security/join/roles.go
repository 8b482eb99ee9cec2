package join

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/warren-project/warren/api"
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
	if err := writeFileAtomic(filepath.Join(dataDir, DataKeyFile), sec.GetDataKey(), 0o600); err != nil {
		return fmt.Errorf("write the data key: %w", err)
	}
	raw, err := json.MarshalIndent(struct {
		NodeID    string   `json:"node_id"`
		ClusterID string   `json:"cluster_id"`
		Role      string   `json:"role"`
		JoinAddrs []string `json:"join_addrs,omitempty"`
	}{c.NodeID, c.ClusterID, ca.RoleManager, c.ManagerAddrs}, "", "  ")
	if err != nil {
		return fmt.Errorf("encode %s: %w", IdentityFile, err)
	}
	return writeFileAtomic(filepath.Join(dataDir, IdentityFile), append(raw, '\n'), 0o600)
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
	key, err := ca.GenerateKey()
	if err != nil {
		return err
	}
	csr, err := ca.NewCSR(key, cur.NodeID)
	if err != nil {
		return err
	}
	keyPEM, err := ca.EncodeKeyPEM(key)
	if err != nil {
		return err
	}
	resp, err := client.RenewCertificate(ctx, &api.RenewCertificateRequest{Csr: csr})
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
