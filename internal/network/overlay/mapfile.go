package overlay

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"google.golang.org/protobuf/proto"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/internal/fsutil"
)

// The last map applied is kept in DATA_DIR/network/map.pb: a node that
// restarts while no manager answers rebuilds its network from it.

func (c *Controller) mapPath() string { return filepath.Join(c.cfg.DataDir, "network", "map.pb") }

func (c *Controller) loadMap() (*api.NetworkMap, error) {
	b, err := os.ReadFile(c.mapPath())
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	m := &api.NetworkMap{}
	if err := proto.Unmarshal(b, m); err != nil {
		return nil, fmt.Errorf("%s is corrupt (delete it; the next manager session sends a new map): %w", c.mapPath(), err)
	}
	return m, nil
}

func (c *Controller) saveMap(m *api.NetworkMap) error {
	b, err := proto.Marshal(m)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(c.mapPath()), 0o700); err != nil {
		return err
	}
	return fsutil.WriteFileAtomic(c.mapPath(), b, 0o600)
}
