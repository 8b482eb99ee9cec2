package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/warren-project/warren/internal/manager"
	"github.com/warren-project/warren/internal/manager/backupfile"
	"github.com/warren-project/warren/internal/spec"
	"github.com/warren-project/warren/pkg/client"
)

// backupSummary is what `cluster backup` reports having written.
type backupSummary struct {
	File          string    `json:"file"`
	Size          int64     `json:"size"`
	FormatVersion int       `json:"format_version"`
	ClusterID     string    `json:"cluster_id"`
	StateIndex    uint64    `json:"state_index"`
	Nodes         int       `json:"nodes"`
	Services      int       `json:"services"`
	Tasks         int       `json:"tasks"`
	CreatedAt     time.Time `json:"created_at"`
	WarrenVersion string    `json:"warren_version"`
}

func newClusterBackupCmd(c *cli) *cobra.Command {
	var force bool
	var f string
	cmd := &cobra.Command{
		Use:   "backup FILE",
		Short: "Write everything needed to rebuild the cluster to FILE: its state, CA and keys",
		Long: `Asks a manager for a backup of the whole cluster and writes it to FILE (mode
0600): the state as of now (the manager first catches up with the leader), the
CA certificate with its root key, and the key that seals credentials. With it,
` + "`warren cluster restore`" + ` rebuilds the cluster after losing every manager.
FILE appears whole or not at all. Whoever holds it controls the cluster: keep
it as safe as a manager's data dir.`,
		Args: args(1, 1, "FILE"),
		RunE: func(cmd *cobra.Command, a []string) error { return c.backup(cmd.Context(), a[0], force, format(f)) },
	}
	cmd.Flags().BoolVar(&force, "force", false, "replace FILE if it exists")
	cmd.Flags().StringVar(&f, "format", "", "json, or a Go template over File, Size, ClusterID, StateIndex, Nodes, Services, Tasks, CreatedAt")
	return cmd
}

func (c *cli) backup(ctx context.Context, file string, force bool, f format) error {
	if err := f.check(); err != nil {
		return err
	}
	file, err := checkBackupTarget(file, force)
	if err != nil {
		return err
	}
	cl, err := c.client()
	if err != nil {
		return err
	}
	tmp, err := receiveBackup(ctx, cl, file)
	if tmp != "" {
		defer os.Remove(tmp) // nothing left once FILE is in place
	}
	if err != nil {
		return err
	}
	// Read back before FILE is placed: a backup that fails to read back
	// would fail on the day it is needed.
	_, man, err := backupfile.ReadFile(tmp)
	if err != nil {
		return fmt.Errorf("the backup the manager sent does not read back (%w); %s was not written: try again", err, file)
	}
	if err := placeBackup(tmp, file, force); err != nil {
		return err
	}
	fi, err := os.Stat(file)
	if err != nil {
		return err
	}
	return c.printBackup(f, backupSummary{
		File: file, Size: fi.Size(), FormatVersion: man.FormatVersion, ClusterID: man.ClusterID, StateIndex: man.StateIndex,
		Nodes: man.Nodes, Services: man.Services, Tasks: man.Tasks, CreatedAt: man.CreatedAt, WarrenVersion: man.WarrenVersion,
	})
}

// checkBackupTarget refuses, before the manager is asked, a FILE that
// exists (without force) or whose directory does not; it returns FILE's
// absolute path.
func checkBackupTarget(file string, force bool) (string, error) {
	abs, err := filepath.Abs(file)
	if err != nil {
		return "", err
	}
	if fi, err := os.Stat(abs); err == nil {
		if fi.IsDir() {
			return "", fmt.Errorf("%s is a directory: name the backup file to write", abs)
		}
		if !force {
			return "", fmt.Errorf("%s already exists: choose another name, or use --force to replace it", abs)
		}
	}
	if fi, err := os.Stat(filepath.Dir(abs)); err != nil || !fi.IsDir() {
		return "", fmt.Errorf("directory %s does not exist: create it first, or write the backup elsewhere", filepath.Dir(abs))
	}
	return abs, nil
}

// receiveBackup streams the backup into a temporary file (0600) beside
// file and returns its path, also on error (for the caller to remove).
func receiveBackup(ctx context.Context, cl *client.Client, file string) (string, error) {
	tmp, err := os.CreateTemp(filepath.Dir(file), "."+filepath.Base(file)+".tmp-*")
	if err != nil {
		return "", fmt.Errorf("create a temporary file beside %s: %w", file, err)
	}
	err = cl.Backup(ctx, tmp)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return tmp.Name(), fmt.Errorf("backup failed, %s was not written: %w", file, err)
	}
	return tmp.Name(), nil
}

// placeBackup puts tmp at file: a hard link, which never replaces a file
// that appeared meanwhile, or with force a rename over it.
func placeBackup(tmp, file string, force bool) error {
	var err error
	if force {
		err = os.Rename(tmp, file)
	} else if err = os.Link(tmp, file); errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("%s appeared while the backup was made: choose another name, or use --force to replace it", file)
	} else if err != nil {
		// A file system without hard links: rename, having checked above.
		err = os.Rename(tmp, file)
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", file, err)
	}
	if d, err := os.Open(filepath.Dir(file)); err == nil {
		_ = d.Sync() // the new name survives a power loss
		d.Close()
	}
	return nil
}

func (c *cli) printBackup(f format, s backupSummary) error {
	switch {
	case f == "json":
		return writeJSON(c.out, s)
	case f.isTemplate():
		return writeTemplate(c.out, f, []any{s})
	}
	err := writeTable(c.out, []string{"FILE", "SIZE", "CLUSTER ID", "STATE INDEX", "NODES", "SERVICES", "TASKS"}, [][]string{{
		s.File, spec.FormatMemory(s.Size), s.ClusterID, strconv.FormatUint(s.StateIndex, 10),
		strconv.Itoa(s.Nodes), strconv.Itoa(s.Services), strconv.Itoa(s.Tasks),
	}})
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(c.out, "\nThe backup holds the cluster's root key: keep it secret. To rebuild the cluster from it:\n\n    warren cluster restore %s --data-dir DIR\n", s.File)
	return err
}

func newClusterRestoreCmd(c *cli) *cobra.Command {
	dataDir := manager.DefaultConfig().DataDir
	var f string
	cmd := &cobra.Command{
		Use:   "restore FILE --data-dir DIR",
		Short: "Prepare a data dir from a backup, to rebuild the cluster with one manager (offline)",
		Long: `Rebuilds a cluster from a backup (` + "`warren cluster backup`" + `) after losing every
manager. Run it where no manager runs, with an empty or new --data-dir: it
writes there the backup's CA and keys, a new manager identity and certificate,
and the backup's state. ` + "`warren cluster init --data-dir DIR`" + ` then runs the same
cluster (same ID, CA, join tokens, services and nodes) with this manager as its
only one. Workers' and admins' certificates stay valid. The backup is checked
whole before anything is written.`,
		Args: args(1, 1, "FILE"),
		RunE: func(_ *cobra.Command, a []string) error { return c.restore(a[0], dataDir, format(f)) },
	}
	cmd.Flags().StringVar(&dataDir, "data-dir", dataDir, "empty or new directory to prepare for the restored manager")
	cmd.Flags().StringVar(&f, "format", "", "json, or a Go template over the result (ClusterID, NodeID, DataDir, StateIndex, ...)")
	return cmd
}

func (c *cli) restore(file, dataDir string, f format) error {
	if err := f.check(); err != nil {
		return err
	}
	res, err := manager.Restore(file, dataDir)
	if err != nil {
		return err
	}
	switch {
	case f == "json":
		return writeJSON(c.out, res)
	case f.isTemplate():
		return writeTemplate(c.out, f, []any{res})
	}
	return c.printRestore(res)
}

func (c *cli) printRestore(r *manager.RestoreResult) error {
	fmt.Fprintf(c.out, "Restored cluster %s into %s:\n", r.ClusterID, r.DataDir)
	fmt.Fprintf(c.out, "  backup of %s by warren %s, state index %d: %s, %s, %s\n",
		r.CreatedAt.UTC().Format("2006-01-02 15:04:05 MST"), r.WarrenVersion, r.StateIndex,
		countOf(r.Nodes, "node"), countOf(r.Services, "service"), countOf(r.Tasks, "task"))
	fmt.Fprintf(c.out, "  CA %s (workers' and admins' certificates stay valid)\n", r.CAFingerprint)
	fmt.Fprintf(c.out, "  this manager will be node %s, the cluster's only manager\n", r.NodeID)
	if len(r.OldManagers) > 0 {
		fmt.Fprintln(c.out, "\nThe backup's managers stay in the state as nodes. Once the new manager runs and shows them down,\nremove them (`warren node rm ID`); add managers by joining them with the manager token:")
		rows := make([][]string, 0, len(r.OldManagers))
		for _, n := range r.OldManagers {
			rows = append(rows, []string{n.ID, dash(n.Hostname), dash(n.APIAddr)})
		}
		if err := writeTable(c.out, []string{"ID", "HOSTNAME", "API ADDRESS"}, rows); err != nil {
			return err
		}
	}
	if len(r.ImageRefs) > 0 {
		fmt.Fprintf(c.out, "\nImported images are not in a backup: import them again (`warren image import FILE`) once the\nmanager runs; tasks using them wait until then: %s\n", strings.Join(r.ImageRefs, ", "))
	}
	_, err := fmt.Fprintf(c.out, "\nStart the manager (at an old manager's address, workers reconnect by themselves):\n\n    warren cluster init --data-dir %s --advertise-addr ADDR\n", r.DataDir)
	return err
}

// countOf is "1 node", "2 nodes".
func countOf(n int, word string) string { return strconv.Itoa(n) + " " + plural(n, word) }
