package logfile

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// Options tune a Writer. Zero values take the defaults.
type Options struct {
	// MaxSize is the size past which the log rotates (DefaultMaxSize).
	MaxSize int64
	// MaxFiles is how many files the log keeps, the current one included
	// (DefaultMaxFiles). With 1, a full log starts over empty.
	MaxFiles int
	// Now stamps the lines of WriteLines (time.Now).
	Now func() time.Time
}

func (o Options) withDefaults() Options {
	if o.MaxSize <= 0 {
		o.MaxSize = DefaultMaxSize
	}
	if o.MaxFiles <= 0 {
		o.MaxFiles = DefaultMaxFiles
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// Line is a line to write, without its newline.
type Line struct {
	Text    []byte
	Partial bool
}

// Writer appends records to a log, rotating it by size. It is safe for
// concurrent use: a container's stdout and stderr share one.
type Writer struct {
	path string
	opts Options

	mu   sync.Mutex
	f    *os.File
	size int64
	buf  bytes.Buffer
}

// OpenWriter opens the log at path for appending, creating it (and its
// directory) if needed. A log that exists goes on where it ended: a
// restarted container keeps its earlier output.
func OpenWriter(path string, opts Options) (*Writer, error) {
	w := &Writer{path: path, opts: opts.withDefaults()}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("log directory of %s: %w", path, err)
	}
	if err := w.open(0); err != nil {
		return nil, err
	}
	return w, nil
}

func (w *Writer) open(flag int) error {
	f, err := os.OpenFile(w.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND|flag, 0o640)
	if err != nil {
		return fmt.Errorf("open log %s: %w", w.path, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("open log %s: %w", w.path, err)
	}
	w.f, w.size = f, st.Size()
	return nil
}

// WriteLines writes lines of one stream, all stamped now. The stamp is
// taken under the writer's lock, so times never go back within a file.
func (w *Writer) WriteLines(stream string, lines []Line) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	now := w.opts.Now()
	for _, l := range lines {
		if err := w.add(Record{Time: now, Stream: stream, Line: l.Text, Partial: l.Partial}); err != nil {
			return err
		}
	}
	return w.flush()
}

// Write writes records as they are (times included).
func (w *Writer) Write(recs ...Record) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, r := range recs {
		if err := w.add(r); err != nil {
			return err
		}
	}
	return w.flush()
}

// add buffers one record, first writing out what is buffered and rotating
// when the record would take the file past its size.
func (w *Writer) add(r Record) error {
	if w.f == nil {
		return errors.New("log writer is closed")
	}
	mark := w.buf.Len()
	if err := appendRecord(&w.buf, r); err != nil {
		w.buf.Truncate(mark)
		return fmt.Errorf("encode log record: %w", err)
	}
	n := int64(w.buf.Len() - mark)
	if w.size+int64(mark)+n <= w.opts.MaxSize || w.size+int64(mark) == 0 {
		return nil
	}
	rec := bytes.Clone(w.buf.Bytes()[mark:])
	w.buf.Truncate(mark)
	if err := w.flush(); err != nil {
		return err
	}
	if err := w.rotate(); err != nil {
		return err
	}
	w.buf.Write(rec)
	return nil
}

// flush writes the buffered records in one write: a reader never sees half
// a batch it could mistake for a corrupt line (it waits for the newline).
func (w *Writer) flush() error {
	if w.buf.Len() == 0 {
		return nil
	}
	n, err := w.f.Write(w.buf.Bytes())
	w.size += int64(n)
	w.buf.Reset()
	if err != nil {
		return fmt.Errorf("write log %s: %w", w.path, err)
	}
	return nil
}

// rotate shifts path → path.1 → path.2 …, dropping the oldest, and starts
// a new path. Readers following the log find the renamed file by its
// identity; the order of renames keeps path.1 present while path is new.
func (w *Writer) rotate() error {
	if err := w.f.Close(); err != nil {
		return fmt.Errorf("close log %s: %w", w.path, err)
	}
	w.f = nil
	if w.opts.MaxFiles <= 1 {
		return w.open(os.O_TRUNC)
	}
	for i := w.opts.MaxFiles - 2; i >= 1; i-- {
		if err := os.Rename(rotatedName(w.path, i), rotatedName(w.path, i+1)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("rotate log %s: %w", w.path, err)
		}
	}
	if err := os.Rename(w.path, rotatedName(w.path, 1)); err != nil {
		return fmt.Errorf("rotate log %s: %w", w.path, err)
	}
	return w.open(0)
}

// Close writes what is buffered and closes the file.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f == nil {
		return nil
	}
	err := w.flush()
	if cerr := w.f.Close(); err == nil {
		err = cerr
	}
	w.f = nil
	return err
}
