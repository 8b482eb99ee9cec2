package containerd

import (
	"context"
	"crypto/rand"
	"path/filepath"
	"sync"
	"testing"

	"github.com/containerd/errdefs"
	digest "github.com/opencontainers/go-digest"

	"github.com/warren-project/warren/internal/ociimage"
	"github.com/warren-project/warren/internal/runtime"
	"github.com/warren-project/warren/internal/testutil"
)

func TestPullFromLocalRegistry(t *testing.T) {
	e := newTestEnv(t)
	reg := testutil.StartRegistry(t)
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
