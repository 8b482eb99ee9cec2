package manager

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/internal/raftnode"
	"github.com/warren-project/warren/internal/security/ca"
	"github.com/warren-project/warren/internal/state"
)

// membership serves RaftMembership: managers adding themselves as voters,
// and followers' writes, applied here when this manager leads.
type membership struct {
	api.UnimplementedRaftMembershipServer
	m *Manager
}

// AddManager makes the calling manager a voter. A follower passes the
// request on to the leader.
func (s *membership) AddManager(ctx context.Context, req *api.AddManagerRequest) (*api.AddManagerResponse, error) {
	if id, ok := ca.IdentityFromContext(ctx); !ok || id.NodeID != req.GetNodeId() {
		return nil, status.Errorf(codes.PermissionDenied, "a manager may add only itself as a Raft member")
	}
	if req.GetRaftAddr() == "" {
		return nil, status.Error(codes.InvalidArgument, "no Raft address given")
	}
	if !s.m.raft.IsLeader() {
		c, err := s.m.leader.client(ctx)
		if err != nil {
			return nil, status.Errorf(codes.Unavailable, "no leader to add manager %s: %v", req.GetNodeId(), err)
		}
		return c.AddManager(ctx, req)
	}
	if err := s.m.raft.AddVoter(ctx, req.GetNodeId(), req.GetRaftAddr()); err != nil {
		return nil, status.Error(codes.Unavailable, err.Error())
	}
	s.m.log.Info("manager added to Raft", "node.id", req.GetNodeId(), "raft.addr", req.GetRaftAddr())
	return &api.AddManagerResponse{}, nil
}

// Propose applies a follower's write. A manager that does not lead says
// so with FailedPrecondition: the follower looks the leader up again.
func (s *membership) Propose(ctx context.Context, req *api.ProposeRequest) (*api.ProposeResponse, error) {
	if !s.m.raft.IsLeader() {
		return nil, status.Errorf(codes.FailedPrecondition, "%v", raftnode.ErrNotLeader)
	}
	index, err := s.m.raft.ProposeLocal(ctx, req.GetCommand())
	switch {
	case errors.Is(err, raftnode.ErrNoLeader):
		return nil, status.Error(codes.Unavailable, err.Error())
	case errors.Is(err, raftnode.ErrMaybeApplied):
		return nil, status.Error(codes.Unknown, err.Error())
	}
	resp := &api.ProposeResponse{Index: index}
	if err != nil {
		resp.Error, resp.Message = storeErrorKind(err), err.Error()
	}
	return resp, nil
}

// The store's errors cross the wire as kinds, so the follower's store
// sees the same sentinel (a version conflict it retries, a name clash it
// reports) as the leader's did.
var storeErrors = []struct {
	kind api.ProposeResponse_Error
	err  error
}{
	{api.ProposeResponse_ERROR_VERSION_CONFLICT, state.ErrVersionConflict},
	{api.ProposeResponse_ERROR_NAME_CONFLICT, state.ErrNameConflict},
	{api.ProposeResponse_ERROR_ALREADY_EXISTS, state.ErrAlreadyExists},
	{api.ProposeResponse_ERROR_NOT_FOUND, state.ErrNotFound},
	{api.ProposeResponse_ERROR_INVALID, state.ErrInvalid},
}

func storeErrorKind(err error) api.ProposeResponse_Error {
	for _, e := range storeErrors {
		if errors.Is(err, e.err) {
			return e.kind
		}
	}
	return api.ProposeResponse_ERROR_OTHER
}

// forwardedError is the leader's store error, as the follower sees it.
type forwardedError struct {
	msg  string
	kind error
}

func (e *forwardedError) Error() string { return e.msg }
func (e *forwardedError) Unwrap() error { return e.kind }

func storeError(resp *api.ProposeResponse) error {
	if resp.GetError() == api.ProposeResponse_ERROR_NONE {
		return nil
	}
	for _, e := range storeErrors {
		if e.kind == resp.GetError() {
			return &forwardedError{resp.GetMessage(), e.err}
		}
	}
	return errors.New(resp.GetMessage())
}

// forward is the Raft Forwarder: it sends a follower's write to the
// leader. When the leader does not answer it waits for another to be
// elected, and past a few election timeouts it reports quorum lost,
// rather than hang the caller.
func (m *Manager) forward(ctx context.Context, cmd *api.StoreCommand) (uint64, error) {
	deadline := time.Now().Add(m.electionWait())
	for {
		if m.raft.IsLeader() {
			return m.raft.ProposeLocal(ctx, cmd)
		}
		tried := m.raft.LeaderID()
		c, err := m.leader.client(ctx)
		if err != nil {
			if errors.Is(err, raftnode.ErrNoLeader) || ctx.Err() != nil {
				return 0, err
			}
			return 0, fmt.Errorf("%w: %v", raftnode.ErrNoLeader, err)
		}
		resp, err := c.Propose(ctx, &api.ProposeRequest{Command: cmd})
		if err == nil {
			return resp.GetIndex(), m.appliedHere(ctx, resp)
		}
		if !neverApplied(err) {
			switch status.Code(err) {
			case codes.Unavailable:
				// The leader may have taken it before the connection broke.
				return 0, fmt.Errorf("%w: the leader (%s) stopped answering: %v", raftnode.ErrMaybeApplied, tried, status.Convert(err).Message())
			case codes.Unknown: // the leader's own ErrMaybeApplied
				return 0, &forwardedError{status.Convert(err).Message(), raftnode.ErrMaybeApplied}
			}
			return 0, err
		}
		// The leader is gone or moved: look it up again once Raft has
		// noticed, until a new one answers or the wait runs out.
		m.leader.forget()
		if time.Now().After(deadline) {
			if m.raft.LeaderID() == "" {
				return 0, m.raft.ErrQuorum()
			}
			return 0, fmt.Errorf("%w: the leader (%s) does not answer", raftnode.ErrNoLeader, tried)
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// appliedHere returns the store's error for a forwarded write, or waits
// until this manager applied it too (read-your-writes).
func (m *Manager) appliedHere(ctx context.Context, resp *api.ProposeResponse) error {
	if err := storeError(resp); err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if got := m.store.WaitForIndex(wctx, resp.GetIndex()-1); got < resp.GetIndex() {
		return fmt.Errorf("the leader applied entry %d, but this manager has not yet: %w", resp.GetIndex(), wctx.Err())
	}
	return nil
}

// recordManagerStatus keeps this manager's Raft and API addresses in its
// node, where followers find the leader's API and nodes the managers.
func (m *Manager) recordManagerStatus(ctx context.Context) error {
	want := &api.ManagerStatus{RaftAddr: m.raft.Addr(), ApiAddr: m.advertiseAPI()}
	err := m.store.Update(ctx, func(tx state.Tx) error {
		n := tx.GetNode(m.creds.NodeID)
		if n == nil {
			return fmt.Errorf("node %s is not in the state", m.creds.NodeID)
		}
		if proto.Equal(n.GetManagerStatus(), want) {
			return nil
		}
		n.ManagerStatus = want
		return tx.Update(n)
	})
	if err != nil {
		return fmt.Errorf("record this manager's addresses: %w", err)
	}
	return nil
}

// RemoveManager takes a manager out of the Raft membership, on the leader.
func (s *membership) RemoveManager(ctx context.Context, req *api.RemoveManagerRequest) (*api.RemoveManagerResponse, error) {
	if err := s.m.RemoveManager(ctx, req.GetNodeId()); err != nil {
		return nil, status.Error(codes.Unavailable, err.Error())
	}
	return &api.RemoveManagerResponse{}, nil
}

// RemoveManager takes manager id out of the Raft membership: here when
// this manager leads, through the leader otherwise.
func (m *Manager) RemoveManager(ctx context.Context, id string) error {
	if m.raft.IsLeader() {
		if err := m.raft.RemoveServer(ctx, id); err != nil {
			return err
		}
		m.log.Info("manager removed from Raft", "node.id", id)
		return nil
	}
	c, err := m.leader.client(ctx)
	if err != nil {
		return err
	}
	_, err = c.RemoveManager(ctx, &api.RemoveManagerRequest{NodeId: id})
	return err
}

// neverApplied tells a forwarding failure that surely left the log alone
// (the manager no longer leads, or no connection was made) from one where
// the leader may have taken the write before the call broke.
func neverApplied(err error) bool {
	st := status.Convert(err)
	switch st.Code() {
	case codes.FailedPrecondition:
		return true // not the leader: it did not propose
	case codes.Unavailable:
		msg := st.Message()
		for _, s := range []string{raftnode.ErrNoLeader.Error(), "connection refused", "Error while dialing", "no such host", "name resolver"} {
			if strings.Contains(msg, s) {
				return true
			}
		}
	}
	return false
}

// ReadIndex is the leader's state index, once it confirmed it leads:
// every write acknowledged before the call is at or below it.
func (s *membership) ReadIndex(ctx context.Context, _ *api.ReadIndexRequest) (*api.ReadIndexResponse, error) {
	if !s.m.raft.IsLeader() {
		return nil, status.Errorf(codes.FailedPrecondition, "%v", raftnode.ErrNotLeader)
	}
	if err := s.m.raft.ConfirmLeader(ctx); err != nil {
		return nil, status.Errorf(codes.Unavailable, "leadership not confirmed: %v", err)
	}
	return &api.ReadIndexResponse{Index: s.m.store.Index()}, nil
}

// consistentRead makes this manager's state at least as new as the
// leader's when it is called, so the read that follows is linearizable.
func (m *Manager) consistentRead(ctx context.Context) error {
	if m.raft.IsLeader() {
		return m.raft.ConfirmLeader(ctx)
	}
	c, err := m.leader.client(ctx)
	if err != nil {
		return err
	}
	resp, err := c.ReadIndex(ctx, &api.ReadIndexRequest{})
	if err != nil {
		return err
	}
	if idx := resp.GetIndex(); idx > 0 && m.store.WaitForIndex(ctx, idx-1) < idx {
		return fmt.Errorf("state not caught up with the leader's index %d: %w", idx, ctx.Err())
	}
	return nil
}

// retryStartupWrite runs an idempotent start-up write until it succeeds,
// while the failure is one an election heals (no leader yet, a leader that
// died mid-call): a manager must not exit because it started during one.
func (m *Manager) retryStartupWrite(ctx context.Context, write func(context.Context) error) error {
	deadline := time.Now().Add(time.Minute)
	delay := 200 * time.Millisecond
	for {
		err := write(ctx)
		transient := errors.Is(err, raftnode.ErrNoLeader) || errors.Is(err, raftnode.ErrMaybeApplied)
		if err == nil || !transient || time.Now().After(deadline) {
			return err
		}
		m.log.Warn("start-up write failed; retrying", "err", err, "retry.in", delay)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(delay):
		}
		delay = min(2*delay, 2*time.Second)
	}
}
