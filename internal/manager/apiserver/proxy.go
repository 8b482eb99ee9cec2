package apiserver

import (
	"context"
	"errors"
	"io"

	"github.com/warren-project/warren/api"
)

// Leader reaches the Raft leader's API from a follower: logs and exec
// need the nodes' sessions, which only the leader's dispatcher holds.
type Leader interface {
	// Control returns the leader's API, or nil when this manager leads.
	Control(ctx context.Context) (api.ControlClient, error)
}

// leaderControl is the leader's API when a call must go there, or nil.
func (s *Server) leaderControl(ctx context.Context) (api.ControlClient, error) {
	if s.cfg.Leader == nil {
		return nil, nil
	}
	return s.cfg.Leader.Control(ctx)
}

// proxyLogs relays a Logs call to the leader.
func proxyLogs(c api.ControlClient, req *api.LogsRequest, stream api.Control_LogsServer) error {
	in, err := c.Logs(stream.Context(), req)
	if err != nil {
		return err
	}
	return relay(in.Recv, stream.Send)
}

// relay copies messages from recv to send until recv ends (nil at EOF).
func relay[T any](recv func() (T, error), send func(T) error) error {
	for {
		msg, err := recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := send(msg); err != nil {
			return err
		}
	}
}

// proxyExec relays an Exec call to the leader, both ways; first is the
// start message already read.
func proxyExec(c api.ControlClient, first *api.ExecInput, stream api.Control_ExecServer) error {
	ctx, cancel := context.WithCancel(stream.Context())
	defer cancel()
	out, err := c.Exec(ctx)
	if err != nil {
		return err
	}
	if err := out.Send(first); err != nil {
		return err
	}
	go func() {
		for {
			in, err := stream.Recv()
			if err != nil {
				_ = out.CloseSend()
				return
			}
			if out.Send(in) != nil {
				return
			}
		}
	}()
	return relay(out.Recv, stream.Send)
}
