package manager

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/internal/state"
)

// Promotion and demotion, as Swarm does them: `node promote`/`demote` set
// the role asked for (spec.role); the leader's role reconciler moves the
// node's current role (Node.role) to it. A promotion takes effect at once:
// the node's next session names the manager role, the node gets a manager
// certificate and the cluster's keys, restarts as a manager and asks to be
// a Raft voter. A demotion first takes the node out of Raft, and only
// then records it as a worker: the demoted manager learns it from its
// session and restarts as a worker. Containers run on throughout.

// roleRetryInterval is how often the reconciler looks again at changes
// it could not make yet (a demotion that would break quorum).
const roleRetryInterval = 2 * time.Second

// roleReconciler runs on the leader, in the control pipeline.
type roleReconciler struct {
	m      *Manager
	warned map[string]string // node ID → the last reason logged for waiting
}

func newRoleReconciler(m *Manager) *roleReconciler {
	return &roleReconciler{m: m, warned: map[string]string{}}
}

// Stop does nothing: Run ends with its context, as the pipeline's does.
func (r *roleReconciler) Stop() {}

func (r *roleReconciler) Run(ctx context.Context) error {
	isNode := func(ev state.Event) bool { _, ok := ev.Object.(*api.Node); return ok || ev.Kind == state.EventRestore }
	sub := r.m.store.Watch(isNode)
	defer sub.Cancel()
	tick := time.NewTicker(roleRetryInterval)
	defer tick.Stop()
	for {
		r.reconcile(ctx)
		select {
		case <-ctx.Done():
			return nil
		case _, ok := <-sub.C:
			if !ok {
				return errors.New("store subscription ended")
			}
		case <-tick.C:
		}
	}
}

// reconcile moves every node whose role differs from the one asked for.
func (r *roleReconciler) reconcile(ctx context.Context) {
	var moving []*api.Node
	r.m.store.View(func(tx state.ReadTx) {
		for _, n := range tx.ListNodes() {
			if n.GetSpec().GetRole() != n.CurrentRole() {
				moving = append(moving, n)
			}
		}
	})
	for _, n := range moving {
		if ctx.Err() != nil {
			return
		}
		var err error
		if n.GetSpec().GetRole() == api.NodeRole_NODE_ROLE_MANAGER {
			err = r.setRole(ctx, n.GetId(), api.NodeRole_NODE_ROLE_MANAGER)
		} else {
			err = r.demote(ctx, n.GetId())
		}
		if err != nil && r.warned[n.GetId()] != err.Error() {
			r.warned[n.GetId()] = err.Error()
			r.m.log.Warn("role change waits", "node.id", n.GetId(), "role", n.GetSpec().GetRole().String(), "reason", err)
		}
	}
}

// demote takes a manager out of Raft, then records it as a worker. The
// leader does not remove itself: it hands leadership over, and the next
// leader demotes it.
func (r *roleReconciler) demote(ctx context.Context, id string) error {
	if err := r.m.CheckDemotion(id); err != nil {
		return err
	}
	if id == r.m.creds.NodeID {
		r.m.log.Info("handing leadership over before this manager is demoted")
		if err := r.m.raft.Raft.LeadershipTransfer().Error(); err != nil {
			return fmt.Errorf("hand leadership over: %w", err)
		}
		return nil
	}
	if r.m.raft.HasServer(id) {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if err := r.m.raft.RemoveServer(cctx, id); err != nil {
			return err
		}
		r.m.log.Info("demoted manager removed from Raft", "node.id", id)
	}
	return r.setRole(ctx, id, api.NodeRole_NODE_ROLE_WORKER)
}

// setRole records role as node id's current role, unless what was asked
// for changed meanwhile.
func (r *roleReconciler) setRole(ctx context.Context, id string, role api.NodeRole) error {
	err := r.m.store.Update(ctx, func(tx state.Tx) error {
		n := tx.GetNode(id)
		if n == nil || n.GetSpec().GetRole() != role || n.CurrentRole() == role {
			return nil
		}
		n.Role = role
		if role == api.NodeRole_NODE_ROLE_WORKER {
			n.ManagerStatus = nil
		}
		return tx.Update(n)
	})
	if err != nil {
		return fmt.Errorf("record node %s as a %s: %w", id, role, err)
	}
	delete(r.warned, id)
	r.m.log.Info("node role changed", "node.id", id, "role", role.String())
	return nil
}

// isManagerNode says whether node id is a manager in this manager's
// state. A manager that just joined may not have reached a follower's
// state yet: its calls there are refused until it has (it retries).
func (m *Manager) isManagerNode(id string) bool {
	var ok bool
	m.store.View(func(tx state.ReadTx) { ok = tx.GetNode(id).IsManager() })
	return ok
}

// CheckDemotion refuses to take manager id out of Raft when that would
// leave no manager, or fewer reachable managers than the rest need for
// quorum: the cluster would stop accepting writes. The API asks it too, to
// refuse a demotion at once.
func (m *Manager) CheckDemotion(id string) error {
	info := m.raftInfo()
	var rest, reachable int
	found := false
	for _, s := range info.GetServers() {
		if s.GetId() == id {
			found = true
			continue
		}
		rest++
		if s.GetReachable() {
			reachable++
		}
	}
	switch need := rest/2 + 1; {
	case !found:
		return nil
	case rest == 0:
		return fmt.Errorf("node %s is the only manager: promote another node first (`warren node promote NODE`)", id)
	case reachable < need:
		return fmt.Errorf("demoting node %s would leave %d managers of which %d are reachable, and Raft needs %d of them for quorum: bring the unreachable managers back, or remove the dead ones (`warren node rm`), first",
			id, rest, reachable, need)
	}
	return nil
}
