package raftnode

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/proto"

	"github.com/warren-project/warren/api"
)

// Forwarder sends a store command to the leader, which applies it, and
// returns once this member's state holds the entry too (so the caller
// reads its own write), with the entry's log index or the store's error
// for it. A follower's Propose goes through it.
type Forwarder func(ctx context.Context, cmd *api.StoreCommand) (index uint64, err error)

// ErrMaybeApplied means a write's outcome is unknown: it was sent to the
// log, then leadership moved before it committed, and the next leader may
// still apply it. Callers must read before retrying.
var ErrMaybeApplied = errors.New("the write may or may not have been applied")

// ErrNotLeader is returned by leader-only calls on a follower.
var ErrNotLeader = errors.New("this manager is not the Raft leader")

// ProposeLocal applies cmd through this member's Raft, which must lead,
// and returns the entry's index; the error is the store's, when the entry
// applied but the store refused it.
func (n *Node) ProposeLocal(ctx context.Context, cmd *api.StoreCommand) (uint64, error) {
	data, err := proto.Marshal(cmd)
	if err != nil {
		return 0, fmt.Errorf("raft: encode command: %w", err)
	}
	f := n.Raft.Apply(data, n.timeout(ctx))
	if err := f.Error(); err != nil {
		return 0, n.noLeader(err)
	}
	if resErr, ok := f.Response().(error); ok {
		return f.Index(), resErr
	}
	return f.Index(), nil
}

// noLeader turns Raft's "cannot commit" errors into ErrNoLeader, with how
// many managers it takes when quorum is what is missing.
func (n *Node) noLeader(err error) error {
	if errors.Is(err, raft.ErrLeadershipLost) {
		// The entry may still commit under the next leader: retrying it
		// blindly could apply it twice.
		return fmt.Errorf("%w: leadership was lost while the write was in flight", ErrMaybeApplied)
	}
	if !errors.Is(err, raft.ErrNotLeader) && !errors.Is(err, raft.ErrEnqueueTimeout) && !errors.Is(err, raft.ErrRaftShutdown) {
		return fmt.Errorf("raft: apply: %w", err)
	}
	if voters := n.voters(); voters > 1 {
		return fmt.Errorf("%w: writes need %d of the %d managers reachable (%v)", ErrNoLeader, voters/2+1, voters, err)
	}
	return fmt.Errorf("%w (%v)", ErrNoLeader, err)
}

func (n *Node) voters() int {
	f := n.Raft.GetConfiguration()
	if f.Error() != nil {
		return 0
	}
	v := 0
	for _, s := range f.Configuration().Servers {
		if s.Suffrage == raft.Voter {
			v++
		}
	}
	return v
}

// AddVoter makes node id at addr a voting member; this member must lead.
// Adding a member that is already one with the same address is a no-op.
func (n *Node) AddVoter(ctx context.Context, id, addr string) error {
	if !n.IsLeader() {
		return ErrNotLeader
	}
	if f := n.Raft.GetConfiguration(); f.Error() == nil {
		for _, s := range f.Configuration().Servers {
			if string(s.ID) == id && string(s.Address) == addr && s.Suffrage == raft.Voter {
				return nil
			}
		}
	}
	if err := n.Raft.AddVoter(raft.ServerID(id), raft.ServerAddress(addr), 0, n.timeout(ctx)).Error(); err != nil {
		return fmt.Errorf("raft: add manager %s at %s: %w", id, addr, n.noLeader(err))
	}
	return nil
}

// RemoveServer takes node id out of the membership; this member must lead.
func (n *Node) RemoveServer(ctx context.Context, id string) error {
	if !n.IsLeader() {
		return ErrNotLeader
	}
	if err := n.Raft.RemoveServer(raft.ServerID(id), 0, n.timeout(ctx)).Error(); err != nil {
		return fmt.Errorf("raft: remove manager %s: %w", id, n.noLeader(err))
	}
	return nil
}

// LeaderID is the current leader's node ID, empty when none is known.
func (n *Node) LeaderID() string {
	_, id := n.Raft.LeaderWithID()
	return string(id)
}

func (n *Node) timeout(ctx context.Context) time.Duration {
	t := n.cfg.ApplyTimeout
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < t {
		t = time.Until(dl)
	}
	return t
}

// IsMember tells whether this member is in the Raft configuration it
// knows (a manager that joined but was never added is not).
func (n *Node) IsMember() bool { return n.HasServer(n.cfg.NodeID) }

// HasServer tells whether member id is in the Raft configuration this
// member knows.
func (n *Node) HasServer(id string) bool {
	f := n.Raft.GetConfiguration()
	if f.Error() != nil {
		return false
	}
	for _, s := range f.Configuration().Servers {
		if s.ID == raft.ServerID(id) {
			return true
		}
	}
	return false
}

// ErrQuorum describes a write that cannot be made because no leader is
// elected: how many managers it takes, and how many there are.
func (n *Node) ErrQuorum() error {
	return n.noLeader(raft.ErrNotLeader)
}
