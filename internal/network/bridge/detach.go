package bridge

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
)

// Detach removes a task's veth, namespace file and /etc files. A process
// still in the namespace keeps it, but loses its interface. Anything
// already gone is fine: Detach of an unknown task succeeds.
func (b *Bridge) Detach(taskID string) error {
	if err := checkTaskID(taskID); err != nil {
		return fmt.Errorf("detach task %s: %w", taskID, err)
	}
	defer b.tasks.Lock(taskID)()
	if err := b.detach(taskID); err != nil {
		return fmt.Errorf("detach task %s: %w", taskID, err)
	}
	return nil
}

func (b *Bridge) detach(taskID string) error {
	h, err := b.hostHandle()
	if err != nil {
		return err
	}
	defer h.Close()
	name := vethName(taskID)
	if l, err := h.LinkByName(name); err == nil {
		if err := h.LinkDel(l); err != nil && !isNotFound(err) {
			return fmt.Errorf("remove veth %s: %w", name, err)
		}
	} else if !isNotFound(err) {
		return fmt.Errorf("look up veth %s: %w", name, err)
	}
	path := b.nsPath(taskID)
	if err := removeNetNS(path); err != nil {
		return err
	}
	if err := os.RemoveAll(path + ".d"); err != nil {
		return fmt.Errorf("remove task files: %w", err)
	}
	return nil
}

// Attached returns, sorted, the IDs of the tasks with anything left in Dir
// (a namespace file or a files directory), for the orphan sweep: Detach
// each that should not be there.
func (b *Bridge) Attached() ([]string, error) {
	entries, err := os.ReadDir(b.cfg.Dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list attached tasks: %w", err)
	}
	var ids []string
	for _, e := range entries {
		id := e.Name()
		if e.IsDir() {
			id = strings.TrimSuffix(id, ".d")
		}
		if checkTaskID(id) == nil && !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids, nil
}

// checkTaskID keeps task IDs safe as file names that cannot be confused
// with another task's files directory.
func checkTaskID(id string) error {
	if id == "" || len(id) > 64 {
		return fmt.Errorf("task ID %q must have 1 to 64 characters", id)
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return fmt.Errorf("task ID %q has %q: only letters, digits, '-' and '_' are allowed", id, r)
		}
	}
	return nil
}
