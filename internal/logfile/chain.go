package logfile

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// The files of a log change names under a reader as the log rotates. These
// open them as one consistent set.

type openFile struct {
	name string
	f    *os.File
	st   os.FileInfo
}

// openNewestFirst opens the log's files, newest first, as one consistent
// set: a rotation while they are opened renames them under the opener, so
// the names are checked to still point at the files opened, and it starts
// over when they do not. A log rotating faster than a few opens per
// rotation gets the last attempt, with a note.
func (r *reader) openNewestFirst() ([]openFile, error) {
	const attempts = 10
	for i := 0; ; i++ {
		files, stable, err := openChain(r.path)
		if err != nil || stable {
			return files, err
		}
		if i == attempts-1 {
			r.note("%s rotates too fast to be read in order", filepath.Base(r.path))
			return files, nil
		}
		closeAll(files)
	}
}

// openChain opens the files of the log newest first and tells whether no
// rotation happened meanwhile.
func openChain(path string) (files []openFile, stable bool, err error) {
	before, err := statChain(path)
	if err != nil {
		return nil, false, err
	}
	stable = true
	for i := len(before) - 1; i >= 0; i-- {
		f, err := os.Open(before[i].name)
		if errors.Is(err, os.ErrNotExist) {
			stable = false
			continue
		}
		if err != nil {
			closeAll(files)
			return nil, false, fmt.Errorf("open log: %w", err)
		}
		st, err := f.Stat()
		if err != nil || !os.SameFile(st, before[i].st) {
			f.Close()
			stable = false
			continue
		}
		files = append(files, openFile{filepath.Base(before[i].name), f, st})
	}
	after, err := statChain(path)
	if err != nil {
		closeAll(files)
		return nil, false, err
	}
	return files, stable && sameChain(before, after), nil
}

// statChain is the log's files, oldest first, with their identities.
func statChain(path string) ([]openFile, error) {
	names, err := Files(path)
	if err != nil {
		return nil, err
	}
	out := make([]openFile, 0, len(names))
	for _, n := range names {
		st, err := os.Stat(n)
		if errors.Is(err, os.ErrNotExist) {
			continue // a rotation meanwhile: sameChain will tell
		}
		if err != nil {
			return nil, fmt.Errorf("log %s: %w", n, err)
		}
		out = append(out, openFile{name: n, st: st})
	}
	return out, nil
}

func sameChain(a, b []openFile) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].name != b[i].name || !os.SameFile(a[i].st, b[i].st) {
			return false
		}
	}
	return true
}

func closeAll(files []openFile) {
	for _, f := range files {
		f.f.Close()
	}
}
