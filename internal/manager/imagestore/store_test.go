package imagestore

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"
)

func newStore(t *testing.T) (*Store, string) {
	t.Helper()
	dir := t.TempDir()
	s, err := New(dir)
	if err != nil {
		t.Fatal(err)
	}
	return s, dir
}

func sum(data string) string {
	h := sha256.Sum256([]byte(data))
	return "sha256:" + hex.EncodeToString(h[:])
}

func readAll(t *testing.T, s *Store, digest string) (string, error) {
	t.Helper()
	rc, _, err := s.Open(digest)
	if err != nil {
		return "", err
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	return string(b), err
}

func TestPutOpenRoundTrip(t *testing.T) {
	s, _ := newStore(t)
	data := strings.Repeat("layer bytes ", 100_000)
	digest, size, err := s.Put(strings.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if digest != sum(data) || size != int64(len(data)) {
		t.Fatalf("Put = %s, %d; want %s, %d", digest, size, sum(data), len(data))
	}
	rc, n, err := s.Open(digest)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if n != size {
		t.Fatalf("Open size = %d, want %d", n, size)
	}
	got, err := io.ReadAll(rc)
	if err != nil || string(got) != data {
		t.Fatalf("read back %d bytes, err %v", len(got), err)
	}
}

func TestPutDedupes(t *testing.T) {
	s, dir := newStore(t)
	d1, _, err := s.Put(strings.NewReader("same"))
	if err != nil {
		t.Fatal(err)
	}
	d2, _, err := s.Put(strings.NewReader("same"))
	if err != nil {
		t.Fatal(err)
	}
	if d1 != d2 {
		t.Fatalf("digests differ: %s, %s", d1, d2)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "sha256", "*"))
	tmp, _ := filepath.Glob(filepath.Join(dir, "tmp", "*"))
	if len(files) != 1 || len(tmp) != 0 {
		t.Fatalf("files = %v, temporary = %v; want one archive and no temporary file", files, tmp)
	}
	if ds, err := s.Digests(); err != nil || len(ds) != 1 || ds[0] != d1 {
		t.Fatalf("Digests = %v, %v", ds, err)
	}
}

func TestCorruptFileIsDetected(t *testing.T) {
	cases := []struct {
		name   string
		damage func(path string) error
	}{
		{"bytes changed", func(p string) error { return os.WriteFile(p, []byte("tampered!"), 0o600) }},
		{"truncated", func(p string) error { return os.Truncate(p, 3) }},
		{"emptied", func(p string) error { return os.Truncate(p, 0) }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, dir := newStore(t)
			digest, _, err := s.Put(strings.NewReader("original archive"))
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, "sha256", strings.TrimPrefix(digest, "sha256:")+".tar")
			if err := c.damage(path); err != nil {
				t.Fatal(err)
			}
			if _, err := readAll(t, s, digest); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("reading a damaged archive: err = %v, want ErrCorrupt", err)
			}
			if err := s.Verify(digest); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Verify = %v, want ErrCorrupt", err)
			}
			// Importing the same bytes again heals the file.
			if _, _, err := s.Put(strings.NewReader("original archive")); err != nil {
				t.Fatal(err)
			}
			if err := s.Verify(digest); err != nil {
				t.Fatalf("Verify after a new Put = %v", err)
			}
		})
	}
}

func TestFailedPutLeavesNothing(t *testing.T) {
	s, dir := newStore(t)
	r := io.MultiReader(strings.NewReader("half an archive"), iotest.ErrReader(errors.New("client went away")))
	if _, _, err := s.Put(r); err == nil || !strings.Contains(err.Error(), "client went away") {
		t.Fatalf("Put = %v, want the reader's error", err)
	}
	for _, sub := range []string{"sha256", "tmp"} {
		if files, _ := filepath.Glob(filepath.Join(dir, sub, "*")); len(files) != 0 {
			t.Fatalf("%s holds %v after a failed Put", sub, files)
		}
	}
}

func TestNewRemovesStaleTemporaryFiles(t *testing.T) {
	dir := t.TempDir()
	if _, err := New(dir); err != nil {
		t.Fatal(err)
	}
	stale := filepath.Join(dir, "tmp", "put-123")
	if err := os.WriteFile(stale, []byte("partial"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := New(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("stale temporary file still there (%v)", err)
	}
}

func TestDigestValidation(t *testing.T) {
	s, _ := newStore(t)
	good := sum("x")
	cases := []struct {
		digest string
		want   error
	}{
		{good, ErrNotFound},
		{"sha256:../../etc/passwd", ErrInvalidDigest},
		{"md5:" + strings.Repeat("a", 64), ErrInvalidDigest},
		{"sha256:" + strings.Repeat("A", 64), ErrInvalidDigest},
		{"sha256:" + strings.Repeat("g", 64), ErrInvalidDigest},
		{"", ErrInvalidDigest},
	}
	for _, c := range cases {
		t.Run(c.digest, func(t *testing.T) {
			if _, _, err := s.Open(c.digest); !errors.Is(err, c.want) {
				t.Fatalf("Open = %v, want %v", err, c.want)
			}
		})
	}
	if err := s.Remove(good); err != nil {
		t.Fatalf("Remove of an absent archive = %v", err)
	}
	d, _, _ := s.Put(bytes.NewReader([]byte("x")))
	if err := s.Remove(d); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Open(d); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Open after Remove = %v", err)
	}
}
