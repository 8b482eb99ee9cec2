package logfile

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestDriverConfigArg(t *testing.T) {
	c := DriverConfig{Path: "/var/lib/warren/logs/a b,c.log", MaxSize: 1 << 20, MaxFiles: 5}
	got, err := ParseDriverConfig(c.Arg())
	if err != nil || got != c {
		t.Fatalf("ParseDriverConfig(%q) = %+v, %v; want %+v", c.Arg(), got, err, c)
	}
	for _, bad := range []string{"", "{", `{"path":"relative.log"}`} {
		if _, err := ParseDriverConfig(bad); err == nil {
			t.Errorf("ParseDriverConfig(%q) succeeded", bad)
		}
	}
}

func TestDriveCopiesBothStreams(t *testing.T) {
	path := filepath.Join(t.TempDir(), "logs", "c.log")
	outR, outW, _ := os.Pipe()
	errR, errW, _ := os.Pipe()
	readyCalled := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- Drive(DriverConfig{Path: path}, outR, errR, func() error { close(readyCalled); return nil })
	}()
	select {
	case <-readyCalled:
	case <-time.After(5 * time.Second):
		t.Fatal("Drive never said it was ready")
	}
	for i := range 3 {
		fmt.Fprintf(outW, "out %d\n", i)
		fmt.Fprintf(errW, "err %d\n", i)
	}
	fmt.Fprint(outW, "no newline")
	outW.Close()
	select {
	case err := <-done:
		t.Fatalf("Drive returned (%v) with stderr still open", err)
	case <-time.After(20 * time.Millisecond):
	}
	errW.Close()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Drive did not return once both streams closed")
	}
	var out, errs []string
	for _, r := range readAll(t, path, ReadOptions{Tail: -1}) {
		if r.Time.IsZero() || time.Since(r.Time) > time.Minute {
			t.Errorf("record %q has time %v; want now", r.Line, r.Time)
		}
		if r.Stream == Stdout {
			out = append(out, string(r.Line))
		} else {
			errs = append(errs, string(r.Line))
		}
	}
	if strings.Join(out, "|") != "out 0|out 1|out 2|no newline" || strings.Join(errs, "|") != "err 0|err 1|err 2" {
		t.Fatalf("stdout %q, stderr %q", out, errs)
	}
}

func TestDriveDrainsWhenTheLogCannotBeOpened(t *testing.T) {
	dir := t.TempDir()
	blocker := filepath.Join(dir, "file")
	if err := os.WriteFile(blocker, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	outR, outW, _ := os.Pipe()
	errR, errW, _ := os.Pipe()
	done := make(chan error, 1)
	ready := false
	go func() {
		// A path under a regular file cannot be created.
		done <- Drive(DriverConfig{Path: filepath.Join(blocker, "c.log")}, outR, errR, func() error { ready = true; return nil })
	}()
	// More than a pipe holds: the writes only finish if the driver reads.
	big := make([]byte, 1<<20)
	if _, err := outW.Write(big); err != nil {
		t.Fatal(err)
	}
	outW.Close()
	errW.Close()
	err := <-done
	if err == nil || !ready || !errors.Is(err, os.ErrExist) && !strings.Contains(err.Error(), "not a directory") {
		t.Fatalf("Drive = %v (ready %v); want the open error, after ready", err, ready)
	}
}
