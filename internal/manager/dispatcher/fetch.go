package dispatcher

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/internal/state"
)

// NodeIDMetadata is the gRPC metadata key a node names itself with when it
// calls FetchImage (whose request names only the archive). Authorize then
// checks, as for a session, that the caller may speak for that node.
const NodeIDMetadata = "warren-node-id"

// CopyMetadata marks a FetchImage made by a manager copying an archive
// for itself: it gets what this manager holds, and this manager does not
// in turn copy the archive from others for it. Two managers that both
// lack an archive would otherwise each wait on the other's copy.
const CopyMetadata = "warren-archive-copy"

// stateLagWait bounds how long a manager's fetch waits for this manager's
// state to catch up with the leader's.
const stateLagWait = 5 * time.Second

// FetchChunkSize is the size of the chunks FetchImage streams.
const FetchChunkSize = 1 << 20

// ArchiveOpener opens the image archives this manager holds.
type ArchiveOpener interface {
	// Open returns the archive's bytes and size, or an error wrapping
	// fs.ErrNotExist when it holds no such archive. The reader fails at
	// its end, instead of returning io.EOF, when the bytes are damaged.
	Open(digest string) (io.ReadCloser, int64, error)
}

// FetchImage streams an imported image archive to a node it is aimed at.
// It returns:
//   - InvalidArgument without a node ID (metadata NodeIDMetadata) or digest;
//   - PermissionDenied when Authorize refuses the caller, or the archive is
//     not aimed at its node;
//   - NotFound when the node is not in the cluster or no such archive was
//     imported;
//   - Unavailable when this manager lacks the archive and cannot copy it
//     from a manager that holds it;
//   - DataLoss when the stored archive is damaged (found at its end: the
//     node must discard what it received).
func (d *Dispatcher) FetchImage(req *api.FetchImageRequest, stream api.Dispatcher_FetchImageServer) error {
	ctx := stream.Context()
	nodeID := nodeIDFrom(metadata.ValueFromIncomingContext(ctx, NodeIDMetadata))
	if nodeID == "" {
		return status.Errorf(codes.InvalidArgument, "fetch image: name the node in the %q metadata", NodeIDMetadata)
	}
	if req.GetDigest() == "" {
		return status.Error(codes.InvalidArgument, "fetch image: no digest")
	}
	if err := d.authorize(ctx, nodeID); err != nil {
		return err
	}
	archive, err := d.mayFetch(ctx, nodeID, req.GetDigest())
	if err != nil {
		return err
	}
	rc, _, err := d.cfg.Archives.Open(req.GetDigest())
	copying := len(metadata.ValueFromIncomingContext(ctx, CopyMetadata)) > 0
	if errors.Is(err, fs.ErrNotExist) && d.cfg.Replicate != nil && !copying {
		// Imported through another manager: copy it here first (a
		// failed-over leader serves what its predecessor imported).
		if rerr := d.cfg.Replicate(ctx, archive); rerr != nil {
			return status.Errorf(codes.Unavailable, "image archive %s is not on manager %s and cannot be copied from manager %s: %v",
				req.GetDigest(), d.cfg.ManagerNodeID, archive.GetHolderNodeId(), rerr)
		}
		rc, _, err = d.cfg.Archives.Open(req.GetDigest())
	}
	if err != nil {
		return status.Errorf(codes.NotFound, "image archive %s on manager %s: %v", req.GetDigest(), d.cfg.ManagerNodeID, err)
	}
	defer rc.Close()
	for {
		// A fresh buffer per chunk: a sent message must not change afterwards.
		buf := make([]byte, FetchChunkSize)
		n, rerr := io.ReadFull(rc, buf)
		if n > 0 {
			if err := stream.Send(&api.FetchImageChunk{Data: buf[:n]}); err != nil {
				return err
			}
		}
		switch {
		case errors.Is(rerr, io.EOF), errors.Is(rerr, io.ErrUnexpectedEOF):
			return nil
		case rerr != nil:
			d.log.Error("cannot serve an image archive", "node.id", nodeID, "image.archive", req.GetDigest(), "err", rerr)
			return status.Errorf(codes.DataLoss, "read image archive %s: %v", req.GetDigest(), rerr)
		}
	}
}

func nodeIDFrom(values []string) string {
	if len(values) != 1 {
		return ""
	}
	return values[0]
}

// mayFetch checks that the archive is imported and aimed at the node (a
// manager may fetch any, to keep a copy), and returns it.
func (d *Dispatcher) mayFetch(ctx context.Context, nodeID, digest string) (*api.ImageArchive, error) {
	var node *api.Node
	var archive *api.ImageArchive
	find := func(tx state.ReadTx) bool {
		node, archive = tx.GetNode(nodeID), nil
		for _, a := range tx.GetCluster().GetImageArchives() {
			if a.GetDigest() == digest {
				archive = a
			}
		}
		return archive != nil
	}
	d.store.View(func(tx state.ReadTx) { find(tx) })
	if archive == nil && node.IsManager() {
		// A manager copying an archive imported here may know of it
		// before this manager's state does: the record is on its way.
		wctx, cancel := context.WithTimeout(ctx, stateLagWait)
		d.store.WaitUntil(wctx, find)
		cancel()
	}
	switch {
	case node == nil:
		return nil, status.Errorf(codes.NotFound, "node %s is not part of this cluster", nodeID)
	case archive == nil:
		return nil, status.Errorf(codes.NotFound, "no image archive %s is imported", digest)
	case !targets(archive, nodeID) && !node.IsManager():
		return nil, status.Errorf(codes.PermissionDenied, "image archive %s is not imported to node %s", digest, nodeID)
	case d.cfg.Archives == nil:
		return nil, status.Error(codes.FailedPrecondition, fmt.Sprintf("manager %s keeps no image archives", d.cfg.ManagerNodeID))
	}
	return archive, nil
}
