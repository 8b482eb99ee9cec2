package dispatcher

import (
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/warren-project/warren/api"
)

// logBroker routes the PublishLogs streams of nodes to the log requests
// they answer, by request ID.
type logBroker struct {
	replyTimeout time.Duration

	mu   sync.Mutex
	reqs map[string]*logRequest
}

func newLogBroker() *logBroker {
	return &logBroker{replyTimeout: DefaultLogReplyTimeout, reqs: map[string]*logRequest{}}
}

// logRequest is one log request waiting for, or getting, its node's lines.
type logRequest struct {
	id, nodeID string
	tasks      map[string]bool
	in         chan []*api.LogMessage // the publisher's batches, taken by forwardLogs
	end        chan error             // the publisher's end: nil when the node sent everything
	attached   chan struct{}          // closed when the node's stream arrives
	done       chan struct{}          // closed when the request ends on this side
	publisher  bool                   // guarded by logBroker.mu
}

func (b *logBroker) add(nodeID string, taskIDs []string) *logRequest {
	r := &logRequest{
		id: newRequestID(), nodeID: nodeID, tasks: map[string]bool{},
		in: make(chan []*api.LogMessage), end: make(chan error, 1),
		attached: make(chan struct{}), done: make(chan struct{}),
	}
	for _, id := range taskIDs {
		r.tasks[id] = true
	}
	b.mu.Lock()
	b.reqs[r.id] = r
	b.mu.Unlock()
	return r
}

func (b *logBroker) remove(id string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if r := b.reqs[id]; r != nil {
		delete(b.reqs, id)
		close(r.done)
	}
}

// attach gives the publisher of request id, from node nodeID, its request.
func (b *logBroker) attach(id, nodeID string) (*logRequest, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	r := b.reqs[id]
	switch {
	case r == nil:
		return nil, status.Errorf(codes.NotFound, "no log request %q is waiting (it ended, or was never made)", id)
	case r.nodeID != nodeID:
		return nil, status.Errorf(codes.PermissionDenied, "log request %s was made to another node", id)
	case r.publisher:
		return nil, status.Errorf(codes.AlreadyExists, "log request %s is already answered", id)
	}
	r.publisher = true
	close(r.attached)
	return r, nil
}

// PublishLogs takes the lines a node publishes for a log request it got
// through its session (see Logs). The node names itself in the
// NodeIDMetadata metadata, and the request in the first message. It returns:
//   - InvalidArgument without a node ID;
//   - PermissionDenied when Authorize refuses the caller, or the request
//     was made to another node;
//   - NotFound when no such request waits (it ended: the node should stop);
//   - AlreadyExists when another stream answers the request;
//   - Canceled when the request ends while the node publishes.
func (d *Dispatcher) PublishLogs(stream api.Dispatcher_PublishLogsServer) error {
	ctx := stream.Context()
	nodeID := nodeIDFrom(metadata.ValueFromIncomingContext(ctx, NodeIDMetadata))
	if nodeID == "" {
		return status.Errorf(codes.InvalidArgument, "publish logs: name the node in the %q metadata", NodeIDMetadata)
	}
	if err := d.authorize(ctx, nodeID); err != nil {
		return err
	}
	msg, err := stream.Recv()
	if err != nil {
		return err
	}
	r, err := d.logs.attach(msg.GetRequestId(), nodeID)
	if err != nil {
		return err
	}
	for {
		if err := r.deliver(msg); err != nil {
			return err
		}
		if e := msg.GetError(); e != "" {
			r.finish(errors.New(e))
			return stream.SendAndClose(&api.PublishLogsResponse{})
		}
		msg, err = stream.Recv()
		if errors.Is(err, io.EOF) {
			r.finish(nil)
			return stream.SendAndClose(&api.PublishLogsResponse{})
		}
		if err != nil {
			r.finish(fmt.Errorf("its log stream broke: %w", err))
			return err
		}
	}
}

// deliver passes a message's lines on, keeping only those of the tasks
// asked for, and names the node itself: a node speaks for itself only.
func (r *logRequest) deliver(msg *api.PublishLogsRequest) error {
	batch := make([]*api.LogMessage, 0, len(msg.GetMessages()))
	for _, m := range msg.GetMessages() {
		if r.tasks[m.GetTaskId()] {
			m.NodeId = r.nodeID
			batch = append(batch, m)
		}
	}
	if len(batch) == 0 {
		return nil
	}
	select {
	case r.in <- batch:
		return nil
	case <-r.done:
		return status.Error(codes.Canceled, "the log request ended")
	}
}

func (r *logRequest) finish(err error) {
	select {
	case r.end <- err:
	default: // one end only
	}
}

// sender serialises the sends of a session's stream: assignments and log
// requests come from different goroutines. It sends nothing before the
// session's first message (its SessionInfo) has gone, nor after the
// session's handler ends.
type sender struct {
	mu      sync.Mutex
	send    func(*api.SessionMessage) error
	stopped bool
}

// start enables sending through send.
func (s *sender) start(send func(*api.SessionMessage) error) {
	s.mu.Lock()
	s.send = send
	s.mu.Unlock()
}

// stop disables sending for good, once a send in progress is done.
func (s *sender) stop() {
	s.mu.Lock()
	s.stopped = true
	s.mu.Unlock()
}

func (s *sender) ready() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.send != nil && !s.stopped
}

// sendMsg sends m while the sender is started and not stopped.
func (s *sender) sendMsg(m *api.SessionMessage) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.send == nil || s.stopped {
		return errors.New("the session is not open")
	}
	return s.send(m)
}
