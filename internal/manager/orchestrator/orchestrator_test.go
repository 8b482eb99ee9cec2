package orchestrator

import (
	"context"
	"testing"
	"time"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/internal/state"
)

func TestRestoreReconcilesEverything(t *testing.T) {
	h := start(t)
	src := state.NewTestStore()
	svc := &api.Service{Id: NewID(), Meta: &api.Meta{}, SpecVersion: 1, Spec: &api.ServiceSpec{
		Name: "restored", Task: &api.TaskSpec{},
		Mode: &api.ServiceSpec_Replicated{Replicated: &api.ReplicatedService{Replicas: 2}},
	}}
	if err := src.Update(context.Background(), func(tx state.Tx) error { return tx.Create(svc) }); err != nil {
		t.Fatal(err)
	}
	snap := src.Snapshot()
	snap.Index = h.s.Index() + 10
	if err := h.s.Restore(snap); err != nil {
		t.Fatal(err)
	}
	h.waitFor("tasks for the restored service", func(tx state.ReadTx) bool { return countCurrent(tx, svc.Id) == 2 })
}

func TestMultipleCurrentTasksInASlot(t *testing.T) {
	h := start(t)
	id := h.createService("web", 1)
	h.waitFor("a task", func(tx state.ReadTx) bool { return countCurrent(tx, id) == 1 })
	first := currentBySlot(h.tasks(id))[1]
	// Another writer (a bug, or a second manager) adds a second current task.
	h.update(func(tx state.Tx) error {
		return tx.Create(newTask(tx.GetService(id), 1, "", "created", time.Now()))
	})
	h.waitFor("one current task per slot", func(tx state.ReadTx) bool {
		n := 0
		for _, task := range tx.ListTasks(state.ByService(id)) {
			if task.DesiredState == stateRunning {
				n++
			}
		}
		return n == 1
	})
	if got := h.task(first.Id); got.GetDesiredState() == stateRunning {
		t.Fatal("the older of two current tasks was kept")
	}
}

func TestStopBeforeRun(t *testing.T) {
	o := New(state.NewTestStore(), testConfig())
	o.Stop()
	done := make(chan error, 1)
	go func() { done <- o.Run(context.Background()) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run after Stop = %v, want nil", err)
		}
	case <-time.After(waitLimit):
		t.Fatal("Run after Stop did not return")
	}
	if err := o.Run(context.Background()); err == nil {
		t.Fatal("a second Run did not fail")
	}
	o.Stop() // twice is fine
}

func TestBackoffDelay(t *testing.T) {
	cases := []struct {
		base     time.Duration
		failures int
		want     time.Duration
	}{
		{time.Second, 0, time.Second},
		{time.Second, 1, time.Second},
		{time.Second, 2, 2 * time.Second},
		{time.Second, 4, 8 * time.Second},
		{time.Second, 7, time.Minute},
		{time.Second, 1000, time.Minute},
		{2 * time.Minute, 1, time.Minute},
	}
	for _, c := range cases {
		if got := backoffDelay(c.base, c.failures, time.Minute); got != c.want {
			t.Errorf("backoffDelay(%v, %d) = %v, want %v", c.base, c.failures, got, c.want)
		}
	}
}

func TestFlushDelay(t *testing.T) {
	t0 := time.Unix(1000, 0)
	cases := []struct {
		name  string
		since time.Duration // from the burst's first event to now
		want  time.Duration
	}{
		{"first event", 0, 5 * time.Millisecond},
		{"mid burst", 20 * time.Millisecond, 5 * time.Millisecond},
		{"near the cap", 48 * time.Millisecond, 2 * time.Millisecond},
		{"past the cap", 70 * time.Millisecond, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := flushDelay(t0, t0.Add(c.since), 5*time.Millisecond, 50*time.Millisecond); got != c.want {
				t.Fatalf("flushDelay = %v, want %v", got, c.want)
			}
		})
	}
}

func TestRelevant(t *testing.T) {
	task := func(desired, st api.TaskState, progress string) *api.Task {
		return &api.Task{DesiredState: desired, Status: &api.TaskStatus{State: st, Progress: progress}}
	}
	node := func(st api.NodeState, addr string) *api.Node {
		return &api.Node{Spec: &api.NodeSpec{}, Status: &api.NodeStatus{State: st, Addr: addr}}
	}
	cases := []struct {
		name string
		ev   state.Event
		want bool
	}{
		{"task created", state.Event{Kind: state.EventCreate, Object: task(stateRunning, stateNew, "")}, true},
		{"task progress", state.Event{Kind: state.EventUpdate, Object: task(stateRunning, stateRunning, "b"), Old: task(stateRunning, stateRunning, "a")}, false},
		{"task state", state.Event{Kind: state.EventUpdate, Object: task(stateRunning, stateFailed, ""), Old: task(stateRunning, stateRunning, "")}, true},
		{"task desired", state.Event{Kind: state.EventUpdate, Object: task(stateShutdown, stateRunning, ""), Old: task(stateRunning, stateRunning, "")}, true},
		{"node address", state.Event{Kind: state.EventUpdate, Object: node(api.NodeState_NODE_STATE_READY, "b"), Old: node(api.NodeState_NODE_STATE_READY, "a")}, false},
		{"node down", state.Event{Kind: state.EventUpdate, Object: node(api.NodeState_NODE_STATE_DOWN, "a"), Old: node(api.NodeState_NODE_STATE_READY, "a")}, true},
		{"restore", state.Event{Kind: state.EventRestore}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := relevant(c.ev); got != c.want {
				t.Fatalf("relevant = %v, want %v", got, c.want)
			}
		})
	}
}

// BenchmarkReconcile1000 reconciles a new service of 1,000 replicas: one
// write creating every task.
func BenchmarkReconcile1000(b *testing.B) {
	ctx := context.Background()
	var total time.Duration
	for b.Loop() {
		b.StopTimer()
		s := state.NewTestStore()
		o := New(s, testConfig())
		svc := &api.Service{Id: NewID(), Meta: &api.Meta{}, SpecVersion: 1, Spec: &api.ServiceSpec{
			Name: "big", Task: &api.TaskSpec{Container: &api.ContainerSpec{Image: "busybox:1", Env: []string{"A=1", "B=2"}}},
			Mode: &api.ServiceSpec_Replicated{Replicated: &api.ReplicatedService{Replicas: 1000}},
		}}
		if err := s.Update(ctx, func(tx state.Tx) error { return tx.Create(svc) }); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		start := time.Now()
		if _, err := o.reconcile(ctx, svc.Id); err != nil {
			b.Fatal(err)
		}
		total += time.Since(start)
		b.StopTimer()
		var n int
		s.View(func(tx state.ReadTx) { n = len(tx.ListTasks(state.ByService(svc.Id))) })
		if n != 1000 {
			b.Fatalf("%d tasks, want 1000", n)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(total.Microseconds())/1000/float64(b.N), "ms/reconcile")
}
