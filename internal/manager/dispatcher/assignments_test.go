package dispatcher

import (
	"fmt"
	"slices"
	"testing"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/internal/state"
)

func taskIDs(tasks []*api.Task) []string {
	ids := make([]string, len(tasks))
	for i, t := range tasks {
		ids[i] = t.GetId()
	}
	return ids
}

func TestAssignmentsCompleteThenIncremental(t *testing.T) {
	e := newTestEnv(t, testConfig())
	e.update(t, func(tx state.Tx) error {
		finished := newTask("t4", "n1", api.TaskState_TASK_STATE_FAILED)
		finished.DesiredState = api.TaskState_TASK_STATE_SHUTDOWN
		for _, task := range []*api.Task{
			newTask("t1", "n1", api.TaskState_TASK_STATE_RUNNING),
			newTask("t2", "n1", api.TaskState_TASK_STATE_PENDING), // not placed yet
			newTask("t3", "n2", api.TaskState_TASK_STATE_ASSIGNED),
			finished,
		} {
			if err := tx.Create(task); err != nil {
				return err
			}
		}
		return nil
	})
	n := e.mustConnect(t, "n1")
	complete := n.next(t)
	if complete.GetType() != api.Assignments_TYPE_COMPLETE || complete.GetSequence() != 1 || !slices.Equal(taskIDs(complete.GetTasks()), []string{"t1", "t4"}) {
		t.Fatalf("first assignments = %v, want COMPLETE #1 with t1 and t4", complete)
	}

	steps := []struct {
		name    string
		change  func(tx state.Tx) error
		tasks   []string
		removed []string
	}{
		{"status-only change is not resent, desired state is", func(tx state.Tx) error {
			if err := tx.UpdateTaskStatus("t1", &api.TaskStatus{State: api.TaskState_TASK_STATE_RUNNING, Message: "still running", RestartCount: 1}); err != nil {
				return err
			}
			t4 := tx.GetTask("t4")
			t4.DesiredState = api.TaskState_TASK_STATE_REMOVE
			return tx.Update(t4)
		}, []string{"t4"}, nil},
		{"a task placed on the node is added", func(tx state.Tx) error {
			t2 := tx.GetTask("t2")
			t2.Status = &api.TaskStatus{State: api.TaskState_TASK_STATE_ASSIGNED}
			return tx.Update(t2)
		}, []string{"t2"}, nil},
		{"a deleted task is removed", func(tx state.Tx) error {
			return tx.Delete(tx.GetTask("t1"))
		}, nil, []string{"t1"}},
		{"another node's task is not sent", func(tx state.Tx) error {
			if err := tx.Create(newTask("t5", "n2", api.TaskState_TASK_STATE_ASSIGNED)); err != nil {
				return err
			}
			return tx.Create(newTask("t6", "n1", api.TaskState_TASK_STATE_ASSIGNED))
		}, []string{"t6"}, nil},
	}
	for i, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			e.update(t, s.change)
			a := n.next(t)
			if a.GetType() != api.Assignments_TYPE_INCREMENTAL || a.GetSequence() != uint64(i+2) {
				t.Fatalf("got %v #%d, want INCREMENTAL #%d", a.GetType(), a.GetSequence(), i+2)
			}
			if !slices.Equal(taskIDs(a.GetTasks()), s.tasks) || !slices.Equal(a.GetRemovedTaskIds(), s.removed) {
				t.Fatalf("got tasks %v removed %v, want %v and %v", taskIDs(a.GetTasks()), a.GetRemovedTaskIds(), s.tasks, s.removed)
			}
		})
	}
}

func TestAssignmentsBatchByCount(t *testing.T) {
	e := newTestEnv(t, testConfig())
	n := e.mustConnect(t, "n1")
	n.next(t) // COMPLETE, empty
	e.update(t, func(tx state.Tx) error {
		for i := range 250 {
			if err := tx.Create(newTask(fmt.Sprintf("t%03d", i), "n1", api.TaskState_TASK_STATE_ASSIGNED)); err != nil {
				return err
			}
		}
		return nil
	})
	seen := map[string]bool{}
	for seq := uint64(2); len(seen) < 250; seq++ {
		a := n.next(t)
		if a.GetSequence() != seq {
			t.Fatalf("sequence %d, want %d", a.GetSequence(), seq)
		}
		if len(a.GetTasks()) > 100 {
			t.Fatalf("a batch of %d changes, want at most 100", len(a.GetTasks()))
		}
		for _, task := range a.GetTasks() {
			seen[task.GetId()] = true
		}
	}
}

func TestAssignmentSetChanges(t *testing.T) {
	base := newTask("t1", "n1", api.TaskState_TASK_STATE_ASSIGNED)
	with := func(f func(*api.Task)) *api.Task {
		c := newTask("t1", "n1", api.TaskState_TASK_STATE_ASSIGNED)
		f(c)
		return c
	}
	cases := []struct {
		name    string
		held    bool
		event   state.Event
		pending bool // a change is queued
		removal bool
	}{
		{"new task on the node", false, state.Event{Kind: state.EventCreate, Object: base}, true, false},
		{"status change only", true, state.Event{Kind: state.EventUpdate, Object: with(func(c *api.Task) { c.Status.State = api.TaskState_TASK_STATE_RUNNING })}, false, false},
		{"desired state change", true, state.Event{Kind: state.EventUpdate, Object: with(func(c *api.Task) { c.DesiredState = api.TaskState_TASK_STATE_SHUTDOWN })}, true, false},
		{"moved to another node", true, state.Event{Kind: state.EventUpdate, Object: with(func(c *api.Task) { c.NodeId = "n2" })}, true, true},
		{"deleted", true, state.Event{Kind: state.EventDelete, Object: base}, true, true},
		{"deleted before the node had it", false, state.Event{Kind: state.EventDelete, Object: base}, false, false},
		{"not yet placed", false, state.Event{Kind: state.EventCreate, Object: with(func(c *api.Task) { c.Status.State = api.TaskState_TASK_STATE_PENDING })}, false, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			set := newAssignmentSet("n1")
			if c.held {
				set.complete([]*api.Task{base})
			}
			set.observe(c.event)
			got, queued := set.pending["t1"]
			if queued != c.pending || (queued && (got == nil) != c.removal) {
				t.Fatalf("pending = %v (queued %v), want queued %v removal %v", got, queued, c.pending, c.removal)
			}
		})
	}
}
