package logfile

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"time"
)

// follow polls the log for new lines until ctx ends or, once the log was
// seen, its files are all removed (the task left the node).
func (r *reader) follow(ctx context.Context) error {
	tick := time.NewTicker(r.opts.Poll)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		gone, err := r.poll(ctx)
		if err != nil || gone {
			return err
		}
	}
}

// poll reads what was written since the last poll, following a rotation
// or a truncation, and tells whether the log is gone.
func (r *reader) poll(ctx context.Context) (gone bool, err error) {
	if r.cur == nil {
		if err := r.start(ctx); err != nil {
			return false, err
		}
		return r.cur == nil && r.seen, nil
	}
	if err := r.drain(ctx, r.cur); err != nil {
		return false, err
	}
	now, err := os.Stat(r.path)
	if errors.Is(err, os.ErrNotExist) {
		// A rotation renames path to path.1 before it makes a new path:
		// without both, the log was removed.
		if _, err1 := os.Stat(rotatedName(r.path, 1)); errors.Is(err1, os.ErrNotExist) {
			return true, r.drain(ctx, r.cur)
		}
		return false, nil
	}
	if err != nil {
		return false, err
	}
	held, err := r.cur.f.Stat()
	if err != nil {
		return false, err
	}
	switch {
	case !os.SameFile(now, held):
		return false, r.rotated(ctx)
	case held.Size() < r.cur.readTo():
		r.note("%s: truncated: reading it again from its start", r.cur.name)
		return false, r.cur.rewind()
	}
	return false, nil
}

// rotated finishes the file that was rotated away, then reads the files
// that came after it (more than one when the log rotated more than once
// since the last poll) and follows the newest.
func (r *reader) rotated(ctx context.Context) error {
	// The writer writes nothing to a file after renaming it: what is in it
	// now is all there is.
	if err := r.drain(ctx, r.cur); err != nil {
		return err
	}
	files, err := r.openNewestFirst()
	if err != nil {
		return err
	}
	held, err := r.cur.f.Stat()
	if err != nil {
		closeAll(files)
		return err
	}
	next := len(files) // files newer than the held one: files[:next]
	for i, f := range files {
		if os.SameFile(f.st, held) {
			next = i
			break
		}
	}
	if next == len(files) {
		r.note("%s: rotated away before it was read to the end: lines may be missing", filepath.Base(r.path))
	}
	closeAll(files[next:])
	r.cur.f.Close()
	r.cur = nil
	return r.readIn(ctx, files[:next], make([]int64, next))
}
