package manager

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/internal/manager/apiserver"
	"github.com/warren-project/warren/internal/state"
)

// awaitNodes waits until every target node that is up holds the archive's
// images, for at most loadWait. It wakes on store changes: the nodes'
// reports arrive as node updates. A node that is down is not waited for:
// it loads the archive when it is back. That is an error when the caller
// named the node; for an import to every node it is the normal case of a
// node away (at the edge, often), like a node that joins later, and only
// logged: the result shows where the images are.
func (c *clusterImages) awaitNodes(ctx context.Context, w *written) ([]*api.Image, error) {
	wctx, cancel := context.WithTimeout(ctx, c.loadWait)
	defer cancel()
	for {
		var idx uint64
		var p loadProgress
		c.store.View(func(tx state.ReadTx) {
			idx = tx.Index()
			p = loadState(tx, w)
		})
		if len(p.waiting) == 0 {
			return c.result(p, w)
		}
		if wctx.Err() != nil {
			if ctx.Err() != nil {
				return p.images, fmt.Errorf("stopped waiting for the nodes to load the image: %w", ctx.Err())
			}
			for _, id := range p.waiting {
				p.missing[id] = fmt.Sprintf("did not report the image within %s (it keeps trying)", c.loadWait)
			}
			return c.result(p, w)
		}
		c.store.WaitForIndex(wctx, idx)
	}
}

// loadProgress is where an archive's load stands.
type loadProgress struct {
	images  []*api.Image
	missing map[string]string // node ID → why it will not load it now
	later   map[string]string // the same, for nodes away from an import to every node
	waiting []string          // nodes up that have not loaded it yet
}

func (c *clusterImages) result(p loadProgress, w *written) ([]*api.Image, error) {
	for id, why := range p.later {
		if len(p.missing) > 0 {
			p.missing[id] = why // an error anyway: name every node without the image
		} else {
			c.log.Warn("image archive not loaded on a node that is away", "image.archive", w.archive.GetDigest(), "node.id", id, "reason", why)
		}
	}
	if len(p.missing) > 0 {
		return p.images, &apiserver.IncompleteImportError{Refs: w.archive.GetRefs(), Images: p.images, Missing: p.missing}
	}
	return p.images, nil
}

func loadState(tx state.ReadTx, w *written) loadProgress {
	a := w.archive
	p := loadProgress{missing: map[string]string{}, later: map[string]string{}}
	away := p.missing
	nodes := tx.ListNodes()
	targets := a.GetNodeIds()
	if len(targets) == 0 {
		away = p.later
		for _, n := range nodes {
			targets = append(targets, n.GetId())
		}
	}
	for _, id := range targets {
		n := tx.GetNode(id)
		switch {
		case n == nil:
			p.missing[id] = "removed from the cluster"
		case hasLoaded(n, w):
		case n.GetStatus().GetState() != api.NodeState_NODE_STATE_READY:
			away[id] = fmt.Sprintf("node is %s: it loads the image when it is back", nodeStateName(n))
		default:
			p.waiting = append(p.waiting, id)
		}
	}
	p.images = imagesOnNodes(nodes, func(ref string) bool { return slices.Contains(a.GetRefs(), ref) })
	return p
}

// hasLoaded tells whether node n holds every image of the archive. A node
// that held an image of that name before the import holds the new one
// when it reports the digest this manager got, or any change.
func hasLoaded(n *api.Node, w *written) bool {
	have := map[string]string{}
	for _, img := range n.GetDescription().GetImages() {
		have[img.GetRef()] = img.GetDigest()
	}
	before := w.before[n.GetId()]
	for _, ref := range w.archive.GetRefs() {
		digest, ok := have[ref]
		if !ok {
			return false
		}
		if old, held := before[ref]; held && old == digest && digest != w.want[ref] {
			return false // still the image it held before the import
		}
	}
	return true
}

func nodeStateName(n *api.Node) string {
	return strings.ToLower(strings.TrimPrefix(n.GetStatus().GetState().String(), "NODE_STATE_"))
}
