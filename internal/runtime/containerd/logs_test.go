package containerd

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/warren-project/warren/internal/logfile"
	"github.com/warren-project/warren/internal/ociimage"
	"github.com/warren-project/warren/internal/runtime"
)

// TestMain makes this test binary a log driver too: the executor's default
// driver is the running program, and the shims run it as they run warren.
func TestMain(m *testing.M) {
	if len(os.Args) == 3 && os.Args[1] == logfile.DriverCommand {
		os.Exit(logfile.DriverMain(os.Args[2], os.Stderr))
	}
	os.Exit(m.Run())
}

// logRecords reads every record of a container's log.
func logRecords(t *testing.T, path string) []logfile.Record {
	t.Helper()
	var out []logfile.Record
	err := logfile.Read(context.Background(), path, logfile.ReadOptions{Tail: -1}, func(r logfile.Record) error {
		out = append(out, r)
		return nil
	})
	if err != nil {
		t.Fatalf("read log %s: %v", path, err)
	}
	return out
}

// logText is a container's output as it wrote it, both streams in the
// order the driver read them.
func logText(t *testing.T, path string) string {
	t.Helper()
	var b strings.Builder
	for _, r := range logRecords(t, path) {
		b.Write(r.Line)
		if !r.Partial {
			b.WriteByte('\n')
		}
	}
	return b.String()
}

// driverPids finds the log driver processes writing path.
func driverPids(path string) []int {
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	var pids []int
	for _, p := range procs {
		data, err := os.ReadFile(p)
		if err != nil || !bytes.Contains(data, []byte(logfile.DriverCommand+"\x00")) || !bytes.Contains(data, []byte(path)) {
			continue
		}
		pid, _ := strconv.Atoi(strings.Split(p, "/")[2])
		pids = append(pids, pid)
	}
	return pids
}

func TestLogDriverCapturesBothStreams(t *testing.T) {
	e := newTestEnv(t)
	e.importImage(bbRef, ociimage.Config{})
	logPath := filepath.Join(e.dataDir, "logs", "both.log")
	start := time.Now()
	e.run(runtime.Spec{ID: "both", LogPath: logPath, Command: []string{"/bin/sh", "-c",
		`for i in 1 2 3; do echo "out $i"; echo "err $i" >&2; done; printf 'no newline'; sleep 100000`}})
	waitLog(t, logPath, "out 3\n")
	waitLog(t, logPath, "err 3\n")

	var out, errs []string
	for _, r := range logRecords(t, logPath) {
		if r.Time.Before(start.Add(-time.Second)) || r.Time.After(time.Now()) {
			t.Errorf("record %q is stamped %v: not while the container ran", r.Line, r.Time)
		}
		switch r.Stream {
		case logfile.Stdout:
			out = append(out, string(r.Line))
		case logfile.Stderr:
			errs = append(errs, string(r.Line))
		}
	}
	if strings.Join(out, "|") != "out 1|out 2|out 3" || strings.Join(errs, "|") != "err 1|err 2|err 3" {
		t.Fatalf("stdout %q and stderr %q are not the container's", out, errs)
	}
	// The unterminated end waits for its newline or for the stream's end.
	if strings.Contains(logText(t, logPath), "no newline") {
		t.Error("an unterminated line was logged before the stream ended")
	}
	if pids := driverPids(logPath); len(pids) != 1 {
		t.Fatalf("%d log driver processes for the container; want 1", len(pids))
	}
	if err := e.ex.Remove(context.Background(), "both"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 15*time.Second, "the log driver exits once the container's streams close", func() bool {
		return len(driverPids(logPath)) == 0
	})
	if got := logText(t, logPath); !strings.HasSuffix(got, "no newline") {
		t.Errorf("the unterminated end was not written when the stream closed; the log ends %q", got[max(0, len(got)-20):])
	}
}

func TestLogDriverRotates(t *testing.T) {
	e := newTestEnv(t)
	e.importImage(bbRef, ociimage.Config{})
	logPath := filepath.Join(e.dataDir, "logs", "rot.log")
	// 2000 lines of ~80 bytes stored: ~160 KB through 16 KiB files.
	e.run(runtime.Spec{ID: "rot", LogPath: logPath, LogMaxSize: 16 << 10, LogMaxFiles: 3,
		Command: []string{"/bin/sh", "-c", `i=0; while [ $i -lt 2000 ]; do i=$((i+1)); echo "line $i"; done; echo done; sleep 100000`}})
	waitLog(t, logPath, "done\n")
	files, err := logfile.Files(logPath)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 3 {
		t.Fatalf("log files %v; want 3 (max files)", files)
	}
	for _, f := range files {
		if st, err := os.Stat(f); err != nil || st.Size() > 16<<10 {
			t.Errorf("%s: %v, %d bytes; want at most 16 KiB", f, err, st.Size())
		}
	}
	// What is kept is an unbroken run of the last lines.
	recs := logRecords(t, logPath)
	last := 2000
	for i := len(recs) - 2; i >= 0; i-- {
		if want := fmt.Sprintf("line %d", last); string(recs[i].Line) != want {
			t.Fatalf("record %d of %d is %q; want %q", i, len(recs), recs[i].Line, want)
		}
		last--
	}
	if last > 2000-300 {
		t.Errorf("only %d lines kept in 48 KiB", 2000-last)
	}
}

func TestLoggingSurvivesTheExecutor(t *testing.T) {
	e := newTestEnv(t)
	e.importImage(bbRef, ociimage.Config{})
	logPath := filepath.Join(e.dataDir, "logs", "tick.log")
	e.run(runtime.Spec{ID: "tick", LogPath: logPath, Command: []string{"/bin/sh", "-c",
		`i=0; while true; do i=$((i+1)); echo "tick $i"; sleep 0.05; done`}})
	waitLog(t, logPath, "tick 2\n")
	// The process that started the container goes (an agent restart).
	e.ex.Close()
	n := len(logRecords(t, logPath))
	waitFor(t, 10*time.Second, "lines logged after the executor closed", func() bool {
		return len(logRecords(t, logPath)) > n+5
	})
	ex, err := New(context.Background(), e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.ex = ex
	// Started again in place: the log goes on in the same file.
	if err := ex.Stop(context.Background(), "tick", 0); err != nil {
		t.Fatal(err)
	}
	if err := ex.Start(context.Background(), "tick"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "a second run's lines appended to the log", func() bool {
		return strings.Count(logText(t, logPath), "tick 1\n") == 2
	})
	waitFor(t, 15*time.Second, "one log driver, the first run's gone", func() bool {
		return len(driverPids(logPath)) == 1
	})
}
