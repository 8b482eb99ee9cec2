package containerd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/containerd/v2/core/remotes"
	"github.com/containerd/containerd/v2/core/remotes/docker"
	"github.com/containerd/errdefs"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/warren-project/warren/internal/runtime"
)

// progressInterval is how often PullImage reports progress.
const progressInterval = 200 * time.Millisecond

// Resolver returns a registry resolver that speaks plain HTTP to loopback
// registries (localhost, 127.0.0.0/8, ::1), as Docker does, and HTTPS to all
// others, with auth's credentials if not nil.
func Resolver(auth *runtime.RegistryAuth) remotes.Resolver {
	var aopts []docker.AuthorizerOpt
	if auth != nil {
		user, pass := auth.Username, auth.Password
		aopts = append(aopts, docker.WithAuthCreds(func(string) (string, string, error) {
			return user, pass, nil
		}))
	}
	return docker.NewResolver(docker.ResolverOptions{
		Hosts: docker.ConfigureDefaultRegistries(
			docker.WithPlainHTTP(docker.MatchLocalhost),
			docker.WithAuthorizer(docker.NewDockerAuthorizer(aopts...)),
		),
	})
}

// PullImage pulls ref for this platform and unpacks it for the snapshotter.
func (e *Executor) PullImage(ctx context.Context, ref string, auth *runtime.RegistryAuth, progress func(runtime.PullProgress)) error {
	name, err := runtime.NormalizeRef(ref)
	if err != nil {
		return err
	}
	ctx = e.WithNamespace(ctx)
	tr := &pullTracker{ref: name, sizes: map[digest.Digest]int64{}, done: map[digest.Digest]bool{}}

	stop := make(chan struct{})
	var wg sync.WaitGroup
	if progress != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(progressInterval)
			defer tick.Stop()
			for {
				select {
				case <-stop:
					return
				case <-tick.C:
					progress(tr.progress(ctx, e.client.ContentStore()))
				}
			}
		}()
	}
	_, err = e.client.Pull(ctx, name,
		client.WithPullUnpack,
		client.WithPullSnapshotter(e.cfg.Snapshotter),
		client.WithResolver(Resolver(auth)),
		client.WithImageHandlerWrapper(tr.wrap))
	close(stop)
	wg.Wait()
	if err != nil {
		return fmt.Errorf("pull %s: %w", name, err)
	}
	if progress != nil {
		p := tr.progress(ctx, e.client.ContentStore())
		p.Done, p.Status = p.Total, "done"
		progress(p)
	}
	return nil
}

// pullTracker sums the sizes of the blobs a pull walks through and how much
// of each is in the content store.
type pullTracker struct {
	ref   string
	mu    sync.Mutex
	sizes map[digest.Digest]int64
	done  map[digest.Digest]bool
}

// wrap sees every descriptor the pull handles and the children it selects
// (layers included, before the unpacker takes them over).
func (t *pullTracker) wrap(h images.Handler) images.Handler {
	return images.HandlerFunc(func(ctx context.Context, desc ocispec.Descriptor) ([]ocispec.Descriptor, error) {
		t.add(desc)
		children, err := h.Handle(ctx, desc)
		if err == nil {
			t.add(children...)
		}
		return children, err
	})
}

func (t *pullTracker) add(descs ...ocispec.Descriptor) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, d := range descs {
		t.sizes[d.Digest] = d.Size
	}
}

func (t *pullTracker) progress(ctx context.Context, cs content.Store) runtime.PullProgress {
	active := map[digest.Digest]int64{}
	if statuses, err := cs.ListStatuses(ctx); err == nil {
		for _, s := range statuses {
			d := s.Expected
			if d == "" {
				d, _ = digest.Parse(s.Ref[strings.LastIndexAny(s.Ref, "-@")+1:])
			}
			active[d] = s.Offset
		}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	p := runtime.PullProgress{Ref: t.ref, Status: "resolving"}
	if len(t.sizes) > 0 {
		p.Status = "downloading"
	}
	for d, size := range t.sizes {
		p.Total += size
		if !t.done[d] {
			if _, err := cs.Info(ctx, d); err == nil {
				t.done[d] = true
			}
		}
		if t.done[d] {
			p.Done += size
		} else {
			p.Done += min(active[d], size)
		}
	}
	return p
}

// PushImage pushes a stored image to its registry. Not part of
// runtime.Executor: for tools and tests.
func (e *Executor) PushImage(ctx context.Context, ref string, auth *runtime.RegistryAuth) error {
	name, err := runtime.NormalizeRef(ref)
	if err != nil {
		return err
	}
	ctx = e.WithNamespace(ctx)
	img, err := e.client.ImageService().Get(ctx, name)
	if err != nil {
		return fmt.Errorf("push %s: %w", name, err)
	}
	if err := e.client.Push(ctx, name, img.Target, client.WithResolver(Resolver(auth))); err != nil {
		return fmt.Errorf("push %s: %w", name, err)
	}
	return nil
}

// DeleteImage removes a stored image and, synchronously, the content and
// snapshots only it used. No error if absent. Not part of runtime.Executor.
func (e *Executor) DeleteImage(ctx context.Context, ref string) error {
	name, err := runtime.NormalizeRef(ref)
	if err != nil {
		return err
	}
	err = e.client.ImageService().Delete(e.WithNamespace(ctx), name, images.SynchronousDelete())
	if err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("delete image %s: %w", name, err)
	}
	return nil
}

// HasImage tells whether ref is stored.
func (e *Executor) HasImage(ctx context.Context, ref string) (bool, error) {
	name, err := runtime.NormalizeRef(ref)
	if err != nil {
		return false, err
	}
	_, err = e.client.ImageService().Get(e.WithNamespace(ctx), name)
	switch {
	case err == nil:
		return true, nil
	case errdefs.IsNotFound(err):
		return false, nil
	}
	return false, fmt.Errorf("image %s: %w", name, err)
}

// ImportImage stores and unpacks the images of an OCI image-layout tar or a
// docker-save tar. Images are named by their io.containerd.image.name
// annotation, else by an org.opencontainers.image.ref.name that is a full
// reference, else (docker-save) by their RepoTags.
func (e *Executor) ImportImage(ctx context.Context, r io.Reader) ([]runtime.Image, error) {
	ctx = e.WithNamespace(ctx)
	imgs, err := e.client.Import(ctx, r, client.WithImageRefTranslator(refNameToImageName))
	if err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	if len(imgs) == 0 {
		return nil, fmt.Errorf("import: the archive names no image (want an io.containerd.image.name or a full org.opencontainers.image.ref.name annotation): %w", runtime.ErrInvalidArgument)
	}
	out := make([]runtime.Image, 0, len(imgs))
	for _, md := range imgs {
		img := client.NewImage(e.client, md)
		if err := img.Unpack(ctx, e.cfg.Snapshotter); err != nil {
			return nil, fmt.Errorf("import: unpack %s: %w", md.Name, err)
		}
		out = append(out, e.imageInfo(ctx, img))
	}
	return out, nil
}

// refNameToImageName keeps an OCI ref.name annotation only when it is a full
// reference: a bare tag ("latest") does not say which repository it is.
func refNameToImageName(name string) string {
	if !strings.ContainsAny(name, "/:@") {
		return ""
	}
	n, err := runtime.NormalizeRef(name)
	if err != nil {
		return ""
	}
	return n
}

// ListImages returns the stored images.
func (e *Executor) ListImages(ctx context.Context) ([]runtime.Image, error) {
	ctx = e.WithNamespace(ctx)
	imgs, err := e.client.ListImages(ctx)
	if err != nil {
		return nil, fmt.Errorf("list images: %w", err)
	}
	out := make([]runtime.Image, 0, len(imgs))
	for _, img := range imgs {
		out = append(out, e.imageInfo(ctx, img))
	}
	return out, nil
}

func (e *Executor) imageInfo(ctx context.Context, img client.Image) runtime.Image {
	md := img.Metadata()
	size, err := img.Size(ctx)
	if err != nil {
		size = 0 // content for this platform is not all there
	}
	return runtime.Image{Ref: md.Name, Digest: md.Target.Digest.String(), Size: size, Created: md.CreatedAt}
}

// getImage returns the stored image ref, unpacked for the snapshotter.
func (e *Executor) getImage(ctx context.Context, ref string) (client.Image, error) {
	img, err := e.client.GetImage(ctx, ref)
	if err != nil {
		if errdefs.IsNotFound(err) {
			return nil, fmt.Errorf("image %s is not on this node: %w", ref, runtime.ErrNotFound)
		}
		return nil, fmt.Errorf("image %s: %w", ref, err)
	}
	unpacked, err := img.IsUnpacked(ctx, e.cfg.Snapshotter)
	if err != nil && !errors.Is(err, errdefs.ErrNotFound) {
		return nil, fmt.Errorf("image %s: %w", ref, err)
	}
	if !unpacked {
		if err := img.Unpack(ctx, e.cfg.Snapshotter); err != nil {
			return nil, fmt.Errorf("unpack image %s: %w", ref, err)
		}
	}
	return img, nil
}
