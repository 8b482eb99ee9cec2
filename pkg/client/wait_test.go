package client_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/pkg/client"
	"github.com/warren-project/warren/pkg/client/clienttest"
)

func newClient(t *testing.T, host string, opts ...client.Option) *client.Client {
	t.Helper()
	c, err := client.New(host, opts...)
	if err != nil {
		t.Fatalf("New(%q): %v", host, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func createService(t *testing.T, c *client.Client, name, image string, replicas uint64) *api.Service {
	t.Helper()
	resp, err := c.CreateService(testCtx(t), &api.CreateServiceRequest{Spec: &api.ServiceSpec{
		Name: name,
		Mode: &api.ServiceSpec_Replicated{Replicated: &api.ReplicatedService{Replicas: replicas}},
		Task: &api.TaskSpec{Container: &api.ContainerSpec{Image: image}},
	}})
	if err != nil {
		t.Fatalf("CreateService: %v", err)
	}
	return resp.GetService()
}

func TestWaitForServiceConverges(t *testing.T) {
	fake := clienttest.New()
	c := newClient(t, clienttest.Start(t, fake))
	createService(t, c, "web", "nginx:1.27", 3)
	fake.AutoStep(t, 5*time.Millisecond)

	var progress []client.ServiceProgress
	err := c.WaitForService(testCtx(t), "web", func(p client.ServiceProgress) { progress = append(progress, p) })
	if err != nil {
		t.Fatalf("WaitForService: %v", err)
	}
	last := progress[len(progress)-1]
	if !last.Converged || last.Running != 3 || last.Desired != 3 || len(last.Slots) != 3 {
		t.Fatalf("last progress %+v: want 3 of 3 running and converged", last)
	}
	for i, s := range last.Slots {
		if s.Slot != uint64(i+1) || s.State != api.TaskState_TASK_STATE_RUNNING || !s.Done || s.NodeID == "" {
			t.Errorf("slot %d: %+v, want slot %d running on a node", i, s, i+1)
		}
	}
	for i := 1; i < len(progress); i++ {
		if progress[i].Running < progress[i-1].Running {
			t.Errorf("running went down from %d to %d", progress[i-1].Running, progress[i].Running)
		}
	}
	checkBlocking(t, fake, 10)
}

// checkBlocking checks that the client followed the index with blocking
// queries, and did not poll: a healthy task needs 5 steps to run.
func checkBlocking(t *testing.T, fake *clienttest.Fake, most int) {
	t.Helper()
	reqs := fake.Requests("ListTasks")
	if len(reqs) > most {
		t.Errorf("%d ListTasks calls; want at most %d (one per change)", len(reqs), most)
	}
	var prev uint64
	for i, r := range reqs {
		lt := r.(*api.ListTasksRequest)
		if i > 0 && (lt.GetMinIndex() <= prev || lt.GetWait().AsDuration() <= 0) {
			t.Errorf("ListTasks call %d: min_index %d after %d, wait %v: want a blocking query past the last index", i, lt.GetMinIndex(), prev, lt.GetWait().AsDuration())
		}
		prev = lt.GetMinIndex()
	}
}

func TestWaitForServiceReportsFailuresOnce(t *testing.T) {
	fake := clienttest.New()
	fake.Reject("bad:1", "pull bad:1: not found")
	c := newClient(t, clienttest.Start(t, fake))
	createService(t, c, "web", "bad:1", 1)
	fake.AutoStep(t, 5*time.Millisecond)

	ctx, cancel := context.WithCancel(testCtx(t))
	seen := map[string]int{}
	err := c.WaitForService(ctx, "web", func(p client.ServiceProgress) {
		for _, f := range p.Failures {
			seen[f.TaskID]++
			if f.State != api.TaskState_TASK_STATE_REJECTED || f.Err != "pull bad:1: not found" {
				t.Errorf("failure %+v: want REJECTED with the pull error", f)
			}
		}
		if len(seen) >= 2 {
			cancel() // two replacements have failed: enough
		}
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("WaitForService = %v; want context.Canceled", err)
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("failure of task %s reported %d times; want once", id, n)
		}
	}
}

func TestWaitForServiceFailsWhenRemoved(t *testing.T) {
	fake := clienttest.New()
	c := newClient(t, clienttest.Start(t, fake))
	createService(t, c, "web", "nginx", 2)

	var once sync.Once
	err := c.WaitForService(testCtx(t), "web", func(client.ServiceProgress) {
		once.Do(func() {
			if _, err := c.RemoveService(testCtx(t), &api.RemoveServiceRequest{Service: "web"}); err != nil {
				t.Errorf("RemoveService: %v", err)
			}
		})
	})
	if err == nil || !strings.Contains(err.Error(), "service web was removed") {
		t.Fatalf("WaitForService = %v; want an error saying the service was removed", err)
	}
}

func TestWaitForServiceUnknown(t *testing.T) {
	c := newClient(t, clienttest.Start(t, clienttest.New()))
	err := c.WaitForService(testCtx(t), "nope", nil)
	if client.Code(err).String() != "NotFound" || err.Error() != "service nope not found" {
		t.Fatalf("WaitForService = %v (%v); want the server's NotFound message", err, client.Code(err))
	}
}

func TestWaitForServiceRemoved(t *testing.T) {
	for _, by := range []string{"id", "name"} {
		t.Run(by, func(t *testing.T) {
			fake := clienttest.New()
			c := newClient(t, clienttest.Start(t, fake))
			svc := createService(t, c, "web", "nginx", 2)
			fake.Step()
			if _, err := c.RemoveService(testCtx(t), &api.RemoveServiceRequest{Service: svc.GetId()}); err != nil {
				t.Fatalf("RemoveService: %v", err)
			}
			fake.AutoStep(t, 5*time.Millisecond)
			ref := svc.GetId()
			if by == "name" {
				ref = "web"
			}
			if err := c.WaitForServiceRemoved(testCtx(t), ref); err != nil {
				t.Fatalf("WaitForServiceRemoved: %v", err)
			}
			if n := len(fake.Tasks()); n != 0 {
				t.Fatalf("%d tasks remain after WaitForServiceRemoved returned", n)
			}
		})
	}
}

// specOf is a task spec that differs per spec version, as real ones do.
func specOf(version uint64) *api.TaskSpec {
	return &api.TaskSpec{Container: &api.ContainerSpec{Image: fmt.Sprintf("app:%d", version)}}
}

func global(version uint64) *api.Service {
	return &api.Service{SpecVersion: version, Spec: &api.ServiceSpec{
		Mode: &api.ServiceSpec_Global{Global: &api.GlobalService{}}, Task: specOf(version),
	}}
}

func replicated(version, replicas uint64) *api.Service {
	return &api.Service{SpecVersion: version, Spec: &api.ServiceSpec{
		Mode: &api.ServiceSpec_Replicated{Replicated: &api.ReplicatedService{Replicas: replicas}}, Task: specOf(version),
	}}
}

func TestBuildProgress(t *testing.T) {
	running := &api.TaskStatus{State: api.TaskState_TASK_STATE_RUNNING}
	task := func(id string, slot uint64, node string, version uint64, desired api.TaskState) *api.Task {
		return &api.Task{
			Id: id, Slot: slot, NodeId: node, SpecVersion: version, Spec: specOf(version),
			DesiredState: desired, Status: running, Meta: &api.Meta{},
		}
	}
	run, shut := api.TaskState_TASK_STATE_RUNNING, api.TaskState_TASK_STATE_SHUTDOWN
	tests := []struct {
		name          string
		svc           *api.Service
		tasks         []*api.Task
		desired, runs int
		converged     bool
	}{
		{
			name:    "global converged",
			svc:     global(2),
			tasks:   []*api.Task{task("a", 0, "n1", 2, run), task("b", 0, "n2", 2, run), task("old", 0, "n1", 1, shut)},
			desired: 2, runs: 2, converged: true,
		},
		{
			name:    "global old spec still running",
			svc:     global(2),
			tasks:   []*api.Task{task("a", 0, "n1", 2, run), task("b", 0, "n2", 1, run)},
			desired: 2, runs: 1,
		},
		{
			name: "global without tasks",
			svc:  global(1),
		},
		{
			name:    "scaled down, extra still meant to run",
			svc:     replicated(1, 1),
			tasks:   []*api.Task{task("a", 1, "n1", 1, run), task("b", 2, "n1", 1, run)},
			desired: 1, runs: 1,
		},
		{
			name: "scaled up, tasks of an equal spec kept",
			svc:  &api.Service{SpecVersion: 3, Spec: &api.ServiceSpec{Mode: replicated(3, 2).Spec.Mode, Task: specOf(2)}},
			tasks: []*api.Task{
				task("a", 1, "n1", 2, run),
				task("b", 2, "n1", 3, run),
				task("c", 3, "n1", 1, shut),
			},
			desired: 2, runs: 2, converged: true,
		},
		{
			name:    "updated, old spec still running",
			svc:     replicated(3, 1),
			tasks:   []*api.Task{task("a", 1, "n1", 2, run)},
			desired: 1, runs: 0,
		},
		{
			name:      "scaled to zero",
			svc:       replicated(1, 0),
			tasks:     []*api.Task{task("a", 1, "n1", 1, shut)},
			converged: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := client.BuildProgress(tt.svc, tt.tasks, nil)
			if p.Desired != tt.desired || p.Running != tt.runs || p.Converged != tt.converged {
				t.Fatalf("progress %d/%d converged=%v; want %d/%d converged=%v", p.Running, p.Desired, p.Converged, tt.runs, tt.desired, tt.converged)
			}
		})
	}
}
