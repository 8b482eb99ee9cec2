// Package imagestore keeps the image archives a manager was given by
// `warren image import`, so that nodes can fetch them through their
// sessions, nodes that join later included. Archives are content-addressed:
// DIR/sha256/<hex>.tar, named by the SHA-256 of their bytes. A file is
// written under a temporary name and renamed once its hash is known, so a
// crash never leaves a partial file under a final name; a file damaged
// later is detected when it is read back.
package imagestore

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

var (
	// ErrNotFound: no archive with that digest is stored.
	ErrNotFound = errors.New("image archive not found")
	// ErrCorrupt: the stored bytes no longer hash to their name.
	ErrCorrupt = errors.New("image archive is corrupt")
	// ErrInvalidDigest: the digest is not "sha256:" and 64 hex digits.
	ErrInvalidDigest = errors.New("invalid image archive digest")
)

const (
	algo   = "sha256"
	tmpDir = "tmp"
)

// Store is a directory of archives. Safe for concurrent use: files are
// immutable once named, and Put replaces atomically.
type Store struct {
	dir string
}

// New opens (creating it if needed) the store in dir, and removes the
// temporary files of writes a crash interrupted.
func New(dir string) (*Store, error) {
	for _, d := range []string{filepath.Join(dir, algo), filepath.Join(dir, tmpDir)} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("imagestore: create %s: %w", d, err)
		}
	}
	stale, err := filepath.Glob(filepath.Join(dir, tmpDir, "*"))
	if err != nil {
		return nil, fmt.Errorf("imagestore: list temporary files: %w", err)
	}
	for _, f := range stale {
		if err := os.Remove(f); err != nil {
			return nil, fmt.Errorf("imagestore: remove stale %s: %w", f, err)
		}
	}
	return &Store{dir: dir}, nil
}

// Put stores everything r yields and returns its digest ("sha256:<hex>")
// and size. Storing the same bytes again keeps one file; the new copy
// replaces the old one, which also heals a damaged file.
func (s *Store) Put(r io.Reader) (digest string, size int64, err error) {
	f, err := os.CreateTemp(filepath.Join(s.dir, tmpDir), "put-*")
	if err != nil {
		return "", 0, fmt.Errorf("imagestore: create temporary file: %w", err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(tmp)
		}
	}()
	h := sha256.New()
	size, err = io.Copy(io.MultiWriter(f, h), r)
	if err != nil {
		return "", 0, fmt.Errorf("imagestore: receive archive: %w", err)
	}
	// The data must be on disk before the name says it is complete.
	if err = f.Sync(); err != nil {
		return "", 0, fmt.Errorf("imagestore: sync archive: %w", err)
	}
	if err = f.Close(); err != nil {
		return "", 0, fmt.Errorf("imagestore: close archive: %w", err)
	}
	hexSum := hex.EncodeToString(h.Sum(nil))
	if err = os.Rename(tmp, s.path(hexSum)); err != nil {
		return "", 0, fmt.Errorf("imagestore: store archive: %w", err)
	}
	return algo + ":" + hexSum, size, nil
}

// Open returns the archive's bytes and size. The reader checks the hash as
// it goes: instead of io.EOF at the end, a damaged file gives an error
// wrapping ErrCorrupt, so nobody takes a damaged archive for a whole one.
func (s *Store) Open(digest string) (io.ReadCloser, int64, error) {
	hexSum, err := parse(digest)
	if err != nil {
		return nil, 0, err
	}
	f, err := os.Open(s.path(hexSum))
	if errors.Is(err, os.ErrNotExist) {
		return nil, 0, fmt.Errorf("%s: %w (%w)", digest, ErrNotFound, fs.ErrNotExist)
	}
	if err != nil {
		return nil, 0, fmt.Errorf("imagestore: open %s: %w", digest, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("imagestore: stat %s: %w", digest, err)
	}
	return &verifier{f: f, h: sha256.New(), want: hexSum, digest: digest}, fi.Size(), nil
}

// Verify reads the whole archive and says whether it is intact.
func (s *Store) Verify(digest string) error {
	rc, _, err := s.Open(digest)
	if err != nil {
		return err
	}
	defer rc.Close()
	_, err = io.Copy(io.Discard, rc)
	return err
}

// Remove deletes the archive; an absent one is no error.
func (s *Store) Remove(digest string) error {
	hexSum, err := parse(digest)
	if err != nil {
		return err
	}
	if err := os.Remove(s.path(hexSum)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("imagestore: remove %s: %w", digest, err)
	}
	return nil
}

// Digests lists the stored archives, to find files nothing refers to.
func (s *Store) Digests() ([]string, error) {
	names, err := filepath.Glob(filepath.Join(s.dir, algo, "*.tar"))
	if err != nil {
		return nil, fmt.Errorf("imagestore: list archives: %w", err)
	}
	out := make([]string, 0, len(names))
	for _, n := range names {
		d := algo + ":" + strings.TrimSuffix(filepath.Base(n), ".tar")
		if _, err := parse(d); err == nil {
			out = append(out, d)
		}
	}
	return out, nil
}

func (s *Store) path(hexSum string) string {
	return filepath.Join(s.dir, algo, hexSum+".tar")
}

// parse checks digest and returns its hex part; the check also keeps a
// digest from naming a path outside the store.
func parse(digest string) (string, error) {
	a, hexSum, ok := strings.Cut(digest, ":")
	if !ok || a != algo || len(hexSum) != 2*sha256.Size || strings.ToLower(hexSum) != hexSum {
		return "", fmt.Errorf("%q: %w", digest, ErrInvalidDigest)
	}
	if _, err := hex.DecodeString(hexSum); err != nil {
		return "", fmt.Errorf("%q: %w", digest, ErrInvalidDigest)
	}
	return hexSum, nil
}

// verifier hashes what it reads and checks the sum at the end.
type verifier struct {
	f      *os.File
	h      hash.Hash
	want   string
	digest string
}

func (v *verifier) Read(p []byte) (int, error) {
	n, err := v.f.Read(p)
	v.h.Write(p[:n])
	if errors.Is(err, io.EOF) {
		if got := hex.EncodeToString(v.h.Sum(nil)); got != v.want {
			return n, fmt.Errorf("%s: the stored file hashes to sha256:%s (damaged on disk; import the image again): %w", v.digest, got, ErrCorrupt)
		}
	}
	return n, err
}

func (v *verifier) Close() error { return v.f.Close() }
