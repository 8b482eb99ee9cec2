package logfile

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func readAll(t *testing.T, path string, opts ReadOptions) []Record {
	t.Helper()
	var got []Record
	err := Read(context.Background(), path, opts, func(r Record) error {
		got = append(got, r)
		return nil
	})
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	return got
}

// rotatedLog writes n records to a log of three files of four records each
// (30 records keep 020-023 in t.log.2, 024-027 in t.log.1, 028-029 in t.log).
func rotatedLog(t *testing.T, n int) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "t.log")
	size := recordSize(t)
	w, err := OpenWriter(path, Options{MaxSize: 4*size + size/2, MaxFiles: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	for i := range n {
		if err := w.Write(rec(i)); err != nil {
			t.Fatal(err)
		}
	}
	return path
}

func lines(recs []Record) string {
	var out []string
	for _, r := range recs {
		out = append(out, strings.TrimPrefix(string(r.Line), "line "))
	}
	return strings.Join(out, " ")
}

// span is the records from..to-1 as lines() shows them.
func span(from, to int) string {
	var out []string
	for i := from; i < to; i++ {
		out = append(out, fmt.Sprintf("%03d", i))
	}
	return strings.Join(out, " ")
}

func TestReadTailAndSince(t *testing.T) {
	path := rotatedLog(t, 30)
	for _, tt := range []struct {
		name string
		opts ReadOptions
		want string
	}{
		{"all", ReadOptions{Tail: -1}, span(20, 30)},
		{"none", ReadOptions{Tail: 0}, ""},
		{"within the newest file", ReadOptions{Tail: 1}, span(29, 30)},
		{"the whole newest file", ReadOptions{Tail: 2}, span(28, 30)},
		{"into the next file", ReadOptions{Tail: 3}, span(27, 30)},
		{"across rotated files", ReadOptions{Tail: 9}, span(21, 30)},
		{"more than there is", ReadOptions{Tail: 100}, span(20, 30)},
		{"since", ReadOptions{Tail: -1, Since: t0.Add(25 * time.Second)}, span(25, 30)},
		{"since within the tail", ReadOptions{Tail: 9, Since: t0.Add(25 * time.Second)}, span(25, 30)},
		{"tail within since", ReadOptions{Tail: 2, Since: t0.Add(20 * time.Second)}, span(28, 30)},
		{"since after everything", ReadOptions{Tail: -1, Since: t0.Add(time.Hour)}, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := lines(readAll(t, path, tt.opts)); got != tt.want {
				t.Fatalf("got %q; want %q", got, tt.want)
			}
		})
	}
}

func TestReadMissingLog(t *testing.T) {
	if got := readAll(t, filepath.Join(t.TempDir(), "none.log"), ReadOptions{Tail: -1}); len(got) != 0 {
		t.Fatalf("records from a missing log: %v", got)
	}
}

func TestCorruptLinesAreSkippedWithANote(t *testing.T) {
	path := filepath.Join(t.TempDir(), "t.log")
	w, err := OpenWriter(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	_ = w.Write(rec(0))
	f, _ := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	fmt.Fprintln(f, "raw text from an older format")
	fmt.Fprintln(f, `{"t":"not a time","s":"stdout","l":"x"}`)
	f.Write(append([]byte(strings.Repeat("y", maxStoredLine+5)), '\n'))
	f.Close()
	_ = w.Write(rec(1))
	w.Close()

	for _, tail := range []int{-1, 5} {
		var notes []string
		got := readAll(t, path, ReadOptions{Tail: tail, Note: func(s string) { notes = append(notes, s) }})
		if lines(got) != span(0, 2) {
			t.Errorf("tail %d: records %q; want the two good ones", tail, lines(got))
		}
		if len(notes) != 3 || !strings.Contains(notes[0], "t.log: skipped the line at byte") || !strings.Contains(notes[2], "longer than") {
			t.Errorf("tail %d: notes %q; want one per bad line, naming the file", tail, notes)
		}
	}
}

func TestSkipNotesAreBounded(t *testing.T) {
	path := filepath.Join(t.TempDir(), "t.log")
	var raw strings.Builder
	for i := range 100 {
		fmt.Fprintf(&raw, "raw line %d from an older version\n", i)
	}
	if err := os.WriteFile(path, []byte(raw.String()), 0o640); err != nil {
		t.Fatal(err)
	}
	var notes []string
	got := readAll(t, path, ReadOptions{Tail: -1, Note: func(s string) { notes = append(notes, s) }})
	if len(got) != 0 || len(notes) != maxSkipNotes+1 || !strings.Contains(notes[maxSkipNotes], "without notes") {
		t.Fatalf("%d records, notes %q; want none, and %d notes then one saying the rest is skipped quietly", len(got), notes, maxSkipNotes)
	}
}
