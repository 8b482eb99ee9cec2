package ca

import (
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"time"

	"github.com/warren-project/warren/internal/fsutil"
)

const (
	// DefaultRootValidity is long because replacing a root means re-issuing
	// every certificate in the cluster.
	DefaultRootValidity = 20 * 365 * 24 * time.Hour

	CertFile = "ca.crt"
	KeyFile  = "ca.key"

	// clockSkew backdates NotBefore so a node whose clock runs a little
	// behind the manager's still accepts a certificate issued this instant.
	clockSkew = time.Minute
)

// ErrNoSigningKey is returned when a CA loaded with LoadCertOnly is asked to
// sign: only managers hold the root key.
var ErrNoSigningKey = errors.New("ca: no signing key (certificate-only CA)")

// CA is a cluster's root certificate and, on managers, its private key.
type CA struct {
	cert    *x509.Certificate
	certPEM []byte
	key     *ecdsa.PrivateKey // nil for a certificate-only CA
}

// Generate creates a new self-signed root for a cluster. A zero validity
// means DefaultRootValidity.
func Generate(clusterName string, validity time.Duration) (*CA, error) {
	if validity == 0 {
		validity = DefaultRootValidity
	}
	if validity < MinCertTTL {
		return nil, fmt.Errorf("ca: root validity %v is shorter than %v", validity, MinCertTTL)
	}
	if clusterName == "" {
		clusterName = "warren"
	}
	key, err := GenerateKey()
	if err != nil {
		return nil, fmt.Errorf("ca: generate root key: %w", err)
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: clusterName + " root CA", Organization: []string{clusterName}},
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              now.Add(validity),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true, // the root signs leaves only, never another CA
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("ca: self-sign root: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("ca: parse new root: %w", err)
	}
	return &CA{cert: cert, certPEM: encodeCertPEM(der), key: key}, nil
}

// FromCertPEM makes a certificate-only CA from a root certificate a node
// received (after checking its fingerprint against the join token).
func FromCertPEM(certPEM []byte) (*CA, error) {
	cert, err := parseRoot(certPEM, "root certificate")
	if err != nil {
		return nil, err
	}
	return &CA{cert: cert, certPEM: encodeCertPEM(cert.Raw)}, nil
}

// FromPEM makes a signing CA from a root certificate and its key, as a
// manager joining the cluster receives them; the key must match.
func FromPEM(certPEM, keyPEM []byte) (*CA, error) {
	c, err := FromCertPEM(certPEM)
	if err != nil {
		return nil, err
	}
	key, err := ParseKeyPEM(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("ca: root key: %w", err)
	}
	if !key.PublicKey.Equal(c.cert.PublicKey) {
		return nil, errors.New("ca: the root key does not match the root certificate")
	}
	c.key = key
	return c, nil
}

// KeyPEM returns the root key's PEM, for a manager joining the cluster;
// nil for a certificate-only CA.
func (c *CA) KeyPEM() ([]byte, error) {
	if c.key == nil {
		return nil, nil
	}
	return EncodeKeyPEM(c.key)
}

// Cert returns the root certificate. Callers must not modify it.
func (c *CA) Cert() *x509.Certificate { return c.cert }

// CertPEM returns the root certificate, PEM encoded.
func (c *CA) CertPEM() []byte { return append([]byte(nil), c.certPEM...) }

// CanSign reports whether this CA holds the root key.
func (c *CA) CanSign() bool { return c.key != nil }

// Pool returns a pool trusting only this root, for TLS configs.
func (c *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(c.cert)
	return p
}

// Fingerprint is "sha256:" and the hex SHA-256 of the root's DER; join
// tokens pin it so a joining node cannot be handed another CA.
func (c *CA) Fingerprint() string { return FingerprintOf(c.cert) }

// FingerprintOf computes the Fingerprint of any certificate.
func FingerprintOf(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.Raw)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// Save writes ca.key (0600, when the CA has one) and ca.crt (0644) into dir,
// creating dir 0700. It refuses to overwrite an existing ca.key: losing a
// root key orphans every certificate the cluster has issued.
func (c *CA) Save(dir string) error {
	if err := ensureDir(dir); err != nil {
		return err
	}
	if c.key != nil {
		keyPath := filepath.Join(dir, KeyFile)
		if _, err := os.Lstat(keyPath); err == nil {
			return fmt.Errorf("ca: %s already exists; refusing to overwrite a root key (move it away first if you really mean to replace the CA): %w", keyPath, fs.ErrExist)
		}
		keyPEM, err := EncodeKeyPEM(c.key)
		if err != nil {
			return err
		}
		// The key goes first: if it loses a race we have not yet replaced ca.crt.
		if err := fsutil.WriteFileNew(keyPath, keyPEM, 0o600); err != nil {
			if errors.Is(err, fs.ErrExist) {
				return fmt.Errorf("ca: %s already exists; refusing to overwrite a root key: %w", keyPath, fs.ErrExist)
			}
			return fmt.Errorf("ca: write %s: %w", keyPath, err)
		}
	}
	certPath := filepath.Join(dir, CertFile)
	if err := fsutil.WriteFileAtomic(certPath, c.certPEM, 0o644); err != nil {
		return fmt.Errorf("ca: %w", err)
	}
	return nil
}

// Load reads a CA with its key from dir, as saved by Save.
func Load(dir string) (*CA, error) {
	c, err := LoadCertOnly(dir)
	if err != nil {
		return nil, err
	}
	keyPath := filepath.Join(dir, KeyFile)
	data, err := readFile(keyPath, "only managers hold the root key; restore it from a backup, or use LoadCertOnly on a worker")
	if err != nil {
		return nil, err
	}
	key, err := ParseKeyPEM(data)
	if err != nil {
		return nil, fmt.Errorf("ca: %s is corrupt: %v; restore it from a backup", keyPath, err)
	}
	if !key.PublicKey.Equal(c.cert.PublicKey) {
		return nil, fmt.Errorf("ca: %s does not match %s; restore both files from the same backup", keyPath, filepath.Join(dir, CertFile))
	}
	c.key = key
	return c, nil
}

// LoadCertOnly reads just ca.crt from dir: what a node without the root key has.
func LoadCertOnly(dir string) (*CA, error) {
	certPath := filepath.Join(dir, CertFile)
	data, err := readFile(certPath, "run `warren cluster init`, join the cluster, or restore the data directory")
	if err != nil {
		return nil, err
	}
	cert, err := parseRoot(data, certPath)
	if err != nil {
		return nil, err
	}
	return &CA{cert: cert, certPEM: encodeCertPEM(cert.Raw)}, nil
}

func parseRoot(data []byte, what string) (*x509.Certificate, error) {
	cert, err := ParseCertPEM(data)
	if err != nil {
		return nil, fmt.Errorf("ca: %s is corrupt: %v; restore it from a backup or the cluster's managers", what, err)
	}
	if !cert.IsCA || !cert.BasicConstraintsValid {
		return nil, fmt.Errorf("ca: %s is not a CA certificate (subject %q); it may be a node certificate saved in the wrong place", what, cert.Subject.CommonName)
	}
	return cert, nil
}

// randomSerial returns a random positive 128-bit serial (RFC 5280 wants
// positive and unpredictable, at most 20 octets).
func randomSerial() (*big.Int, error) {
	limit := new(big.Int).Lsh(big.NewInt(1), 128)
	for {
		n, err := rand.Int(rand.Reader, limit)
		if err != nil {
			return nil, fmt.Errorf("ca: serial number: %w", err)
		}
		if n.Sign() > 0 {
			return n, nil
		}
	}
}
