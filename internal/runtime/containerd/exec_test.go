package containerd

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/warren-project/warren/internal/ociimage"
	"github.com/warren-project/warren/internal/runtime"
)

func TestExec(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	e.importImage(bbRef, ociimage.Config{Cmd: []string{"/bin/sleep", "1000"}})
	if _, _, err := e.ex.Exec(ctx, "nope", []string{"true"}, time.Second); !errors.Is(err, runtime.ErrNotFound) {
		t.Fatalf("Exec in a missing container: %v, want ErrNotFound", err)
	}
	e.run(runtime.Spec{ID: "c1", Env: []string{"GREETING=hello"}, WorkDir: "/tmp"})

	cases := []struct {
		name   string
		cmd    []string
		code   int
		output string
	}{
		{"stdout then stderr, and the exit code", []string{"sh", "-c", "echo out; echo err >&2; exit 3"}, 3, "out\nerr\n"},
		{"the container's env and working directory", []string{"sh", "-c", "echo $GREETING; pwd"}, 0, "hello\n/tmp\n"},
		{"argv as is", []string{"/bin/echo", "a  b", "c"}, 0, "a  b c\n"},
		{"a failing shell command", []string{"/bin/sh", "-c", "test -f /nope"}, 1, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, out, err := e.ex.Exec(ctx, "c1", c.cmd, 10*time.Second)
			if err != nil || code != c.code || string(out) != c.output {
				t.Fatalf("Exec %q = %d, %q, %v; want %d, %q", c.cmd, code, out, err, c.code, c.output)
			}
		})
	}

	t.Run("output is capped", func(t *testing.T) {
		code, out, err := e.ex.Exec(ctx, "c1", []string{"sh", "-c", "yes | head -c 100000"}, 10*time.Second)
		if err != nil || code != 0 || len(out) != runtime.ExecOutputLimit {
			t.Fatalf("Exec of 100000 bytes = %d, %d bytes, %v; want %d bytes", code, len(out), err, runtime.ExecOutputLimit)
		}
	})
	t.Run("a command that cannot run", func(t *testing.T) {
		code, _, err := e.ex.Exec(ctx, "c1", []string{"/no/such/binary"}, 10*time.Second)
		if err == nil || code != -1 {
			t.Fatalf("Exec of a missing binary = %d, %v; want an error", code, err)
		}
	})
	t.Run("timeout kills it", func(t *testing.T) {
		start := time.Now()
		code, out, err := e.ex.Exec(ctx, "c1", []string{"sh", "-c", "echo started; sleep 60"}, 300*time.Millisecond)
		if !errors.Is(err, context.DeadlineExceeded) || code != -1 || !strings.Contains(string(out), "started") {
			t.Fatalf("Exec past its timeout = %d, %q, %v; want DeadlineExceeded with the output so far", code, out, err)
		}
		if d := time.Since(start); d > 15*time.Second {
			t.Fatalf("Exec took %v with a 300ms timeout", d)
		}
		// Only the main process is left in the container.
		waitFor(t, 10*time.Second, "the timed-out command killed", func() bool {
			_, out, err := e.ex.Exec(ctx, "c1", []string{"sh", "-c", "ps -o comm | grep -c sleep"}, 10*time.Second)
			return err == nil && strings.TrimSpace(string(out)) == "1"
		})
	})

	if err := e.ex.Stop(ctx, "c1", 0); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.ex.Exec(ctx, "c1", []string{"true"}, time.Second); !errors.Is(err, runtime.ErrNotFound) {
		t.Fatalf("Exec in a stopped container: %v, want ErrNotFound", err)
	}
}

func TestImageConfigHealthcheck(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	hc := &ociimage.Healthcheck{
		Test: []string{"CMD-SHELL", "wget -q -O /dev/null http://127.0.0.1/"}, Interval: 2 * time.Second,
		Timeout: time.Second, StartPeriod: 5 * time.Second, StartInterval: 500 * time.Millisecond, Retries: 4,
	}
	e.importImage("docker.io/library/busybox:hc", ociimage.Config{Cmd: []string{"sh"}, Healthcheck: hc})
	e.importImage(bbRef, ociimage.Config{Cmd: []string{"sh"}})

	cfg, err := e.ex.ImageConfig(ctx, "busybox:hc")
	want := &runtime.Healthcheck{Test: hc.Test, Interval: hc.Interval, Timeout: hc.Timeout, StartPeriod: hc.StartPeriod, StartInterval: hc.StartInterval, Retries: 4}
	if err != nil || !reflect.DeepEqual(cfg.Healthcheck, want) {
		t.Fatalf("ImageConfig = %+v, %v; want healthcheck %+v", cfg.Healthcheck, err, want)
	}
	if cfg, err := e.ex.ImageConfig(ctx, bbRef); err != nil || cfg.Healthcheck != nil {
		t.Fatalf("ImageConfig of an image without a HEALTHCHECK = %+v, %v", cfg.Healthcheck, err)
	}
	if _, err := e.ex.ImageConfig(ctx, "busybox:absent"); !errors.Is(err, runtime.ErrNotFound) {
		t.Fatalf("ImageConfig of a missing image: %v, want ErrNotFound", err)
	}
}
