package wireguard

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/warren-project/warren/internal/fsutil"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"
)

// GenerateKey returns a new private key.
func GenerateKey() (wgtypes.Key, error) {
	k, err := wgtypes.GeneratePrivateKey()
	if err != nil {
		return wgtypes.Key{}, fmt.Errorf("generate WireGuard private key: %w", err)
	}
	return k, nil
}

// LoadOrCreateKey reads the private key at path (base64, as wg(8) writes
// it), or makes one and stores it there, mode 0600, when there is none.
// A file that does not hold a key is an error, not replaced: replacing it
// would change the node's identity behind the operator's back.
func LoadOrCreateKey(path string) (wgtypes.Key, error) {
	k, err := loadKey(path)
	if !errors.Is(err, fs.ErrNotExist) {
		return k, err
	}
	k, err = GenerateKey()
	if err != nil {
		return wgtypes.Key{}, err
	}
	created, err := createKeyFile(path, k)
	if err != nil {
		return wgtypes.Key{}, err
	}
	if !created {
		// Another process wrote one first: use it, so both agree.
		return loadKey(path)
	}
	return k, nil
}

func loadKey(path string) (wgtypes.Key, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return wgtypes.Key{}, err
	}
	if err != nil {
		return wgtypes.Key{}, fmt.Errorf("read WireGuard key %s: %w", path, err)
	}
	k, err := wgtypes.ParseKey(strings.TrimSpace(string(data)))
	if err == nil && k == (wgtypes.Key{}) {
		err = errors.New("all-zero key")
	}
	if err != nil {
		return wgtypes.Key{}, fmt.Errorf("WireGuard key file %s is corrupt (%w): delete it to get a new key; "+
			"the other nodes learn the new public key when this node next registers", path, err)
	}
	return k, nil
}

// createKeyFile writes k to path unless a file is already there, and
// reports whether it wrote it (see fsutil.WriteFileNew).
func createKeyFile(path string, k wgtypes.Key) (bool, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return false, fmt.Errorf("create directory for WireGuard key %s: %w", path, err)
	}
	err := fsutil.WriteFileNew(path, []byte(k.String()+"\n"), 0o600)
	if errors.Is(err, fs.ErrExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("write WireGuard key %s: %w", path, err)
	}
	return true, nil
}
