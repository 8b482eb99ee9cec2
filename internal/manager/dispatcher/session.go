package dispatcher

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/internal/manager/allocator"
	"github.com/warren-project/warren/internal/state"
)

// session is one node's open stream.
type session struct {
	tm     *term
	id     string
	nodeID string
	ctx    context.Context
	cancel context.CancelCauseFunc
	out    sender // the stream's sends: assignments, log requests
}

// Session serves one node's stream. It returns:
//   - InvalidArgument when the first message is not a registration;
//   - PermissionDenied when Authorize refuses the node;
//   - NotFound when the node is not part of the cluster;
//   - Aborted when a newer session of the same node replaced this one;
//   - Unavailable when the dispatcher stops or cannot write, and when the
//     node missed its heartbeats (it should reconnect).
func (d *Dispatcher) Session(stream api.Dispatcher_SessionServer) error {
	tm, err := d.enter()
	if err != nil {
		return err
	}
	defer tm.active.Done()
	// The session ends with the stream, or when the dispatcher stops.
	ctx, cancel := context.WithCancelCause(stream.Context())
	defer cancel(context.Canceled)
	defer context.AfterFunc(tm.ctx, func() { cancel(errStopped) })()

	reg, err := recvRegister(ctx, stream)
	if err != nil {
		return err
	}
	nodeID := reg.GetNodeId()
	if err := d.authorize(ctx, nodeID); err != nil {
		return err
	}
	if err := d.register(ctx, tm, reg); err != nil {
		return err
	}
	s := d.open(ctx, cancel, tm, nodeID)
	defer d.release(s)
	log := d.log.With("node.id", nodeID, "session.id", s.id)
	log.Info("session started", "node.addr", reg.GetAddr())

	info := func() *api.SessionMessage { return d.sessionInfo(s.id, nodeID) }
	if err := stream.Send(info()); err != nil {
		return fmt.Errorf("send session info to node %s: %w", nodeID, err)
	}
	// Recv blocks until the stream ends, which happens once this handler
	// returns: the receiver goroutine therefore outlives the handler a little,
	// and only ever touches state that checks the session is still current.
	go d.receive(s, stream, log)
	s.out.start(stream.Send)
	err = d.sendAssignments(s.ctx, nodeID, s.out.sendMsg, info)
	s.cancel(err)
	s.out.stop() // no send may follow the handler's return
	return d.sessionEnd(s, log)
}

// sessionInfo is a session's first message, sent again when the node's
// role changes: its ID, the heartbeat period, the managers to fail over
// to, and the role the node has now.
func (d *Dispatcher) sessionInfo(sessionID, nodeID string) *api.SessionMessage {
	info := &api.SessionInfo{SessionId: sessionID, NodeId: nodeID, HeartbeatPeriod: durationpb.New(d.cfg.HeartbeatPeriod)}
	if d.cfg.ManagerAddrs != nil {
		info.Managers = d.cfg.ManagerAddrs()
	}
	d.store.View(func(tx state.ReadTx) { info.Role = tx.GetNode(nodeID).CurrentRole() })
	return &api.SessionMessage{Msg: &api.SessionMessage_Session{Session: info}}
}

// roleChanged says whether ev changes the current role of node nodeID.
func roleChanged(ev state.Event, nodeID string) bool {
	n, ok := ev.Object.(*api.Node)
	if !ok || ev.Kind != state.EventUpdate || n.GetId() != nodeID {
		return false
	}
	old, ok := ev.Old.(*api.Node)
	return ok && old.CurrentRole() != n.CurrentRole()
}

// enter admits a session while the dispatcher runs.
func (d *Dispatcher) enter() (*term, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cur == nil || d.cur.closing {
		return nil, status.Error(codes.Unavailable, "dispatcher is not running")
	}
	d.cur.active.Add(1)
	return d.cur, nil
}

// recvRegister waits for the registration, or for ctx to end: Recv itself
// only returns once the stream ends, which a stopping dispatcher must not
// wait for.
func recvRegister(ctx context.Context, stream api.Dispatcher_SessionServer) (*api.RegisterRequest, error) {
	type received struct {
		msg *api.SessionRequest
		err error
	}
	got := make(chan received, 1)
	go func() {
		msg, err := stream.Recv()
		got <- received{msg, err}
	}()
	var msg *api.SessionRequest
	select {
	case r := <-got:
		if r.err != nil {
			return nil, r.err
		}
		msg = r.msg
	case <-ctx.Done():
		return nil, status.Error(codes.Unavailable, context.Cause(ctx).Error())
	}
	reg := msg.GetRegister()
	if reg == nil {
		return nil, status.Error(codes.InvalidArgument, "the first message of a session must be a registration")
	}
	if reg.GetNodeId() == "" {
		return nil, status.Error(codes.InvalidArgument, "registration without a node ID")
	}
	return reg, nil
}

func (d *Dispatcher) authorize(ctx context.Context, nodeID string) error {
	if d.cfg.Authorize == nil {
		return nil
	}
	err := d.cfg.Authorize(ctx, nodeID)
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	return status.Errorf(codes.PermissionDenied, "node %s may not open a session: %v", nodeID, err)
}

var errUnknownNode = errors.New("unknown node")

// register records the node's description and address and marks it READY,
// in one write, skipped when nothing changed (a quick reconnect).
func (d *Dispatcher) register(ctx context.Context, tm *term, reg *api.RegisterRequest) error {
	nodeID := reg.GetNodeId()
	var known bool
	d.store.View(func(tx state.ReadTx) { known = tx.GetNode(nodeID) != nil })
	if !known {
		return status.Errorf(codes.NotFound, "node %s is not part of this cluster", nodeID)
	}
	unlock := d.nodeLocks.Lock(nodeID)
	defer unlock()
	tm.hb.beat(nodeID)
	err := d.store.Update(ctx, func(tx state.Tx) error {
		n := tx.GetNode(nodeID)
		if n == nil {
			return errUnknownNode
		}
		want := &api.NodeStatus{State: api.NodeState_NODE_STATE_READY, Message: "registered", Addr: reg.GetAddr(), CertNotAfter: n.GetStatus().GetCertNotAfter()}
		desc := reg.GetDescription()
		if desc == nil {
			desc = n.GetDescription()
		}
		// The images the node registers with are the ones it holds now.
		desc = proto.Clone(desc).(*api.NodeDescription)
		if desc == nil {
			desc = &api.NodeDescription{}
		}
		desc.Images = cleanImages(reg.GetImages())
		netChanged, err := allocator.NodeNetwork(tx, n, withPeerHost(ctx, reg.GetNetwork()))
		if err != nil {
			// The node still runs host-network tasks; the scheduler says
			// why overlay ones cannot go there.
			d.log.Warn("node has no overlay address block", "node.id", nodeID, "err", err)
		}
		if !netChanged && proto.Equal(n.GetStatus(), want) && proto.Equal(n.GetDescription(), desc) {
			return nil
		}
		n.Status, n.Description = want, desc
		return tx.Update(n)
	})
	switch {
	case errors.Is(err, errUnknownNode):
		return status.Errorf(codes.NotFound, "node %s is not part of this cluster", nodeID)
	case err != nil:
		return status.Errorf(codes.Unavailable, "register node %s: %v", nodeID, err)
	}
	return nil
}

// open makes the node's session current, ending any earlier one.
func (d *Dispatcher) open(ctx context.Context, cancel context.CancelCauseFunc, tm *term, nodeID string) *session {
	s := &session{tm: tm, id: newSessionID(), nodeID: nodeID, ctx: ctx, cancel: cancel}
	d.mu.Lock()
	defer d.mu.Unlock()
	if old := d.sessions[nodeID]; old != nil {
		old.cancel(errReplaced)
	}
	d.sessions[nodeID] = s
	return s
}

func (d *Dispatcher) release(s *session) {
	s.cancel(context.Canceled)
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.sessions[s.nodeID] == s {
		delete(d.sessions, s.nodeID)
	}
}

// endSession ends the node's current session, if any, with cause.
func (d *Dispatcher) endSession(nodeID string, cause error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if s := d.sessions[nodeID]; s != nil {
		s.cancel(cause)
	}
}

// sessionEnd turns why a session ended into what the node is told.
func (d *Dispatcher) sessionEnd(s *session, log *slog.Logger) error {
	cause := context.Cause(s.ctx)
	log.Info("session ended", "reason", cause)
	switch {
	case errors.Is(cause, errReplaced):
		return status.Error(codes.Aborted, errReplaced.Error())
	case errors.Is(cause, errStopped), errors.Is(cause, errExpired):
		return status.Error(codes.Unavailable, cause.Error())
	case errors.Is(cause, io.EOF), errors.Is(cause, context.Canceled):
		return nil
	}
	if _, ok := status.FromError(cause); ok {
		return cause
	}
	return status.Error(codes.Unavailable, cause.Error())
}

// receive reads the node's messages until the stream ends. Any message
// proves the node alive.
func (d *Dispatcher) receive(s *session, stream api.Dispatcher_SessionServer, log *slog.Logger) {
	for {
		msg, err := stream.Recv()
		if err != nil {
			s.cancel(fmt.Errorf("receive from node %s: %w", s.nodeID, err))
			return
		}
		if s.ctx.Err() != nil {
			return // replaced or ended: this stream no longer speaks for the node
		}
		s.tm.hb.beat(s.nodeID)
		switch m := msg.GetMsg().(type) {
		case *api.SessionRequest_Status:
			s.tm.statuses.add(d.acceptStatuses(s.nodeID, m.Status.GetUpdates(), log))
		case *api.SessionRequest_Images:
			d.recordImages(s, m.Images.GetImages(), log)
		case *api.SessionRequest_Mesh:
			d.mesh.record(s.nodeID, m.Mesh, time.Now())
		case *api.SessionRequest_Register:
			log.Warn("ignoring a second registration in one session")
		}
	}
}

// acceptStatuses keeps the updates about tasks assigned to the node; a node
// may only report on its own tasks, and only the states nodes own.
func (d *Dispatcher) acceptStatuses(nodeID string, updates []*api.TaskStatusUpdate, log *slog.Logger) []*api.TaskStatusUpdate {
	accepted := make([]*api.TaskStatusUpdate, 0, len(updates))
	d.store.View(func(tx state.ReadTx) {
		for _, u := range updates {
			t := tx.GetTask(u.GetTaskId())
			switch {
			case t == nil:
				log.Debug("ignoring status of a task that is gone", "task.id", u.GetTaskId())
			case t.GetNodeId() != nodeID:
				log.Warn("ignoring status of a task assigned to another node", "task.id", u.GetTaskId(), "task.node", t.GetNodeId())
			case u.GetStatus().GetState() <= api.TaskState_TASK_STATE_ASSIGNED:
				log.Warn("ignoring a task state only managers set", "task.id", u.GetTaskId(), "task.state", u.GetStatus().GetState())
			default:
				accepted = append(accepted, u)
			}
		}
	})
	return accepted
}

func newSessionID() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on Linux
	return hex.EncodeToString(b)
}

// withPeerHost fills in an endpoint reported as ":port" with the address
// the node's session comes from: a node that does not know how others
// reach it is reached where it came from.
func withPeerHost(ctx context.Context, nn *api.NodeNetwork) *api.NodeNetwork {
	ep := nn.GetWireguardEndpoint()
	if !strings.HasPrefix(ep, ":") {
		return nn
	}
	p, ok := peer.FromContext(ctx)
	if !ok || p.Addr == nil {
		return nn
	}
	host, _, err := net.SplitHostPort(p.Addr.String())
	if err != nil {
		return nn
	}
	out := proto.Clone(nn).(*api.NodeNetwork)
	out.WireguardEndpoint = net.JoinHostPort(host, ep[1:])
	return out
}
