package apiserver

import (
	"context"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/internal/state"
)

// Limits of node labels, as Swarm has them, so a label always fits a
// constraint expression and a table cell.
const (
	maxLabelKey   = 128
	maxLabelValue = 256
)

// preconditionError marks a request that is valid but cannot be done in the
// current state: FailedPrecondition. The message says what to do first.
type preconditionError struct{ err error }

func (e preconditionError) Error() string { return e.err.Error() }
func (e preconditionError) Unwrap() error { return e.err }

func precondition(format string, args ...any) error {
	return preconditionError{fmt.Errorf(format, args...)}
}

// UpdateNode sets a node's availability, labels and the role asked for.
// Drain needs nothing more: the orchestrator replaces the tasks of drained
// nodes and the scheduler skips them. A role change is carried out by the
// leader (see manager/roles.go); a demotion that would leave no manager,
// or too few reachable ones for quorum, is refused here at once.
//
// Codes: InvalidArgument (bad labels or role), NotFound,
// FailedPrecondition (node_version is stale; a demotion refused).
func (s *Server) UpdateNode(ctx context.Context, req *api.UpdateNodeRequest) (*api.UpdateNodeResponse, error) {
	sp := req.GetSpec()
	if sp == nil {
		return nil, toStatus(invalid("no node spec given"))
	}
	if _, ok := api.NodeAvailability_name[int32(sp.GetAvailability())]; !ok {
		return nil, toStatus(invalid("invalid node availability %d: use active, pause or drain", sp.GetAvailability()))
	}
	if _, ok := api.NodeRole_name[int32(sp.GetRole())]; !ok {
		return nil, toStatus(invalid("invalid node role %d: use worker or manager", sp.GetRole()))
	}
	if err := validateNodeLabels(sp.GetLabels()); err != nil {
		return nil, toStatus(err)
	}
	var id string
	// The node is read inside the write so that a status change racing
	// this update (a heartbeat expiry, a registration) is retried on,
	// never overwritten.
	err := s.cfg.Store.Update(ctx, func(tx state.Tx) error {
		n, err := tx.LookupNode(req.GetNode())
		if err != nil {
			return err
		}
		if v := req.GetNodeVersion(); v != 0 && v != n.GetMeta().GetVersion() {
			return fmt.Errorf("node %s is at version %d, not %d: read it again and retry: %w",
				req.GetNode(), n.GetMeta().GetVersion(), v, state.ErrVersionConflict)
		}
		if n.Spec == nil {
			n.Spec = &api.NodeSpec{}
		}
		if r := sp.GetRole(); r != api.NodeRole_NODE_ROLE_UNSPECIFIED && r != n.GetSpec().GetRole() {
			if err := s.checkRoleChange(tx, n, r); err != nil {
				return err
			}
			n.Spec.Role = r
		}
		n.Spec.Availability = sp.GetAvailability()
		n.Spec.Labels = sp.GetLabels()
		id = n.GetId()
		return tx.Update(n)
	})
	if err != nil {
		return nil, toStatus(err)
	}
	var n *api.Node
	s.cfg.Store.View(func(tx state.ReadTx) { n = tx.GetNode(id) })
	s.log.Info("node updated", "node.id", id, "node.role", enumWord(n.GetSpec().GetRole()),
		"node.availability", enumWord(sp.GetAvailability()), "node.labels", len(sp.GetLabels()))
	return &api.UpdateNodeResponse{Node: n}, nil
}

// checkRoleChange refuses a demotion that would leave the cluster without
// a manager, or without quorum. The count of managers asked for is read in
// the write, so two demotions at once cannot both pass it.
func (s *Server) checkRoleChange(tx state.ReadTx, n *api.Node, role api.NodeRole) error {
	if role != api.NodeRole_NODE_ROLE_WORKER {
		return nil
	}
	others := 0
	for _, o := range tx.ListNodes() {
		if o.GetId() != n.GetId() && o.GetSpec().GetRole() == api.NodeRole_NODE_ROLE_MANAGER {
			others++
		}
	}
	if others == 0 {
		return precondition("node %s is the only manager: promote another node first (`warren node promote NODE`), then demote this one", n.GetId())
	}
	if s.cfg.Managers != nil {
		if err := s.cfg.Managers.CheckDemotion(n.GetId()); err != nil {
			return precondition("%v", err)
		}
	}
	return nil
}

// validateNodeLabels checks what constraints (node.labels.KEY==VALUE) can
// express: a key without "=", and sizes that stay readable.
func validateNodeLabels(labels map[string]string) error {
	for k, v := range labels {
		switch {
		case strings.TrimSpace(k) == "":
			return invalid("invalid node label %q=%q: its key is empty", k, v)
		case strings.Contains(k, "="):
			return invalid("invalid node label key %q: a key cannot contain '='", k)
		case utf8.RuneCountInString(k) > maxLabelKey:
			return invalid("invalid node label key %q: longer than %d characters", k, maxLabelKey)
		case utf8.RuneCountInString(v) > maxLabelValue:
			return invalid("invalid value of node label %q: longer than %d characters", k, maxLabelValue)
		}
	}
	return nil
}

// RemoveNode forgets a node in one write. Its tasks are replaced by the
// orchestrator, as their node is gone; its certificate can neither renew
// nor open a session any more, since both check that the node exists.
//
// Codes: NotFound, FailedPrecondition (a manager; a READY node without force).
func (s *Server) RemoveNode(ctx context.Context, req *api.RemoveNodeRequest) (*api.RemoveNodeResponse, error) {
	ref := req.GetNode()
	if err := s.removeManager(ctx, ref); err != nil {
		return nil, toStatus(err)
	}
	var removed *api.Node
	// The checks run inside the write, so a node cannot come up between
	// being found down and being deleted.
	err := s.cfg.Store.Update(ctx, func(tx state.Tx) error {
		n, err := tx.LookupNode(ref)
		if err != nil {
			return err
		}
		if err := s.checkRemovable(n, ref, req.GetForce()); err != nil {
			return err
		}
		removed = n
		return tx.Delete(n)
	})
	if err != nil {
		return nil, toStatus(err)
	}
	s.log.Info("node removed", "node.id", removed.GetId(), "node.hostname", removed.GetDescription().GetHostname(),
		"node.state", removed.GetStatus().GetState().String(), "force", req.GetForce())
	return &api.RemoveNodeResponse{}, nil
}

// removeManager takes a manager that is down out of the Raft membership
// before its node is deleted: a dead manager left in the membership
// counts against quorum forever. A manager that is up is refused: it
// would keep acting as one.
func (s *Server) removeManager(ctx context.Context, ref string) error {
	var n *api.Node
	var err error
	s.cfg.Store.View(func(tx state.ReadTx) { n, err = tx.LookupNode(ref) })
	if err != nil || !n.IsManager() {
		return err // a worker, or not found: RemoveNode says so
	}
	switch {
	case n.GetId() == s.cfg.ManagerNodeID:
		return precondition("node %s is the manager answering this call: remove it from another manager, once it is stopped", ref)
	case n.GetStatus().GetState() == api.NodeState_NODE_STATE_READY:
		return precondition("node %s is a manager that is up: stop warren there first, then remove it (the other managers keep quorum)", ref)
	case s.cfg.Managers == nil:
		return precondition("node %s is a manager and this server cannot change the Raft membership", ref)
	}
	if err := s.cfg.Managers.RemoveManager(ctx, n.GetId()); err != nil {
		return fmt.Errorf("take manager %s out of Raft: %w", ref, err)
	}
	return nil
}

// checkRemovable refuses this manager, and a node that is up unless forced
// (it would keep running containers nobody manages). A manager node got
// here only once out of Raft (removeManager).
func (s *Server) checkRemovable(n *api.Node, ref string, force bool) error {
	if n.GetId() == s.cfg.ManagerNodeID {
		return precondition("node %s is the manager answering this call", ref)
	}
	if n.GetStatus().GetState() == api.NodeState_NODE_STATE_READY && !force {
		return precondition("node %s is up and running tasks: drain it (`warren node update --availability drain %s`) and stop warren there first, or use --force", ref, ref)
	}
	return nil
}

// enumWord is an enum's last word in lower case: "manager", "drain".
func enumWord(e fmt.Stringer) string {
	s := e.String()
	return strings.ToLower(s[strings.LastIndex(s, "_")+1:])
}
