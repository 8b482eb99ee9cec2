package containerd

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/errdefs"

	"github.com/warren-project/warren/internal/ociimage"
	"github.com/warren-project/warren/internal/runtime"
)

func TestLifecycle(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	img := e.importImage(bbRef, ociimage.Config{Cmd: []string{"/bin/sleep", "1000"}})
	if img.Ref != bbRef || !strings.HasPrefix(img.Digest, "sha256:") || img.Size == 0 {
		t.Fatalf("imported image = %+v", img)
	}
	if ok, err := e.ex.HasImage(ctx, "busybox:warren-test"); err != nil || !ok {
		t.Fatalf("HasImage = %v, %v", ok, err)
	}
	imgs, err := e.ex.ListImages(ctx)
	if err != nil || len(imgs) != 1 || imgs[0].Ref != bbRef {
		t.Fatalf("ListImages = %+v, %v", imgs, err)
	}

	logPath := filepath.Join(t.TempDir(), "logs", "c1.log")
	labels := map[string]string{"warren.service": "web", "warren.task": "t1"}
	c := e.run(runtime.Spec{ID: "c1", Labels: labels, LogPath: logPath})
	if c.State != runtime.StateRunning || c.Pid == 0 {
		t.Fatalf("after Start: %+v", c)
	}
	if c.Image != bbRef || c.LogPath != logPath || c.StartedAt.IsZero() || c.CreatedAt.IsZero() {
		t.Fatalf("inspect: %+v", c)
	}
	if len(c.Labels) != 2 || c.Labels["warren.service"] != "web" {
		t.Fatalf("labels = %v, want exactly the spec's", c.Labels)
	}
	if err := e.ex.Start(ctx, "c1"); !errors.Is(err, runtime.ErrAlreadyExists) {
		t.Fatalf("Start of a running container: %v, want ErrAlreadyExists", err)
	}
	if err := e.ex.Kill(ctx, "c1", 0); err != nil {
		t.Fatalf("signal 0: %v", err)
	}

	// kill -9 from outside: Wait reports 137.
	ch, err := e.ex.Wait(ctx, "c1")
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(int(c.Pid), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	ex := waitExit(t, ch, 10*time.Second)
	if ex.Err != nil || ex.Code != 137 || ex.At.IsZero() {
		t.Fatalf("exit after SIGKILL = %+v, want code 137", ex)
	}
	if _, ok := <-ch; ok {
		t.Fatal("Wait channel not closed after the exit")
	}
	c, err = e.ex.Inspect(ctx, "c1")
	if err != nil || c.State != runtime.StateStopped || c.ExitCode != 137 || c.ExitedAt.IsZero() || c.Pid != 0 {
		t.Fatalf("after exit: %+v, %v", c, err)
	}
	// Wait on an exited task answers at once.
	ch, err = e.ex.Wait(ctx, "c1")
	if err != nil {
		t.Fatal(err)
	}
	if ex := waitExit(t, ch, 5*time.Second); ex.Code != 137 {
		t.Fatalf("late Wait = %+v", ex)
	}
	if err := e.ex.Kill(ctx, "c1", syscall.SIGTERM); !errors.Is(err, runtime.ErrNotFound) {
		t.Fatalf("Kill of an exited container: %v, want ErrNotFound", err)
	}
	if err := e.ex.Stop(ctx, "c1", time.Second); err != nil {
		t.Fatalf("Stop of an exited container: %v", err)
	}

	// Restart in place.
	oldPid := c.Pid
	firstStart := c.StartedAt
	if err := e.ex.Start(ctx, "c1"); err != nil {
		t.Fatalf("restart: %v", err)
	}
	c, _ = e.ex.Inspect(ctx, "c1")
	if c.State != runtime.StateRunning || c.Pid == 0 || c.Pid == oldPid || !c.StartedAt.After(firstStart) {
		t.Fatalf("after restart: %+v (first start %v)", c, firstStart)
	}

	// Stop: sleep as pid 1 ignores SIGTERM, so SIGKILL comes after the grace.
	ch, _ = e.ex.Wait(ctx, "c1")
	start := time.Now()
	if err := e.ex.Stop(ctx, "c1", 500*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 500*time.Millisecond {
		t.Fatalf("Stop returned after %s, before the grace", d)
	}
	if ex := waitExit(t, ch, 5*time.Second); ex.Code != 137 {
		t.Fatalf("exit after Stop = %+v, want 137", ex)
	}

	list, err := e.ex.List(ctx, map[string]string{"warren.service": "web"})
	if err != nil || len(list) != 1 || list[0].ID != "c1" {
		t.Fatalf("List = %+v, %v", list, err)
	}
	if list, _ := e.ex.List(ctx, map[string]string{"warren.service": "db"}); len(list) != 0 {
		t.Fatalf("List with other labels = %+v", list)
	}

	// Remove leaves nothing.
	if err := e.ex.Remove(ctx, "c1"); err != nil {
		t.Fatal(err)
	}
	if err := e.ex.Remove(ctx, "c1"); err != nil {
		t.Fatalf("Remove of an absent container: %v", err)
	}
	if _, err := e.ex.Inspect(ctx, "c1"); !errors.Is(err, runtime.ErrNotFound) {
		t.Fatalf("Inspect after Remove: %v, want ErrNotFound", err)
	}
	if list, _ := e.ex.List(ctx, nil); len(list) != 0 {
		t.Fatalf("List after Remove = %+v", list)
	}
	nctx := e.ex.WithNamespace(ctx)
	if _, err := e.ex.Client().SnapshotService(e.cfg.Snapshotter).Stat(nctx, snapshotKey("c1")); !errdefs.IsNotFound(err) {
		t.Fatalf("snapshot after Remove: %v, want not found", err)
	}
	if _, err := os.Stat(logPath); err != nil {
		t.Fatalf("log file: %v", err)
	}
}

func TestStopGraceful(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	e.importImage(bbRef, ociimage.Config{})
	logPath := filepath.Join(t.TempDir(), "c.log")
	e.run(runtime.Spec{ID: "trap", LogPath: logPath, Command: []string{"/bin/sh", "-c",
		`trap 'echo got TERM; exit 3' TERM; echo ready; while true; do sleep 1; done`}})
	waitLog(t, logPath, "ready")
	ch, err := e.ex.Wait(ctx, "trap")
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := e.ex.Stop(ctx, "trap", 20*time.Second); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("Stop took %s: SIGTERM was not acted on", d)
	}
	if ex := waitExit(t, ch, 5*time.Second); ex.Code != 3 {
		t.Fatalf("exit = %+v, want 3 from the TERM trap", ex)
	}
	waitLog(t, logPath, "got TERM")
}

func TestErrors(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	if err := e.ex.Create(ctx, runtime.Spec{ID: "x", Image: bbRef}); !errors.Is(err, runtime.ErrNotFound) {
		t.Fatalf("Create from a missing image: %v, want ErrNotFound", err)
	}
	e.importImage(bbRef, ociimage.Config{Cmd: []string{"/bin/sleep", "1000"}})
	if err := e.ex.Create(ctx, runtime.Spec{ID: "x", Image: bbRef}); err != nil {
		t.Fatal(err)
	}
	if err := e.ex.Create(ctx, runtime.Spec{ID: "x", Image: bbRef}); !errors.Is(err, runtime.ErrAlreadyExists) {
		t.Fatalf("second Create: %v, want ErrAlreadyExists", err)
	}
	c, err := e.ex.Inspect(ctx, "x")
	if err != nil || c.State != runtime.StateCreated {
		t.Fatalf("created container: %+v, %v", c, err)
	}
	if _, err := e.ex.Wait(ctx, "x"); !errors.Is(err, runtime.ErrNotFound) {
		t.Fatalf("Wait before Start: %v, want ErrNotFound", err)
	}
	if err := e.ex.Kill(ctx, "x", syscall.SIGTERM); !errors.Is(err, runtime.ErrNotFound) {
		t.Fatalf("Kill before Start: %v, want ErrNotFound", err)
	}
	if err := e.ex.Stop(ctx, "x", time.Second); err != nil {
		t.Fatalf("Stop before Start: %v", err)
	}
	for name, err := range map[string]error{
		"Start":   e.ex.Start(ctx, "nope"),
		"Stop":    e.ex.Stop(ctx, "nope", 0),
		"Kill":    e.ex.Kill(ctx, "nope", syscall.SIGKILL),
		"Inspect": func() error { _, err := e.ex.Inspect(ctx, "nope"); return err }(),
		"Wait":    func() error { _, err := e.ex.Wait(ctx, "nope"); return err }(),
	} {
		if !errors.Is(err, runtime.ErrNotFound) {
			t.Errorf("%s of an absent container: %v, want ErrNotFound", name, err)
		}
	}
	for name, spec := range map[string]runtime.Spec{
		"empty id":     {Image: bbRef},
		"bad ref":      {ID: "y", Image: "UPPER"},
		"relative log": {ID: "y", Image: bbRef, LogPath: "rel.log"},
		"bad env":      {ID: "y", Image: bbRef, Env: []string{"NOEQUALS"}},
		"no command":   {ID: "y", Image: "nocmd:v1"},
		"negative mem": {ID: "y", Image: bbRef, MemoryBytes: -1},
	} {
		if name == "no command" {
			e.importImage("nocmd:v1", ociimage.Config{})
		}
		if err := e.ex.Create(ctx, spec); !errors.Is(err, runtime.ErrInvalidArgument) {
			t.Errorf("Create with %s: %v, want ErrInvalidArgument", name, err)
		}
	}
	if list, _ := e.ex.List(ctx, nil); len(list) != 1 {
		t.Fatalf("failed creates left containers: %+v", list)
	}
	// A user that the image does not know fails Create, not Start.
	if err := e.ex.Create(ctx, runtime.Spec{ID: "z", Image: bbRef, User: "nosuchuser"}); err == nil {
		t.Fatal("Create with an unknown user succeeded")
	}
}

func TestOverrides(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	const ref = "example.com/warren/echo:v1"
	e.importImage(ref, ociimage.Config{
		Entrypoint: []string{"/bin/echo", "entry"},
		Cmd:        []string{"default"},
		Env:        []string{"PATH=/bin", "FROM_IMAGE=1", "KEEP=1"},
		WorkingDir: "/www",
	})
	logs := t.TempDir()
	tests := []struct {
		name string
		spec runtime.Spec
		want string
	}{
		{"image defaults", runtime.Spec{}, "entry default\n"},
		{"args replace cmd", runtime.Spec{Args: []string{"x", "y"}}, "entry x y\n"},
		{"command drops cmd", runtime.Spec{Command: []string{"/bin/echo", "cmd"}}, "cmd\n"},
		{"command and args", runtime.Spec{Command: []string{"/bin/echo", "cmd"}, Args: []string{"arg"}}, "cmd arg\n"},
		{"image workdir", runtime.Spec{Command: []string{"/bin/pwd"}}, "/www\n"},
		{"env workdir user", runtime.Spec{
			Command: []string{"/bin/sh", "-c", `echo "FOO=$FOO FROM_IMAGE=$FROM_IMAGE KEEP=$KEEP PWD=$(pwd) ID=$(id -u):$(id -g)"`},
			Env:     []string{"FOO=bar baz", "FROM_IMAGE=2"},
			WorkDir: "/tmp",
			User:    "nobody",
		}, "FOO=bar baz FROM_IMAGE=2 KEEP=1 PWD=/tmp ID=65534:65534\n"},
		{"numeric user", runtime.Spec{Command: []string{"/bin/sh", "-c", "id -u; id -g"}, User: "1234:5678"}, "1234\n5678\n"},
		{"host network files", runtime.Spec{Command: []string{"/bin/sh", "-c", "cat /etc/hosts >/dev/null && cat /etc/resolv.conf >/dev/null && echo ok; touch /etc/hosts 2>/dev/null || echo ro"}}, "ok\nro\n"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.spec.ID = "o" + strconv.Itoa(i)
			tt.spec.Image = ref
			tt.spec.LogPath = filepath.Join(logs, tt.spec.ID+".log")
			e.run(tt.spec)
			ch, err := e.ex.Wait(ctx, tt.spec.ID)
			if err != nil {
				t.Fatal(err)
			}
			if ex := waitExit(t, ch, 10*time.Second); ex.Code != 0 {
				t.Fatalf("exit = %+v; log: %s", ex, readFile(tt.spec.LogPath))
			}
			if got := waitLog(t, tt.spec.LogPath, tt.want); got != tt.want {
				t.Fatalf("log = %q, want %q", got, tt.want)
			}
		})
	}

	// Host network: the container sees the host's interfaces.
	t.Run("host network", func(t *testing.T) {
		hostIfs, err := os.ReadFile("/proc/net/dev")
		if err != nil {
			t.Skip(err)
		}
		spec := runtime.Spec{ID: "net", Image: ref, Command: []string{"/bin/cat", "/proc/net/dev"}, LogPath: filepath.Join(logs, "net.log")}
		e.run(spec)
		ch, _ := e.ex.Wait(ctx, "net")
		waitExit(t, ch, 10*time.Second)
		got := waitLog(t, spec.LogPath, "lo:")
		if n, m := strings.Count(got, "\n"), strings.Count(string(hostIfs), "\n"); n != m {
			t.Fatalf("container sees %d lines of /proc/net/dev, host %d: not the host network", n, m)
		}
	})

	// The log file is appended to across restarts.
	t.Run("log appends across restarts", func(t *testing.T) {
		if err := e.ex.Start(ctx, "o0"); err != nil {
			t.Fatal(err)
		}
		ch, _ := e.ex.Wait(ctx, "o0")
		waitExit(t, ch, 10*time.Second)
		waitLog(t, filepath.Join(logs, "o0.log"), "entry default\nentry default\n")
	})
}

func readFile(path string) string {
	data, _ := os.ReadFile(path)
	return string(data)
}

// cgroupFile returns the content of a cgroup v1 file of a process's cgroup
// for controller.
func cgroupFile(t *testing.T, pid uint32, controller, file string) string {
	t.Helper()
	data, err := os.ReadFile("/proc/" + strconv.Itoa(int(pid)) + "/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			if c != controller {
				continue
			}
			dirs, _ := filepath.Glob("/sys/fs/cgroup/*" + controller + "*")
			for _, d := range dirs {
				if v, err := os.ReadFile(filepath.Join(d, parts[2], file)); err == nil {
					return strings.TrimSpace(string(v))
				}
			}
		}
	}
	if parts := strings.Fields(string(data)); len(parts) == 1 && strings.HasPrefix(parts[0], "0::") {
		t.Skip("cgroup v2 host: this test reads cgroup v1 files")
	}
	t.Fatalf("no %s/%s for pid %d in:\n%s", controller, file, pid, data)
	return ""
}

func TestResourceLimits(t *testing.T) {
	e := newTestEnv(t)
	e.importImage(bbRef, ociimage.Config{Cmd: []string{"/bin/sleep", "1000"}})
	c := e.run(runtime.Spec{ID: "limited", MemoryBytes: 64 << 20, NanoCPUs: 500_000_000})
	if got := cgroupFile(t, c.Pid, "memory", "memory.limit_in_bytes"); got != strconv.Itoa(64<<20) {
		t.Errorf("memory.limit_in_bytes = %s, want %d", got, 64<<20)
	}
	if got := cgroupFile(t, c.Pid, "cpu", "cpu.cfs_quota_us"); got != "50000" {
		t.Errorf("cpu.cfs_quota_us = %s, want 50000", got)
	}
	if got := cgroupFile(t, c.Pid, "cpu", "cpu.cfs_period_us"); got != "100000" {
		t.Errorf("cpu.cfs_period_us = %s, want 100000", got)
	}
	u := e.run(runtime.Spec{ID: "unlimited"})
	if got, _ := strconv.ParseInt(cgroupFile(t, u.Pid, "memory", "memory.limit_in_bytes"), 10, 64); got < 1<<40 {
		t.Errorf("unlimited container has memory.limit_in_bytes %d", got)
	}
}

// TestAdoption: a second Executor, as after a restart of the agent, sees and
// waits on a container the first one started.
func TestAdoption(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	e.importImage(bbRef, ociimage.Config{Cmd: []string{"/bin/sleep", "1000"}})
	logPath := filepath.Join(t.TempDir(), "a.log")
	c := e.run(runtime.Spec{ID: "adopted", Labels: map[string]string{"k": "v"}, LogPath: logPath,
		Command: []string{"/bin/sh", "-c", "echo first; exec sleep 1000"}})
	waitLog(t, logPath, "first")
	if err := e.ex.Close(); err != nil {
		t.Fatal(err)
	}

	ex2, err := New(ctx, e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.ex = ex2 // the cleanup removes containers and closes it
	got, err := ex2.Inspect(ctx, "adopted")
	if err != nil || got.State != runtime.StateRunning || got.Pid != c.Pid || got.Labels["k"] != "v" || got.LogPath != logPath {
		t.Fatalf("second executor Inspect = %+v, %v; first saw %+v", got, err, c)
	}
	list, err := ex2.List(ctx, map[string]string{"k": "v"})
	if err != nil || len(list) != 1 {
		t.Fatalf("second executor List = %+v, %v", list, err)
	}
	ch, err := ex2.Wait(ctx, "adopted")
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(int(c.Pid), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if ex := waitExit(t, ch, 10*time.Second); ex.Code != 137 {
		t.Fatalf("adopted exit = %+v, want 137", ex)
	}
	// Restart in place from the second executor still logs to the same file.
	if err := ex2.Start(ctx, "adopted"); err != nil {
		t.Fatal(err)
	}
	waitLog(t, logPath, "first\nfirst\n")
	if err := ex2.Stop(ctx, "adopted", 0); err != nil {
		t.Fatal(err)
	}
}

// TestWaitContext: a cancelled Wait reports the context's error, and the
// container keeps running.
func TestWaitContext(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	e.importImage(bbRef, ociimage.Config{Cmd: []string{"/bin/sleep", "1000"}})
	e.run(runtime.Spec{ID: "w"})
	wctx, cancel := context.WithCancel(ctx)
	ch, err := e.ex.Wait(wctx, "w")
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	if ex := waitExit(t, ch, 5*time.Second); !errors.Is(ex.Err, context.Canceled) {
		t.Fatalf("exit = %+v, want context.Canceled", ex)
	}
	if c, _ := e.ex.Inspect(ctx, "w"); c.State != runtime.StateRunning {
		t.Fatalf("after a cancelled Wait: %+v", c)
	}
}

func TestImportDockerSave(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	oci := busyboxImage(t, "ignored:v1", ociimage.Config{Cmd: []string{"/bin/echo", "from docker-save"}})
	imgs, err := e.ex.ImportImage(ctx, bytes.NewReader(dockerSave(t, oci, "saved/app:v2")))
	if err != nil {
		t.Fatal(err)
	}
	if len(imgs) != 1 || imgs[0].Ref != "docker.io/saved/app:v2" {
		t.Fatalf("imported %+v", imgs)
	}
	logPath := filepath.Join(t.TempDir(), "s.log")
	e.run(runtime.Spec{ID: "s", Image: "saved/app:v2", LogPath: logPath})
	waitLog(t, logPath, "from docker-save\n")

	if _, err := e.ex.ImportImage(ctx, strings.NewReader("not a tar")); err == nil {
		t.Fatal("import of garbage succeeded")
	}
}

// TestSupervisorRestart: a killed containerd is restarted and the
// containers it had survive it.
func TestSupervisorRestart(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	e.importImage(bbRef, ociimage.Config{Cmd: []string{"/bin/sleep", "1000"}})
	c := e.run(runtime.Spec{ID: "survivor"})

	// Asking again finds the running daemon and does not own it.
	again, err := StartOwnContainerd(ctx, e.dataDir, WithAddress(e.sup.Address))
	if err != nil || again.Owned() {
		t.Fatalf("second StartOwnContainerd = %+v, %v; want the running daemon, not owned", again, err)
	}
	_ = again.Stop()
	if !Reachable(ctx, e.sup.Address) {
		t.Fatal("Stop of a not-owned daemon stopped it")
	}

	pid := e.sup.Pid()
	if pid == 0 {
		t.Fatal("no containerd pid")
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "containerd restarted", func() bool {
		return e.sup.Restarts() >= 1 && e.sup.Pid() != 0 && e.sup.Pid() != pid && Reachable(ctx, e.sup.Address)
	})
	var got runtime.Container
	waitFor(t, 15*time.Second, "container inspected after the restart", func() bool {
		got, err = e.ex.Inspect(ctx, "survivor")
		return err == nil
	})
	if got.State != runtime.StateRunning || got.Pid != c.Pid {
		t.Fatalf("after containerd restart: %+v, before %+v", got, c)
	}
	if err := syscall.Kill(int(c.Pid), 0); err != nil {
		t.Fatalf("container process gone: %v", err)
	}
}

func TestStartOwnContainerdErrors(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	long := "/tmp/" + strings.Repeat("x", 120) + "/c.sock"
	if _, err := StartOwnContainerd(ctx, dir, WithAddress(long), WithBinary("/bin/true")); err == nil || !strings.Contains(err.Error(), "unix socket") {
		t.Fatalf("long socket path: %v", err)
	}
	short, err := os.MkdirTemp("/tmp", "wr")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(short)
	sock := filepath.Join(short, "c.sock")
	if _, err := StartOwnContainerd(ctx, dir, WithAddress(sock), WithBinary("no-such-containerd-binary")); err == nil || !strings.Contains(err.Error(), sock) {
		t.Fatalf("missing binary: %v", err)
	}
	// A "containerd" that exits at once: the error carries its log.
	fake := filepath.Join(short, "fake-containerd")
	if err := os.WriteFile(fake, []byte("#!/bin/sh\necho fake daemon failing: $@\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	_, err = StartOwnContainerd(ctx, dir, WithAddress(sock), WithBinary(fake), WithStartTimeout(10*time.Second))
	if err == nil || !strings.Contains(err.Error(), "fake daemon failing: --config") {
		t.Fatalf("failing daemon: %v", err)
	}
	// One that never answers: the deadline error names the socket.
	hang := filepath.Join(short, "hang-containerd")
	if err := os.WriteFile(hang, []byte("#!/bin/sh\necho hanging\nexec sleep 60\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	_, err = StartOwnContainerd(ctx, dir, WithAddress(sock), WithBinary(hang), WithStartTimeout(500*time.Millisecond))
	if err == nil || !strings.Contains(err.Error(), "did not answer at "+sock) || !strings.Contains(err.Error(), "hanging") {
		t.Fatalf("hanging daemon: %v", err)
	}
	if Reachable(ctx, sock) {
		t.Fatal("Reachable on a dead socket")
	}
}

func TestNewUnreachable(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "none.sock")
	_, err := New(context.Background(), Config{Address: sock, DialTimeout: 300 * time.Millisecond})
	if err == nil || !strings.Contains(err.Error(), sock) {
		t.Fatalf("New on a missing socket: %v", err)
	}
	t.Logf("error: %v", err)
}

func TestNormalizeRef(t *testing.T) {
	var e Executor
	for in, want := range map[string]string{
		"nginx":              "docker.io/library/nginx:latest",
		"nginx:1.25":         "docker.io/library/nginx:1.25",
		"library/nginx":      "docker.io/library/nginx:latest",
		"myreg:5000/x/y:tag": "myreg:5000/x/y:tag",
		"nginx@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef": "docker.io/library/nginx@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
	} {
		if got, err := e.NormalizeRef(in); err != nil || got != want {
			t.Errorf("NormalizeRef(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"UPPER", "", "nginx@sha256:abc"} {
		if _, err := e.NormalizeRef(in); !errors.Is(err, runtime.ErrInvalidArgument) {
			t.Errorf("NormalizeRef(%q) error = %v, want ErrInvalidArgument", in, err)
		}
	}
}
