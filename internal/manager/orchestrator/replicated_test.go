package orchestrator

import (
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/internal/state"
)

func TestCreateAndScale(t *testing.T) {
	h := start(t)
	h.addNode("n1", api.NodeState_NODE_STATE_READY, api.NodeAvailability_NODE_AVAILABILITY_ACTIVE)
	id := h.createService("web", 3)
	h.waitFor("3 tasks for a new service of 3 replicas", func(tx state.ReadTx) bool { return countCurrent(tx, id) == 3 })

	var svc *api.Service
	h.s.View(func(tx state.ReadTx) { svc = tx.GetService(id) })
	cur := currentBySlot(h.tasks(id))
	for slot := uint64(1); slot <= 3; slot++ {
		task := cur[slot]
		switch {
		case task == nil:
			t.Fatalf("slot %d has no task: %v", slot, cur)
		case task.ServiceName != "web" || task.SpecVersion != 1 || !proto.Equal(task.Spec, svc.Spec.Task):
			t.Errorf("slot %d task = %v, want service web's spec version 1", slot, task)
		case observed(task) != stateNew || task.Status.Message != "created" || task.Status.Timestamp == nil:
			t.Errorf("slot %d status = %v, want NEW \"created\" with a time", slot, task.Status)
		case len(task.Id) != 25:
			t.Errorf("task ID %q is not 25 characters", task.Id)
		}
	}
	h.runAll("n1")

	h.scale(id, 5)
	h.waitFor("5 tasks after scaling to 5", func(tx state.ReadTx) bool { return countCurrent(tx, id) == 5 })
	h.runAll("n1")

	h.scale(id, 1)
	h.waitFor("slots 2-5 marked for removal", func(tx state.ReadTx) bool {
		for _, task := range tx.ListTasks(state.ByService(id)) {
			if (task.Slot == 1) != (task.DesiredState == stateRunning) {
				return false
			}
		}
		return true
	})
	for _, task := range h.tasks(id) {
		if task.Slot > 1 && task.DesiredState != stateRemove {
			t.Errorf("slot %d desired %v, want REMOVE", task.Slot, task.DesiredState)
		}
	}
	h.stopAll()
	h.waitFor("stopped tasks reaped", func(tx state.ReadTx) bool { return len(tx.ListTasks(state.ByService(id))) == 1 })

	// Tasks no node took yet are reaped at once.
	h.scale(id, 3)
	h.waitFor("3 tasks again", func(tx state.ReadTx) bool { return countCurrent(tx, id) == 3 })
	h.scale(id, 1)
	h.waitFor("unassigned tasks reaped", func(tx state.ReadTx) bool { return len(tx.ListTasks(state.ByService(id))) == 1 })

	h.s.View(func(tx state.ReadTx) { svc = tx.GetService(id) })
	if svc.UpdateStatus != nil {
		t.Errorf("scaling wrote an update status %v: a replica change is not an update", svc.UpdateStatus)
	}
}

func TestEndedTasks(t *testing.T) {
	cases := []struct {
		state    api.TaskState
		replaced bool
		reason   string
	}{
		{stateComplete, false, ""},
		{stateFailed, false, ""},
		{stateRejected, true, "rejected: boom"},
		{stateOrphaned, true, "orphaned: boom"},
		{stateShutdown, true, "stopped unexpectedly (shutdown): boom"},
	}
	for _, c := range cases {
		t.Run(stateName(c.state), func(t *testing.T) {
			h := start(t)
			h.addNode("n1", api.NodeState_NODE_STATE_READY, api.NodeAvailability_NODE_AVAILABILITY_ACTIVE)
			id := h.createService("web", 1)
			h.waitFor("a task", func(tx state.ReadTx) bool { return countCurrent(tx, id) == 1 })
			h.runAll("n1")
			old := currentBySlot(h.tasks(id))[1]
			h.report(old.Id, c.state, "boom")

			if !c.replaced {
				h.settle()
				if n := len(h.tasks(id)); n != 1 {
					t.Fatalf("%d tasks after the task ended %v, want it left alone", n, c.state)
				}
				if got := h.task(old.Id); got.DesiredState != stateRunning {
					t.Fatalf("ended task desired %v, want RUNNING (the slot is done)", got.DesiredState)
				}
				return
			}
			h.waitFor("a replacement", func(tx state.ReadTx) bool { return len(tx.ListTasks(state.ByService(id))) == 2 })
			repl := currentBySlot(h.tasks(id))[1]
			if want := "replaces task " + old.Id + ": " + c.reason; repl.Status.Message != want {
				t.Errorf("replacement says %q, want %q", repl.Status.Message, want)
			}
			if got := h.task(old.Id); got.DesiredState != stateShutdown {
				t.Errorf("replaced task desired %v, want SHUTDOWN (kept as history)", got.DesiredState)
			}
		})
	}
}

func TestRejectedBackoffDoubles(t *testing.T) {
	const delay = 100 * time.Millisecond
	h := start(t)
	h.addNode("n1", api.NodeState_NODE_STATE_READY, api.NodeAvailability_NODE_AVAILABILITY_ACTIVE)
	id := h.createService("web", 1, withRestartDelay(delay))
	h.waitFor("a task", func(tx state.ReadTx) bool { return countCurrent(tx, id) == 1 })

	for i, want := range []time.Duration{delay, 2 * delay, 4 * delay} {
		h.runAll("n1")
		old := currentBySlot(h.tasks(id))[1]
		rejectedAt := h.report(old.Id, stateRejected, "image missing")
		h.waitFor("a replacement of the rejected task", func(tx state.ReadTx) bool {
			c := currentBySlot(tx.ListTasks(state.ByService(id)))[1]
			return c != nil && c.Id != old.Id
		})
		repl := currentBySlot(h.tasks(id))[1]
		if waited := repl.Status.Timestamp.AsTime().Sub(rejectedAt); waited < want {
			t.Errorf("rejection %d: replaced after %v, want at least %v", i+1, waited, want)
		}
		if msg := "replaces task " + old.Id + ": rejected: image missing"; repl.Status.Message != msg {
			t.Errorf("replacement says %q, want %q", repl.Status.Message, msg)
		}
		if n := len(h.tasks(id)); n != i+2 {
			t.Errorf("slot holds %d tasks after %d rejections, want %d (history kept)", n, i+1, i+2)
		}
	}
}

func TestNodeLoss(t *testing.T) {
	cases := []struct {
		name     string
		lose     func(h *harness)
		replaced string // the reason, or "" when the task stays
	}{
		{"down", func(h *harness) {
			h.changeNode("n1", func(n *api.Node) { n.Status.State = api.NodeState_NODE_STATE_DOWN })
		}, "node n1 is down"},
		{"gone", func(h *harness) {
			h.update(func(tx state.Tx) error { return tx.Delete(&api.Node{Id: "n1"}) })
		}, "node n1 is gone"},
		{"drained", func(h *harness) {
			h.changeNode("n1", func(n *api.Node) { n.Spec.Availability = api.NodeAvailability_NODE_AVAILABILITY_DRAIN })
		}, "node n1 is drained"},
		{"disconnected", func(h *harness) {
			h.changeNode("n1", func(n *api.Node) { n.Status.State = api.NodeState_NODE_STATE_DISCONNECTED })
		}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := start(t)
			h.addNode("n1", api.NodeState_NODE_STATE_READY, api.NodeAvailability_NODE_AVAILABILITY_ACTIVE)
			id := h.createService("web", 2)
			h.waitFor("2 tasks", func(tx state.ReadTx) bool { return countCurrent(tx, id) == 2 })
			h.runAll("n1")
			before := currentBySlot(h.tasks(id))
			c.lose(h)
			if c.replaced == "" {
				h.settle()
				if n := len(h.tasks(id)); n != 2 {
					t.Fatalf("%d tasks, want the 2 left alone", n)
				}
				return
			}
			h.waitFor("both tasks replaced", func(tx state.ReadTx) bool { return len(tx.ListTasks(state.ByService(id))) == 4 })
			after := currentBySlot(h.tasks(id))
			for slot, old := range before {
				if want := "replaces task " + old.Id + ": " + c.replaced; after[slot].Status.Message != want {
					t.Errorf("slot %d replacement says %q, want %q", slot, after[slot].Status.Message, want)
				}
				got := h.task(old.Id)
				if got.DesiredState != stateShutdown || observed(got) != stateRunning {
					t.Errorf("old task desired %v observed %v, want SHUTDOWN with its RUNNING status left as is",
						got.DesiredState, observed(got))
				}
			}
		})
	}
}

func TestServiceRemoved(t *testing.T) {
	cases := []struct {
		name   string
		remove func(tx state.Tx, id string) error
	}{
		{"service only", func(tx state.Tx, id string) error { return tx.Delete(&api.Service{Id: id}) }},
		{"as the API does", func(tx state.Tx, id string) error {
			for _, task := range tx.ListTasks(state.ByService(id)) {
				task.DesiredState = stateRemove
				if err := tx.Update(task); err != nil {
					return err
				}
			}
			return tx.Delete(&api.Service{Id: id})
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := start(t)
			h.addNode("n1", api.NodeState_NODE_STATE_READY, api.NodeAvailability_NODE_AVAILABILITY_ACTIVE)
			id := h.createService("web", 3)
			h.waitFor("3 tasks", func(tx state.ReadTx) bool { return countCurrent(tx, id) == 3 })
			h.runAll("n1")
			h.update(func(tx state.Tx) error { return c.remove(tx, id) })
			h.waitFor("every task marked for removal", func(tx state.ReadTx) bool {
				for _, task := range tx.ListTasks(state.ByService(id)) {
					if task.DesiredState != stateRemove {
						return false
					}
				}
				return true
			})
			h.settle()
			if n := len(h.tasks(id)); n != 3 {
				t.Fatalf("%d tasks left before the node stopped them, want 3", n)
			}
			h.stopAll()
			h.waitFor("tasks reaped once stopped", func(tx state.ReadTx) bool { return len(tx.ListTasks(state.ByService(id))) == 0 })
		})
	}
}

func TestHistoryLimit(t *testing.T) {
	cases := []struct {
		name  string
		limit uint32 // 0: no cluster object, the default applies
		want  int
	}{
		{"cluster limit 2", 2, 2},
		{"default", 0, defaultHistory},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := start(t, func(cfg *Config) { cfg.MaxBackoff = 5 * time.Millisecond })
			if c.limit > 0 {
				h.update(func(tx state.Tx) error {
					return tx.Create(&api.Cluster{Id: "c", Meta: &api.Meta{}, Spec: &api.ClusterSpec{TaskHistoryLimit: c.limit}})
				})
			}
			h.addNode("n1", api.NodeState_NODE_STATE_READY, api.NodeAvailability_NODE_AVAILABILITY_ACTIVE)
			id := h.createService("web", 1, withRestartDelay(time.Millisecond))
			h.waitFor("a task", func(tx state.ReadTx) bool { return countCurrent(tx, id) == 1 })
			for i := 0; i < c.want+3; i++ {
				h.runAll("n1")
				old := currentBySlot(h.tasks(id))[1]
				h.report(old.Id, stateRejected, "no")
				h.waitFor("a replacement", func(tx state.ReadTx) bool {
					return currentBySlot(tx.ListTasks(state.ByService(id)))[1].GetId() != old.Id
				})
			}
			h.settle()
			tasks := h.tasks(id)
			if len(tasks) != c.want+1 {
				t.Fatalf("slot holds %d tasks, want the current one and %d of history", len(tasks), c.want)
			}
		})
	}
}

func TestNoWritesWhenNothingChanges(t *testing.T) {
	h := start(t, func(cfg *Config) { cfg.SweepInterval = 2 * time.Millisecond })
	h.addNode("n1", api.NodeState_NODE_STATE_READY, api.NodeAvailability_NODE_AVAILABILITY_ACTIVE)
	id := h.createService("web", 3, withUpdate(3, 0))
	h.waitFor("3 tasks", func(tx state.ReadTx) bool { return countCurrent(tx, id) == 3 })
	h.runAll("n1")
	h.changeService(id, func(s *api.Service) { s.SpecVersion++; s.Spec.Task.Container.Image = "busybox:2" })
	h.waitFor("update to start", func(tx state.ReadTx) bool { return tx.GetService(id).GetUpdateStatus() != nil })
	h.stopAll()
	h.runAll("n1")
	h.waitFor("update to complete", func(tx state.ReadTx) bool {
		return tx.GetService(id).GetUpdateStatus().GetState() == api.UpdateStatus_STATE_COMPLETED
	})
	// A status change the orchestrator does not care about.
	task := currentBySlot(h.tasks(id))[1]
	h.update(func(tx state.Tx) error {
		cur := tx.GetTask(task.Id)
		cur.Status.Progress = "still here"
		return tx.Update(cur)
	})
	h.settle()
	idx := h.s.Index()
	sweeps := h.o.sweeps.Load() + 3
	h.waitFor("3 sweeps", func(state.ReadTx) bool { return h.o.sweeps.Load() >= sweeps })
	h.settle()
	if got := h.s.Index(); got != idx {
		var svc *api.Service
		h.s.View(func(tx state.ReadTx) { svc = tx.GetService(id) })
		t.Fatalf("index moved from %d to %d with nothing to do (service %v)", idx, got, svc)
	}
}

func TestMessagesSayWhy(t *testing.T) {
	if got := endReason(&api.Task{Status: &api.TaskStatus{State: stateRejected}}); got != "rejected" {
		t.Errorf("reason without details = %q", got)
	}
	if got := nodeLabel(&api.Node{Id: "abc", Description: &api.NodeDescription{Hostname: "edge-1"}}); !strings.Contains(got, "edge-1") {
		t.Errorf("node label %q does not name the host", got)
	}
}
