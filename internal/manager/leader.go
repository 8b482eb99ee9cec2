package manager

import (
	"context"
	"errors"
	"fmt"
	"time"

	"google.golang.org/grpc"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/internal/state"
)

// leaderConn is this manager's connection to the Raft leader's API, for
// forwarded writes and its own agent's session. It follows the leader:
// a call after the leader changed dials the new one.
type leaderConn struct {
	m    *Manager
	conn peerConn
}

// errNoLeaderKnown: no leader, or one whose API address is not in the state.
var errNoLeaderKnown = errors.New("no leader known")

// get returns a connection to the current leader.
func (l *leaderConn) get(ctx context.Context) (*grpc.ClientConn, error) {
	// An election takes a few election timeouts at most; past that, quorum
	// is lost and the write fails at once rather than hang the client.
	wctx, cancel := context.WithTimeout(ctx, l.m.electionWait())
	err := l.m.raft.WaitForLeader(wctx)
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, l.m.raft.ErrQuorum()
	}
	addr, err := l.waitLeaderAPI(ctx)
	if err != nil {
		return nil, err
	}
	return l.conn.to(addr, l.m.dialPeer)
}

// client is the leader's RaftMembership service.
func (l *leaderConn) client(ctx context.Context) (api.RaftMembershipClient, error) {
	conn, err := l.get(ctx)
	if err != nil {
		return nil, err
	}
	return api.NewRaftMembershipClient(conn), nil
}

// leaderAPI is the leader's API address, from its node in the state.
func (l *leaderConn) leaderAPI(tx state.ReadTx) (string, error) {
	id := l.m.raft.LeaderID()
	if id == "" {
		return "", errNoLeaderKnown
	}
	addr := tx.GetNode(id).GetManagerStatus().GetApiAddr()
	if addr == "" {
		return "", fmt.Errorf("%w: leader %s has no API address in the state yet", errNoLeaderKnown, id)
	}
	return addr, nil
}

// waitLeaderAPI waits a little for the leader's address: a manager that
// just joined may not have replicated the leader's node yet.
func (l *leaderConn) waitLeaderAPI(ctx context.Context) (string, error) {
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var addr string
	var err error
	l.m.store.WaitUntil(wctx, func(tx state.ReadTx) bool {
		addr, err = l.leaderAPI(tx)
		return err == nil
	})
	return addr, err
}

// forget drops the connection, so that the next call looks the leader up.
func (l *leaderConn) forget() { l.conn.close() }

// electionWait is how long a manager waits for a leader before it calls
// quorum lost: a few election timeouts.
func (m *Manager) electionWait() time.Duration {
	e := m.cfg.RaftElection
	if e <= 0 {
		e = time.Second // hashicorp/raft's default
	}
	return max(5*e, 2*time.Second)
}

// Control is the leader's API for a call that must run there (logs,
// exec), or nil when this manager leads.
func (l *leaderConn) Control(ctx context.Context) (api.ControlClient, error) {
	if l.m.raft.IsLeader() {
		return nil, nil
	}
	conn, err := l.get(ctx)
	if err != nil {
		return nil, err
	}
	return api.NewControlClient(conn), nil
}
