// Package logfile is the on-disk format of task logs: one compact JSON
// record per line, like Docker's json-file driver,
//
//	{"t":"2025-01-02T03:04:05.123456789Z","s":"stdout","l":"hello"}
//
// with "p":true on a piece of a line that did not end there (a line longer
// than MaxLineSize, or the unterminated end of a stream). A task's log is a
// set of files, task.log the newest, then task.log.1, task.log.2 … as it
// rotates. Writer writes and rotates them; Read reads them oldest first,
// with a tail, a start time and follow; Drive is the logging binary the
// containerd shim runs next to each container.
package logfile

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

const (
	// DefaultMaxSize is the size at which a log rotates when its task does
	// not say.
	DefaultMaxSize = 10 << 20
	// DefaultMaxFiles is how many files a log keeps (task.log included)
	// when its task does not say.
	DefaultMaxFiles = 3
	// MaxLineSize is the longest line kept in one record; longer lines are
	// split into pieces marked partial.
	MaxLineSize = 16 << 10
)

// Streams a record may come from.
const (
	Stdout = "stdout"
	Stderr = "stderr"
)

// Record is one line of a container's output.
type Record struct {
	Time   time.Time
	Stream string // Stdout or Stderr
	Line   []byte // without its newline
	// Partial says the line went on in the next record of the stream.
	Partial bool
}

// wire is a Record as stored. The line is a JSON string: bytes that are
// not UTF-8 become U+FFFD, as with Docker.
type wire struct {
	T string `json:"t"`
	S string `json:"s"`
	L string `json:"l"`
	P bool   `json:"p,omitempty"`
}

// appendRecord appends r's stored form, newline included, to buf.
func appendRecord(buf *bytes.Buffer, r Record) error {
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false) // "<" stays "<": logs are read by people and tools, not browsers
	return enc.Encode(wire{T: r.Time.UTC().Format(time.RFC3339Nano), S: r.Stream, L: string(r.Line), P: r.Partial})
}

// errCorrupt marks a stored line that is not a record.
var errCorrupt = errors.New("not a log record")

// parseRecord reads one stored line (without its newline).
func parseRecord(line []byte) (Record, error) {
	var w wire
	if err := json.Unmarshal(line, &w); err != nil {
		return Record{}, fmt.Errorf("%w: %v", errCorrupt, err)
	}
	t, err := time.Parse(time.RFC3339Nano, w.T)
	if err != nil || w.S == "" {
		return Record{}, fmt.Errorf("%w: no time or stream", errCorrupt)
	}
	return Record{Time: t, Stream: w.S, Line: []byte(w.L), Partial: w.P}, nil
}

// Files returns the files of the log at path that exist, oldest first:
// path.N … path.1, then path.
func Files(path string) ([]string, error) {
	matches, err := filepath.Glob(globEscape(path) + ".*")
	if err != nil {
		return nil, fmt.Errorf("list log files of %s: %w", path, err)
	}
	type numbered struct {
		n    int
		name string
	}
	var rotated []numbered
	for _, m := range matches {
		n, err := strconv.Atoi(strings.TrimPrefix(m, path+"."))
		if err == nil && n > 0 {
			rotated = append(rotated, numbered{n, m})
		}
	}
	slices.SortFunc(rotated, func(a, b numbered) int { return b.n - a.n })
	out := make([]string, 0, len(rotated)+1)
	for _, r := range rotated {
		out = append(out, r.name)
	}
	if _, err := os.Stat(path); err == nil {
		out = append(out, path)
	}
	return out, nil
}

// Remove deletes every file of the log at path. A log that is not there is
// no error.
func Remove(path string) error {
	files, err := Files(path)
	if err != nil {
		return err
	}
	var errs []error
	for _, f := range files {
		if err := os.Remove(f); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("remove log %s: %w", path, err)
	}
	return nil
}

// rotatedName is the name of the n-th older file of the log at path.
func rotatedName(path string, n int) string { return path + "." + strconv.Itoa(n) }

// globEscape quotes the glob metacharacters of a path.
func globEscape(path string) string {
	var b strings.Builder
	for _, r := range path {
		if strings.ContainsRune(`*?[\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}
