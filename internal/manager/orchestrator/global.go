package orchestrator

import (
	"github.com/warren-project/warren/api"
)

// global plans a global service: one task per node that is ready and
// active. The task names its node from the start; the scheduler checks it
// against that node only (and leaves it pending, saying why, when the
// node's labels or resources do not fit).
//
// A node that is down, disconnected or paused keeps what it runs but gets
// no new task: an edge node cut off from the managers goes on running its
// copy, and that copy cannot move elsewhere anyway. A drained node's tasks
// and a removed node's tasks are removed. Tasks without a node, or with a
// slot (left from another mode), are removed too.
func (p *planner) global() []*unit {
	byNode := map[string]*unit{}
	for _, t := range p.tasks {
		if t.GetNodeId() == "" || t.GetSlot() != 0 {
			p.setDesired(t, stateRemove)
			continue
		}
		u := byNode[t.GetNodeId()]
		if u == nil {
			u = &unit{nodeID: t.GetNodeId()}
			byNode[t.GetNodeId()] = u
		}
		u.tasks = append(u.tasks, t)
	}
	nodes := map[string]*api.Node{}
	for _, n := range p.nodes() {
		nodes[n.GetId()] = n
	}
	var live []*unit
	for _, id := range sortedKeys(nodes) {
		n := nodes[id]
		u := byNode[id]
		if u == nil {
			u = &unit{nodeID: id}
		}
		if n.GetSpec().GetAvailability() == api.NodeAvailability_NODE_AVAILABILITY_DRAIN {
			p.removeUnit(u)
			continue
		}
		p.pickCurrent(u)
		u.frozen = n.GetStatus().GetState() != api.NodeState_NODE_STATE_READY ||
			n.GetSpec().GetAvailability() != api.NodeAvailability_NODE_AVAILABILITY_ACTIVE
		switch {
		case u.frozen:
		case u.current == nil:
			p.create(u, "created")
		default:
			p.heal(u, false)
		}
		live = append(live, u)
	}
	for _, id := range sortedKeys(byNode) {
		if nodes[id] == nil {
			p.removeUnit(byNode[id])
		}
	}
	return live
}
