package client

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/warren-project/warren/api"
)

// Backup writes a backup of the cluster (see BackupCluster) to w. Like
// Logs, the stream has no call timeout: ctx bounds it.
func (c *Client) Backup(ctx context.Context, w io.Writer) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // ends the stream when a write fails
	stream, err := c.BackupCluster(ctx, &api.BackupClusterRequest{})
	if err != nil {
		return err
	}
	for {
		chunk, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if _, err := w.Write(chunk.GetData()); err != nil {
			return fmt.Errorf("write the backup: %w", err)
		}
	}
}
