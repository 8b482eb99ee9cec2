package dispatcher

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/internal/state"
)

// assignmentSet tracks what one node holds and what it must be told next.
// The node gets its tasks whole; a change of a task's status alone is not
// sent, since the node is where statuses come from.
type assignmentSet struct {
	nodeID  string
	seq     uint64
	sent    map[string]*api.Task // what the node holds, without status and meta
	pending map[string]*api.Task // changes to send; a nil task is a removal
}

func newAssignmentSet(nodeID string) *assignmentSet {
	return &assignmentSet{nodeID: nodeID, sent: map[string]*api.Task{}, pending: map[string]*api.Task{}}
}

// holds tells whether t belongs to the node's assignments: placed on it,
// whatever its desired state.
func (a *assignmentSet) holds(t *api.Task) bool {
	return t.GetNodeId() == a.nodeID && t.GetStatus().GetState() >= api.TaskState_TASK_STATE_ASSIGNED
}

// concerns filters store events down to the node's tasks.
func (a *assignmentSet) concerns(ev state.Event) bool {
	t, ok := ev.Object.(*api.Task)
	if !ok {
		return false
	}
	if t.GetNodeId() == a.nodeID {
		return true
	}
	old, ok := ev.Old.(*api.Task)
	return ok && old.GetNodeId() == a.nodeID
}

// complete returns the first message of a session: every task of the node.
func (a *assignmentSet) complete(tasks []*api.Task) *api.Assignments {
	a.seq++
	msg := &api.Assignments{Type: api.Assignments_TYPE_COMPLETE, Sequence: a.seq}
	for _, t := range tasks {
		if a.holds(t) {
			a.sent[t.GetId()] = withoutStatus(t)
			msg.Tasks = append(msg.Tasks, t)
		}
	}
	return msg
}

// observe records the change an event brings. Objects in events are shared,
// so what is kept is a copy.
func (a *assignmentSet) observe(ev state.Event) {
	t, ok := ev.Object.(*api.Task)
	if !ok {
		return
	}
	if ev.Kind == state.EventDelete {
		a.change(t.GetId(), nil)
		return
	}
	a.change(t.GetId(), t)
}

// resync compares the node's whole task list with what it holds, after the
// store was restored from a snapshot.
func (a *assignmentSet) resync(tasks []*api.Task) {
	seen := map[string]bool{}
	for _, t := range tasks {
		seen[t.GetId()] = true
		a.change(t.GetId(), t)
	}
	for id := range a.sent {
		if !seen[id] {
			a.change(id, nil)
		}
	}
}

func (a *assignmentSet) change(id string, t *api.Task) {
	if t != nil && a.holds(t) {
		if held, ok := a.sent[id]; ok && proto.Equal(held, withoutStatus(t)) {
			if _, queued := a.pending[id]; !queued {
				return // a status change only
			}
		}
		a.pending[id] = proto.Clone(t).(*api.Task)
		return
	}
	if _, held := a.sent[id]; held {
		a.pending[id] = nil
		return
	}
	delete(a.pending, id) // added and gone again before it was sent
}

// flush returns the pending changes as the next INCREMENTAL message, or nil.
func (a *assignmentSet) flush() *api.Assignments {
	if len(a.pending) == 0 {
		return nil
	}
	a.seq++
	msg := &api.Assignments{Type: api.Assignments_TYPE_INCREMENTAL, Sequence: a.seq}
	ids := make([]string, 0, len(a.pending))
	for id := range a.pending {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		if t := a.pending[id]; t != nil {
			a.sent[id] = withoutStatus(t)
			msg.Tasks = append(msg.Tasks, t)
		} else {
			delete(a.sent, id)
			msg.RemovedTaskIds = append(msg.RemovedTaskIds, id)
		}
	}
	clear(a.pending)
	return msg
}

// withoutStatus is what decides whether the node must be told of a task
// again: not its status, meta or credentials (the store never holds
// credentials; a change of them is sent by refreshCredentials).
func withoutStatus(t *api.Task) *api.Task {
	c := proto.Clone(t).(*api.Task)
	c.Status, c.Meta, c.RegistryAuth = nil, nil, nil
	return c
}

func nodeTasks(tx state.ReadTx, nodeID string) []*api.Task {
	tasks := tx.ListTasks(state.ByNode(nodeID))
	slices.SortFunc(tasks, func(a, b *api.Task) int { return strings.Compare(a.GetId(), b.GetId()) })
	return tasks
}

// sendAssignments sends the node's COMPLETE assignments, then batches of
// changes, until ctx ends or a send fails. Image archives the node must load
// go first, so that a task using one finds its load already known, and then
// as soon as they are imported: they are rare, and a batch would only delay
// them.
func (d *Dispatcher) sendAssignments(ctx context.Context, nodeID string, send func(*api.SessionMessage) error, info func() *api.SessionMessage) error {
	set := newAssignmentSet(nodeID)
	imgs := newImageSet(nodeID)
	var tasks []*api.Task
	var loads []*api.ImageArchive
	concerns := func(ev state.Event) bool {
		return set.concerns(ev) || imgs.concerns(ev) || credentialsChanged(ev) || roleChanged(ev, nodeID)
	}
	sub := d.store.ViewAndWatch(concerns, func(tx state.ReadTx) {
		tasks, loads = nodeTasks(tx, nodeID), imgs.start(tx)
	})
	defer sub.Cancel()
	// The network map goes first: a task's network needs the node's block.
	netmap, mapChanged := d.maps.get()
	if netmap != nil {
		if err := send(networkMapMessage(netmap)); err != nil {
			return fmt.Errorf("send network map to node %s: %w", nodeID, err)
		}
	}
	if err := sendLoads(send, loads); err != nil {
		return fmt.Errorf("send image loads to node %s: %w", nodeID, err)
	}
	if err := send(d.withCredentials(nodeID, set.complete(tasks))); err != nil {
		return fmt.Errorf("send assignments to node %s: %w", nodeID, err)
	}
	b := newBatcher(d.cfg.BatchQuiet, d.cfg.BatchMaxDelay)
	defer b.stop()
	for {
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-mapChanged:
			netmap, mapChanged = d.maps.get()
			if err := send(networkMapMessage(netmap)); err != nil {
				return fmt.Errorf("send network map to node %s: %w", nodeID, err)
			}
			continue
		case ev, ok := <-sub.C:
			if !ok {
				return errors.New("store subscription ended")
			}
			switch {
			case roleChanged(ev, nodeID):
				if err := send(info()); err != nil {
					return fmt.Errorf("send the new role to node %s: %w", nodeID, err)
				}
				continue
			case ev.Kind == state.EventRestore:
				if err := send(info()); err != nil { // the role may have changed too
					return fmt.Errorf("send session info to node %s: %w", nodeID, err)
				}
				d.store.View(func(tx state.ReadTx) {
					tasks := nodeTasks(tx, nodeID)
					set.resync(tasks)
					set.refreshCredentials(tasks) // they may have changed too
					loads = imgs.resync(tx)
				})
			case imgs.concerns(ev):
				loads = imgs.observe(ev)
			case credentialsChanged(ev):
				loads = nil
				d.store.View(func(tx state.ReadTx) {
					set.refreshCredentials(tx.ListTasks(state.ByService(ev.Object.(*api.Service).GetId())))
				})
			default:
				loads = nil
				set.observe(ev)
			}
			if err := sendLoads(send, loads); err != nil {
				return fmt.Errorf("send image loads to node %s: %w", nodeID, err)
			}
			if len(set.pending) < d.cfg.BatchMaxChanges {
				b.touch(len(set.pending) > 0)
				continue
			}
		case <-b.C():
		}
		b.reset()
		if msg := set.flush(); msg != nil {
			if err := send(d.withCredentials(nodeID, msg)); err != nil {
				return fmt.Errorf("send assignments to node %s: %w", nodeID, err)
			}
		}
	}
}

func assignmentsMessage(a *api.Assignments) *api.SessionMessage {
	return &api.SessionMessage{Msg: &api.SessionMessage_Assignments{Assignments: a}}
}

// batcher times a batch: it fires quiet after the last change, and no later
// than maxDelay after the first.
type batcher struct {
	timer          *time.Timer
	quiet, maxWait time.Duration
	first          time.Time
}

func newBatcher(quiet, maxWait time.Duration) *batcher {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return &batcher{timer: t, quiet: quiet, maxWait: maxWait}
}

func (b *batcher) C() <-chan time.Time { return b.timer.C }

// touch notes a change; waiting says whether anything is left to send.
func (b *batcher) touch(waiting bool) {
	if !waiting {
		b.reset()
		return
	}
	now := time.Now()
	if b.first.IsZero() {
		b.first = now
	}
	b.timer.Reset(max(0, min(b.quiet, b.first.Add(b.maxWait).Sub(now))))
}

func (b *batcher) reset() {
	b.timer.Stop()
	b.first = time.Time{}
}

func (b *batcher) stop() { b.timer.Stop() }
