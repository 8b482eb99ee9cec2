package manager

import (
	"context"
	"errors"
	"fmt"
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
	if errors.Is(err, raftnode.ErrNoLeader) {
		return nil, status.Error(codes.Unavailable, err.Error())
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
// leader, looking the leader up again when it moved.
func (m *Manager) forward(ctx context.Context, cmd *api.StoreCommand) (uint64, error) {
	var last error
	for attempt := 0; attempt < 3; attempt++ {
		if m.raft.IsLeader() {
			return m.raft.ProposeLocal(ctx, cmd)
		}
		c, err := m.leader.client(ctx)
		if err != nil {
			return 0, fmt.Errorf("%w: %v", raftnode.ErrNoLeader, err)
		}
		resp, err := c.Propose(ctx, &api.ProposeRequest{Command: cmd})
		if err == nil {
			if serr := storeError(resp); serr != nil {
				return resp.GetIndex(), serr
			}
			// Read-your-writes: return once this store applied the entry.
			wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			if got := m.store.WaitForIndex(wctx, resp.GetIndex()-1); got < resp.GetIndex() {
				return resp.GetIndex(), fmt.Errorf("the leader applied entry %d, but this manager has not yet: %w", resp.GetIndex(), wctx.Err())
			}
			return resp.GetIndex(), nil
		}
		last = err
		if code := status.Code(err); code != codes.FailedPrecondition && code != codes.Unavailable {
			return 0, err
		}
		m.leader.forget()
		if err := m.raft.WaitForLeader(ctx); err != nil {
			break
		}
	}
	return 0, fmt.Errorf("%w: forwarding to the leader failed: %v", raftnode.ErrNoLeader, last)
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
