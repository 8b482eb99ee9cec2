package manager

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/warren-project/warren/internal/ids"
	"github.com/warren-project/warren/internal/security/ca"
	"github.com/warren-project/warren/internal/security/join"
)

// identity is what a manager remembers about itself across restarts.
type identity = join.ManagerIdentity

// managerCreds are a manager's identity with its CA and certificate.
type managerCreds struct {
	identity
	CA   *ca.CA
	Cert *ca.KeyPair
	// fresh is true when this start created the cluster.
	fresh bool
}

const identityFile = "identity.json"

// loadOrCreateCredentials reads the manager's identity, CA and certificate
// from the data dir, or, on a data dir with none, creates a new cluster's.
// hosts are the names and addresses the certificate must be valid for.
func loadOrCreateCredentials(dataDir, clusterName string, hosts []string) (*managerCreds, error) {
	path := filepath.Join(dataDir, identityFile)
	raw, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return createCredentials(dataDir, clusterName, hosts)
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	var id identity
	if err := json.Unmarshal(raw, &id); err != nil || id.NodeID == "" || id.ClusterID == "" {
		return nil, fmt.Errorf("%s is damaged (%v): restore it from a backup, or move the data dir away to start a new cluster", path, err)
	}
	root, err := ca.Load(filepath.Join(dataDir, "ca"))
	if err != nil {
		return nil, err
	}
	creds := &managerCreds{identity: id, CA: root}
	creds.Cert, err = ca.LoadKeyPair(filepath.Join(dataDir, "certs"), "node")
	if err != nil {
		return nil, err
	}
	// Hosts may have changed (a new advertise address), or the certificate
	// is past the point of renewal: reissue. The CA is local, so it is cheap.
	if !covers(creds.Cert, hosts) || time.Now().After(ca.RenewAt(creds.Cert.Leaf().NotBefore, creds.Cert.NotAfter())) {
		if err := issueNodeCert(dataDir, creds, hosts); err != nil {
			return nil, err
		}
	}
	return creds, nil
}

func createCredentials(dataDir, clusterName string, hosts []string) (*managerCreds, error) {
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data dir %s: %w", dataDir, err)
	}
	root, err := ca.Generate(clusterName, ca.DefaultRootValidity)
	if err != nil {
		return nil, err
	}
	creds := &managerCreds{
		identity: identity{NodeID: ids.New(), ClusterID: ids.New(), Role: ca.RoleManager, Founder: true},
		CA:       root,
		fresh:    true,
	}
	if err := saveCredentials(dataDir, creds, hosts); err != nil {
		return nil, err
	}
	return creds, nil
}

// saveCredentials writes a new manager's CA (with its key), certificate
// for hosts and admin bundle into dataDir, and its identity last: a start
// that failed before it is retried from scratch rather than resumed half
// made.
func saveCredentials(dataDir string, creds *managerCreds, hosts []string) error {
	if err := creds.CA.Save(filepath.Join(dataDir, join.CADir)); err != nil {
		return err
	}
	if err := issueNodeCert(dataDir, creds, hosts); err != nil {
		return err
	}
	if err := writeAdminBundle(dataDir, creds); err != nil {
		return err
	}
	return creds.identity.Save(dataDir)
}

func issueNodeCert(dataDir string, c *managerCreds, hosts []string) error {
	certPEM, keyPEM, err := c.CA.Issue(c.NodeID, ca.RoleManager, c.ClusterID, ca.DefaultCertTTL, hosts)
	if err != nil {
		return fmt.Errorf("issue the manager certificate: %w", err)
	}
	// Managers serve their certificate followed by the CA's, so a joining
	// node can check the CA against the hash pinned in its token.
	certPEM = append(certPEM, c.CA.CertPEM()...)
	if err := ca.SaveKeyPair(filepath.Join(dataDir, "certs"), "node", certPEM, keyPEM); err != nil {
		return err
	}
	if c.Cert == nil {
		if c.Cert, err = ca.NewKeyPair(certPEM, keyPEM); err != nil {
			return err
		}
	} else if err := c.Cert.Replace(certPEM, keyPEM); err != nil {
		return err
	}
	return nil
}

// writeAdminBundle writes a client certificate for the CLI on other hosts:
// copy DATA_DIR/admin to ~/.warren/tls there (or point WARREN_TLS_DIR at it).
func writeAdminBundle(dataDir string, c *managerCreds) error {
	dir := filepath.Join(dataDir, "admin")
	certPEM, keyPEM, err := c.CA.Issue(ca.NewAdminID(), ca.RoleAdmin, c.ClusterID, ca.DefaultCertTTL, nil)
	if err != nil {
		return fmt.Errorf("issue the admin certificate: %w", err)
	}
	if err := ca.SaveKeyPair(dir, "client", certPEM, keyPEM); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "ca.crt"), c.CA.CertPEM(), 0o644)
}

func covers(kp *ca.KeyPair, hosts []string) bool {
	leaf := kp.Leaf()
	if leaf == nil {
		return false
	}
	for _, h := range hosts {
		if leaf.VerifyHostname(h) != nil {
			return false
		}
	}
	return true
}
