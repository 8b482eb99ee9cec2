package dispatcher

import (
	"fmt"
	"testing"
	"time"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/internal/state"
)

func st(restarts uint32, s api.TaskState, msg string) *api.TaskStatus {
	return &api.TaskStatus{State: s, RestartCount: restarts, Message: msg}
}

func TestStatusQueueKeepsLatestPerTask(t *testing.T) {
	running := api.TaskState_TASK_STATE_RUNNING
	starting := api.TaskState_TASK_STATE_STARTING
	cases := []struct {
		name    string
		reports []*api.TaskStatus
		want    *api.TaskStatus
	}{
		{"later state wins", []*api.TaskStatus{st(0, starting, "a"), st(0, running, "b")}, st(0, running, "b")},
		{"stale report is dropped", []*api.TaskStatus{st(0, running, "a"), st(0, starting, "b")}, st(0, running, "a")},
		{"restart round wins", []*api.TaskStatus{st(0, running, "a"), st(1, starting, "b")}, st(1, starting, "b")},
		{"same state, newer message", []*api.TaskStatus{st(0, running, "a"), st(0, running, "b")}, st(0, running, "b")},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			q := newStatusQueue()
			for _, r := range c.reports {
				q.add([]*api.TaskStatusUpdate{{TaskId: "t1", Status: r}})
			}
			got := q.take(10)
			if len(got) != 1 || got[0].GetStatus().GetMessage() != c.want.GetMessage() {
				t.Fatalf("took %v, want one update %v", got, c.want)
			}
		})
	}
}

func TestStatusOnlyForOwnTasks(t *testing.T) {
	e := newTestEnv(t, testConfig())
	e.update(t, func(tx state.Tx) error {
		if err := tx.Create(newTask("mine", "n1", api.TaskState_TASK_STATE_ASSIGNED)); err != nil {
			return err
		}
		return tx.Create(newTask("theirs", "n2", api.TaskState_TASK_STATE_ASSIGNED))
	})
	n := e.mustConnect(t, "n1")
	running := st(0, api.TaskState_TASK_STATE_RUNNING, "started")
	if err := n.report(
		&api.TaskStatusUpdate{TaskId: "theirs", Status: running},
		&api.TaskStatusUpdate{TaskId: "mine", Status: st(0, api.TaskState_TASK_STATE_PENDING, "managers' state")},
		&api.TaskStatusUpdate{TaskId: "gone", Status: running},
	); err != nil {
		t.Fatal(err)
	}
	if err := n.report(&api.TaskStatusUpdate{TaskId: "mine", Status: running}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "task mine RUNNING", func() bool {
		return e.task("mine").GetStatus().GetState() == api.TaskState_TASK_STATE_RUNNING
	})
	// Reports are handled in order, so the first one was dealt with already.
	if s := e.task("theirs").GetStatus().GetState(); s != api.TaskState_TASK_STATE_ASSIGNED {
		t.Fatalf("another node's task moved to %v", s)
	}
}

// Reports that arrive while a write is in flight go out together in the
// next one: 100 updates, each in its own report, land in two writes.
func TestStatusWritesBatchUnderLoad(t *testing.T) {
	e := newTestEnv(t, testConfig())
	const tasks = 100
	e.update(t, func(tx state.Tx) error {
		for i := range tasks {
			if err := tx.Create(newTask(fmt.Sprintf("t%03d", i), "n1", api.TaskState_TASK_STATE_ASSIGNED)); err != nil {
				return err
			}
		}
		return nil
	})
	n := e.mustConnect(t, "n1")
	before := e.proposer.count()
	entered, release := e.proposer.hold()
	for i := range tasks {
		up := &api.TaskStatusUpdate{TaskId: fmt.Sprintf("t%03d", i), Status: st(0, api.TaskState_TASK_STATE_RUNNING, "started")}
		if err := n.report(up); err != nil {
			t.Fatal(err)
		}
	}
	var first int
	select {
	case first = <-entered:
	case err := <-n.end:
		t.Fatalf("session ended: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("no status write within 10s")
	}
	waitFor(t, fmt.Sprintf("%d reports queued behind the held write", tasks-first), func() bool {
		return e.d.current().statuses.len() == tasks-first
	})
	release()
	waitFor(t, "every task RUNNING", func() bool {
		running := 0
		e.store.View(func(tx state.ReadTx) {
			for _, task := range tx.ListTasks(state.ByNode("n1")) {
				if task.GetStatus().GetState() == api.TaskState_TASK_STATE_RUNNING {
					running++
				}
			}
		})
		return running == tasks
	})
	if writes := e.proposer.count() - before; writes > 2 {
		t.Fatalf("%d status updates took %d store writes, want at most 2", tasks, writes)
	}
}
