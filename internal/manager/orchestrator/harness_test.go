package orchestrator

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/internal/state"
)

// waitLimit bounds every wait: far above what anything takes, so a slow
// machine under -race does not fail a test, and a bug still fails it.
const waitLimit = 10 * time.Second

func testConfig() Config {
	return Config{
		Logger:        slog.New(slog.NewTextHandler(io.Discard, nil)),
		QuietPeriod:   time.Millisecond,
		MaxDelay:      10 * time.Millisecond,
		SweepInterval: time.Hour,
		RejectBackoff: 20 * time.Millisecond,
		MaxBackoff:    time.Second,
		RetryInterval: 20 * time.Millisecond,
	}
}

// harness runs an orchestrator on a test store. Tests play the scheduler
// and the agents by writing nodes and statuses.
type harness struct {
	t *testing.T
	s *state.MemoryStore
	o *Orchestrator
}

func start(t *testing.T, mods ...func(*Config)) *harness {
	t.Helper()
	cfg := testConfig()
	for _, m := range mods {
		m(&cfg)
	}
	h := &harness{t: t, s: state.NewTestStore()}
	h.o = New(h.s, cfg)
	errc := make(chan error, 1)
	go func() { errc <- h.o.Run(context.Background()) }()
	t.Cleanup(func() {
		h.o.Stop()
		select {
		case err := <-errc:
			if err != nil {
				t.Errorf("Run returned %v after Stop", err)
			}
		case <-time.After(waitLimit):
			t.Error("Run did not return after Stop")
		}
	})
	return h
}

func (h *harness) update(fn func(tx state.Tx) error) {
	h.t.Helper()
	if err := h.s.Update(context.Background(), fn); err != nil {
		h.t.Fatalf("store update: %v", err)
	}
}

// waitFor waits until cond holds on the state, re-checking on every change
// (and every 20 ms, for conditions that wait on a back-off).
func (h *harness) waitFor(what string, cond func(tx state.ReadTx) bool) {
	h.t.Helper()
	deadline := time.Now().Add(waitLimit)
	for {
		idx := h.s.Index()
		ok := false
		h.s.View(func(tx state.ReadTx) { ok = cond(tx) })
		if ok {
			return
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("%s never happened (waited %v)", what, waitLimit)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		h.s.WaitForIndex(ctx, idx)
		cancel()
	}
}

// settle waits until the orchestrator has reconciled every change so far,
// its own writes included.
func (h *harness) settle() {
	h.t.Helper()
	deadline := time.Now().Add(waitLimit)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for h.o.synced.Load() < h.s.Index() {
		if time.Now().After(deadline) {
			h.t.Fatalf("orchestrator never caught up with index %d (at %d)", h.s.Index(), h.o.synced.Load())
		}
		<-tick.C
	}
}

type serviceOpt func(*api.Service)

func withRestartDelay(d time.Duration) serviceOpt {
	return func(s *api.Service) {
		s.Spec.Task.Restart = &api.RestartPolicy{Delay: durationpb.New(d)}
	}
}

func withUpdate(parallelism uint64, delay time.Duration) serviceOpt {
	return func(s *api.Service) {
		s.Spec.Update = &api.UpdateConfig{Parallelism: parallelism, Delay: durationpb.New(delay)}
	}
}

func global() serviceOpt {
	return func(s *api.Service) { s.Spec.Mode = &api.ServiceSpec_Global{Global: &api.GlobalService{}} }
}

func (h *harness) createService(name string, replicas uint64, opts ...serviceOpt) string {
	h.t.Helper()
	svc := &api.Service{Id: NewID(), Meta: &api.Meta{}, SpecVersion: 1, Spec: &api.ServiceSpec{
		Name: name,
		Task: &api.TaskSpec{Container: &api.ContainerSpec{Image: "busybox:1"}},
		Mode: &api.ServiceSpec_Replicated{Replicated: &api.ReplicatedService{Replicas: replicas}},
	}}
	for _, o := range opts {
		o(svc)
	}
	h.update(func(tx state.Tx) error { return tx.Create(svc) })
	return svc.Id
}

// changeService edits a service as the API would.
func (h *harness) changeService(id string, fn func(*api.Service)) {
	h.t.Helper()
	h.update(func(tx state.Tx) error {
		svc := tx.GetService(id)
		fn(svc)
		return tx.Update(svc)
	})
}

func (h *harness) scale(id string, replicas uint64) {
	h.changeService(id, func(s *api.Service) {
		s.Spec.Mode = &api.ServiceSpec_Replicated{Replicated: &api.ReplicatedService{Replicas: replicas}}
	})
}

func (h *harness) tasks(serviceID string) []*api.Task {
	var out []*api.Task
	h.s.View(func(tx state.ReadTx) { out = tx.ListTasks(state.ByService(serviceID)) })
	return out
}

func (h *harness) task(id string) *api.Task {
	var out *api.Task
	h.s.View(func(tx state.ReadTx) { out = tx.GetTask(id) })
	return out
}

// currentBySlot maps each slot to its task wanted running.
func currentBySlot(tasks []*api.Task) map[uint64]*api.Task {
	out := map[uint64]*api.Task{}
	for _, t := range tasks {
		if t.GetDesiredState() == stateRunning {
			out[t.GetSlot()] = t
		}
	}
	return out
}

func countCurrent(tx state.ReadTx, serviceID string) int {
	return len(currentBySlot(tx.ListTasks(state.ByService(serviceID))))
}

func (h *harness) addNode(id string, st api.NodeState, avail api.NodeAvailability) {
	h.t.Helper()
	h.update(func(tx state.Tx) error {
		return tx.Create(&api.Node{Id: id, Meta: &api.Meta{},
			Spec:        &api.NodeSpec{Availability: avail},
			Description: &api.NodeDescription{Hostname: id},
			Status:      &api.NodeStatus{State: st}})
	})
}

func (h *harness) changeNode(id string, fn func(*api.Node)) {
	h.t.Helper()
	h.update(func(tx state.Tx) error {
		n := tx.GetNode(id)
		fn(n)
		return tx.Update(n)
	})
}

// runAll plays scheduler and agent: every task wanted running that does not
// run yet goes to nodeID (unless it names its node) and runs. It returns
// when each started.
func (h *harness) runAll(nodeID string) map[string]time.Time {
	h.t.Helper()
	started := map[string]time.Time{}
	h.update(func(tx state.Tx) error {
		for _, t := range tx.ListTasks(state.All) {
			if t.GetDesiredState() != stateRunning || observed(t) >= stateRunning {
				continue
			}
			if t.NodeId == "" {
				t.NodeId = nodeID
			}
			t.Status = &api.TaskStatus{State: stateAssigned, Timestamp: timestamppb.Now()}
			if err := tx.Update(t); err != nil {
				return err
			}
			now := time.Now()
			started[t.Id] = now
			if err := tx.UpdateTaskStatus(t.Id, &api.TaskStatus{State: stateRunning, Timestamp: timestamppb.New(now)}); err != nil {
				return err
			}
		}
		return nil
	})
	return started
}

// stopAll plays the agents stopping every task no longer wanted.
func (h *harness) stopAll() {
	h.t.Helper()
	h.update(func(tx state.Tx) error {
		for _, t := range tx.ListTasks(state.All) {
			if t.GetDesiredState() > stateRunning && t.GetNodeId() != "" && observed(t) < stateComplete {
				// As the agent does: stopped, and deleted when marked for removal.
				st := stateShutdown
				if t.GetDesiredState() == stateRemove {
					st = stateRemove
				}
				if err := tx.UpdateTaskStatus(t.Id, &api.TaskStatus{State: st, Timestamp: timestamppb.Now()}); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// report plays an agent reporting a task's state; it returns the timestamp.
func (h *harness) report(taskID string, st api.TaskState, errText string) time.Time {
	h.t.Helper()
	now := time.Now()
	h.update(func(tx state.Tx) error {
		return tx.UpdateTaskStatus(taskID, &api.TaskStatus{State: st, Err: errText, Timestamp: timestamppb.New(now)})
	})
	return now
}
