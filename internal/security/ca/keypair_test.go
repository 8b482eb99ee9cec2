package ca

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSaveLoadKeyPair(t *testing.T) {
	c := newTestCA(t)
	certPEM, keyPEM, err := c.Issue("w1", RoleWorker, testCluster, 0, nil)
	must(t, err)
	dir := filepath.Join(t.TempDir(), "certs")
	must(t, SaveKeyPair(dir, "node", certPEM, keyPEM))

	for name, want := range map[string]os.FileMode{"node.key": 0o600, "node.crt": 0o644} {
		st, err := os.Stat(filepath.Join(dir, name))
		must(t, err)
		if st.Mode().Perm() != want {
			t.Errorf("%s mode = %v, want %v", name, st.Mode().Perm(), want)
		}
	}
	kp, err := LoadKeyPair(dir, "node")
	must(t, err)
	if id, _ := IdentityFromCert(kp.Leaf()); id.NodeID != "w1" {
		t.Errorf("loaded identity %+v", id)
	}
	if kp.NotAfter().IsZero() || !kp.NotAfter().Equal(kp.Leaf().NotAfter) {
		t.Errorf("NotAfter = %v", kp.NotAfter())
	}

	// Renewal overwrites in place.
	cert2, key2, err := c.Issue("w1", RoleWorker, testCluster, 0, nil)
	must(t, err)
	must(t, SaveKeyPair(dir, "node", cert2, key2))
	kp2, err := LoadKeyPair(dir, "node")
	must(t, err)
	if kp2.Leaf().SerialNumber.Cmp(kp.Leaf().SerialNumber) == 0 {
		t.Error("SaveKeyPair did not replace the old pair")
	}
}

func TestKeyPairErrors(t *testing.T) {
	c := newTestCA(t)
	certA, keyA, err := c.Issue("a", RoleWorker, testCluster, 0, nil)
	must(t, err)
	_, keyB, err := c.Issue("b", RoleWorker, testCluster, 0, nil)
	must(t, err)

	t.Run("save refuses a mismatched pair", func(t *testing.T) {
		dir := t.TempDir()
		if err := SaveKeyPair(dir, "node", certA, keyB); err == nil {
			t.Fatal("SaveKeyPair accepted a key that does not match")
		}
		if entries, _ := os.ReadDir(dir); len(entries) != 0 {
			t.Errorf("files written despite the error: %v", entries)
		}
	})
	t.Run("load missing", func(t *testing.T) {
		_, err := LoadKeyPair(t.TempDir(), "node")
		if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "node.crt") {
			t.Errorf("err = %v, want not-exist naming node.crt", err)
		}
	})
	t.Run("load mismatched", func(t *testing.T) {
		dir := t.TempDir()
		must(t, SaveKeyPair(dir, "node", certA, keyA))
		write(t, dir, "node.key", string(keyB))
		_, err := LoadKeyPair(dir, "node")
		if err == nil || !strings.Contains(err.Error(), "node.key") || !strings.Contains(err.Error(), "join the cluster again") {
			t.Errorf("err = %v, want one naming node.key and the remedy", err)
		}
	})
	t.Run("zero KeyPair", func(t *testing.T) {
		var kp KeyPair
		if kp.Certificate() != nil || kp.Leaf() != nil || !kp.NotAfter().IsZero() {
			t.Error("zero KeyPair is not empty")
		}
	})
}
