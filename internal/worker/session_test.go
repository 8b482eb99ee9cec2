package worker_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/internal/runtime"
	"github.com/warren-project/warren/internal/state"
)

func TestHeartbeatLossMarksNodeDown(t *testing.T) {
	c := newCluster(t)
	c.dispConf.NodeDownAfter = 300 * time.Millisecond
	c.startManager()
	stop := c.startAgent(agentConfig("n1", c.rt, c.dial))
	waitFor(t, "node n1 READY", func() bool { return c.node("n1").GetStatus().GetState() == api.NodeState_NODE_STATE_READY })
	// Heartbeats keep it up well past the deadline.
	holds(t, "node n1 READY while its agent heartbeats", 3*c.dispConf.NodeDownAfter, func() bool {
		return c.node("n1").GetStatus().GetState() == api.NodeState_NODE_STATE_READY
	})
	stop()
	waitFor(t, "node n1 DOWN", func() bool { return c.node("n1").GetStatus().GetState() == api.NodeState_NODE_STATE_DOWN })
	if msg := c.node("n1").GetStatus().GetMessage(); msg != "no heartbeat for 300ms" {
		t.Fatalf("down message = %q", msg)
	}
}

func TestNewAgentReplacesOldSession(t *testing.T) {
	c := newCluster(t)
	c.startManager()
	// A stale session of the same node, as a crashed agent would leave.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	client, _ := c.dial(ctx)
	var old api.Dispatcher_SessionClient
	waitFor(t, "a session for the stale agent", func() bool { // the dispatcher may not run yet
		var err error
		old, err = client.Session(ctx)
		if err == nil {
			err = old.Send(&api.SessionRequest{Msg: &api.SessionRequest_Register{Register: &api.RegisterRequest{NodeId: "n1"}}})
		}
		if err == nil {
			_, err = old.Recv()
		}
		return err == nil
	})
	ended := make(chan error, 1)
	go func() {
		for {
			if _, err := old.Recv(); err != nil {
				ended <- err
				return
			}
		}
	}()

	c.startAgent(agentConfig("n1", c.rt, c.dial))
	select {
	case err := <-ended:
		if status.Code(err) != codes.Aborted {
			t.Fatalf("old session ended with %v, want Aborted", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("old session still open 10s after the new agent connected")
	}
	c.addTask("t1", "n1", nil)
	c.waitStatus("t1", 0, running)
}

// Cut off from its manager, the agent keeps restarting its containers, and
// reports what happened once a manager is back.
func TestAgentCarriesOnWithoutManager(t *testing.T) {
	c := newCluster(t)
	c.startManager()
	c.startAgent(agentConfig("n1", c.rt, c.dial))
	c.addTask("t1", "n1", nil)
	c.waitStatus("t1", 0, running)
	first, _ := c.container("t1")

	c.stopManager()
	if err := c.rt.Exit("t1", 143); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the container restarted with no manager", func() bool {
		ctr, err := c.container("t1")
		return err == nil && ctr.State == runtime.StateRunning && ctr.Pid != first.Pid
	})
	if st := c.task("t1").GetStatus(); st.GetRestartCount() != 0 {
		t.Fatalf("store saw restart %d with no manager running", st.GetRestartCount())
	}

	c.startManager()
	st := c.waitStatus("t1", 1, running)
	if st.GetLastExit().GetReason() != "terminated (SIGTERM)" {
		t.Fatalf("last exit = %v", st.GetLastExit())
	}
}

// Status reports from many tasks batch on their way to the store: a
// hundred tasks, five reports each, take far fewer writes than reports.
func TestStatusReportsBatch(t *testing.T) {
	c := newCluster(t)
	c.startManager()
	c.startAgent(agentConfig("n1", c.rt, c.dial))
	waitFor(t, "node n1 READY", func() bool { return c.node("n1").GetStatus().GetState() == api.NodeState_NODE_STATE_READY })
	const tasks = 100
	before := c.writes.count()
	c.update(func(tx state.Tx) error {
		for i := range tasks {
			err := tx.Create(&api.Task{
				Id: fmt.Sprintf("t%03d", i), Meta: &api.Meta{}, NodeId: "n1", DesiredState: running,
				Status: &api.TaskStatus{State: api.TaskState_TASK_STATE_ASSIGNED},
				Spec:   &api.TaskSpec{Container: &api.ContainerSpec{Image: "busybox"}},
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
	waitFor(t, "every task RUNNING", func() bool {
		n := 0
		c.store.View(func(tx state.ReadTx) {
			for _, task := range tx.ListTasks(state.ByNode("n1")) {
				if task.GetStatus().GetState() == running {
					n++
				}
			}
		})
		return n == tasks
	})
	writes := c.writes.count() - before - 1 // less the write that made the tasks
	t.Logf("%d tasks went through 5 states each in %d store writes", tasks, writes)
	if writes >= tasks {
		t.Fatalf("%d status reports took %d store writes, want fewer than %d", 5*tasks, writes, tasks)
	}
}
