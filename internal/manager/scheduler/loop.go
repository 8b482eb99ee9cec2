package scheduler

import (
	"context"
	"net/netip"
	"time"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/internal/state"
)

// runner is the state of one Run: a cache of nodes and tasks kept current by
// the store's events, and the timers that batch changes into passes. It is
// owned by the Run goroutine; nothing in it is shared.
type runner struct {
	s   *Scheduler
	sub *state.Subscription

	// The cache holds objects from the store's views and events: shared,
	// read-only.
	nodes   map[string]*api.Node
	tasks   map[string]*api.Task
	pending map[string]*api.Task

	// inflight maps each task of our last write to the version it had
	// before: until its event arrives the cache does not show the write, and
	// a pass then would place tasks on a load that misses it.
	inflight map[string]uint64

	// lastAddr is the last overlay address handed out per node: the next
	// search starts after it, so a released address is not reused at once.
	lastAddr map[string]netip.Addr

	dirty bool      // a change may have made a placement possible
	burst time.Time // when the first change of the current burst came
	timer *time.Timer
}

func newRunner(s *Scheduler) *runner {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return &runner{s: s, timer: t, lastAddr: map[string]netip.Addr{}}
}

func (r *runner) loop(ctx context.Context) {
	r.reload()
	defer func() { r.sub.Cancel() }()
	sweep := time.NewTicker(r.s.cfg.SweepInterval)
	defer sweep.Stop()
	defer r.timer.Stop()
	r.markDirty() // place what was pending before we started
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-r.sub.C:
			if !ok { // only Cancel closes it; be safe and start over
				r.reload()
				r.markDirty()
				continue
			}
			r.handle(ev)
		case <-r.timer.C:
			r.pass(ctx)
		case <-sweep.C:
			r.reload()
			r.markDirty()
		}
	}
}

// reload replaces the cache with a fresh view and a new subscription, taken
// atomically. It serves a restore, the safety sweep and the start.
func (r *runner) reload() {
	if r.sub != nil {
		r.sub.Cancel()
	}
	r.nodes, r.tasks, r.pending = map[string]*api.Node{}, map[string]*api.Task{}, map[string]*api.Task{}
	r.inflight = nil // the view shows every write we made: they returned before it
	r.sub = r.s.store.ViewAndWatch(nil, func(tx state.ReadTx) {
		for _, n := range tx.ListNodes() {
			r.nodes[n.GetId()] = n
		}
		for _, t := range tx.ListTasks(state.All) {
			r.setTask(t)
		}
	})
}

func (r *runner) handle(ev state.Event) {
	if ev.Kind == state.EventRestore {
		r.s.log.Info("state restored from a snapshot: reloading")
		r.reload()
		r.markDirty()
		return
	}
	switch obj := ev.Object.(type) {
	case *api.Node:
		if ev.Kind == state.EventDelete {
			delete(r.nodes, obj.GetId())
		} else {
			r.nodes[obj.GetId()] = obj
		}
		// Any node change (state, availability, labels, resources) may
		// make a pending task fit, or change why it does not.
		r.markDirty()
	case *api.Task:
		r.taskEvent(ev.Kind, obj)
	}
	if r.dirty {
		r.arm() // wait for quiet again, within the burst's bound
	}
}

func (r *runner) taskEvent(kind state.EventKind, t *api.Task) {
	id := t.GetId()
	if base, ok := r.inflight[id]; ok && (kind == state.EventDelete || t.GetMeta().GetVersion() > base) {
		delete(r.inflight, id)
	}
	old := r.tasks[id]
	if kind == state.EventDelete {
		delete(r.tasks, id)
		delete(r.pending, id)
		t = nil
	} else {
		r.setTask(t)
	}
	if isPending(old) || isPending(t) || loadChanged(old, t) {
		r.markDirty()
	}
}

func (r *runner) setTask(t *api.Task) {
	r.tasks[t.GetId()] = t
	if isPending(t) {
		r.pending[t.GetId()] = t
	} else {
		delete(r.pending, t.GetId())
	}
}

// isPending tells whether the scheduler owns the task: it is meant to run
// and no node has it yet (or it is pinned to a node but not yet assigned).
func isPending(t *api.Task) bool {
	return t != nil && t.GetDesiredState() == api.TaskState_TASK_STATE_RUNNING &&
		t.GetStatus().GetState() < api.TaskState_TASK_STATE_ASSIGNED
}

// loadChanged tells whether a task event changes what a node holds, which
// may make room for a pending task. Status reports of running tasks do not.
func loadChanged(old, t *api.Task) bool {
	ho, hn := old != nil && holdsResources(old), t != nil && holdsResources(t)
	if ho != hn {
		return true
	}
	if !ho {
		return false
	}
	return old.GetNodeId() != t.GetNodeId() || old.GetServiceId() != t.GetServiceId() ||
		resourcesOf(old.GetSpec().GetResources().GetReservations()) != resourcesOf(t.GetSpec().GetResources().GetReservations())
}

// markDirty notes that a pass is due and arms the timer.
func (r *runner) markDirty() {
	if !r.dirty {
		r.dirty = true
		r.burst = time.Now()
	}
	r.arm()
}

// arm sets the timer to the end of the quiet period, but no later than
// MaxDelay after the burst began, so a steady stream cannot starve placement.
func (r *runner) arm() {
	deadline := time.Now().Add(r.s.cfg.QuietPeriod)
	if limit := r.burst.Add(r.s.cfg.MaxDelay); limit.Before(deadline) {
		deadline = limit
	}
	r.timer.Reset(time.Until(deadline))
}
