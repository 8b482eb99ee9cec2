package manager

import (
	"context"
	"fmt"
	"io"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/internal/runtime"
	"github.com/warren-project/warren/internal/runtime/containerd"
)

// localImages serves the image API from this manager's own node. When nodes
// join (a later milestone), imports are streamed to them through their
// sessions; this is the seam.
type localImages struct {
	exec   runtime.Executor
	nodeID string
	// resolve asks the image's registry whether it knows ref.
	resolve func(ctx context.Context, ref string) error
}

func newLocalImages(exec runtime.Executor, nodeID string) *localImages {
	return &localImages{exec: exec, nodeID: nodeID, resolve: resolveInRegistry}
}

func resolveInRegistry(ctx context.Context, ref string) error {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	_, _, err := containerd.Resolver(nil).Resolve(ctx, ref)
	return err
}

func (l *localImages) NormalizeRef(ref string) (string, error) { return l.exec.NormalizeRef(ref) }

func (l *localImages) CheckImage(ctx context.Context, ref string) error {
	has, err := l.exec.HasImage(ctx, ref)
	if err != nil {
		return fmt.Errorf("cannot look it up on node %s: %w", l.nodeID, err)
	}
	if has {
		return nil
	}
	if err := l.resolve(ctx, ref); err != nil {
		return fmt.Errorf("not on any node, and its registry cannot be asked: %w", err)
	}
	return nil
}

func (l *localImages) ImportImage(ctx context.Context, r io.Reader, nodeIDs []string) ([]*api.Image, error) {
	if len(nodeIDs) > 0 && !(len(nodeIDs) == 1 && nodeIDs[0] == l.nodeID) {
		return nil, fmt.Errorf("import to other nodes is not available yet: import on node %s only", l.nodeID)
	}
	imgs, err := l.exec.ImportImage(ctx, r)
	if err != nil {
		return nil, err
	}
	return l.toAPI(imgs), nil
}

func (l *localImages) ListImages(ctx context.Context) ([]*api.Image, error) {
	imgs, err := l.exec.ListImages(ctx)
	if err != nil {
		return nil, err
	}
	return l.toAPI(imgs), nil
}

func (l *localImages) toAPI(imgs []runtime.Image) []*api.Image {
	out := make([]*api.Image, 0, len(imgs))
	for _, i := range imgs {
		img := &api.Image{Ref: i.Ref, Digest: i.Digest, Size: i.Size, NodeIds: []string{l.nodeID}}
		if !i.Created.IsZero() {
			img.CreatedAt = timestamppb.New(i.Created)
		}
		out = append(out, img)
	}
	return out
}
