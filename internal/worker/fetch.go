package worker

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"slices"
	"strings"
	"sync"

	"google.golang.org/grpc/metadata"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/internal/runtime"
)

// nodeIDMetadata names the node to FetchImage. It is the dispatcher's
// NodeIDMetadata (the agent does not import the dispatcher; the cluster
// tests prove the two agree).
const nodeIDMetadata = "warren-node-id"

// load fetches archive a from a manager straight into the executor: no
// temporary file on the node. The bytes are checked against the archive's
// digest as they pass, so a damaged transfer fails the import.
func (l *imageLoader) load(ctx context.Context, client api.DispatcherClient, a *api.ImageArchive) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // ends the fetch if the import stops early
	ctx = metadata.AppendToOutgoingContext(ctx, nodeIDMetadata, l.nodeID)
	stream, err := client.FetchImage(ctx, &api.FetchImageRequest{Digest: a.GetDigest()})
	if err != nil {
		return fmt.Errorf("fetch image archive %s: %w", a.GetDigest(), err)
	}
	r, err := newArchiveReader(stream, a.GetDigest(), a.GetSize())
	if err != nil {
		return err
	}
	imgs, err := l.exec.ImportImage(ctx, r)
	if err != nil {
		return fmt.Errorf("import image archive %s: %w", a.GetDigest(), err)
	}
	// An importer may stop at the end of the tar, before the stream's end:
	// reading the rest completes the digest check.
	if _, err := io.Copy(io.Discard, r); err != nil {
		return fmt.Errorf("image archive %s: %w", a.GetDigest(), err)
	}
	var missing []string
	for _, ref := range a.GetRefs() {
		if !slices.ContainsFunc(imgs, func(i runtime.Image) bool { return i.Ref == ref }) {
			missing = append(missing, ref)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("image archive %s loaded, but without %s", a.GetDigest(), strings.Join(missing, ", "))
	}
	return nil
}

// archiveReader reads a FetchImage stream as the archive's bytes, and at
// the end checks their digest and size: io.EOF only for a whole archive.
type archiveReader struct {
	stream api.Dispatcher_FetchImageClient
	buf    []byte
	h      hash.Hash
	want   string
	size   int64
	n      int64
	err    error // sticky: the end, or why the stream failed
}

func newArchiveReader(stream api.Dispatcher_FetchImageClient, digest string, size int64) (*archiveReader, error) {
	if !strings.HasPrefix(digest, "sha256:") {
		return nil, fmt.Errorf("image archive %s: only sha256 digests are known", digest)
	}
	return &archiveReader{stream: stream, h: sha256.New(), want: digest, size: size}, nil
}

func (r *archiveReader) Read(p []byte) (int, error) {
	for len(r.buf) == 0 {
		if r.err != nil {
			return 0, r.err
		}
		chunk, err := r.stream.Recv()
		switch {
		case errors.Is(err, io.EOF):
			r.err = r.check()
		case err != nil:
			r.err = fmt.Errorf("fetch image archive %s: %w", r.want, err)
		default:
			r.buf = chunk.GetData()
		}
	}
	n := copy(p, r.buf)
	r.buf = r.buf[n:]
	r.h.Write(p[:n])
	r.n += int64(n)
	return n, nil
}

func (r *archiveReader) check() error {
	if got := "sha256:" + hex.EncodeToString(r.h.Sum(nil)); got != r.want {
		return fmt.Errorf("image archive %s arrived damaged: %d bytes hashing to %s", r.want, r.n, got)
	}
	if r.size > 0 && r.n != r.size {
		return fmt.Errorf("image archive %s: got %d bytes, want %d", r.want, r.n, r.size)
	}
	return io.EOF
}

// imageReport holds the node's image list until a session sends it; a
// newer list replaces one not sent yet.
type imageReport struct {
	mu      sync.Mutex
	images  []*api.Image
	pending bool
	wake    chan struct{}
}

func newImageReport() *imageReport { return &imageReport{wake: make(chan struct{}, 1)} }

func (r *imageReport) set(images []*api.Image) {
	r.mu.Lock()
	r.images, r.pending = images, true
	r.mu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// take returns the list to send, if there is one.
func (r *imageReport) take() ([]*api.Image, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	images, ok := r.images, r.pending
	r.images, r.pending = nil, false
	return images, ok
}

// listImages returns the images the node holds, as the API names them.
func (a *Agent) listImages(ctx context.Context) ([]*api.Image, error) {
	imgs, err := a.cfg.Executor.ListImages(ctx)
	if err != nil {
		return nil, fmt.Errorf("list images: %w", err)
	}
	return runtime.ImagesToAPI(imgs), nil
}

// reportImages queues the node's image list for the managers, after the
// images changed (a load, a pull).
func (a *Agent) reportImages(ctx context.Context) {
	images, err := a.listImages(ctx)
	if err != nil {
		if ctx.Err() == nil {
			a.log.Warn("cannot list images to report them", "err", err)
		}
		return
	}
	a.imgReport.set(images)
}
