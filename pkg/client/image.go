package client

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/warren-project/warren/api"
)

// ImportChunkSize is the size of the chunks ImportImage streams.
const ImportChunkSize = 1 << 20

// ImportImage streams an image archive (an OCI layout or `docker save`
// tar) to the given nodes' image stores (all nodes when nodes is empty) and
// returns the images it held. onBytes, if not nil, gets the running total
// of bytes sent after each chunk.
func (c *Client) ImportImage(ctx context.Context, r io.Reader, nodes []string, onBytes func(int64)) ([]*api.Image, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // ends the stream if we return early
	stream, err := c.ControlClient.ImportImage(ctx)
	if err != nil {
		return nil, fmt.Errorf("import image: %w", err)
	}
	header := &api.ImportImageRequest{Msg: &api.ImportImageRequest_Header{Header: &api.ImportImageHeader{NodeIds: nodes}}}
	if err := stream.Send(header); err != nil {
		return nil, c.importError(stream.CloseAndRecv, err)
	}
	var total int64
	for {
		// A fresh buffer per chunk: gRPC says a sent message must not be
		// modified afterwards (stats handlers may read it lazily).
		buf := make([]byte, ImportChunkSize)
		n, rerr := io.ReadFull(r, buf)
		if n > 0 {
			if err := stream.Send(&api.ImportImageRequest{Msg: &api.ImportImageRequest_Chunk{Chunk: buf[:n]}}); err != nil {
				return nil, c.importError(stream.CloseAndRecv, err)
			}
			total += int64(n)
			if onBytes != nil {
				onBytes(total)
			}
		}
		if errors.Is(rerr, io.EOF) || errors.Is(rerr, io.ErrUnexpectedEOF) {
			break
		}
		if rerr != nil {
			return nil, fmt.Errorf("import image: read the archive: %w", rerr)
		}
	}
	resp, err := stream.CloseAndRecv()
	if err != nil {
		return nil, fmt.Errorf("import image: %w", err)
	}
	return resp.GetImages(), nil
}

// importError finds the real error of a failed Send: io.EOF from Send means
// the server ended the stream, and its status comes with the receive.
func (c *Client) importError(closeAndRecv func() (*api.ImportImageResponse, error), sendErr error) error {
	if errors.Is(sendErr, io.EOF) {
		if _, err := closeAndRecv(); err != nil {
			return fmt.Errorf("import image: %w", err)
		}
	}
	return fmt.Errorf("import image: %w", sendErr)
}
