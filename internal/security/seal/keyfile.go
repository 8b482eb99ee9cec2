package seal

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/warren-project/warren/internal/fsutil"
)

// ErrDamagedKey says the data key file exists but cannot be used. It is
// never replaced by a new key: every value sealed with the old one would be
// lost without a word.
var ErrDamagedKey = errors.New("data key file is damaged")

// LoadOrCreate returns a Sealer with the data key in path, creating the key
// (KeySize random bytes, mode 0600, its directory 0700) when the file does
// not exist. The file appears whole or not at all; when two processes race
// to create it, both end up with the one that won.
//
// A file of the wrong size is ErrDamagedKey, and a file others may read is
// refused: restore the key from a backup or fix its mode, rather than let a
// new key orphan every sealed value.
func LoadOrCreate(path string) (*Sealer, error) {
	key, err := readKey(path)
	if errors.Is(err, fs.ErrNotExist) {
		key, err = createKey(path)
	}
	if err != nil {
		return nil, err
	}
	return New(key)
}

func readKey(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		return nil, fmt.Errorf("seal: open data key: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("seal: data key %s: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("seal: data key %s is not a regular file: %w", path, ErrDamagedKey)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("seal: data key %s has mode %04o: others may read it; make it 0600 (chmod 600 %s), and consider the key exposed", path, perm, path)
	}
	// One byte more than a key, to tell a file that is too long.
	key, err := io.ReadAll(io.LimitReader(f, KeySize+1))
	if err != nil {
		return nil, fmt.Errorf("seal: read data key %s: %w", path, err)
	}
	if len(key) != KeySize {
		return nil, fmt.Errorf("seal: data key %s holds %d bytes, want %d: restore it from a backup (values sealed with it cannot be opened without it): %w", path, fi.Size(), KeySize, ErrDamagedKey)
	}
	return key, nil
}

func createKey(path string) ([]byte, error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("seal: create %s: %w", dir, err)
	}
	key := make([]byte, KeySize)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("seal: random data key: %w", err)
	}
	err := fsutil.WriteFileNew(path, key, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return readKey(path) // another process made it first: use theirs
	}
	if err != nil {
		return nil, fmt.Errorf("seal: write data key %s: %w", path, err)
	}
	return key, nil
}
