package dispatcher

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/internal/state"
)

// DefaultLogReplyTimeout is how long a node has to start answering a log
// request before the caller is told it did not.
const DefaultLogReplyTimeout = 10 * time.Second

// Logs asks a node, through its session, for the logs of some of its
// tasks, and returns what the node publishes (see PublishLogs). The
// channel closes once the node has sent everything it has; with follow,
// once ctx ends (the node is then told to stop), or the node goes. A node
// without a session gets a notice at once instead of lines, and so does one
// that does not answer within the reply timeout: the caller never hangs on
// a node. The request's ID is chosen here. The only error is Unavailable:
// this manager does not serve node sessions (it is not the leader).
func (d *Dispatcher) Logs(ctx context.Context, nodeID string, req *api.LogRequest) (<-chan *api.LogMessage, error) {
	d.mu.Lock()
	running, s := d.cur != nil, d.sessions[nodeID]
	d.mu.Unlock()
	if !running {
		return nil, status.Error(codes.Unavailable, "this manager serves no node sessions (it is not the leader): ask the leader for logs")
	}
	if s == nil || !s.out.ready() {
		return noticeOnly(nodeID, d.absentReason(nodeID)+": logs of its tasks are not available"), nil
	}
	r := d.logs.add(nodeID, req.GetTaskIds())
	ask := proto.Clone(req).(*api.LogRequest)
	ask.RequestId, ask.Cancel = r.id, false
	if err := s.out.sendMsg(&api.SessionMessage{Msg: &api.SessionMessage_LogRequest{LogRequest: ask}}); err != nil {
		d.logs.remove(r.id)
		return noticeOnly(nodeID, fmt.Sprintf("node %s disconnected: logs of its tasks are not available", d.nodeName(nodeID))), nil
	}
	out := make(chan *api.LogMessage)
	go d.forwardLogs(ctx, s, r, out)
	return out, nil
}

func noticeOnly(nodeID, notice string) <-chan *api.LogMessage {
	ch := make(chan *api.LogMessage, 1)
	ch <- &api.LogMessage{NodeId: nodeID, Notice: notice}
	close(ch)
	return ch
}

// absentReason says why a node has no session here: "node X is down".
func (d *Dispatcher) absentReason(nodeID string) string {
	var n *api.Node
	d.store.View(func(tx state.ReadTx) { n = tx.GetNode(nodeID) })
	why := "is down"
	switch {
	case n == nil:
		why = "is no longer in the cluster"
	case n.GetStatus().GetState() == api.NodeState_NODE_STATE_READY:
		why = "is not connected to this manager"
	}
	return fmt.Sprintf("node %s %s", d.nodeName(nodeID), why)
}

// nodeName is the node's hostname, which people know it by, or its ID.
func (d *Dispatcher) nodeName(nodeID string) string {
	var host string
	d.store.View(func(tx state.ReadTx) { host = tx.GetNode(nodeID).GetDescription().GetHostname() })
	if host == "" {
		return nodeID
	}
	return host
}

// forwardLogs passes the node's lines for r on to out until the node is
// done, the caller's ctx ends, or the node does not answer or goes.
func (d *Dispatcher) forwardLogs(ctx context.Context, s *session, r *logRequest, out chan<- *api.LogMessage) {
	defer close(out)
	defer d.logs.remove(r.id)
	emit := func(m *api.LogMessage) bool {
		select {
		case out <- m:
			return true
		case <-ctx.Done():
			return false
		}
	}
	notice := func(format string, args ...any) {
		emit(&api.LogMessage{NodeId: r.nodeID, Notice: fmt.Sprintf(format, args...)})
	}
	reply := time.NewTimer(d.logs.replyTimeout)
	defer reply.Stop()
	attached := r.attached
	for {
		select {
		case batch := <-r.in:
			for _, m := range batch {
				if !emit(m) {
					d.cancelLogs(s, r.id)
					return
				}
			}
		case err := <-r.end:
			if err != nil {
				notice("node %s: %v", d.nodeName(r.nodeID), err)
			}
			return
		case <-attached:
			reply.Stop()
			attached = nil
		case <-reply.C:
			d.cancelLogs(s, r.id)
			notice("node %s did not answer the log request within %s: logs of its tasks are not available", d.nodeName(r.nodeID), d.logs.replyTimeout)
			return
		case <-s.ctx.Done():
			notice("node %s disconnected: the rest of its logs are not available", d.nodeName(r.nodeID))
			return
		case <-ctx.Done():
			d.cancelLogs(s, r.id)
			return
		}
	}
}

// cancelLogs tells the node to stop publishing request id. It does not
// wait: the session's stream may be busy, and PublishLogs refuses the
// node's lines for a request that ended anyway.
func (d *Dispatcher) cancelLogs(s *session, id string) {
	if s.ctx.Err() != nil {
		return
	}
	go func() {
		msg := &api.SessionMessage{Msg: &api.SessionMessage_LogRequest{LogRequest: &api.LogRequest{RequestId: id, Cancel: true}}}
		if err := s.out.sendMsg(msg); err != nil {
			d.log.Debug("cannot cancel a log request", "node.id", s.nodeID, "request.id", id, "err", err)
		}
	}()
}

func newRequestID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on Linux
	return hex.EncodeToString(b)
}
