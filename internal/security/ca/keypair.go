package ca

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/warren-project/warren/internal/fsutil"
)

// KeyPair is a node's current certificate and key. TLS configs read it at
// every handshake, so Replace takes effect on the next connection with no
// restart; connections already open keep the old one until they end.
type KeyPair struct {
	cur atomic.Pointer[tls.Certificate]
}

// NewKeyPair parses a PEM certificate (optionally followed by its chain) and
// the matching PEM key.
func NewKeyPair(certPEM, keyPEM []byte) (*KeyPair, error) {
	kp := &KeyPair{}
	if err := kp.Replace(certPEM, keyPEM); err != nil {
		return nil, err
	}
	return kp, nil
}

// Replace swaps in a new certificate and key. On error the old pair stays.
func (kp *KeyPair) Replace(certPEM, keyPEM []byte) error {
	c, err := parsePair(certPEM, keyPEM)
	if err != nil {
		return err
	}
	kp.cur.Store(c)
	return nil
}

// Certificate returns the current certificate, for TLS configs.
func (kp *KeyPair) Certificate() *tls.Certificate { return kp.cur.Load() }

// Leaf returns the current parsed certificate (nil for a zero KeyPair).
func (kp *KeyPair) Leaf() *x509.Certificate {
	if c := kp.cur.Load(); c != nil {
		return c.Leaf
	}
	return nil
}

// NotAfter is when the current certificate expires (zero if there is none).
func (kp *KeyPair) NotAfter() time.Time {
	if l := kp.Leaf(); l != nil {
		return l.NotAfter
	}
	return time.Time{}
}

func parsePair(certPEM, keyPEM []byte) (*tls.Certificate, error) {
	c, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("ca: certificate and key: %w", err)
	}
	if c.Leaf == nil { // set by Go ≥ 1.23; parse ourselves if not
		if c.Leaf, err = x509.ParseCertificate(c.Certificate[0]); err != nil {
			return nil, fmt.Errorf("ca: parse certificate: %w", err)
		}
	}
	return &c, nil
}

// SaveKeyPair writes name.crt (0644) and name.key (0600) into dir, each
// atomically, after checking they belong together. The two renames are not
// one atomic step; a crash between them leaves a pair LoadKeyPair rejects
// as mismatched, which a node repairs by renewing, never a silent mix.
func SaveKeyPair(dir, name string, certPEM, keyPEM []byte) error {
	if _, err := parsePair(certPEM, keyPEM); err != nil {
		return err
	}
	if err := ensureDir(dir); err != nil {
		return err
	}
	keyPath, certPath := filepath.Join(dir, name+".key"), filepath.Join(dir, name+".crt")
	if err := fsutil.WriteFileAtomic(keyPath, keyPEM, 0o600); err != nil {
		return fmt.Errorf("ca: %w", err)
	}
	if err := fsutil.WriteFileAtomic(certPath, certPEM, 0o644); err != nil {
		return fmt.Errorf("ca: %w", err)
	}
	return nil
}

// LoadKeyPair reads name.crt and name.key from dir.
func LoadKeyPair(dir, name string) (*KeyPair, error) {
	certPath, keyPath := filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	certPEM, err := readFile(certPath, "the node has no certificate; join the cluster again")
	if err != nil {
		return nil, err
	}
	keyPEM, err := readFile(keyPath, "the node has no key; join the cluster again")
	if err != nil {
		return nil, err
	}
	kp, err := NewKeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("ca: %s and %s: %w; join the cluster again to get a new certificate", certPath, keyPath, err)
	}
	return kp, nil
}
