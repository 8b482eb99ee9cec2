package node

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"slices"

	"github.com/warren-project/warren/internal/fsutil"
)

// ManagersFile, in the data dir, holds the managers the node knows, so a
// node restarted while its first manager is down can reach another.
const ManagersFile = "managers.json"

// managersJSON is ManagersFile's content.
type managersJSON struct {
	Managers []string `json:"managers"`
}

// loadManagers reads the managers saved in path. The file is a cache of
// what managers said: a missing one is normal, and an unreadable or corrupt
// one is reported and ignored, since the node still has its configured and
// joined addresses to start from.
func loadManagers(path string, log *slog.Logger) []string {
	raw, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		log.Warn("ignoring the saved manager list", "file", path, "err", err)
		return nil
	}
	var m managersJSON
	if err := json.Unmarshal(raw, &m); err != nil {
		log.Warn("ignoring a corrupt saved manager list; it is rewritten at the next session", "file", path, "err", err)
		return nil
	}
	return mergeAddrs(m.Managers)
}

// saveManagers replaces path with addrs atomically: a crash leaves the old
// list or the new one, never half of one.
func saveManagers(path string, addrs []string) error {
	raw, err := json.MarshalIndent(managersJSON{Managers: addrs}, "", "  ")
	if err != nil {
		return fmt.Errorf("encode %s: %w", path, err)
	}
	if err := fsutil.WriteFileAtomic(path, append(raw, '\n'), 0o600); err != nil {
		return fmt.Errorf("save managers: %w", err)
	}
	return nil
}

// mergeAddrs concatenates lists, keeping each address's first place and
// dropping empty ones.
func mergeAddrs(lists ...[]string) []string {
	var out []string
	for _, l := range lists {
		for _, a := range l {
			if a != "" && !slices.Contains(out, a) {
				out = append(out, a)
			}
		}
	}
	return out
}

// learnAddrs is known updated with the managers a leader named: the first
// address stays first (the one configured or joined through, kept even when
// the leader names managers by other addresses), the others that are still
// managers keep their places, new ones go last, and the ones the leader no
// longer names go: the leader's list is the cluster's membership.
func learnAddrs(known, named []string) []string {
	named = mergeAddrs(named)
	if len(known) == 0 {
		return named
	}
	out := []string{known[0]}
	for _, a := range known[1:] {
		if slices.Contains(named, a) {
			out = append(out, a)
		}
	}
	return mergeAddrs(out, named)
}
