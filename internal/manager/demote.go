package manager

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/internal/manager/nodeca"
	"github.com/warren-project/warren/internal/security/ca"
	"github.com/warren-project/warren/internal/security/join"
	"github.com/warren-project/warren/internal/state"
)

// onRole hears the role this node's sessions name. The leader records a
// demoted manager as a worker only once it is out of Raft, so a worker
// role here means the manager's part is over.
func (m *Manager) onRole(role api.NodeRole) {
	if role == api.NodeRole_NODE_ROLE_WORKER {
		m.demoteOnce.Do(func() { close(m.demoted) })
	}
}

// becomeWorker rewrites the data dir of a demoted manager, once it has
// stopped, into a worker's: a worker certificate from the CA it still
// holds, an identity naming the other managers, and the identity saved
// before the manager's files go, so a crash in between leaves a worker
// (which removes the leftovers when it starts).
func (m *Manager) becomeWorker() error {
	var ttl time.Duration
	m.store.View(func(tx state.ReadTx) { ttl = nodeca.CertTTL(tx.GetCluster()) })
	others := m.otherManagerAddrs()
	certPEM, keyPEM, err := m.creds.CA.Issue(m.creds.NodeID, ca.RoleWorker, m.creds.ClusterID, ttl, nil)
	if err != nil {
		return fmt.Errorf("issue the worker certificate: %w", err)
	}
	creds := &join.Credentials{
		NodeID: m.creds.NodeID, ClusterID: m.creds.ClusterID, Role: ca.RoleWorker,
		CertPEM: certPEM, KeyPEM: keyPEM, CAPEM: m.creds.CA.CertPEM(), ManagerAddrs: others,
	}
	if err := creds.Save(m.cfg.DataDir); err != nil {
		return err
	}
	return join.RemoveManagerFiles(m.cfg.DataDir)
}

// otherManagerAddrs are the API addresses of the other managers: those
// in the state, then those this manager joined through.
func (m *Manager) otherManagerAddrs() []string {
	return appendNew(m.peerAPIAddrs(), m.creds.JoinAddrs...)
}

// errDemotedAway: this manager was taken out of Raft while it was away.
var errDemotedAway = errors.New("this manager was demoted while it was away")

// demotedWhileAway asks the other managers whether this one still is
// one, when it hears from no leader: a manager demoted while it was down
// is out of Raft, and no leader will ever contact it again. The others
// refuse its manager certificate once its node is a worker (authorize);
// the question is a consistent read, so a follower that has not yet seen
// this manager's promotion catches up before it answers.
func (m *Manager) demotedWhileAway(ctx context.Context) bool {
	for _, addr := range m.otherManagerAddrs() {
		conn, err := m.dialPeer(addr)
		if err != nil {
			continue
		}
		cctx, cancel := context.WithTimeout(metadata.AppendToOutgoingContext(ctx, ConsistentReadHeader, "consistent"), 5*time.Second)
		_, err = api.NewControlClient(conn).GetVersion(cctx, &api.GetVersionRequest{})
		cancel()
		_ = conn.Close()
		if isDemotedRefusal(err) {
			return true
		}
	}
	return false
}

// isDemotedRefusal tells a manager's refusal of this one's certificate
// because its node is no longer a manager (see authorize).
func isDemotedRefusal(err error) bool {
	return status.Code(err) == codes.PermissionDenied && strings.Contains(status.Convert(err).Message(), errNoLongerManager)
}

// agentFallback reaches the other managers in turn for this node's agent
// when Raft names no leader here: a manager cut off from Raft, or taken
// out of it while it was away, still needs its session, which the leader's
// dispatcher serves (the others refuse, and the agent tries the next).
type agentFallback struct {
	next atomic.Uint64
	conn peerConn
}

// dial connects to the next manager other than this one.
func (f *agentFallback) dial(m *Manager, cause error) (api.DispatcherClient, error) {
	addrs := m.otherManagerAddrs()
	if len(addrs) == 0 {
		return nil, cause
	}
	addr := addrs[(f.next.Add(1)-1)%uint64(len(addrs))]
	conn, err := f.conn.to(addr, m.dialPeer)
	if err != nil {
		return nil, fmt.Errorf("%v; and manager %s: %w", cause, addr, err)
	}
	return api.NewDispatcherClient(conn), nil
}

// agentDial reaches the leader's dispatcher for this node's agent: in
// process while this manager leads, over mutual TLS to the leader
// otherwise, and through the other managers in turn when no leader is
// known here.
func (m *Manager) agentDial(local *grpc.ClientConn) func(context.Context) (api.DispatcherClient, error) {
	return func(ctx context.Context) (api.DispatcherClient, error) {
		if m.raft.IsLeader() {
			return api.NewDispatcherClient(local), nil
		}
		lc, err := m.leader.get(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil, err
			}
			return m.fallback.dial(m, err)
		}
		return api.NewDispatcherClient(lc), nil
	}
}
