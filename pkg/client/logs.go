package client

import (
	"context"
	"errors"
	"io"

	"github.com/warren-project/warren/api"
)

// Logs streams the output of a service's tasks, or of one task, as
// req asks, giving each message to fn: lines, and notices about nodes that
// cannot be reached (a message with Notice set). It returns nil when the
// manager ends the stream (without follow: once everything was sent),
// ctx's error when ctx ends, or fn's error. Unlike unary calls, the stream
// has no call timeout: a follow lasts until ctx ends.
func (c *Client) Logs(ctx context.Context, req *api.LogsRequest, fn func(*api.LogMessage) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // ends the stream when fn fails
	stream, err := c.ControlClient.Logs(ctx, req)
	if err != nil {
		return err
	}
	for {
		m, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return err
		}
		if err := fn(m); err != nil {
			return err
		}
	}
}
