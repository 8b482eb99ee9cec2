package apiserver

import (
	"context"
	"errors"
	"io"

	"github.com/warren-project/warren/api"
)

// ImportImage streams an archive into the nodes' image stores.
func (s *Server) ImportImage(stream api.Control_ImportImageServer) error {
	first, err := stream.Recv()
	if err != nil {
		return toStatus(err)
	}
	hdr := first.GetHeader()
	if hdr == nil {
		return toStatus(invalid("an image import must start with its header"))
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
	images, err := s.cfg.Images.ImportImage(stream.Context(), pr, hdr.GetNodeIds())
	pr.CloseWithError(err) // unblocks the receiver if the import stopped early
	if err != nil {
		return toStatus(invalid("cannot import the image archive: %v", err))
	}
	return stream.SendAndClose(&api.ImportImageResponse{Images: images})
}

// ListImages lists images stored on the nodes.
func (s *Server) ListImages(ctx context.Context, _ *api.ListImagesRequest) (*api.ListImagesResponse, error) {
	images, err := s.cfg.Images.ListImages(ctx)
	if err != nil {
		return nil, toStatus(err)
	}
	return &api.ListImagesResponse{Images: images}, nil
}
