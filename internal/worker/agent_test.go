package worker_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/internal/runtime"
	"github.com/warren-project/warren/internal/state"
	"github.com/warren-project/warren/internal/worker"
)

const (
	running  = api.TaskState_TASK_STATE_RUNNING
	complete = api.TaskState_TASK_STATE_COMPLETE
	failed   = api.TaskState_TASK_STATE_FAILED
	shutdown = api.TaskState_TASK_STATE_SHUTDOWN
	rejected = api.TaskState_TASK_STATE_REJECTED
)

func TestTaskRunsAndRestartsInPlace(t *testing.T) {
	c := newCluster(t)
	c.startManager()
	dataDir := t.TempDir()
	cfg := agentConfig("n1", c.rt, c.dial)
	cfg.DataDir = dataDir
	c.startAgent(cfg)
	c.addTask("t1", "n1", nil)

	st := c.waitStatus("t1", 0, running)
	ctr, err := c.container("t1")
	if err != nil || ctr.State != runtime.StateRunning || st.GetPid() != ctr.Pid || st.GetContainerId() != "t1" {
		t.Fatalf("container %+v (%v) for status %v", ctr, err, st)
	}
	spec, _ := c.rt.Spec("t1")
	if spec.Labels[worker.LabelNodeID] != "n1" || spec.Labels[worker.LabelServiceName] != "web" || spec.LogPath != filepath.Join(dataDir, "logs", "t1.log") {
		t.Fatalf("container spec = %+v", spec)
	}
	if n := c.node("n1"); n.GetStatus().GetState() != api.NodeState_NODE_STATE_READY || n.GetDescription().GetHostname() != "edge-n1" {
		t.Fatalf("node = %v, want READY with its description", n)
	}

	if err := c.rt.Exit("t1", 137); err != nil {
		t.Fatal(err)
	}
	st = c.waitStatus("t1", 1, running)
	if le := st.GetLastExit(); le.GetExitCode() != 137 || le.GetReason() != "killed (SIGKILL)" {
		t.Fatalf("last exit = %v, want 137 killed", le)
	}
	if restarted, _ := c.container("t1"); restarted.Pid == ctr.Pid || restarted.State != runtime.StateRunning {
		t.Fatalf("container after restart = %+v, want running with a new pid", restarted)
	}
}

func TestRestartPolicies(t *testing.T) {
	cases := []struct {
		name   string
		policy *api.RestartPolicy
		exits  []int // exit codes, one per run
		final  api.TaskState
		count  uint32
		err    string
	}{
		{"on-failure: exit 0 completes", &api.RestartPolicy{Condition: api.RestartPolicy_CONDITION_ON_FAILURE}, []int{0}, complete, 0, ""},
		{"max attempts 2 fails after two restarts", &api.RestartPolicy{MaxAttempts: 2}, []int{1, 1, 1}, failed, 2, "container exited with code 1"},
		{"none fails at once", &api.RestartPolicy{Condition: api.RestartPolicy_CONDITION_NONE}, []int{3}, failed, 0, "container exited with code 3"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := newCluster(t)
			c.startManager()
			c.startAgent(agentConfig("n1", c.rt, c.dial))
			c.addTask("t1", "n1", tc.policy)
			for run, code := range tc.exits {
				c.waitStatus("t1", uint32(run), running)
				if err := c.rt.Exit("t1", code); err != nil {
					t.Fatal(err)
				}
			}
			st := c.waitStatus("t1", tc.count, tc.final)
			if st.GetErr() != tc.err {
				t.Fatalf("err = %q, want %q", st.GetErr(), tc.err)
			}
			holds(t, "the finished task staying finished", 100*time.Millisecond, func() bool {
				ctr, err := c.container("t1")
				st := c.task("t1").GetStatus()
				return err == nil && ctr.State == runtime.StateStopped && st.GetState() == tc.final && st.GetRestartCount() == tc.count
			})
		})
	}
}

func TestShutdownAndRemoval(t *testing.T) {
	c := newCluster(t)
	c.startManager()
	dataDir := t.TempDir()
	cfg := agentConfig("n1", c.rt, c.dial)
	cfg.DataDir = dataDir
	c.startAgent(cfg)
	c.addTask("t1", "n1", nil)
	c.waitStatus("t1", 0, running)
	logFile := filepath.Join(dataDir, "logs", "t1.log")
	if err := os.WriteFile(logFile, []byte("hello\n"), 0o600); err != nil { // the fake writes no logs
		t.Fatal(err)
	}

	c.setDesired("t1", shutdown)
	st := c.waitStatus("t1", 0, shutdown)
	if st.GetMessage() != "stopped by manager" {
		t.Fatalf("shutdown message = %q", st.GetMessage())
	}
	if ctr, err := c.container("t1"); err != nil || ctr.State != runtime.StateStopped {
		t.Fatalf("container after shutdown = %+v, %v; want kept, stopped", ctr, err)
	}

	c.update(func(tx state.Tx) error { return tx.Delete(tx.GetTask("t1")) })
	waitFor(t, "the container of the deleted task removed", func() bool {
		_, err := c.container("t1")
		return errors.Is(err, runtime.ErrNotFound)
	})
	waitFor(t, "the log of the deleted task removed", func() bool {
		_, err := os.Stat(logFile)
		return errors.Is(err, os.ErrNotExist)
	})
}

func TestPullFailureRejects(t *testing.T) {
	c := newCluster(t)
	c.startManager()
	c.rt.SetPullError("nginx", errors.New("manifest unknown"))
	c.startAgent(agentConfig("n1", c.rt, c.dial))
	c.update(func(tx state.Tx) error {
		return tx.Create(&api.Task{
			Id: "t1", Meta: &api.Meta{}, NodeId: "n1", DesiredState: running,
			Status: &api.TaskStatus{State: api.TaskState_TASK_STATE_ASSIGNED},
			Spec:   &api.TaskSpec{Container: &api.ContainerSpec{Image: "nginx"}},
		})
	})
	st := c.waitStatus("t1", 0, rejected)
	if !strings.HasPrefix(st.GetErr(), "image nginx not found: ") {
		t.Fatalf("err = %q", st.GetErr())
	}
}

func TestRestartedAgentAdoptsItsContainer(t *testing.T) {
	c := newCluster(t)
	c.startManager()
	stop := c.startAgent(agentConfig("n1", c.rt, c.dial))
	c.addTask("t1", "n1", nil)
	c.waitStatus("t1", 0, running)
	stop()
	if ctr, _ := c.container("t1"); ctr.State != runtime.StateRunning {
		t.Fatalf("container %v after the agent stopped, want still running", ctr.State)
	}

	counted := &countingExec{Executor: c.rt}
	c.startAgent(agentConfig("n1", counted, c.dial))
	waitFor(t, "the new agent waiting on the container", func() bool { return counted.n("Wait") > 0 })
	if n, m := counted.n("Create"), counted.n("Start"); n != 0 || m != 0 {
		t.Fatalf("new agent made %d Create and %d Start calls, want none", n, m)
	}
	if st := c.task("t1").GetStatus(); st.GetState() != running || st.GetRestartCount() != 0 {
		t.Fatalf("status after adoption = %v", st)
	}
	// It really watches it: an exit is restarted in place.
	if err := c.rt.Exit("t1", 137); err != nil {
		t.Fatal(err)
	}
	c.waitStatus("t1", 1, running)
	if n := counted.n("Create"); n != 0 {
		t.Fatalf("restart made %d Create calls, want 0 (in place)", n)
	}
}

func TestOrphanContainersRemoved(t *testing.T) {
	c := newCluster(t)
	ctx := context.Background()
	mk := func(id string, labels map[string]string) {
		if err := c.rt.Create(ctx, runtime.Spec{ID: id, Image: "busybox", Labels: labels}); err != nil {
			t.Fatal(err)
		}
		if err := c.rt.Start(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	mk("orphan", map[string]string{worker.LabelTaskID: "orphan", worker.LabelNodeID: "n1"})
	mk("other-node", map[string]string{worker.LabelTaskID: "other-node", worker.LabelNodeID: "n2"})
	mk("not-warren", map[string]string{"app": "db"})

	// Without a manager, nothing is touched.
	var dials countingExec
	noManager := func(context.Context) (api.DispatcherClient, error) {
		dials.count("dial")
		return nil, errors.New("no manager")
	}
	stop := c.startAgent(agentConfig("n1", c.rt, noManager))
	waitFor(t, "three dial attempts", func() bool { return dials.n("dial") >= 3 })
	stop()
	if _, err := c.container("orphan"); err != nil {
		t.Fatalf("orphan touched before any assignments came: %v", err)
	}

	c.startManager()
	c.addTask("t1", "n1", nil)
	c.startAgent(agentConfig("n1", c.rt, c.dial))
	c.waitStatus("t1", 0, running)
	waitFor(t, "the orphan container removed", func() bool {
		_, err := c.container("orphan")
		return errors.Is(err, runtime.ErrNotFound)
	})
	for _, id := range []string{"other-node", "not-warren"} {
		if _, err := c.container(id); err != nil {
			t.Errorf("container %s, not ours, was touched: %v", id, err)
		}
	}
}
