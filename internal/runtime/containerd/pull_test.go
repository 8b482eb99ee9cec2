package containerd

import (
	"context"
	"crypto/rand"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	digest "github.com/opencontainers/go-digest"

	"github.com/warren-project/warren/internal/ociimage"
	"github.com/warren-project/warren/internal/runtime"
)

// startRegistry runs Debian's docker-registry on a free loopback port and
// returns its host:port.
func startRegistry(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("docker-registry")
	if err != nil {
		t.Skip("no docker-registry binary (Debian: apt-get install docker-registry)")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()

	dir := t.TempDir()
	cfg := fmt.Sprintf(`version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
http:
  addr: %s
`, filepath.Join(dir, "data"), addr)
	cfgPath := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(dir, "registry.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", cfgPath)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	logf.Close()
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		if t.Failed() {
			data, _ := os.ReadFile(filepath.Join(dir, "registry.log"))
			t.Logf("registry log:\n%s", data)
		}
	})
	hc := &http.Client{Timeout: time.Second}
	waitFor(t, 15*time.Second, "registry answering at "+addr, func() bool {
		select {
		case <-exited:
			data, _ := os.ReadFile(filepath.Join(dir, "registry.log"))
			t.Fatalf("registry exited:\n%s", data)
		default:
		}
		resp, err := hc.Get("http://" + addr + "/v2/")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return addr
}

func TestPullFromLocalRegistry(t *testing.T) {
	e := newTestEnv(t)
	reg := startRegistry(t)
	ctx := context.Background()
	ref := reg + "/warren/pulltest:v1"

	// A distinct, incompressible layer, so that the pull really downloads.
	noise := make([]byte, 1<<20)
	if _, err := rand.Read(noise); err != nil {
		t.Fatal(err)
	}
	img := e.importImage(ref, ociimage.Config{Cmd: []string{"/bin/echo", "pulled ok"}},
		ociimage.File{Path: "/etc/noise", Content: noise})
	if err := e.ex.PushImage(ctx, ref, nil); err != nil {
		t.Fatalf("push: %v", err)
	}
	if err := e.ex.DeleteImage(ctx, ref); err != nil {
		t.Fatal(err)
	}
	if ok, err := e.ex.HasImage(ctx, ref); err != nil || ok {
		t.Fatalf("HasImage after delete = %v, %v", ok, err)
	}
	cs := e.ex.Client().ContentStore()
	nctx := e.ex.WithNamespace(ctx)
	if _, err := cs.Info(nctx, digestOf(t, img.Digest)); !errdefs.IsNotFound(err) {
		t.Fatalf("manifest still in the content store after delete: %v", err)
	}

	var mu sync.Mutex
	var reports []runtime.PullProgress
	err := e.ex.PullImage(ctx, ref, nil, func(p runtime.PullProgress) {
		mu.Lock()
		defer mu.Unlock()
		reports = append(reports, p)
	})
	if err != nil {
		t.Fatalf("pull: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(reports) == 0 {
		t.Fatal("no progress reported")
	}
	last := reports[len(reports)-1]
	t.Logf("%d progress reports, last %+v", len(reports), last)
	if last.Status != "done" || last.Ref != ref || last.Total < int64(len(noise)) || last.Done != last.Total {
		t.Fatalf("last progress = %+v, want done with Total >= %d", last, len(noise))
	}
	for i, p := range reports {
		if p.Done > p.Total || p.Done < 0 {
			t.Fatalf("report %d = %+v: Done out of range", i, p)
		}
	}
	if ok, err := e.ex.HasImage(ctx, ref); err != nil || !ok {
		t.Fatalf("HasImage after pull = %v, %v", ok, err)
	}
	imgs, _ := e.ex.ListImages(ctx)
	found := false
	for _, i := range imgs {
		found = found || (i.Ref == ref && i.Digest == img.Digest)
	}
	if !found {
		t.Fatalf("pulled image %s@%s not in %+v", ref, img.Digest, imgs)
	}

	logPath := filepath.Join(t.TempDir(), "p.log")
	e.run(runtime.Spec{ID: "pulled", Image: ref, LogPath: logPath})
	waitLog(t, logPath, "pulled ok\n")

	// A missing tag fails with a not-found error.
	if err := e.ex.PullImage(ctx, reg+"/warren/pulltest:nope", nil, nil); err == nil || !errdefs.IsNotFound(err) {
		t.Fatalf("pull of a missing tag: %v, want not found", err)
	}
	// Nothing listens there: the error comes back (no hang, no HTTPS).
	if err := e.ex.PullImage(ctx, "127.0.0.1:1/x:y", nil, nil); err == nil {
		t.Fatal("pull from a closed port succeeded")
	}
}

func digestOf(t *testing.T, s string) digest.Digest {
	t.Helper()
	d, err := digest.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return d
}
