package logfile

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
)

const (
	readBufSize = 64 << 10
	// maxStoredLine bounds a stored line (a record of MaxLineSize bytes
	// whose every byte is escaped fits well within it). Anything longer is
	// not a record: it is skipped without being held in memory.
	maxStoredLine = 1 << 20
)

// lineReader reads the complete lines of a file that may still grow: a
// line without its newline yet stays unread until the newline comes.
type lineReader struct {
	f          *os.File
	name       string
	buf        []byte
	start, end int   // unread data is buf[start:end]
	pos        int64 // file offset of buf[start]
	skipping   bool  // inside an overlong line, dropping it up to its newline
	dropped    int   // overlong lines dropped so far
}

func newLineReader(f *os.File, name string, off int64) (*lineReader, error) {
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		return nil, fmt.Errorf("log %s: %w", name, err)
	}
	return &lineReader{f: f, name: name, buf: make([]byte, readBufSize), pos: off}, nil
}

// next returns the next complete line (without its newline, valid until
// the next call) and its offset; ok is false when none is complete yet.
func (l *lineReader) next() (line []byte, at int64, ok bool, err error) {
	for {
		if i := bytes.IndexByte(l.buf[l.start:l.end], '\n'); i >= 0 {
			line, at = l.buf[l.start:l.start+i], l.pos
			l.start += i + 1
			l.pos += int64(i + 1)
			if l.skipping {
				l.skipping = false
				continue
			}
			return line, at, true, nil
		}
		n, err := l.fill()
		if err != nil || n == 0 {
			return nil, 0, false, err
		}
	}
}

// fill reads what the file has beyond the buffer, making room first, and
// returns how much it read.
func (l *lineReader) fill() (int, error) {
	if l.start > 0 {
		n := copy(l.buf, l.buf[l.start:l.end])
		l.start, l.end = 0, n
	}
	if l.end == len(l.buf) {
		if len(l.buf) >= maxStoredLine {
			// Too long to be a record: drop what is held and the rest of it.
			if !l.skipping {
				l.dropped++
			}
			l.pos += int64(l.end)
			l.start, l.end, l.skipping = 0, 0, true
		} else {
			l.buf = append(l.buf, make([]byte, len(l.buf))...)
		}
	}
	n, err := l.f.Read(l.buf[l.end:])
	l.end += n
	if err != nil && !errors.Is(err, io.EOF) {
		return n, fmt.Errorf("read log %s: %w", l.name, err)
	}
	return n, nil
}

// readTo is the offset up to which the file has been read.
func (l *lineReader) readTo() int64 { return l.pos + int64(l.end-l.start) }

// rewind starts over at the beginning of a file that was truncated.
func (l *lineReader) rewind() error {
	l.start, l.end, l.pos, l.skipping = 0, 0, 0, false
	if _, err := l.f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("log %s: %w", l.name, err)
	}
	return nil
}

// tailOffset returns where the last n complete lines of f start, and how
// many complete lines that gives (fewer when the file has fewer: then it
// starts at 0). With n == 0 it is the end of the last complete line. It
// reads the file backwards, so a tail of a big log costs little.
func tailOffset(f *os.File, n int) (int64, int, error) {
	st, err := f.Stat()
	if err != nil {
		return 0, 0, err
	}
	buf := make([]byte, readBufSize)
	end, count := int64(-1), 0
	for pos := st.Size(); pos > 0; {
		start := max(0, pos-readBufSize)
		b := buf[:pos-start]
		if _, err := f.ReadAt(b, start); err != nil && !errors.Is(err, io.EOF) {
			return 0, 0, err
		}
		for i := len(b) - 1; i >= 0; i-- {
			if b[i] != '\n' {
				continue
			}
			at := start + int64(i)
			switch {
			case end < 0 && n == 0:
				return at + 1, 0, nil
			case end < 0:
				end = at + 1
			default:
				if count++; count == n {
					return at + 1, n, nil
				}
			}
		}
		pos = start
	}
	if end < 0 {
		return 0, 0, nil
	}
	return 0, count + 1, nil
}
