package containerd

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/warren-project/warren/internal/ociimage"
	"github.com/warren-project/warren/internal/runtime"
)

// syncBuffer is a bytes.Buffer safe for the runtime's copy goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

func TestExecAttach(t *testing.T) {
	e := newTestEnv(t)
	e.importImage(bbRef, ociimage.Config{Cmd: []string{"/bin/sleep", "1000"}})
	e.run(runtime.Spec{ID: "c1"})
	cases := []struct {
		name           string
		cmd            []string
		stdin          string
		tty            bool
		code           int
		stdout, stderr string
	}{
		{"both streams and the exit code", []string{"sh", "-c", "echo out; echo err >&2; exit 3"}, "", false, 3, "out\n", "err\n"},
		{"stdin to its end", []string{"cat"}, "data\nmore\n", false, 0, "data\nmore\n", ""},
		{"env added", []string{"sh", "-c", "echo $EXTRA"}, "", false, 0, "x\n", ""},
		{"a terminal", []string{"sh", "-c", "test -t 1 && echo tty"}, "", true, 0, "tty\r\n", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			var stdout, stderr syncBuffer
			opts := runtime.ExecOptions{Stdout: &stdout, Stderr: &stderr, TTY: c.tty, Env: []string{"EXTRA=x"}}
			if c.stdin != "" {
				opts.Stdin = strings.NewReader(c.stdin)
			}
			code, err := e.ex.ExecAttach(ctx, "c1", c.cmd, opts)
			if err != nil || code != c.code || stdout.String() != c.stdout || stderr.String() != c.stderr {
				t.Fatalf("ExecAttach %q = %d, %v, stdout %q, stderr %q; want %d, stdout %q, stderr %q",
					c.cmd, code, err, stdout.String(), stderr.String(), c.code, c.stdout, c.stderr)
			}
		})
	}
	t.Run("the end of ctx kills it", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		// The command has started once it prints: then ctx ends.
		started := writerFunc(func(p []byte) (int, error) {
			cancel()
			return len(p), nil
		})
		begun := time.Now()
		code, err := e.ex.ExecAttach(ctx, "c1", []string{"sh", "-c", "echo started; sleep 60"}, runtime.ExecOptions{Stdout: started})
		if !errors.Is(err, context.Canceled) || code != -1 {
			t.Fatalf("ExecAttach past ctx = %d, %v; want Canceled", code, err)
		}
		if took := time.Since(begun); took > 30*time.Second {
			t.Fatalf("ExecAttach took %s to end with its ctx", took)
		}
	})
	t.Run("a missing container", func(t *testing.T) {
		_, err := e.ex.ExecAttach(context.Background(), "nope", []string{"true"}, runtime.ExecOptions{})
		if !errors.Is(err, runtime.ErrNotFound) {
			t.Fatalf("ExecAttach in a missing container: %v, want ErrNotFound", err)
		}
	})
}
