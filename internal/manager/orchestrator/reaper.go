package orchestrator

import (
	"github.com/warren-project/warren/api"
)

// reap deletes the tasks nobody needs any more. It runs after the rest of
// the plan, so a task marked for removal in this pass that is already
// stopped goes at once.
//
// A task marked for removal goes once its node has deleted its container
// (observed REMOVE), when no node ever took it (observed before ASSIGNED),
// or when its node is gone or down (the node removes what it no longer
// holds when it returns). A task that was only shut down is history:
// each slot (or, for a global service, each node) keeps the newest
// `history` of those that have finished, or never started.
func (p *planner) reap() {
	type key struct {
		slot uint64
		node string
	}
	global := p.service.GetSpec().GetGlobal() != nil
	history := map[key][]*api.Task{}
	for _, t := range p.tasks {
		switch {
		case t.GetDesiredState() >= stateRemove:
			if p.reapable(t) {
				p.delete(t)
			}
		case t.GetDesiredState() >= stateShutdown && finished(t):
			k := key{slot: t.GetSlot()}
			if global {
				k = key{node: t.GetNodeId()}
			}
			history[k] = append(history[k], t)
		}
	}
	for _, tasks := range history {
		if len(tasks) <= p.history {
			continue
		}
		sortNewestFirst(tasks)
		for _, t := range tasks[p.history:] {
			p.delete(t)
		}
	}
}

// finished tells whether a task will never run again: its node stopped it,
// or no node ever took it (and, no longer wanted, none will).
func finished(t *api.Task) bool {
	return observed(t) >= stateComplete || observed(t) < stateAssigned
}

func (p *planner) reapable(t *api.Task) bool {
	if observed(t) >= stateRemove || observed(t) < stateAssigned || t.GetNodeId() == "" {
		return true
	}
	n := p.node(t.GetNodeId())
	return n == nil || n.GetStatus().GetState() == api.NodeState_NODE_STATE_DOWN
}
