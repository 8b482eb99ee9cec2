package fake

import (
	"context"
	"errors"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/warren-project/warren/internal/runtime"
)

func waitExit(t *testing.T, ch <-chan runtime.Exit) runtime.Exit {
	t.Helper()
	select {
	case e := <-ch:
		return e
	case <-time.After(5 * time.Second):
		t.Fatal("no exit within 5s")
		return runtime.Exit{}
	}
}

func TestLifecycle(t *testing.T) {
	ctx := context.Background()
	f := New()
	spec := runtime.Spec{ID: "c1", Image: "busybox", Labels: map[string]string{"svc": "a"}}
	if err := f.Create(ctx, spec); !errors.Is(err, runtime.ErrNotFound) {
		t.Fatalf("Create without image: %v, want ErrNotFound", err)
	}
	f.AddImage("busybox")
	if err := f.Create(ctx, spec); err != nil {
		t.Fatal(err)
	}
	if err := f.Create(ctx, spec); !errors.Is(err, runtime.ErrAlreadyExists) {
		t.Fatalf("second Create: %v, want ErrAlreadyExists", err)
	}
	if _, err := f.Wait(ctx, "c1"); !errors.Is(err, runtime.ErrNotFound) {
		t.Fatalf("Wait before Start: %v, want ErrNotFound", err)
	}
	c, err := f.Inspect(ctx, "c1")
	if err != nil || c.State != runtime.StateCreated || c.Image != "docker.io/library/busybox:latest" {
		t.Fatalf("Inspect = %+v, %v", c, err)
	}
	if err := f.Start(ctx, "c1"); err != nil {
		t.Fatal(err)
	}
	if err := f.Start(ctx, "c1"); !errors.Is(err, runtime.ErrAlreadyExists) {
		t.Fatalf("Start while running: %v", err)
	}
	c, _ = f.Inspect(ctx, "c1")
	if c.State != runtime.StateRunning || c.Pid == 0 {
		t.Fatalf("after Start: %+v", c)
	}
	ch, err := f.Wait(ctx, "c1")
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Kill(ctx, "c1", syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if e := waitExit(t, ch); e.Code != 137 || e.Err != nil {
		t.Fatalf("exit = %+v, want 137", e)
	}
	c, _ = f.Inspect(ctx, "c1")
	if c.State != runtime.StateStopped || c.ExitCode != 137 {
		t.Fatalf("after kill: %+v", c)
	}
	// Wait on an exited container returns at once.
	ch, _ = f.Wait(ctx, "c1")
	if e := waitExit(t, ch); e.Code != 137 {
		t.Fatalf("late Wait = %+v", e)
	}
	// Restart in place.
	oldPid := c.Pid
	if err := f.Start(ctx, "c1"); err != nil {
		t.Fatal(err)
	}
	c, _ = f.Inspect(ctx, "c1")
	if c.State != runtime.StateRunning || c.Pid == oldPid {
		t.Fatalf("after restart: %+v", c)
	}
	ch, _ = f.Wait(ctx, "c1")
	if err := f.Exit("c1", 3); err != nil {
		t.Fatal(err)
	}
	if e := waitExit(t, ch); e.Code != 3 {
		t.Fatalf("exit = %+v, want 3", e)
	}
	if err := f.Stop(ctx, "c1", time.Second); err != nil {
		t.Fatalf("Stop of stopped container: %v", err)
	}
	if err := f.Kill(ctx, "c1", syscall.SIGTERM); !errors.Is(err, runtime.ErrNotFound) {
		t.Fatalf("Kill of stopped container: %v", err)
	}
	if err := f.Remove(ctx, "c1"); err != nil {
		t.Fatal(err)
	}
	if err := f.Remove(ctx, "c1"); err != nil {
		t.Fatalf("second Remove: %v", err)
	}
	if _, err := f.Inspect(ctx, "c1"); !errors.Is(err, runtime.ErrNotFound) {
		t.Fatalf("Inspect after Remove: %v", err)
	}
}

func TestStopAndList(t *testing.T) {
	ctx := context.Background()
	f := New()
	f.AddImage("busybox")
	for _, id := range []string{"b", "a", "c"} {
		svc := "x"
		if id == "c" {
			svc = "y"
		}
		if err := f.Create(ctx, runtime.Spec{ID: id, Image: "busybox", Labels: map[string]string{"svc": svc}}); err != nil {
			t.Fatal(err)
		}
		if err := f.Start(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	got, err := f.List(ctx, map[string]string{"svc": "x"})
	if err != nil || len(got) != 2 || got[0].ID != "a" || got[1].ID != "b" {
		t.Fatalf("List = %+v, %v", got, err)
	}
	ch, _ := f.Wait(ctx, "a")
	if err := f.Stop(ctx, "a", time.Second); err != nil {
		t.Fatal(err)
	}
	if e := waitExit(t, ch); e.Code != 143 {
		t.Fatalf("Stop exit = %+v", e)
	}
	all, _ := f.List(ctx, nil)
	if len(all) != 3 {
		t.Fatalf("List(nil) = %d containers", len(all))
	}
}

func TestWaitContextCancel(t *testing.T) {
	f := New()
	f.AddImage("busybox")
	ctx := context.Background()
	_ = f.Create(ctx, runtime.Spec{ID: "c", Image: "busybox"})
	_ = f.Start(ctx, "c")
	wctx, cancel := context.WithCancel(ctx)
	ch, err := f.Wait(wctx, "c")
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	if e := waitExit(t, ch); !errors.Is(e.Err, context.Canceled) {
		t.Fatalf("exit = %+v, want context.Canceled", e)
	}
	if _, ok := <-ch; ok {
		t.Fatal("channel not closed after the exit")
	}
}

func TestImagesAndInjectedErrors(t *testing.T) {
	ctx := context.Background()
	f := New()
	boom := errors.New("boom")
	f.SetPullError("nginx", boom)
	if err := f.PullImage(ctx, "nginx", nil, nil); !errors.Is(err, boom) {
		t.Fatalf("PullImage = %v", err)
	}
	f.SetPullError("nginx", nil)
	var last runtime.PullProgress
	if err := f.PullImage(ctx, "nginx:latest", nil, func(p runtime.PullProgress) { last = p }); err != nil {
		t.Fatal(err)
	}
	if last.Status != "done" || last.Done != last.Total || last.Ref != "docker.io/library/nginx:latest" {
		t.Fatalf("progress = %+v", last)
	}
	if ok, _ := f.HasImage(ctx, "docker.io/library/nginx"); !ok {
		t.Fatal("HasImage false after pull")
	}
	if err := f.PullImage(ctx, "UPPER", nil, nil); !errors.Is(err, runtime.ErrInvalidArgument) {
		t.Fatalf("invalid ref: %v", err)
	}
	imgs, err := f.ImportImage(ctx, strings.NewReader("busybox\nlocalhost:5000/app:v1\n"))
	if err != nil || len(imgs) != 2 {
		t.Fatalf("ImportImage = %+v, %v", imgs, err)
	}
	list, _ := f.ListImages(ctx)
	if len(list) != 3 {
		t.Fatalf("ListImages = %+v", list)
	}
	f.FailNext("Start", boom)
	_ = f.Create(ctx, runtime.Spec{ID: "c", Image: "busybox"})
	if err := f.Start(ctx, "c"); !errors.Is(err, boom) {
		t.Fatalf("injected Start error: %v", err)
	}
	if err := f.Start(ctx, "c"); err != nil {
		t.Fatalf("second Start: %v", err)
	}
	_ = f.Close()
	if _, err := f.Inspect(ctx, "c"); !errors.Is(err, ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}
}

func TestConcurrent(t *testing.T) {
	ctx := context.Background()
	f := New()
	f.AddImage("busybox")
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := string(rune('a' + i))
			if err := f.Create(ctx, runtime.Spec{ID: id, Image: "busybox"}); err != nil {
				t.Error(err)
				return
			}
			_ = f.Start(ctx, id)
			ch, err := f.Wait(ctx, id)
			if err != nil {
				t.Error(err)
				return
			}
			go func() { _ = f.Stop(ctx, id, 0) }()
			<-ch
			_, _ = f.List(ctx, nil)
			_ = f.Remove(ctx, id)
		}()
	}
	wg.Wait()
	if all, _ := f.List(ctx, nil); len(all) != 0 {
		t.Fatalf("%d containers left", len(all))
	}
}
