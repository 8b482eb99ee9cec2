package ca

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestGenerateSaveLoadRoundTrip(t *testing.T) {
	c := newTestCA(t)
	dir := filepath.Join(t.TempDir(), "ca")
	if err := c.Save(dir); err != nil {
		t.Fatalf("Save: %v", err)
	}
	for _, f := range []struct {
		path string
		perm os.FileMode
	}{{dir, 0o700 | fs.ModeDir}, {filepath.Join(dir, CertFile), 0o644}, {filepath.Join(dir, KeyFile), 0o600}} {
		st, err := os.Stat(f.path)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode() != f.perm {
			t.Errorf("%s mode = %v, want %v", f.path, st.Mode(), f.perm)
		}
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		t.Errorf("dir holds %d entries, want 2 (temp files left behind?)", len(entries))
	}

	loaded, err := Load(dir)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if !loaded.CanSign() {
		t.Error("loaded CA cannot sign")
	}
	if got, want := loaded.Fingerprint(), c.Fingerprint(); got != want {
		t.Errorf("fingerprint after Load = %s, want %s", got, want)
	}
	certOnly, err := LoadCertOnly(dir)
	if err != nil {
		t.Fatalf("LoadCertOnly: %v", err)
	}
	if certOnly.CanSign() || certOnly.Fingerprint() != c.Fingerprint() {
		t.Errorf("LoadCertOnly: CanSign=%v fingerprint=%s", certOnly.CanSign(), certOnly.Fingerprint())
	}
	if _, _, err := certOnly.Issue("n1", RoleWorker, testCluster, 0, nil); !errors.Is(err, ErrNoSigningKey) {
		t.Errorf("Issue from cert-only CA: err = %v, want ErrNoSigningKey", err)
	}
	// A loaded CA must sign certificates the original root verifies.
	kp := issuePair(t, loaded, "n1", RoleWorker)
	if err := kp.Leaf().CheckSignatureFrom(c.Cert()); err != nil {
		t.Errorf("certificate from loaded CA does not verify against original: %v", err)
	}
}

func TestRootCertificate(t *testing.T) {
	c := newTestCA(t)
	root := c.Cert()
	if !root.IsCA || !root.MaxPathLenZero {
		t.Errorf("root IsCA=%v MaxPathLenZero=%v", root.IsCA, root.MaxPathLenZero)
	}
	if life := root.NotAfter.Sub(root.NotBefore); life < DefaultRootValidity {
		t.Errorf("root lifetime %v < DefaultRootValidity", life)
	}
	fp := c.Fingerprint()
	if !strings.HasPrefix(fp, "sha256:") || len(fp) != len("sha256:")+64 {
		t.Errorf("Fingerprint = %q, want sha256:<64 hex>", fp)
	}
	if other := newTestCA(t); other.Fingerprint() == fp {
		t.Error("two CAs share a fingerprint")
	}
	fromPEM, err := FromCertPEM(c.CertPEM())
	if err != nil || fromPEM.Fingerprint() != fp {
		t.Errorf("FromCertPEM: %v, fingerprint %s", err, fromPEM.Fingerprint())
	}
}

func TestSaveRefusesToOverwriteKey(t *testing.T) {
	dir := t.TempDir()
	first, second := newTestCA(t), newTestCA(t)
	if err := first.Save(dir); err != nil {
		t.Fatal(err)
	}
	err := second.Save(dir)
	if !errors.Is(err, fs.ErrExist) {
		t.Fatalf("second Save: err = %v, want fs.ErrExist", err)
	}
	loaded, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if loaded.Fingerprint() != first.Fingerprint() {
		t.Error("refused Save still replaced ca.crt")
	}
}

func TestLoadErrors(t *testing.T) {
	good, other := newTestCA(t), newTestCA(t)
	leafPEM, _, err := good.Issue("n1", RoleWorker, testCluster, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		setup   func(dir string) // mutates a directory holding good's files
		wantIn  []string         // substrings the error must contain
		notFind bool             // error must wrap fs.ErrNotExist
	}{
		{"missing dir", func(dir string) { must(t, os.RemoveAll(dir)) }, []string{CertFile, "not found"}, true},
		{"missing key", func(dir string) { must(t, os.Remove(filepath.Join(dir, KeyFile))) }, []string{KeyFile, "not found", "backup"}, true},
		{"corrupt cert", func(dir string) { write(t, dir, CertFile, "garbage") }, []string{CertFile, "corrupt", "backup"}, false},
		{"corrupt key", func(dir string) {
			write(t, dir, KeyFile, "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
		}, []string{KeyFile, "corrupt"}, false},
		{"key from another CA", func(dir string) {
			must(t, os.Remove(filepath.Join(dir, KeyFile)))
			must(t, other.Save(dir))
			write(t, dir, CertFile, string(good.CertPEM()))
		}, []string{KeyFile, "does not match", CertFile}, false},
		{"leaf in ca.crt", func(dir string) { write(t, dir, CertFile, string(leafPEM)) }, []string{CertFile, "not a CA"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "ca")
			must(t, good.Save(dir))
			tt.setup(dir)
			_, err := Load(dir)
			if err == nil {
				t.Fatal("Load succeeded")
			}
			for _, s := range tt.wantIn {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not mention %q", err, s)
				}
			}
			if got := errors.Is(err, fs.ErrNotExist); got != tt.notFind {
				t.Errorf("errors.Is(err, fs.ErrNotExist) = %v, want %v", got, tt.notFind)
			}
		})
	}
}

func TestGenerateRejectsShortValidity(t *testing.T) {
	if _, err := Generate("x", time.Second); err == nil {
		t.Error("Generate with 1s validity succeeded")
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func write(t *testing.T, dir, name, data string) {
	t.Helper()
	must(t, os.WriteFile(filepath.Join(dir, name), []byte(data), 0o600))
}

func TestFromPEMRoundTrip(t *testing.T) {
	root, err := Generate("c", 0)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, err := root.KeyPEM()
	if err != nil {
		t.Fatal(err)
	}
	c, err := FromPEM(root.CertPEM(), keyPEM)
	if err != nil || !c.CanSign() || c.Fingerprint() != root.Fingerprint() {
		t.Fatalf("FromPEM: %v", err)
	}
	other, _ := Generate("other", 0)
	otherKey, _ := other.KeyPEM()
	if _, err := FromPEM(root.CertPEM(), otherKey); err == nil {
		t.Fatal("a key of another CA was accepted")
	}
}
