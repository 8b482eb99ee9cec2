package worker

import (
	"context"

	"github.com/warren-project/warren/api"
)

// applyComplete makes the node's task set exactly tasks: new ones start,
// known ones are updated, the rest are torn down. Containers of ours that
// no task accounts for are then removed as orphans.
func (a *Agent) applyComplete(tasks []*api.Task) {
	keep := make(map[string]bool, len(tasks))
	a.mu.Lock()
	for _, t := range tasks {
		keep[t.GetId()] = true
		a.upsertLocked(t)
	}
	for id, r := range a.runners {
		if !keep[id] {
			r.remove()
		}
	}
	a.mu.Unlock()
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		a.sweepOrphans(a.runCtx)
		a.sweepNetworks()
	}()
}

// applyIncremental applies a batch of changes.
func (a *Agent) applyIncremental(tasks []*api.Task, removed []string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, t := range tasks {
		a.upsertLocked(t)
	}
	for _, id := range removed {
		if r := a.runners[id]; r != nil {
			r.remove()
		}
	}
}

func (a *Agent) upsertLocked(t *api.Task) {
	if r := a.runners[t.GetId()]; r != nil {
		r.update(t)
		return
	}
	r := a.newRunner(t)
	a.runners[t.GetId()] = r
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		r.run(a.runCtx)
	}()
}

// finish drops a torn-down runner, unless its task came back meanwhile.
func (a *Agent) finish(r *runner) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.removed {
		return false
	}
	if a.runners[r.id] == r {
		delete(a.runners, r.id)
	}
	a.rep.forget(r.id)
	return true
}

// sweepOrphans removes containers labelled as this node's whose task the
// node does not hold. A task being torn down still has its runner, which
// removes the container itself.
func (a *Agent) sweepOrphans(ctx context.Context) {
	cs, err := a.cfg.Executor.List(ctx, map[string]string{LabelNodeID: a.cfg.NodeID})
	if err != nil {
		if ctx.Err() == nil {
			a.log.Warn("cannot list containers to find orphans", "err", err)
		}
		return
	}
	for _, c := range cs {
		if c.Labels[LabelTaskID] != c.ID {
			continue // not one of ours: ours are named after their task
		}
		a.mu.Lock()
		_, held := a.runners[c.ID]
		a.mu.Unlock()
		if held {
			continue
		}
		a.log.Info("removing orphan container", "task.id", c.ID)
		if err := a.exec.destroy(ctx, c.ID, a.cfg.StopGrace); err != nil && ctx.Err() == nil {
			a.log.Warn("cannot remove orphan container", "task.id", c.ID, "err", err)
		}
	}
}
