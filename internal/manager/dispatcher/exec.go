package dispatcher

import (
	"context"
	"errors"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/warren-project/warren/api"
)

// Exec runs req's command in a task on node nodeID and relays it: the
// caller's input from recv to the node, the command's output from the node
// to send, up to the message with the exit code, after which it returns
// nil. The node is asked through its session and answers with an
// ExecAttach stream (see there); the request's ID is chosen here. recv is
// called from a goroutine of its own, which may outlive Exec until recv
// returns: the caller's stream must end when Exec does. It never hangs on a
// node, and returns:
//   - Unavailable when this manager serves no sessions (not the leader),
//     or the node disconnects during the exec;
//   - FailedPrecondition when the node is down or not connected here, or
//     the node could not run the command (the node's reason is the message);
//   - DeadlineExceeded when the node does not answer within the reply
//     timeout (the one of Logs);
//   - Canceled when ctx ends, or send's error.
func (d *Dispatcher) Exec(ctx context.Context, nodeID string, req *api.ExecRequest, recv func() (*api.ExecInput, error), send func(*api.ExecOutput) error) error {
	d.mu.Lock()
	running, s := d.cur != nil, d.sessions[nodeID]
	d.mu.Unlock()
	if !running {
		return status.Error(codes.Unavailable, "this manager serves no node sessions (it is not the leader): exec through the leader")
	}
	if s == nil || !s.out.ready() {
		return status.Error(codes.FailedPrecondition, d.absentReason(nodeID)+": cannot exec in its tasks")
	}
	r := d.execs.add(d, nodeID)
	defer d.execs.remove(r.id)
	ask := proto.Clone(req).(*api.ExecRequest)
	ask.RequestId = r.id
	if err := s.out.sendMsg(&api.SessionMessage{Msg: &api.SessionMessage_ExecRequest{ExecRequest: ask}}); err != nil {
		return status.Errorf(codes.FailedPrecondition, "node %s disconnected: cannot exec in its tasks", d.nodeName(nodeID))
	}
	if err := d.awaitExecNode(ctx, s, r); err != nil {
		return err
	}
	go r.pumpInput(recv)
	return d.relayOutput(ctx, s, r, send)
}

// awaitExecNode waits for the node's ExecAttach stream for r.
func (d *Dispatcher) awaitExecNode(ctx context.Context, s *session, r *execRequest) error {
	timeout := d.logs.replyTimeout
	reply := time.NewTimer(timeout)
	defer reply.Stop()
	select {
	case <-r.attached:
		return nil
	case err := <-r.end:
		return status.Errorf(codes.FailedPrecondition, "node %s: %v", d.nodeName(r.nodeID), err)
	case <-reply.C:
		return status.Errorf(codes.DeadlineExceeded, "node %s did not answer the exec request within %s", d.nodeName(r.nodeID), timeout)
	case <-s.ctx.Done():
		return status.Errorf(codes.Unavailable, "node %s disconnected before the exec started", d.nodeName(r.nodeID))
	case <-ctx.Done():
		return status.FromContextError(ctx.Err()).Err()
	}
}

// relayOutput passes the node's output to send until the exit code.
func (d *Dispatcher) relayOutput(ctx context.Context, s *session, r *execRequest, send func(*api.ExecOutput) error) error {
	for {
		select {
		case out := <-r.fromNode:
			if err := send(out); err != nil {
				return err
			}
			if _, ok := out.GetMsg().(*api.ExecOutput_ExitCode); ok {
				return nil
			}
		case err := <-r.end:
			return status.Errorf(codes.FailedPrecondition, "node %s: %v", d.nodeName(r.nodeID), err)
		case <-s.ctx.Done():
			return status.Errorf(codes.Unavailable, "node %s disconnected during the exec", d.nodeName(r.nodeID))
		case <-ctx.Done():
			return status.FromContextError(ctx.Err()).Err()
		}
	}
}

// pumpInput passes the caller's input on to the node's stream until the
// caller's stream or the request ends.
func (r *execRequest) pumpInput(recv func() (*api.ExecInput, error)) {
	for {
		in, err := recv()
		if err != nil {
			return // EOF too: the caller says stdin_closed when it means it
		}
		select {
		case r.toNode <- in:
		case <-r.done:
			return
		}
	}
}

// errNoExitCode is a node's exec stream that ended before the exit code.
var errNoExitCode = errors.New("the exec ended without an exit code")
