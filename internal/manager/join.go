package manager

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/internal/hostinfo"
	"github.com/warren-project/warren/internal/security/join"
	"github.com/warren-project/warren/internal/security/token"
)

// dataKeyPath is where a manager keeps the key that seals secrets.
func dataKeyPath(dataDir string) string { return filepath.Join(dataDir, join.DataKeyFile) }

// joinCluster admits this manager into an existing cluster with a manager
// token, on a data dir that holds no identity yet: it receives its
// certificate, the root and data keys, and writes them in a manager's
// layout (the identity last, so an interrupted join starts over). Raft
// membership follows once Raft listens (addSelf).
func (m *Manager) joinCluster(ctx context.Context) error {
	if _, err := os.Stat(filepath.Join(m.cfg.DataDir, identityFile)); err == nil || !errors.Is(err, fs.ErrNotExist) {
		return err // already a member (or the dir is unreadable)
	}
	tok, err := token.Parse(m.cfg.JoinToken)
	if err != nil {
		return err
	}
	if tok.Role != token.RoleManager {
		return errors.New("this is a worker token: a manager joins with the manager token (`warren cluster join-token manager`)")
	}
	creds, err := join.Join(ctx, m.cfg.JoinAddr, m.cfg.JoinToken, hostinfo.Describe(), m.advertiseHost())
	if err != nil {
		return err
	}
	if len(creds.ManagerAddrs) == 0 {
		creds.ManagerAddrs = []string{m.cfg.JoinAddr}
	}
	if err := creds.SaveManager(m.cfg.DataDir); err != nil {
		return err
	}
	m.joinedNow = true
	m.log.Info("joined the cluster as a manager", "node.id", creds.NodeID, "cluster.id", creds.ClusterID, "via", m.cfg.JoinAddr)
	return nil
}

// addSelf asks the cluster to make this manager a Raft voter, unless it is
// one: through the managers it knows, each in turn, until one answers.
func (m *Manager) addSelf(ctx context.Context) error {
	if m.creds.Founder || m.raft.IsMember() {
		return nil
	}
	addrs := m.creds.JoinAddrs
	if m.cfg.JoinAddr != "" {
		addrs = appendNew([]string{m.cfg.JoinAddr}, addrs...)
	}
	if len(addrs) == 0 {
		return errors.New("this manager is not a Raft member and knows no manager to ask: join again with a token")
	}
	req := &api.AddManagerRequest{NodeId: m.creds.NodeID, RaftAddr: m.raft.Addr()}
	deadline := time.Now().Add(time.Minute)
	var last error
	for time.Now().Before(deadline) {
		for _, addr := range addrs {
			if last = m.askToAdd(ctx, addr, req); last == nil {
				return nil
			}
			if isDemotedRefusal(last) {
				return last // demoted before it joined: it goes on as a worker
			}
			m.log.Warn("could not become a Raft member yet", "via", addr, "err", last)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
	return fmt.Errorf("no manager made this one a Raft member: %w", last)
}

func (m *Manager) askToAdd(ctx context.Context, addr string, req *api.AddManagerRequest) error {
	conn, err := m.dialPeer(addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	_, err = api.NewRaftMembershipClient(conn).AddManager(cctx, req)
	return err
}
