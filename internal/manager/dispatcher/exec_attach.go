package dispatcher

import (
	"errors"
	"fmt"
	"io"
	"sync"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/warren-project/warren/api"
)

// execBroker holds the exec requests waiting for, or relayed through, a
// node's ExecAttach stream, by request ID.
type execBroker struct {
	mu   sync.Mutex
	reqs map[string]*execRequest
}

// execRequest is one exec between its caller (Exec) and its node.
type execRequest struct {
	id, nodeID string
	d          *Dispatcher
	toNode     chan *api.ExecInput  // the caller's input, sent by ExecAttach
	fromNode   chan *api.ExecOutput // the node's output, taken by Exec
	end        chan error           // the node's failure, or its stream's end
	attached   chan struct{}        // closed when the node's stream arrives
	done       chan struct{}        // closed when Exec returns
	node       bool                 // guarded by execBroker.mu
}

func (b *execBroker) add(d *Dispatcher, nodeID string) *execRequest {
	r := &execRequest{
		id: newRequestID(), nodeID: nodeID, d: d,
		toNode: make(chan *api.ExecInput), fromNode: make(chan *api.ExecOutput),
		end: make(chan error, 1), attached: make(chan struct{}), done: make(chan struct{}),
	}
	b.mu.Lock()
	b.reqs[r.id] = r
	b.mu.Unlock()
	return r
}

func (b *execBroker) remove(id string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if r := b.reqs[id]; r != nil {
		delete(b.reqs, id)
		close(r.done)
	}
}

// attach gives the stream of request id, from node nodeID, its request.
func (b *execBroker) attach(d *Dispatcher, id, nodeID string) (*execRequest, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	r := b.reqs[id]
	switch {
	case r == nil || r.d != d:
		return nil, status.Errorf(codes.NotFound, "no exec request %q is waiting (it ended, or was never made)", id)
	case r.nodeID != nodeID:
		return nil, status.Errorf(codes.PermissionDenied, "exec request %s was made to another node", id)
	case r.node:
		return nil, status.Errorf(codes.AlreadyExists, "exec request %s is already answered", id)
	}
	r.node = true
	close(r.attached)
	return r, nil
}

// ExecAttach carries an exec a node got through its session (see Exec).
// The node names itself in the NodeIDMetadata metadata, and the request in
// the first message; then it sends the command's output and ends with the
// exit code or an error, while the caller's input comes to it. It returns
// InvalidArgument without a node ID, PermissionDenied when Authorize
// refuses the caller or the request was made to another node, NotFound when
// no such request waits, AlreadyExists when another stream answers it.
func (d *Dispatcher) ExecAttach(stream api.Dispatcher_ExecAttachServer) error {
	ctx := stream.Context()
	nodeID := nodeIDFrom(metadata.ValueFromIncomingContext(ctx, NodeIDMetadata))
	if nodeID == "" {
		return status.Errorf(codes.InvalidArgument, "exec attach: name the node in the %q metadata", NodeIDMetadata)
	}
	if err := d.authorize(ctx, nodeID); err != nil {
		return err
	}
	msg, err := stream.Recv()
	if err != nil {
		return err
	}
	r, err := d.execs.attach(d, msg.GetRequestId(), nodeID)
	if err != nil {
		return err
	}
	// Recv in a goroutine of its own, which outlives this handler a little
	// (Recv returns once the handler has); all sends stay on this one.
	received := make(chan struct{})
	go func() {
		defer close(received)
		r.receive(stream)
	}()
	for {
		select {
		case in := <-r.toNode:
			if err := stream.Send(&api.ExecToNode{Input: in}); err != nil {
				r.finish(fmt.Errorf("its exec stream broke: %w", err))
				return err
			}
		case <-received:
			return nil
		case <-r.done:
			return nil
		case <-ctx.Done():
			return status.FromContextError(ctx.Err()).Err()
		}
	}
}

// receive passes the node's output on, in order, until its stream ends.
func (r *execRequest) receive(stream api.Dispatcher_ExecAttachServer) {
	for {
		msg, err := stream.Recv()
		switch {
		case errors.Is(err, io.EOF):
			r.finish(errNoExitCode)
			return
		case err != nil:
			r.finish(fmt.Errorf("its exec stream broke: %w", err))
			return
		case msg.GetError() != "":
			r.finish(errors.New(msg.GetError()))
			return
		case msg.GetOutput() == nil:
			continue
		}
		select {
		case r.fromNode <- msg.GetOutput():
		case <-r.done:
			return
		}
	}
}

func (r *execRequest) finish(err error) {
	select {
	case r.end <- err:
	default: // one end only
	}
}
