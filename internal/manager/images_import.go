package manager

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/internal/manager/apiserver"
	"github.com/warren-project/warren/internal/runtime"
	"github.com/warren-project/warren/internal/state"
)

// ImportImage keeps the archive r on this manager, imports it on this
// manager's node (which names its images), records it in the cluster so
// that every target node loads it (nodeIDs; empty means every node, and
// nodes that join later), and waits, at most loadWait, until the target
// nodes that are up report its images. It returns the images with the
// nodes holding them; when some target did not load them, it returns them
// too, with an *apiserver.IncompleteImportError saying which and why (a
// node that is away is one only when the caller named it: see awaitNodes).
func (c *clusterImages) ImportImage(ctx context.Context, r io.Reader, nodeIDs []string) ([]*api.Image, error) {
	targets, err := c.checkTargets(nodeIDs)
	if err != nil {
		return nil, err
	}
	digest, size, err := c.archives.Put(r)
	if err != nil {
		return nil, fmt.Errorf("receive the image archive: %w", err)
	}
	imgs, err := c.importHere(ctx, digest)
	if err != nil {
		c.dropUnrecorded(digest)
		return nil, err
	}
	archive := &api.ImageArchive{
		Digest: digest, Refs: refsOf(imgs), Size: size, HolderNodeId: c.nodeID,
		NodeIds: targets, CreatedAt: timestamppb.New(c.now()),
	}
	w, err := c.record(ctx, archive, imgs)
	if err != nil {
		c.dropUnrecorded(digest)
		return nil, fmt.Errorf("record the image archive: %w", err)
	}
	c.log.Info("image archive imported", "image.archive", digest, "image.refs", archive.GetRefs(), "image.size", size, "image.nodes", targets)
	c.removeFiles(w.replaced)
	return c.awaitNodes(ctx, w)
}

// checkTargets checks that every target node exists.
func (c *clusterImages) checkTargets(nodeIDs []string) ([]string, error) {
	var out []string
	var unknown []string
	c.store.View(func(tx state.ReadTx) {
		for _, id := range nodeIDs {
			switch {
			case tx.GetNode(id) == nil:
				unknown = append(unknown, id)
			case !slices.Contains(out, id):
				out = append(out, id)
			}
		}
	})
	if len(unknown) > 0 {
		return nil, fmt.Errorf("no node %s in the cluster: %w", strings.Join(unknown, ", "), apiserver.ErrInvalidImport)
	}
	slices.Sort(out)
	return out, nil
}

// importHere imports the stored archive on this manager's node, which tells
// the names of its images; the node then holds them like any target would.
func (c *clusterImages) importHere(ctx context.Context, digest string) ([]runtime.Image, error) {
	if c.exec == nil {
		return nil, errors.New("this manager runs no tasks, so it cannot read the archive's image names: import through a manager that runs tasks")
	}
	rc, _, err := c.archives.Open(digest)
	if err != nil {
		return nil, fmt.Errorf("read back the image archive: %w", err)
	}
	defer rc.Close()
	imgs, err := c.exec.ImportImage(ctx, rc)
	switch {
	case ctx.Err() != nil:
		return nil, ctx.Err()
	case err != nil:
		return nil, fmt.Errorf("cannot import the image archive on node %s: %v: %w", c.nodeID, err, apiserver.ErrInvalidImport)
	case len(imgs) == 0:
		return nil, fmt.Errorf("the image archive names no image: %w", apiserver.ErrInvalidImport)
	}
	return imgs, nil
}

func refsOf(imgs []runtime.Image) []string {
	refs := make([]string, 0, len(imgs))
	for _, i := range imgs {
		if !slices.Contains(refs, i.Ref) {
			refs = append(refs, i.Ref)
		}
	}
	slices.Sort(refs)
	return refs
}

// dropUnrecorded removes an archive file no record refers to (an import
// that failed after storing it).
func (c *clusterImages) dropUnrecorded(digest string) {
	var recorded bool
	c.store.View(func(tx state.ReadTx) {
		recorded = slices.ContainsFunc(tx.GetCluster().GetImageArchives(), func(a *api.ImageArchive) bool { return a.GetDigest() == digest })
	})
	if !recorded {
		c.removeFiles([]string{digest})
	}
}

func (c *clusterImages) removeFiles(digests []string) {
	for _, d := range digests {
		if err := c.archives.Remove(d); err != nil {
			c.log.Warn("cannot remove an image archive nothing uses", "image.archive", d, "err", err)
		}
	}
}

// written is what record wrote, for the wait that follows.
type written struct {
	archive  *api.ImageArchive
	replaced []string // digests of the archives it replaced (held here)
	// before is what each node reported, per ref, when the archive was
	// recorded: a node holding an older image of the same name has loaded
	// the new one when its report changes.
	before map[string]map[string]string
	// want is the digest of each image here, where the archive came from.
	want map[string]string
}

// record adds the archive to the cluster, replacing older archives of the
// same images, and records the images on this manager's node: one write.
func (c *clusterImages) record(ctx context.Context, archive *api.ImageArchive, imgs []runtime.Image) (*written, error) {
	var w *written
	err := c.store.Update(ctx, func(tx state.Tx) error {
		cl := tx.GetCluster()
		if cl == nil {
			return errors.New("the cluster is not initialised")
		}
		w = &written{archive: proto.Clone(archive).(*api.ImageArchive), before: reported(tx.ListNodes()), want: map[string]string{}}
		for _, i := range imgs {
			w.want[i.Ref] = i.Digest
		}
		var dropped []*api.ImageArchive
		cl.ImageArchives, dropped = mergeArchive(cl.GetImageArchives(), w.archive)
		for _, d := range dropped {
			if d.GetHolderNodeId() == c.nodeID {
				w.replaced = append(w.replaced, d.GetDigest())
			}
		}
		if err := tx.Update(cl); err != nil {
			return err
		}
		return c.recordHere(tx, imgs)
	})
	return w, err
}

// recordHere adds the imported images to this manager's node's report: it
// holds them already, so the dispatcher need not tell it to load them.
func (c *clusterImages) recordHere(tx state.Tx, imgs []runtime.Image) error {
	n := tx.GetNode(c.nodeID)
	if n == nil {
		return nil
	}
	if n.Description == nil {
		n.Description = &api.NodeDescription{}
	}
	fresh := runtime.ImagesToAPI(imgs)
	kept := slices.DeleteFunc(n.Description.Images, func(old *api.Image) bool {
		return slices.ContainsFunc(fresh, func(i *api.Image) bool { return i.GetRef() == old.GetRef() })
	})
	n.Description.Images = append(kept, fresh...)
	slices.SortFunc(n.Description.Images, func(a, b *api.Image) int { return strings.Compare(a.GetRef(), b.GetRef()) })
	return tx.Update(n)
}

func reported(nodes []*api.Node) map[string]map[string]string {
	out := make(map[string]map[string]string, len(nodes))
	for _, n := range nodes {
		refs := map[string]string{}
		for _, img := range n.GetDescription().GetImages() {
			refs[img.GetRef()] = img.GetDigest()
		}
		out[n.GetId()] = refs
	}
	return out
}

// mergeArchive adds a to archives. The same bytes imported again make one
// record, aimed at the nodes of both imports. An older archive loses the
// images a names again, and is dropped once it names none.
func mergeArchive(archives []*api.ImageArchive, a *api.ImageArchive) (out, dropped []*api.ImageArchive) {
	for _, old := range archives {
		if old.GetDigest() == a.GetDigest() {
			a.NodeIds = unionTargets(old.GetNodeIds(), a.GetNodeIds())
			continue
		}
		rest := slices.DeleteFunc(slices.Clone(old.GetRefs()), func(r string) bool { return slices.Contains(a.GetRefs(), r) })
		if len(rest) == 0 {
			dropped = append(dropped, old)
			continue
		}
		old.Refs = rest
		out = append(out, old)
	}
	return append(out, a), dropped
}

// unionTargets merges two target lists, where empty means every node.
func unionTargets(a, b []string) []string {
	if len(a) == 0 || len(b) == 0 {
		return nil
	}
	out := slices.Clone(a)
	for _, id := range b {
		if !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}
