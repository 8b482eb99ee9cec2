package containerd

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/warren-project/warren/internal/ociimage"
	"github.com/warren-project/warren/internal/runtime"
	"github.com/warren-project/warren/internal/testutil"
)

// testEnv is a containerd of the test's own, in a temporary directory, and
// an Executor connected to it.
type testEnv struct {
	t       *testing.T
	dataDir string
	sup     *Supervised
	ex      *Executor
	cfg     Config
}

// requireHost skips the test unless it runs as root on a host with
// containerd, runc and a static busybox.
func requireHost(t *testing.T) {
	t.Helper()
	testutil.RequireRoot(t, "containerd", "containerd-shim-runc-v2", "runc", "busybox")
}

// newTestEnv starts containerd under t.TempDir() (socket in a short /tmp
// directory) and connects an Executor. Everything is torn down at cleanup.
func newTestEnv(t *testing.T) *testEnv {
	t.Helper()
	requireHost(t)
	ctx := context.Background()
	dataDir := t.TempDir()
	sockDir, err := os.MkdirTemp("/tmp", "wr")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(sockDir) })

	logger := slog.New(slog.NewTextHandler(t.Output(), nil))
	sup, err := StartOwnContainerd(ctx, dataDir, WithAddress(filepath.Join(sockDir, "c.sock")), WithLogger(logger))
	if err != nil {
		t.Fatalf("start containerd: %v", err)
	}
	if !sup.Owned() {
		t.Fatalf("a containerd already answers at %s", sup.Address)
	}
	// runc keeps its state in /run/containerd/runc/NAMESPACE whichever
	// containerd runs it: a namespace of its own per test keeps leftovers of
	// a failed run from colliding with the next.
	ns := "warren-test-" + strconv.FormatInt(time.Now().UnixNano()%1e9, 36)
	t.Cleanup(func() {
		if err := sup.Stop(); err != nil {
			t.Errorf("stop containerd: %v", err)
		}
		removeLeftovers(t, sup.Address, ns)
		unmountUnder(t, dataDir)
		removeCgroups(ns)
		if t.Failed() {
			t.Logf("containerd log:\n%s", sup.logTail())
		}
	})

	cfg := Config{Address: sup.Address, Namespace: ns, Logger: logger}
	ex, err := New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	e := &testEnv{t: t, dataDir: dataDir, sup: sup, ex: ex, cfg: ex.Config()}
	// Through e.ex: a test may replace the executor.
	t.Cleanup(func() { e.ex.Close() })
	t.Cleanup(func() {
		cs, err := e.ex.List(ctx, nil)
		if err != nil {
			t.Errorf("cleanup: list: %v", err)
			return
		}
		for _, c := range cs {
			// A shim busy with a killed exec may answer late: retry a
			// while. What still fails is forced away below (runc delete,
			// shim killed), so it is a note, not a failure of the test.
			deadline := time.Now().Add(20 * time.Second)
			err := e.ex.Remove(ctx, c.ID)
			for err != nil && time.Now().Before(deadline) {
				time.Sleep(500 * time.Millisecond)
				err = e.ex.Remove(ctx, c.ID)
			}
			if err != nil {
				t.Logf("cleanup: remove %s: %v (forcing it away)", c.ID, err)
			}
		}
	})
	return e
}

// unmountUnder lazily unmounts whatever a failed test left mounted under dir,
// so that t.TempDir's removal works.
func unmountUnder(t *testing.T, dir string) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return
	}
	defer f.Close()
	var mounts []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 4 && strings.HasPrefix(fields[4], dir+"/") {
			mounts = append(mounts, fields[4])
		}
	}
	slices.Reverse(mounts)
	for _, m := range mounts {
		t.Logf("unmounting leftover %s", m)
		_ = syscall.Unmount(m, syscall.MNT_DETACH)
	}
}

// removeLeftovers deletes the runc containers of namespace ns and kills the
// shims of the daemon at address, should a failed test have left any after
// its daemon stopped. It does nothing after a clean run.
func removeLeftovers(t *testing.T, address, ns string) {
	root := "/run/containerd/runc/" + ns
	entries, _ := os.ReadDir(root)
	for _, en := range entries {
		t.Logf("deleting leftover runc container %s/%s", ns, en.Name())
		if out, err := exec.Command("runc", "--root", root, "delete", "--force", en.Name()).CombinedOutput(); err != nil {
			t.Logf("runc delete %s: %v: %s", en.Name(), err, out)
		}
	}
	_ = os.Remove(root)
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		data, err := os.ReadFile(p)
		if err != nil || !bytes.Contains(data, []byte("containerd-shim")) {
			continue
		}
		args := strings.Split(string(data), "\x00")
		if i := slices.Index(args, "-address"); i >= 0 && i+1 < len(args) && args[i+1] == address {
			pid, _ := strconv.Atoi(strings.Split(p, "/")[2])
			t.Logf("killing leftover shim %d", pid)
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// removeCgroups removes the (empty) cgroup v1 directories of a namespace.
func removeCgroups(ns string) {
	dirs, _ := filepath.Glob("/sys/fs/cgroup/*/" + ns)
	for _, d := range dirs {
		_ = os.Remove(d)
	}
}

// busyboxImage returns an OCI layout tar of a busybox image named ref.
func busyboxImage(t *testing.T, ref string, cfg ociimage.Config, extra ...ociimage.File) []byte {
	return testutil.BusyboxImage(t, ref, cfg, extra...)
}

// importImage builds and imports a busybox image named ref.
func (e *testEnv) importImage(ref string, cfg ociimage.Config, extra ...ociimage.File) runtime.Image {
	e.t.Helper()
	imgs, err := e.ex.ImportImage(context.Background(), bytes.NewReader(busyboxImage(e.t, ref, cfg, extra...)))
	if err != nil {
		e.t.Fatalf("import %s: %v", ref, err)
	}
	if len(imgs) != 1 {
		e.t.Fatalf("import %s gave %d images", ref, len(imgs))
	}
	return imgs[0]
}

const bbRef = "docker.io/library/busybox:warren-test"

// run creates and starts a container, returning its inspection.
func (e *testEnv) run(spec runtime.Spec) runtime.Container {
	e.t.Helper()
	ctx := context.Background()
	if spec.Image == "" {
		spec.Image = bbRef
	}
	if err := e.ex.Create(ctx, spec); err != nil {
		e.t.Fatalf("create %s: %v", spec.ID, err)
	}
	if err := e.ex.Start(ctx, spec.ID); err != nil {
		e.t.Fatalf("start %s: %v", spec.ID, err)
	}
	c, err := e.ex.Inspect(ctx, spec.ID)
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	testutil.WaitFor(t, timeout, what, cond)
}

// waitExit receives the exit from ch within timeout.
func waitExit(t *testing.T, ch <-chan runtime.Exit, timeout time.Duration) runtime.Exit {
	t.Helper()
	select {
	case e := <-ch:
		return e
	case <-time.After(timeout):
		t.Fatalf("no exit within %s", timeout)
		return runtime.Exit{}
	}
}

// waitLog polls a container's log until its output contains want, and
// returns the output (both streams, as logText gives it).
func waitLog(t *testing.T, path, want string) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := logText(t, path)
		if strings.Contains(got, want) {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("log %s has no %q after 10s; it has:\n%s", path, want, got)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// dockerSave converts an OCI layout tar from ociimage.Build into the legacy
// docker-save layout (manifest.json, no index.json) named by tag.
func dockerSave(t *testing.T, ociTar []byte, tag string) []byte {
	t.Helper()
	blobs := map[string][]byte{}
	tr := tar.NewReader(bytes.NewReader(ociTar))
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(tr)
		blobs[h.Name] = data
	}
	var index struct{ Manifests []struct{ Digest string } }
	if err := json.Unmarshal(blobs["index.json"], &index); err != nil {
		t.Fatal(err)
	}
	blob := func(dg string) string { return "blobs/sha256/" + strings.TrimPrefix(dg, "sha256:") }
	var manifest struct {
		Config struct{ Digest string }
		Layers []struct{ Digest string }
	}
	if err := json.Unmarshal(blobs[blob(index.Manifests[0].Digest)], &manifest); err != nil {
		t.Fatal(err)
	}
	entry := map[string]any{"Config": blob(manifest.Config.Digest), "RepoTags": []string{tag}}
	var layers []string
	for _, l := range manifest.Layers {
		layers = append(layers, blob(l.Digest))
	}
	entry["Layers"] = layers
	mj, _ := json.Marshal([]any{entry})

	var out bytes.Buffer
	tw := tar.NewWriter(&out)
	write := func(name string, data []byte) {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		_, _ = tw.Write(data)
	}
	write("manifest.json", mj)
	for _, name := range append([]string{entry["Config"].(string)}, layers...) {
		write(name, blobs[name])
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}
