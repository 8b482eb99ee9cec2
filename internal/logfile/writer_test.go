package logfile

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2025, 1, 2, 3, 4, 5, 6, time.UTC)

// rec is the i-th record of a test log: one second apart, alternating streams.
func rec(i int) Record {
	s := Stdout
	if i%2 == 1 {
		s = Stderr
	}
	return Record{Time: t0.Add(time.Duration(i) * time.Second), Stream: s, Line: fmt.Appendf(nil, "line %03d", i)}
}

// recordSize is the stored size of rec(i) for i < 1000.
func recordSize(t *testing.T) int64 {
	var b bytes.Buffer
	if err := appendRecord(&b, rec(0)); err != nil {
		t.Fatal(err)
	}
	return int64(b.Len())
}

func TestRecordRoundTrip(t *testing.T) {
	for name, r := range map[string]Record{
		"plain":       {Time: t0, Stream: Stdout, Line: []byte("hello")},
		"empty":       {Time: t0, Stream: Stderr, Line: []byte{}},
		"html":        {Time: t0, Stream: Stdout, Line: []byte(`<a href="x">&</a>`)},
		"unicode":     {Time: t0, Stream: Stdout, Line: []byte("héllo, 世界 \t tab")},
		"partial":     {Time: t0, Stream: Stdout, Line: []byte("to be continued"), Partial: true},
		"nanoseconds": {Time: time.Date(2025, 1, 2, 3, 4, 5, 123456789, time.UTC), Stream: Stdout, Line: []byte("x")},
	} {
		t.Run(name, func(t *testing.T) {
			var b bytes.Buffer
			if err := appendRecord(&b, r); err != nil {
				t.Fatal(err)
			}
			if bytes.Count(b.Bytes(), []byte("\n")) != 1 || !bytes.HasSuffix(b.Bytes(), []byte("\n")) {
				t.Fatalf("stored form %q is not one line", b.String())
			}
			got, err := parseRecord(bytes.TrimSuffix(b.Bytes(), []byte("\n")))
			if err != nil {
				t.Fatal(err)
			}
			if !got.Time.Equal(r.Time) || got.Stream != r.Stream || !bytes.Equal(got.Line, r.Line) || got.Partial != r.Partial {
				t.Fatalf("read back %+v from %q; want %+v", got, b.String(), r)
			}
		})
	}
}

func TestInvalidUTF8BecomesReplacement(t *testing.T) {
	var b bytes.Buffer
	if err := appendRecord(&b, Record{Time: t0, Stream: Stdout, Line: []byte{'a', 0xff, 'b'}}); err != nil {
		t.Fatal(err)
	}
	got, err := parseRecord(bytes.TrimSpace(b.Bytes()))
	if err != nil || string(got.Line) != "a\uFFFDb" {
		t.Fatalf("line %q, %v; want a, U+FFFD, b", got.Line, err)
	}
}

func TestRotation(t *testing.T) {
	size := recordSize(t)
	for _, tt := range []struct {
		maxFiles  int
		wantFiles []string
	}{
		{1, []string{"t.log"}},
		{2, []string{"t.log.1", "t.log"}},
		{3, []string{"t.log.2", "t.log.1", "t.log"}},
	} {
		t.Run(fmt.Sprintf("%d files", tt.maxFiles), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "t.log")
			// Four records fit a file; 20 records make five files' worth.
			w, err := OpenWriter(path, Options{MaxSize: 4*size + size/2, MaxFiles: tt.maxFiles})
			if err != nil {
				t.Fatal(err)
			}
			for i := range 20 {
				if err := w.Write(rec(i)); err != nil {
					t.Fatal(err)
				}
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			files, err := Files(path)
			if err != nil {
				t.Fatal(err)
			}
			if got := baseNames(files); strings.Join(got, " ") != strings.Join(tt.wantFiles, " ") {
				t.Fatalf("files %v; want %v", got, tt.wantFiles)
			}
			for _, f := range files {
				if st, _ := os.Stat(f); st.Size() > 4*size+size/2 {
					t.Errorf("%s is %d bytes, over the maximum", f, st.Size())
				}
			}
			// What is kept is the newest records, in order, ending with the last.
			got := readAll(t, path, ReadOptions{Tail: -1})
			if len(got) != 4*tt.maxFiles {
				t.Fatalf("kept %d records; want %d", len(got), 4*tt.maxFiles)
			}
			for i, r := range got {
				if want := rec(20 - len(got) + i); string(r.Line) != string(want.Line) {
					t.Fatalf("record %d is %q; want %q", i, r.Line, want.Line)
				}
			}
		})
	}
}

func TestWriterAppendsToExistingLog(t *testing.T) {
	path := filepath.Join(t.TempDir(), "logs", "t.log") // the directory is made too
	for i := range 2 {
		w, err := OpenWriter(path, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Write(rec(i)); err != nil {
			t.Fatal(err)
		}
		w.Close()
	}
	if got := readAll(t, path, ReadOptions{Tail: -1}); len(got) != 2 {
		t.Fatalf("%d records after two writers; want 2 (appended)", len(got))
	}
}

func TestCopySplitsLines(t *testing.T) {
	long := strings.Repeat("x", MaxLineSize+10)
	for _, tt := range []struct {
		name, in string
		want     []string // lines, "+" marking a partial one
	}{
		{"lines", "a\nb\n\nc\n", []string{"a", "b", "", "c"}},
		{"unterminated end", "a\nb", []string{"a", "b+"}},
		{"long line", long + "\nz\n", []string{long[:MaxLineSize] + "+", long[MaxLineSize:], "z"}},
		{"exactly the maximum", long[:MaxLineSize] + "\n", []string{long[:MaxLineSize]}},
		{"crlf kept", "a\r\n", []string{"a\r"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "t.log")
			w, err := OpenWriter(path, Options{Now: func() time.Time { return t0 }})
			if err != nil {
				t.Fatal(err)
			}
			// One byte at a time: lines cross every read boundary.
			if err := Copy(w, Stderr, io.LimitReader(&oneByteReader{s: tt.in}, int64(len(tt.in)))); err != nil {
				t.Fatal(err)
			}
			w.Close()
			var got []string
			for _, r := range readAll(t, path, ReadOptions{Tail: -1}) {
				s := string(r.Line)
				if r.Partial {
					s += "+"
				}
				if r.Stream != Stderr || !r.Time.Equal(t0) {
					t.Errorf("record %+v: want stderr at t0", r)
				}
				got = append(got, s)
			}
			if strings.Join(got, "|") != strings.Join(tt.want, "|") {
				t.Fatalf("lines %q; want %q", got, tt.want)
			}
		})
	}
}

type oneByteReader struct {
	s string
	i int
}

func (r *oneByteReader) Read(p []byte) (int, error) {
	if r.i >= len(r.s) {
		return 0, io.EOF
	}
	p[0] = r.s[r.i]
	r.i++
	return 1, nil
}

func baseNames(paths []string) []string {
	out := make([]string, len(paths))
	for i, p := range paths {
		out[i] = filepath.Base(p)
	}
	return out
}
