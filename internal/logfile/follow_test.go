package logfile

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// follower follows a log in the background, collecting what it reads.
type follower struct {
	t    *testing.T
	mu   sync.Mutex
	got  []Record
	done chan error
	stop context.CancelFunc
}

func follow(t *testing.T, path string, opts ReadOptions) *follower {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	f := &follower{t: t, done: make(chan error, 1), stop: cancel}
	opts.Follow, opts.Poll = true, 2*time.Millisecond
	go func() {
		f.done <- Read(ctx, path, opts, func(r Record) error {
			f.mu.Lock()
			f.got = append(f.got, r)
			f.mu.Unlock()
			return nil
		})
	}()
	t.Cleanup(func() {
		cancel()
		<-f.done
	})
	return f
}

// wait waits until the follower read want (as lines() shows it).
func (f *follower) wait(want string) {
	f.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		f.mu.Lock()
		got := lines(f.got)
		f.mu.Unlock()
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("the follower read %q; never %q", got, want)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// ended waits for Read to return.
func (f *follower) ended() error {
	f.t.Helper()
	select {
	case err := <-f.done:
		f.done <- err // for the cleanup
		return err
	case <-time.After(5 * time.Second):
		f.t.Fatal("Read did not return")
		return nil
	}
}

func TestFollowAcrossRotations(t *testing.T) {
	for _, tt := range []struct {
		name     string
		maxFiles int
		batch    int // records written between two checks
	}{
		{"one rotation at a time", 3, 1},
		{"several rotations between polls", 4, 9},
		{"truncated single file", 1, 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "t.log")
			size := recordSize(t)
			w, err := OpenWriter(path, Options{MaxSize: 4*size + size/2, MaxFiles: tt.maxFiles})
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			_ = w.Write(rec(0), rec(1))
			f := follow(t, path, ReadOptions{Tail: 1})
			f.wait(span(1, 2))
			for i := 2; i < 30; i += tt.batch {
				for j := i; j < min(i+tt.batch, 30); j++ {
					_ = w.Write(rec(j))
				}
				// Caught up before the next batch: a batch is within what
				// the log keeps, a truncation is seen before the file grows
				// past the old end again.
				f.wait(span(1, min(i+tt.batch, 30)))
			}
			f.wait(span(1, 30))
		})
	}
}

func TestFollowWaitsForTheLogAndEndsWhenItGoes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "t.log")
	f := follow(t, path, ReadOptions{Tail: 0})
	time.Sleep(10 * time.Millisecond) // a few polls find nothing: that must not end Read
	select {
	case err := <-f.done:
		t.Fatalf("Read ended (%v) before the log existed", err)
	default:
	}
	w, err := OpenWriter(path, Options{MaxSize: 3 * recordSize(t)})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		_ = w.Write(rec(i))
	}
	// A log that appears after the start is new: tail 0 does not hide it.
	f.wait(span(0, 5))
	w.Close()
	if err := Remove(path); err != nil {
		t.Fatal(err)
	}
	if files, _ := Files(path); len(files) != 0 {
		t.Fatalf("files left after Remove: %v", files)
	}
	if err := f.ended(); err != nil {
		t.Fatalf("Read ended with %v; want nil once the log is removed", err)
	}
}

func TestFollowSeesALineOnlyWhenComplete(t *testing.T) {
	path := filepath.Join(t.TempDir(), "t.log")
	w, _ := OpenWriter(path, Options{})
	_ = w.Write(rec(0))
	w.Close()
	f := follow(t, path, ReadOptions{Tail: -1})
	f.wait(span(0, 1))
	var b = recordBytes(t, rec(1))
	file, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	_, _ = file.Write(b[:10])
	time.Sleep(10 * time.Millisecond) // several polls see half a record
	_, _ = file.Write(b[10:])
	f.wait(span(0, 2))
}

func recordBytes(t *testing.T, r Record) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := appendRecord(&b, r); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}
