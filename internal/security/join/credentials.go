package join

import (
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/internal/fsutil"
	"github.com/warren-project/warren/internal/security/ca"
)

// Files of a node's data dir. The manager keeps the same layout, so one
// data dir reads the same whichever role wrote it.
const (
	IdentityFile = "identity.json"
	CertsDir     = "certs" // node.crt, node.key
	CADir        = "ca"    // ca.crt
	KeyPairName  = "node"  // certs/node.crt and certs/node.key
)

// ErrNotJoined: the data dir holds no identity; the node needs a token.
// It also matches fs.ErrNotExist, as callers test a missing identity with it.
var ErrNotJoined error = notJoined{}

type notJoined struct{}

func (notJoined) Error() string        { return "this node has not joined a cluster" }
func (notJoined) Is(target error) bool { return target == fs.ErrNotExist }

var (
	// ErrDamaged: the data dir holds an identity but not a usable one.
	ErrDamaged = errors.New("the node's credentials are damaged")
	// ErrExpired: the certificate ran out while the node was away.
	ErrExpired = errors.New("the node's certificate has expired")
)

// Credentials are what a node holds after joining: who it is, its
// certificate and key, and the CA it trusts.
type Credentials struct {
	NodeID    string
	ClusterID string
	Role      string // ca.RoleWorker or ca.RoleManager
	CertPEM   []byte
	KeyPEM    []byte
	CAPEM     []byte
	// ManagerAddrs are the managers the node learnt of when it joined.
	ManagerAddrs []string
	// ManagerSecrets are the root and data keys a manager receives; Save
	// does not write them (a manager keeps its own layout).
	ManagerSecrets *api.ManagerSecrets
}

// identity is identity.json.
type identity struct {
	NodeID       string   `json:"node_id"`
	ClusterID    string   `json:"cluster_id"`
	Role         string   `json:"role"`
	ManagerAddrs []string `json:"manager_addrs,omitempty"`
}

// KeyPair returns the certificate and key, ready for TLS configs.
func (c *Credentials) KeyPair() (*ca.KeyPair, error) { return ca.NewKeyPair(c.CertPEM, c.KeyPEM) }

// RootCA returns the cluster CA (certificate only).
func (c *Credentials) RootCA() (*ca.CA, error) { return ca.FromCertPEM(c.CAPEM) }

// Save writes the credentials into dataDir, each file atomically, and
// identity.json last: a dir with an identity is complete, and one whose
// save was interrupted reads as not joined, so joining again repairs it.
func (c *Credentials) Save(dataDir string) error {
	root, err := c.RootCA()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return fmt.Errorf("create data dir %s: %w", dataDir, err)
	}
	if err := root.Save(filepath.Join(dataDir, CADir)); err != nil {
		return err
	}
	if err := ca.SaveKeyPair(filepath.Join(dataDir, CertsDir), KeyPairName, c.CertPEM, c.KeyPEM); err != nil {
		return err
	}
	raw, err := json.MarshalIndent(identity{c.NodeID, c.ClusterID, c.Role, c.ManagerAddrs}, "", "  ")
	if err != nil {
		return fmt.Errorf("encode %s: %w", IdentityFile, err)
	}
	return fsutil.WriteFileAtomic(filepath.Join(dataDir, IdentityFile), append(raw, '\n'), 0o600)
}

// Load reads credentials saved by Save, checking they belong together: a
// node restarted with its data dir rejoins with them and no token. A dir
// with no identity gives ErrNotJoined; a damaged or partial one ErrDamaged,
// with what to do.
func Load(dataDir string) (*Credentials, error) {
	path := filepath.Join(dataDir, IdentityFile)
	raw, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s has no %s; join with a token from `warren cluster join-token worker`", ErrNotJoined, dataDir, IdentityFile)
	}
	if err != nil {
		return nil, damaged(dataDir, err)
	}
	var id identity
	if err := json.Unmarshal(raw, &id); err != nil {
		return nil, damaged(dataDir, fmt.Errorf("%s: %v", IdentityFile, err))
	}
	if id.NodeID == "" || id.ClusterID == "" || !ca.ValidRole(id.Role) {
		return nil, damaged(dataDir, fmt.Errorf("%s lacks a node ID, cluster ID or role", IdentityFile))
	}
	c := &Credentials{NodeID: id.NodeID, ClusterID: id.ClusterID, Role: id.Role, ManagerAddrs: id.ManagerAddrs}
	if err := c.readFiles(dataDir); err != nil {
		return nil, damaged(dataDir, err)
	}
	leaf, err := c.check()
	if err != nil {
		return nil, damaged(dataDir, err)
	}
	if time.Now().After(leaf.NotAfter) {
		return nil, fmt.Errorf("%w: %s expired at %s (the node was away longer than its lifetime); move %s away and join again with a token",
			ErrExpired, filepath.Join(dataDir, CertsDir, KeyPairName+".crt"), leaf.NotAfter.Format(time.RFC3339), dataDir)
	}
	return c, nil
}

func (c *Credentials) readFiles(dataDir string) error {
	var err error
	certs := filepath.Join(dataDir, CertsDir)
	if c.CertPEM, err = os.ReadFile(filepath.Join(certs, KeyPairName+".crt")); err != nil {
		return err
	}
	if c.KeyPEM, err = os.ReadFile(filepath.Join(certs, KeyPairName+".key")); err != nil {
		return err
	}
	c.CAPEM, err = os.ReadFile(filepath.Join(dataDir, CADir, ca.CertFile))
	return err
}

// check verifies the files agree: the key is the certificate's, the CA
// signed it, and it names the identity. Expiry is left to the caller.
func (c *Credentials) check() (*x509.Certificate, error) {
	kp, err := c.KeyPair()
	if err != nil {
		return nil, err
	}
	root, err := c.RootCA()
	if err != nil {
		return nil, err
	}
	leaf := kp.Leaf()
	opts := x509.VerifyOptions{Roots: root.Pool(), CurrentTime: leaf.NotBefore, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}
	if _, err := leaf.Verify(opts); err != nil {
		return nil, fmt.Errorf("the node certificate is not signed by the CA beside it: %v", err)
	}
	got, err := ca.IdentityFromCert(leaf)
	if err != nil {
		return nil, err
	}
	if got.NodeID != c.NodeID || got.ClusterID != c.ClusterID || got.Role != c.Role {
		return nil, fmt.Errorf("the node certificate is for %s (%s, cluster %s), but %s says %s (%s, cluster %s)",
			got.NodeID, got.Role, got.ClusterID, IdentityFile, c.NodeID, c.Role, c.ClusterID)
	}
	return leaf, nil
}

func damaged(dataDir string, err error) error {
	return fmt.Errorf("%w in %s: %v; move %s away and join again with a token", ErrDamaged, dataDir, err, dataDir)
}
