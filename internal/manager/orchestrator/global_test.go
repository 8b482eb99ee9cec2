package orchestrator

import (
	"testing"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/internal/state"
)

// onNodes maps node IDs to the service's tasks wanted running there.
func onNodes(tx state.ReadTx, serviceID string) map[string]*api.Task {
	out := map[string]*api.Task{}
	for _, t := range tx.ListTasks(state.ByService(serviceID)) {
		if t.DesiredState == stateRunning {
			out[t.NodeId] = t
		}
	}
	return out
}

func TestGlobalService(t *testing.T) {
	h := start(t)
	const (
		ready  = api.NodeState_NODE_STATE_READY
		down   = api.NodeState_NODE_STATE_DOWN
		active = api.NodeAvailability_NODE_AVAILABILITY_ACTIVE
	)
	h.addNode("n1", ready, active)
	h.addNode("n2", ready, api.NodeAvailability_NODE_AVAILABILITY_DRAIN)
	h.addNode("n3", down, active)
	h.addNode("n4", ready, api.NodeAvailability_NODE_AVAILABILITY_PAUSE)
	id := h.createService("agent", 0, global())
	h.waitFor("a task on n1", func(tx state.ReadTx) bool { return onNodes(tx, id)["n1"] != nil })
	h.settle()
	var got map[string]*api.Task
	h.s.View(func(tx state.ReadTx) { got = onNodes(tx, id) })
	if len(got) != 1 || got["n1"].Slot != 0 || observed(got["n1"]) != stateNew {
		t.Fatalf("tasks by node = %v, want one NEW task on n1 only (the ready, active node)", got)
	}

	h.addNode("n5", ready, active)
	h.waitFor("a task on the new node", func(tx state.ReadTx) bool { return onNodes(tx, id)["n5"] != nil })
	h.changeNode("n3", func(n *api.Node) { n.Status.State = ready })
	h.waitFor("a task on the node back up", func(tx state.ReadTx) bool { return onNodes(tx, id)["n3"] != nil })
	h.runAll("")

	// A node that goes down keeps its task: it cannot move anyway.
	h.changeNode("n3", func(n *api.Node) { n.Status.State = down })
	h.settle()
	h.s.View(func(tx state.ReadTx) { got = onNodes(tx, id) })
	if got["n3"] == nil {
		t.Fatal("the task of a node that went down was stopped")
	}

	h.changeNode("n1", func(n *api.Node) { n.Spec.Availability = api.NodeAvailability_NODE_AVAILABILITY_DRAIN })
	h.waitFor("the drained node's task marked for removal", func(tx state.ReadTx) bool { return onNodes(tx, id)["n1"] == nil })
	gone := got["n5"].Id
	h.update(func(tx state.Tx) error { return tx.Delete(&api.Node{Id: "n5"}) })
	h.waitFor("the removed node's task reaped", func(tx state.ReadTx) bool { return tx.GetTask(gone) == nil })
	h.stopAll()
	h.waitFor("the drained node's task reaped once stopped", func(tx state.ReadTx) bool {
		return len(tx.ListTasks(state.ByNode("n1"))) == 0
	})
}

func TestGlobalRollingUpdate(t *testing.T) {
	h := start(t)
	for _, n := range []string{"n1", "n2", "n3"} {
		h.addNode(n, api.NodeState_NODE_STATE_READY, api.NodeAvailability_NODE_AVAILABILITY_ACTIVE)
	}
	id := h.createService("agent", 0, global(), withUpdate(1, 0))
	h.waitFor("3 tasks", func(tx state.ReadTx) bool { return len(onNodes(tx, id)) == 3 })
	h.runAll("")
	h.changeService(id, func(s *api.Service) { s.SpecVersion++; s.Spec.Task.Container.Image = "busybox:2" })
	h.playUpdate(id, 1)
	h.s.View(func(tx state.ReadTx) {
		for node, task := range onNodes(tx, id) {
			if task.NodeId != node || task.SpecVersion != 2 {
				t.Errorf("node %s runs %v, want spec version 2 there", node, task)
			}
		}
	})
}
