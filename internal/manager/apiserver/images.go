package apiserver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/internal/state"
)

// ErrInvalidImport marks an import the caller must change (an archive that
// names no image or that nodes cannot load, an unknown node): the API
// answers InvalidArgument.
var ErrInvalidImport = errors.New("invalid image import")

// IncompleteImportError says an imported archive is stored and recorded,
// but some of the nodes it targets did not load it: they were down (nodes
// named by the caller), or did not report the image in time. They keep
// trying; nodes that come back load it then. The API answers FailedPrecondition, with an ImportImageResponse
// of what was loaded in the status details.
type IncompleteImportError struct {
	Refs   []string
	Images []*api.Image
	// Missing says, per node ID, why it has not loaded the archive.
	Missing map[string]string
}

func (e *IncompleteImportError) Error() string {
	var loaded []string
	for _, img := range e.Images {
		for _, id := range img.GetNodeIds() {
			if !slices.Contains(loaded, id) {
				loaded = append(loaded, id)
			}
		}
	}
	slices.Sort(loaded)
	ids := make([]string, 0, len(e.Missing))
	for id := range e.Missing {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	why := make([]string, 0, len(ids))
	for _, id := range ids {
		why = append(why, fmt.Sprintf("node %s: %s", id, e.Missing[id]))
	}
	where := "no node yet"
	if len(loaded) > 0 {
		where = "node " + strings.Join(loaded, ", ")
	}
	return fmt.Sprintf("imported %s, loaded on %s; not loaded on %s", strings.Join(e.Refs, ", "), where, strings.Join(why, "; "))
}

// ImportImage streams an archive into the nodes' image stores. It returns
// InvalidArgument for a missing header, an unknown node or an archive that
// cannot be loaded, and FailedPrecondition when some target nodes did not
// load it (see IncompleteImportError).
func (s *Server) ImportImage(stream api.Control_ImportImageServer) error {
	first, err := stream.Recv()
	if err != nil {
		return toStatus(err)
	}
	hdr := first.GetHeader()
	if hdr == nil {
		return toStatus(invalid("an image import must start with its header"))
	}
	nodeIDs, err := s.resolveNodes(hdr.GetNodeIds())
	if err != nil {
		return toStatus(err)
	}
	pr, pw := io.Pipe()
	go func() {
		for {
			msg, err := stream.Recv()
			if errors.Is(err, io.EOF) {
				pw.Close()
				return
			}
			if err != nil {
				pw.CloseWithError(err)
				return
			}
			if _, err := pw.Write(msg.GetChunk()); err != nil {
				return // the reader failed; its error is returned below
			}
		}
	}()
	images, err := s.cfg.Images.ImportImage(stream.Context(), pr, nodeIDs)
	pr.CloseWithError(err) // unblocks the receiver if the import stopped early
	if err != nil {
		return importStatus(err)
	}
	return stream.SendAndClose(&api.ImportImageResponse{Images: images})
}

func importStatus(err error) error {
	var inc *IncompleteImportError
	switch {
	case errors.As(err, &inc):
		st := status.New(codes.FailedPrecondition, err.Error())
		if withDetails, derr := st.WithDetails(&api.ImportImageResponse{Images: inc.Images}); derr == nil {
			st = withDetails
		}
		return st.Err()
	case errors.Is(err, ErrInvalidImport):
		return toStatus(invalidArgument{err})
	}
	return toStatus(err)
}

// resolveNodes turns the --node values (IDs, hostnames, unique ID prefixes)
// into node IDs; an unknown one is the caller's mistake.
func (s *Server) resolveNodes(refs []string) ([]string, error) {
	var ids []string
	var err error
	s.cfg.Store.View(func(tx state.ReadTx) {
		for _, ref := range refs {
			n, lerr := tx.LookupNode(ref)
			if lerr != nil {
				err = invalid("cannot import to node %q: %v", ref, lerr)
				return
			}
			if !slices.Contains(ids, n.GetId()) {
				ids = append(ids, n.GetId())
			}
		}
	})
	return ids, err
}

// ListImages lists the images the nodes hold, with the nodes holding each.
func (s *Server) ListImages(ctx context.Context, _ *api.ListImagesRequest) (*api.ListImagesResponse, error) {
	images, err := s.cfg.Images.ListImages(ctx)
	if err != nil {
		return nil, toStatus(err)
	}
	return &api.ListImagesResponse{Images: images}, nil
}
