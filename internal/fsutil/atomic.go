// Package fsutil holds the one file-system idiom Warren needs in several
// places: writing a small file (a key, a certificate, an identity) so that
// a crash, or a concurrent writer, leaves the old contents or the new,
// never half of either.
package fsutil

import (
	"fmt"
	"os"
	"path/filepath"
)

// WriteFileAtomic replaces path with data (mode perm): written to a
// temporary file in the same directory, synced, renamed over path, and the
// directory synced so the rename survives a power loss.
func WriteFileAtomic(path string, data []byte, perm os.FileMode) error {
	if err := place(path, data, perm, os.Rename); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// WriteFileNew writes data (mode perm) to path, which must not exist: it
// fails with an error matching fs.ErrExist when it does. The new file is
// linked into place, and a link, unlike a rename, never replaces a file
// that appeared meanwhile: of two racing writers, one wins.
func WriteFileNew(path string, data []byte, perm os.FileMode) error {
	return place(path, data, perm, os.Link)
}

// place writes data to a temporary file beside path, syncs it, puts it at
// path with put (rename or link), and syncs the directory.
func place(path string, data []byte, perm os.FileMode, put func(oldpath, newpath string) error) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+"-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // after a rename there is nothing to remove
	// Chmod before writing, so a key is never readable by others, even briefly.
	err = tmp.Chmod(perm)
	if err == nil {
		_, err = tmp.Write(data)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = put(tmp.Name(), path)
	}
	if err != nil {
		return err
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
