package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/warren-project/warren/internal/fsutil"
)

// ManagersFileName is the name of the file DefaultManagersFile names.
const ManagersFileName = "managers.json"

// DefaultManagersFile is where the CLI keeps the managers it learnt for
// the certificates in tlsDir (empty: DefaultTLSDir): managers.json beside
// that directory, so ~/.warren/managers.json for ~/.warren/tls. Beside,
// not inside: the TLS directory is a bundle people copy and replace whole.
func DefaultManagersFile(tlsDir string) string {
	if tlsDir == "" {
		tlsDir = DefaultTLSDir()
	}
	return filepath.Join(filepath.Dir(filepath.Clean(tlsDir)), ManagersFileName)
}

// managersJSON is a managers file's content. It is keyed by the TLS
// directory, since directories of several clusters may share a parent, and
// a cluster's managers are worth nothing with another cluster's bundle.
type managersJSON struct {
	// Clusters maps an absolute TLS directory to the API addresses
	// (host:port) of its cluster's managers.
	Clusters map[string][]string `json:"clusters"`
}

// loadManagers returns the managers kept in path for tlsDir. The file is a
// cache of what managers said: a missing one is normal, and an unreadable or
// corrupt one is reported and ignored, since the hosts given still work.
func loadManagers(path, tlsDir string, log *slog.Logger) []string {
	m, err := readManagers(path)
	if err != nil {
		log.Warn("ignoring the saved list of managers; it is rewritten at the next command that reaches one", "file", path, "err", err)
		return nil
	}
	return mergeAddrs(m.Clusters[managersKey(tlsDir)])
}

// readManagers reads path; a missing file is an empty one.
func readManagers(path string) (managersJSON, error) {
	var m managersJSON
	raw, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return m, nil
	}
	if err != nil {
		return m, err
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		return managersJSON{}, fmt.Errorf("corrupt: %w", err)
	}
	return m, nil
}

// saveManagers sets tlsDir's managers in path, keeping other directories'
// (unless the file was corrupt), and replaces the file atomically: a crash
// or a concurrent command leaves one whole version, never half of one.
func saveManagers(path, tlsDir string, addrs []string) error {
	m, err := readManagers(path)
	if err != nil || m.Clusters == nil {
		m = managersJSON{Clusters: map[string][]string{}}
	}
	m.Clusters[managersKey(tlsDir)] = addrs
	raw, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("encode %s: %w", path, err)
	}
	if err := fsutil.WriteFileAtomic(path, append(raw, '\n'), 0o600); err != nil {
		return fmt.Errorf("save the managers: %w", err)
	}
	return nil
}

// managersKey is the TLS directory as the file keys it: absolute, so that
// commands run from different directories agree.
func managersKey(tlsDir string) string {
	if abs, err := filepath.Abs(tlsDir); err == nil {
		return abs
	}
	return filepath.Clean(tlsDir)
}
