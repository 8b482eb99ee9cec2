package fake

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/warren-project/warren/internal/runtime"
)

func TestExec(t *testing.T) {
	ctx := context.Background()
	f := New()
	f.AddImage("busybox")
	if err := f.Create(ctx, runtime.Spec{ID: "c1", Image: "busybox"}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.Exec(ctx, "c1", []string{"true"}, time.Second); !errors.Is(err, runtime.ErrNotFound) {
		t.Fatalf("Exec before Start: %v, want ErrNotFound", err)
	}
	if err := f.Start(ctx, "c1"); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name    string
		fn      ExecFunc
		code    int
		out     string
		timeout bool
	}{
		{"default exits 0", nil, 0, "", false},
		{"the function's answer", func(_ context.Context, id string, cmd []string) (int, []byte, error) {
			return 3, []byte(id + ":" + cmd[0]), nil
		}, 3, "c1:probe", false},
		{"a hung command times out", func(ctx context.Context, _ string, _ []string) (int, []byte, error) {
			<-ctx.Done()
			return 0, []byte("partial"), nil
		}, -1, "partial", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f.SetExec(c.fn)
			timeout := time.Minute
			if c.timeout {
				timeout = 20 * time.Millisecond
			}
			code, out, err := f.Exec(ctx, "c1", []string{"probe"}, timeout)
			if code != c.code || string(out) != c.out || errors.Is(err, context.DeadlineExceeded) != c.timeout || (err != nil) != c.timeout {
				t.Fatalf("Exec = %d, %q, %v; want %d, %q, timeout %v", code, out, err, c.code, c.out, c.timeout)
			}
		})
	}
	if got := f.Execs("c1"); len(got) != 3 || !slices.Equal(got[0], []string{"probe"}) {
		t.Fatalf("Execs = %q, want three probes", got)
	}
}

func TestImageConfig(t *testing.T) {
	ctx := context.Background()
	f := New()
	if _, err := f.ImageConfig(ctx, "busybox"); !errors.Is(err, runtime.ErrNotFound) {
		t.Fatalf("ImageConfig of a missing image: %v, want ErrNotFound", err)
	}
	f.AddImage("busybox")
	if cfg, err := f.ImageConfig(ctx, "busybox"); err != nil || cfg.Healthcheck != nil {
		t.Fatalf("ImageConfig = %+v, %v; want no healthcheck", cfg, err)
	}
	hc := &runtime.Healthcheck{Test: []string{"CMD", "check"}, Retries: 2}
	f.SetImageHealthcheck("busybox:latest", hc)
	hc.Test[1] = "changed by the caller"
	cfg, err := f.ImageConfig(ctx, "docker.io/library/busybox")
	if err != nil || cfg.Healthcheck == nil || cfg.Healthcheck.Test[1] != "check" || cfg.Healthcheck.Retries != 2 {
		t.Fatalf("ImageConfig = %+v, %v; want the healthcheck as set", cfg.Healthcheck, err)
	}
}
