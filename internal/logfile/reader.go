package logfile

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"
)

// DefaultPoll is how often a followed log is checked for growth.
const DefaultPoll = 100 * time.Millisecond

// ReadOptions say which records Read gives.
type ReadOptions struct {
	// Tail is how many of the last lines to give; negative gives all.
	Tail int
	// Since skips records older than this.
	Since time.Time
	// Follow goes on with the lines written later, across rotations,
	// until ctx ends or the log's files are removed.
	Follow bool
	// Poll is how often a followed log is checked (DefaultPoll).
	Poll time.Duration
	// Note, when set, is told of lines skipped because they are not
	// records, and of lines lost to a rotation faster than the reading.
	Note func(string)
}

// Read gives emit the records of the log at path, oldest first. A log
// that does not exist gives nothing; followed, it is waited for. An error
// from emit ends Read and is returned; the end of ctx ends it with nil.
func Read(ctx context.Context, path string, opts ReadOptions, emit func(Record) error) error {
	if opts.Poll <= 0 {
		opts.Poll = DefaultPoll
	}
	r := &reader{path: path, opts: opts, emit: emit}
	defer r.close()
	if err := r.start(ctx); err != nil || !opts.Follow {
		return ignoreCanceled(ctx, err)
	}
	return ignoreCanceled(ctx, r.follow(ctx))
}

func ignoreCanceled(ctx context.Context, err error) error {
	if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		return nil
	}
	return err
}

// reader reads one log. cur is its newest file as last opened: followed,
// it may have been renamed since (a rotation), which poll notices.
type reader struct {
	path  string
	opts  ReadOptions
	emit  func(Record) error
	cur   *lineReader
	seen  bool // some file of the log existed
	skips int  // lines skipped as not records
}

func (r *reader) close() {
	if r.cur != nil {
		r.cur.f.Close()
	}
}

// start reads what the log holds now, from its tail.
func (r *reader) start(ctx context.Context) error {
	files, err := r.openNewestFirst()
	if err != nil || len(files) == 0 {
		r.opts.Tail = -1 // a log that appears later is all new
		return err
	}
	r.seen = true
	first, offsets, err := tailStart(files, r.opts.Tail)
	if err != nil {
		closeAll(files)
		return err
	}
	closeAll(files[first+1:]) // too old for the tail
	return r.readIn(ctx, files[:first+1], offsets[:first+1])
}

// readIn reads files (newest first) from their offsets, oldest first, and
// keeps the newest open to follow. Whatever is opened after the first
// start is new: read whole.
func (r *reader) readIn(ctx context.Context, files []openFile, offsets []int64) error {
	r.opts.Tail = -1
	for i := len(files) - 1; i >= 0; i-- {
		lr, err := newLineReader(files[i].f, files[i].name, offsets[i])
		if err == nil {
			err = r.drain(ctx, lr)
		}
		if err != nil {
			closeAll(files[:i+1])
			return err
		}
		if i > 0 {
			files[i].f.Close()
		} else {
			r.cur = lr
		}
	}
	return nil
}

// tailStart finds where reading starts in files (newest first) to give
// the last tail lines: files[first] is the oldest file read, from
// offsets[i] in each.
func tailStart(files []openFile, tail int) (first int, offsets []int64, err error) {
	offsets = make([]int64, len(files))
	if tail < 0 {
		return len(files) - 1, offsets, nil
	}
	need := tail
	for i, f := range files {
		off, got, err := tailOffset(f.f, need)
		if err != nil {
			return 0, nil, fmt.Errorf("log %s: %w", f.name, err)
		}
		offsets[i] = off
		if need -= got; need <= 0 || i == len(files)-1 {
			return i, offsets, nil
		}
	}
	return 0, offsets, nil
}

// drain gives the complete lines lr has now.
func (r *reader) drain(ctx context.Context, lr *lineReader) error {
	for n := 0; ; n++ {
		if n%1024 == 1023 && ctx.Err() != nil {
			return ctx.Err()
		}
		dropped := lr.dropped
		line, at, ok, err := lr.next()
		if lr.dropped > dropped {
			r.skipped("%s: skipped a line longer than %d bytes: not a log record", lr.name, maxStoredLine)
		}
		if err != nil || !ok {
			return err
		}
		rec, err := parseRecord(line)
		if err != nil {
			r.skipped("%s: skipped the line at byte %d: %v", lr.name, at, err)
			continue
		}
		if rec.Time.Before(r.opts.Since) {
			continue
		}
		if err := r.emit(rec); err != nil {
			return err
		}
	}
}

// maxSkipNotes bounds the notes about skipped lines: a log written in
// another format (raw output, by an older version) would make one per line.
const maxSkipNotes = 3

// skipped notes a skipped line, up to maxSkipNotes times per Read.
func (r *reader) skipped(format string, args ...any) {
	r.skips++
	switch {
	case r.skips <= maxSkipNotes:
		r.note(format, args...)
	case r.skips == maxSkipNotes+1:
		r.note("%s: more lines that are not log records are skipped, without notes", filepath.Base(r.path))
	}
}

func (r *reader) note(format string, args ...any) {
	if r.opts.Note != nil {
		r.opts.Note(fmt.Sprintf(format, args...))
	}
}
