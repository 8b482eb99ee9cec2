package wireguard

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadOrCreateKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "wg.key")
	k1, err := LoadOrCreateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := info.Mode().Perm(); perm != 0o600 {
		t.Errorf("key file mode %o, want 600", perm)
	}
	k2, err := LoadOrCreateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if k1 != k2 {
		t.Errorf("second load gave another key")
	}
	data, _ := os.ReadFile(path)
	if strings.TrimSpace(string(data)) != k1.String() {
		t.Errorf("file holds %q, want the base64 key %s", data, k1)
	}
	if entries, _ := os.ReadDir(filepath.Dir(path)); len(entries) != 1 {
		t.Errorf("directory holds %d files, want just the key", len(entries))
	}
}

func TestLoadOrCreateKeyCorrupt(t *testing.T) {
	for name, content := range map[string]string{
		"garbage": "not a key\n",
		"short":   "AAAA\n",
		"zero":    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",
		"empty":   "",
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "wg.key")
			if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := LoadOrCreateKey(path)
			if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "delete it") {
				t.Fatalf("err %v, want one naming %s and saying to delete it", err, path)
			}
			if data, _ := os.ReadFile(path); string(data) != content {
				t.Errorf("corrupt key file was overwritten")
			}
		})
	}
}
