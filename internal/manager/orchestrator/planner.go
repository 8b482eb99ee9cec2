package orchestrator

import (
	"fmt"
	"time"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/internal/state"
)

// input is what reconciling one service reads, all from one transaction.
type input struct {
	serviceID string
	service   *api.Service // nil when the service was removed
	tasks     []*api.Task  // every task of the service (copies: the planner changes them)
	node      func(id string) *api.Node
	nodes     func() []*api.Node
	history   int // finished tasks kept per slot
	now       time.Time
}

func readInput(tx state.ReadTx, serviceID string, now time.Time) input {
	cache := map[string]*api.Node{}
	in := input{
		serviceID: serviceID,
		service:   tx.GetService(serviceID),
		tasks:     tx.ListTasks(state.ByService(serviceID)),
		nodes:     tx.ListNodes,
		history:   defaultHistory,
		now:       now,
	}
	in.node = func(id string) *api.Node {
		n, ok := cache[id]
		if !ok {
			n = tx.GetNode(id)
			cache[id] = n
		}
		return n
	}
	// 0 reads as "unset" (proto3 cannot tell them apart): the default applies.
	if l := tx.GetCluster().GetSpec().GetTaskHistoryLimit(); l > 0 {
		in.history = int(l)
	}
	return in
}

// unit is what holds one running copy of a service: a slot of a replicated
// service, or a node of a global one.
type unit struct {
	slot    uint64
	nodeID  string
	tasks   []*api.Task // newest first
	current *api.Task   // the task wanted running, if any
	// frozen units keep what they run but get no new task (a global
	// service's node that is down or paused).
	frozen bool
}

// planner decides one service's changes. It is a pure function of its input
// (and the time), so a conflicting write can simply run it again.
type planner struct {
	input
	cfg Config

	creates   []*api.Task
	updates   []*api.Task // tasks whose desired state moved
	deletes   []*api.Task
	svcUpdate *api.Service // set when the update status changed
	wake      time.Time    // when to look again, for a back-off or a delay

	updated map[string]bool
	deleted map[string]bool
}

func newPlanner(in input, cfg Config) *planner {
	return &planner{input: in, cfg: cfg, updated: map[string]bool{}, deleted: map[string]bool{}}
}

// run plans everything: the service's units, its update, then the reaper.
func (p *planner) run() {
	if p.service == nil {
		for _, t := range p.tasks {
			p.setDesired(t, stateRemove)
		}
		p.reap()
		return
	}
	var units []*unit
	if p.service.GetSpec().GetGlobal() != nil {
		units = p.global()
	} else {
		units = p.replicated()
	}
	stale := p.rollingUpdate(units)
	p.updateStatus(units, stale)
	p.reap()
}

// changes counts the writes the plan makes.
func (p *planner) changes() int {
	n := len(p.creates) + len(p.deletes)
	for _, t := range p.updates {
		if !p.deleted[t.GetId()] {
			n++
		}
	}
	if p.svcUpdate != nil {
		n++
	}
	return n
}

// apply stages the plan in tx.
func (p *planner) apply(tx state.Tx) error {
	for _, t := range p.deletes {
		if err := tx.Delete(t); err != nil {
			return fmt.Errorf("delete task %s: %w", t.GetId(), err)
		}
	}
	for _, t := range p.updates {
		if p.deleted[t.GetId()] {
			continue
		}
		if err := tx.Update(t); err != nil {
			return fmt.Errorf("set task %s desired %s: %w", t.GetId(), stateName(t.GetDesiredState()), err)
		}
	}
	for _, t := range p.creates {
		if err := tx.Create(t); err != nil {
			return fmt.Errorf("create task for slot %d: %w", t.GetSlot(), err)
		}
	}
	if p.svcUpdate != nil {
		if err := tx.Update(p.svcUpdate); err != nil {
			return fmt.Errorf("set update status: %w", err)
		}
	}
	return nil
}

// setDesired moves a task's desired state forward (RUNNING → SHUTDOWN →
// REMOVE); it never moves it back.
func (p *planner) setDesired(t *api.Task, s api.TaskState) {
	if t.GetDesiredState() >= s {
		return
	}
	t.DesiredState = s
	if !p.updated[t.GetId()] {
		p.updated[t.GetId()] = true
		p.updates = append(p.updates, t)
	}
}

func (p *planner) delete(t *api.Task) {
	if !p.deleted[t.GetId()] {
		p.deleted[t.GetId()] = true
		p.deletes = append(p.deletes, t)
	}
}

func (p *planner) wakeAt(t time.Time) {
	if p.wake.IsZero() || t.Before(p.wake) {
		p.wake = t
	}
}

// create gives the unit a new current task.
func (p *planner) create(u *unit, message string) {
	t := newTask(p.service, u.slot, u.nodeID, message, p.now)
	p.creates = append(p.creates, t)
	u.tasks = append([]*api.Task{t}, u.tasks...)
	u.current = t
}

// replace stops the unit's current task and starts a new one in the same
// write (stop-first); the old task stays as history.
func (p *planner) replace(u *unit, reason string) {
	old := u.current
	p.setDesired(old, stateShutdown)
	p.create(u, fmt.Sprintf("replaces task %s: %s", old.GetId(), reason))
}

// pickCurrent sorts the unit's tasks and finds its current one. Should
// there be several (a race elsewhere), the newest stays and the rest stop.
func (p *planner) pickCurrent(u *unit) {
	sortNewestFirst(u.tasks)
	for _, t := range u.tasks {
		switch {
		case !isCurrent(t):
		case u.current == nil:
			u.current = t
		default:
			p.setDesired(t, stateShutdown)
		}
	}
}

// removeUnit marks every task of a unit that is no longer wanted (a slot
// above the replica count, a drained or vanished node) for removal.
func (p *planner) removeUnit(u *unit) {
	for _, t := range u.tasks {
		p.setDesired(t, stateRemove)
	}
}

// heal replaces a current task that ended in a way its restart policy did
// not decide, after a back-off; and, where nodeLoss is set, one whose node
// is gone, down or drained, at once.
func (p *planner) heal(u *unit, nodeLoss bool) {
	c := u.current
	switch st := observed(c); {
	case st == stateComplete || st == stateFailed:
		// The node's restart policy decided: done, or given up for good.
	case st > stateRunning: // rejected, orphaned, or stopped unasked
		due := statusTime(c).Add(p.backoff(u))
		if p.now.Before(due) {
			p.wakeAt(due)
			return
		}
		p.replace(u, endReason(c))
	case nodeLoss:
		if why := p.nodeLost(c); why != "" {
			p.replace(u, why)
		}
	}
}

// backoff is how long to wait before replacing the unit's ended current
// task: the restart policy's delay (or the configured first back-off),
// doubled for each consecutive rejected or orphaned task of the unit. The
// count comes from the kept history, so a manager restart does not reset
// it; the history limit bounds it.
func (p *planner) backoff(u *unit) time.Duration {
	base := u.current.GetSpec().GetRestart().GetDelay().AsDuration()
	if base <= 0 {
		base = p.cfg.RejectBackoff
	}
	failures := 0
	for _, t := range u.tasks {
		if t != u.current && observed(t) != stateRejected && observed(t) != stateOrphaned {
			break
		}
		failures++
	}
	return backoffDelay(base, failures, p.cfg.MaxBackoff)
}

// nodeLost says why a task's node can no longer run it, or "".
func (p *planner) nodeLost(t *api.Task) string {
	id := t.GetNodeId()
	if id == "" {
		return ""
	}
	n := p.node(id)
	switch {
	case n == nil:
		return fmt.Sprintf("node %s is gone", id)
	case n.GetStatus().GetState() == api.NodeState_NODE_STATE_DOWN:
		return fmt.Sprintf("node %s is down", nodeLabel(n))
	case n.GetSpec().GetAvailability() == api.NodeAvailability_NODE_AVAILABILITY_DRAIN:
		return fmt.Sprintf("node %s is drained", nodeLabel(n))
	}
	return ""
}
