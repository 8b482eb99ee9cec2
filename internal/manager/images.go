package manager

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/containerd/containerd/v2/core/remotes/docker"
	remoteserrors "github.com/containerd/containerd/v2/core/remotes/errors"
	"google.golang.org/protobuf/proto"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/internal/manager/apiserver"
	"github.com/warren-project/warren/internal/manager/imagestore"
	"github.com/warren-project/warren/internal/runtime"
	"github.com/warren-project/warren/internal/runtime/containerd"
	"github.com/warren-project/warren/internal/state"
)

// defaultLoadWait bounds how long an import waits for the nodes to load it.
const defaultLoadWait = 2 * time.Minute

// clusterImages serves the image API for the whole cluster. An imported
// archive is kept by this manager (imagestore) and recorded in the cluster
// object; the dispatcher tells every node it targets to load it, nodes that
// join later too, and the nodes fetch it through their sessions. Which node
// holds which image comes from the nodes' own reports
// (node.description.images): the store is the one place to look.
type clusterImages struct {
	store    *state.MemoryStore
	archives *imagestore.Store
	// exec is this manager's own node; nil when it runs no tasks.
	exec   runtime.Executor
	nodeID string
	log    *slog.Logger
	// loadWait bounds ImportImage's wait for the nodes.
	loadWait time.Duration
	// resolve asks the image's registry whether it knows ref, with auth
	// when not nil.
	resolve func(ctx context.Context, ref string, auth *runtime.RegistryAuth) error
	now     func() time.Time
}

var _ apiserver.Images = (*clusterImages)(nil)

// newClusterImages returns the image service of the manager whose node is
// nodeID. exec is that node's executor: the manager imports each archive
// there first, which tells the archive's image names.
func newClusterImages(store *state.MemoryStore, archives *imagestore.Store, exec runtime.Executor, nodeID string, logger *slog.Logger) *clusterImages {
	if logger == nil {
		logger = slog.Default()
	}
	return &clusterImages{
		store: store, archives: archives, exec: exec, nodeID: nodeID,
		log:      logger.With("module", "images"),
		loadWait: defaultLoadWait, resolve: resolveInRegistry, now: time.Now,
	}
}

func resolveInRegistry(ctx context.Context, ref string, auth *runtime.RegistryAuth) error {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	_, _, err := containerd.Resolver(auth).Resolve(ctx, ref)
	if registryRefused(err) {
		return fmt.Errorf("%w: %w", apiserver.ErrRegistryUnauthorized, err)
	}
	return err
}

// registryRefused tells a registry's refusal (401, 403, or credentials it
// did not accept) from other failures.
func registryRefused(err error) bool {
	var st remoteserrors.ErrUnexpectedStatus
	if errors.As(err, &st) {
		return st.StatusCode == http.StatusUnauthorized || st.StatusCode == http.StatusForbidden
	}
	return errors.Is(err, docker.ErrInvalidAuthorization)
}

func (c *clusterImages) NormalizeRef(ref string) (string, error) {
	if c.exec == nil {
		return runtime.NormalizeRef(ref)
	}
	return c.exec.NormalizeRef(ref)
}

// CheckImage returns nil when a node holds ref, an imported archive names
// it (nodes load it before they run tasks using it), or its registry
// knows it, asked with auth when it is for that registry.
func (c *clusterImages) CheckImage(ctx context.Context, ref string, auth *api.RegistryAuth) error {
	var known bool
	c.store.View(func(tx state.ReadTx) { known = clusterKnows(tx, ref) })
	if known {
		return nil
	}
	if c.exec != nil {
		if has, err := c.exec.HasImage(ctx, ref); err == nil && has {
			return nil // held here, though not reported yet
		}
	}
	if err := c.resolve(ctx, ref, runtime.PullAuth(auth, ref)); err != nil {
		if errors.Is(err, apiserver.ErrRegistryUnauthorized) {
			return fmt.Errorf("not on any node, not imported, and %w", err)
		}
		return fmt.Errorf("not on any node, not imported, and its registry cannot be asked: %w", err)
	}
	return nil
}

func clusterKnows(tx state.ReadTx, ref string) bool {
	for _, a := range tx.GetCluster().GetImageArchives() {
		if slices.Contains(a.GetRefs(), ref) {
			return true
		}
	}
	for _, n := range tx.ListNodes() {
		if slices.ContainsFunc(n.GetDescription().GetImages(), func(i *api.Image) bool { return i.GetRef() == ref }) {
			return true
		}
	}
	return false
}

// ListImages returns the images the nodes report, one entry per reference
// and digest (a node holding another content under the same name shows
// apart), with the nodes holding each.
func (c *clusterImages) ListImages(context.Context) ([]*api.Image, error) {
	var nodes []*api.Node
	c.store.View(func(tx state.ReadTx) { nodes = tx.ListNodes() })
	return imagesOnNodes(nodes, nil), nil
}

// imagesOnNodes groups the nodes' images by (ref, digest), keeping those
// whose ref keep accepts (all when keep is nil).
func imagesOnNodes(nodes []*api.Node, keep func(ref string) bool) []*api.Image {
	slices.SortFunc(nodes, func(a, b *api.Node) int { return strings.Compare(a.GetId(), b.GetId()) })
	type key struct{ ref, digest string }
	byKey := map[key]*api.Image{}
	var out []*api.Image
	for _, n := range nodes {
		for _, img := range n.GetDescription().GetImages() {
			if keep != nil && !keep(img.GetRef()) {
				continue
			}
			k := key{img.GetRef(), img.GetDigest()}
			entry := byKey[k]
			if entry == nil {
				entry = proto.Clone(img).(*api.Image)
				entry.NodeIds = nil
				byKey[k] = entry
				out = append(out, entry)
			}
			if !slices.Contains(entry.NodeIds, n.GetId()) {
				entry.NodeIds = append(entry.NodeIds, n.GetId())
			}
		}
	}
	slices.SortFunc(out, func(a, b *api.Image) int {
		return cmp.Or(strings.Compare(a.GetRef(), b.GetRef()), strings.Compare(a.GetDigest(), b.GetDigest()))
	})
	return out
}
