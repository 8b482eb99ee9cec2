package join

import (
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/warren-project/warren/internal/security/ca"
)

// testCreds issues worker credentials from root, as a join would.
func testCreds(t *testing.T, root *ca.CA, nodeID string) *Credentials {
	t.Helper()
	key, err := ca.GenerateKey()
	must(t, err)
	csr, err := ca.NewCSR(key, nodeID)
	must(t, err)
	cert, err := root.IssueFromCSR(csr, nodeID, ca.RoleWorker, testCluster, 0)
	must(t, err)
	keyPEM, err := ca.EncodeKeyPEM(key)
	must(t, err)
	return &Credentials{NodeID: nodeID, ClusterID: testCluster, Role: ca.RoleWorker,
		CertPEM: cert, KeyPEM: keyPEM, CAPEM: root.CertPEM(), ManagerAddrs: []string{"10.0.0.1:2377"}}
}

func TestSaveLoadRoundTrip(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	want := testCreds(t, newCA(t), "node-1")
	must(t, want.Save(dir))
	got, err := Load(dir)
	must(t, err)
	if got.NodeID != want.NodeID || got.ClusterID != want.ClusterID || got.Role != want.Role ||
		!slices.Equal(got.ManagerAddrs, want.ManagerAddrs) || string(got.CertPEM) != string(want.CertPEM) ||
		string(got.KeyPEM) != string(want.KeyPEM) || string(got.CAPEM) != string(want.CAPEM) {
		t.Fatalf("Load = %+v, want %+v", got, want)
	}
	for name, perm := range map[string]os.FileMode{
		IdentityFile: 0o600, filepath.Join(CertsDir, "node.key"): 0o600, filepath.Join(CADir, "ca.crt"): 0o644,
	} {
		fi, err := os.Stat(filepath.Join(dir, name))
		must(t, err)
		if fi.Mode().Perm() != perm {
			t.Errorf("%s has mode %v, want %v", name, fi.Mode().Perm(), perm)
		}
	}
	// Saving again (as after a renewal) replaces the files in place.
	again := testCreds(t, newCA(t), "node-2")
	must(t, again.Save(dir))
	if got, err := Load(dir); err != nil || got.NodeID != "node-2" {
		t.Fatalf("Load after a second Save = %v, %v; want node-2", got, err)
	}
}

func TestLoadRefusesDamagedDirs(t *testing.T) {
	root, other := newCA(t), newCA(t)
	cases := []struct {
		name   string
		damage func(t *testing.T, dir string)
		kind   error
	}{
		{"never joined", func(t *testing.T, dir string) { must(t, os.Remove(filepath.Join(dir, IdentityFile))) }, ErrNotJoined},
		{"garbage identity.json", writeFile(IdentityFile, "{not json"), ErrDamaged},
		{"identity.json without a node ID", writeFile(IdentityFile, `{"cluster_id":"c","role":"worker"}`), ErrDamaged},
		{"no certificate", func(t *testing.T, dir string) { must(t, os.Remove(filepath.Join(dir, CertsDir, "node.crt"))) }, ErrDamaged},
		{"no CA", func(t *testing.T, dir string) { must(t, os.Remove(filepath.Join(dir, CADir, "ca.crt"))) }, ErrDamaged},
		{"key of another certificate", func(t *testing.T, dir string) {
			must(t, os.WriteFile(filepath.Join(dir, CertsDir, "node.key"), testCreds(t, root, "x").KeyPEM, 0o600))
		}, ErrDamaged},
		{"CA of another cluster", func(t *testing.T, dir string) {
			must(t, os.WriteFile(filepath.Join(dir, CADir, "ca.crt"), other.CertPEM(), 0o644))
		}, ErrDamaged},
		{"identity of another node", writeFile(IdentityFile, `{"node_id":"node-9","cluster_id":"cluster-test","role":"worker"}`), ErrDamaged},
		{"expired certificate", func(t *testing.T, dir string) { expiredCreds(t).mustSave(t, dir) }, ErrExpired},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			must(t, testCreds(t, root, "node-1").Save(dir))
			tc.damage(t, dir)
			_, err := Load(dir)
			if !errors.Is(err, tc.kind) {
				t.Fatalf("Load = %v, want %v", err, tc.kind)
			}
			t.Log(err)
			if (tc.kind == ErrNotJoined) != errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("Load = %v: errors.Is(fs.ErrNotExist) should hold exactly when the node never joined", err)
			}
			if tc.kind != ErrNotJoined && !strings.Contains(err.Error(), "move "+dir+" away and join again with a token") {
				t.Fatalf("Load = %q, want it to say to move %s away and join again", err, dir)
			}
		})
	}
}

func writeFile(name, content string) func(*testing.T, string) {
	return func(t *testing.T, dir string) {
		must(t, os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600))
	}
}

func (c *Credentials) mustSave(t *testing.T, dir string) {
	t.Helper()
	must(t, c.Save(dir))
}

// expiredCreds are credentials whose certificate expired an hour ago. The
// ca package never issues one, so this builds a small CA with crypto/x509.
func expiredCreds(t *testing.T) *Credentials {
	t.Helper()
	caKey, err := ca.GenerateKey()
	must(t, err)
	now := time.Now()
	rootTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "old root"},
		NotBefore: now.Add(-48 * time.Hour), NotAfter: now.Add(48 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	rootDER, err := x509.CreateCertificate(rand.Reader, rootTmpl, rootTmpl, &caKey.PublicKey, caKey)
	must(t, err)
	root, err := x509.ParseCertificate(rootDER)
	must(t, err)
	key, err := ca.GenerateKey()
	must(t, err)
	leafTmpl := &x509.Certificate{SerialNumber: big.NewInt(2),
		Subject:   pkix.Name{CommonName: "node-1", OrganizationalUnit: []string{ca.RoleWorker}, Organization: []string{testCluster}},
		NotBefore: now.Add(-2 * time.Hour), NotAfter: now.Add(-time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, root, &key.PublicKey, caKey)
	must(t, err)
	keyPEM, err := ca.EncodeKeyPEM(key)
	must(t, err)
	return &Credentials{NodeID: "node-1", ClusterID: testCluster, Role: ca.RoleWorker, KeyPEM: keyPEM,
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leafDER}),
		CAPEM:   pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: rootDER})}
}
