package ca

import (
	"crypto/x509"
	"testing"
	"time"
)

const testCluster = "cluster-test"

func newTestCA(t *testing.T) *CA {
	t.Helper()
	c, err := Generate("test", 0)
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	return c
}

// issuePair issues a certificate with a locally made key, as a KeyPair.
func issuePair(t *testing.T, c *CA, nodeID, role string, hosts ...string) *KeyPair {
	t.Helper()
	certPEM, keyPEM, err := c.Issue(nodeID, role, testCluster, 0, hosts)
	if err != nil {
		t.Fatalf("Issue(%s, %s): %v", nodeID, role, err)
	}
	kp, err := NewKeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatalf("NewKeyPair: %v", err)
	}
	return kp
}

// expiredPair issues a certificate whose lifetime ended an hour ago, through
// the internal sign so no clock has to be faked.
func expiredPair(t *testing.T, c *CA, nodeID, role string) *KeyPair {
	t.Helper()
	key, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	certPEM, err := c.sign(leafSpec{
		pub: &key.PublicKey, nodeID: nodeID, role: role, clusterID: testCluster,
		notBefore: now.Add(-2 * time.Hour), notAfter: now.Add(-time.Hour),
	})
	if err != nil {
		t.Fatalf("sign: %v", err)
	}
	keyPEM, err := EncodeKeyPEM(key)
	if err != nil {
		t.Fatal(err)
	}
	kp, err := NewKeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatalf("NewKeyPair: %v", err)
	}
	return kp
}

func mustParseCert(t *testing.T, certPEM []byte) *x509.Certificate {
	t.Helper()
	cert, err := ParseCertPEM(certPEM)
	if err != nil {
		t.Fatalf("ParseCertPEM: %v", err)
	}
	return cert
}
