package orchestrator

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/internal/state"
)

func TestRollingUpdate(t *testing.T) {
	const delay = 20 * time.Millisecond
	cases := []struct {
		parallelism uint64
		messages    []string
	}{
		{0, []string{"updating 1/3", "updating 2/3", "updating 3/3", "update completed"}}, // 0 means 1
		{1, []string{"updating 1/3", "updating 2/3", "updating 3/3", "update completed"}},
		{2, []string{"updating 2/3", "updating 3/3", "update completed"}},
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("parallelism %d", c.parallelism), func(t *testing.T) {
			h := start(t)
			h.addNode("n1", api.NodeState_NODE_STATE_READY, api.NodeAvailability_NODE_AVAILABILITY_ACTIVE)
			id := h.createService("web", 3, withUpdate(c.parallelism, delay))
			h.waitFor("3 tasks", func(tx state.ReadTx) bool { return countCurrent(tx, id) == 3 })
			h.runAll("n1")
			h.settle()

			statuses := h.s.Watch(func(ev state.Event) bool { _, ok := ev.Object.(*api.Service); return ok })
			defer statuses.Cancel()
			h.changeService(id, func(s *api.Service) { s.SpecVersion++; s.Spec.Task.Container.Image = "busybox:2" })
			runningAt := h.playUpdate(id, max(c.parallelism, 1))

			if got := collectMessages(t, statuses, "update completed"); !slices.Equal(got, c.messages) {
				t.Errorf("update status messages = %q, want %q", got, c.messages)
			}
			var svc *api.Service
			h.s.View(func(tx state.ReadTx) { svc = tx.GetService(id) })
			if us := svc.UpdateStatus; us.StartedAt == nil || us.CompletedAt == nil || us.CompletedAt.AsTime().Before(us.StartedAt.AsTime()) {
				t.Errorf("update status %v, want started and completed times in order", us)
			}
			checkBatchDelay(t, h.tasks(id), runningAt, delay)
		})
	}
}

// playUpdate plays scheduler and agent until the update completes, checking
// at each step that no more than parallelism slots lack a running task.
func (h *harness) playUpdate(id string, parallelism uint64) map[string]time.Time {
	h.t.Helper()
	runningAt := map[string]time.Time{}
	deadline := time.Now().Add(waitLimit)
	for {
		idx := h.s.Index()
		done := false
		h.s.View(func(tx state.ReadTx) {
			tasks := tx.ListTasks(state.ByService(id))
			var down []string
			for _, task := range tasks {
				if task.DesiredState == stateRunning && observed(task) != stateRunning {
					down = append(down, fmt.Sprintf("slot %d node %q", task.Slot, task.NodeId))
				}
			}
			if len(down) > int(parallelism) {
				h.t.Fatalf("%v are without a running task at once, want at most %d", down, parallelism)
			}
			current := 0
			done = tx.GetService(id).GetUpdateStatus().GetState() == api.UpdateStatus_STATE_COMPLETED
			for _, task := range tasks {
				if task.DesiredState == stateRunning {
					current++
					done = done && task.SpecVersion == 2 && observed(task) == stateRunning
				}
			}
			done = done && current == 3
		})
		if done {
			return runningAt
		}
		if time.Now().After(deadline) {
			h.t.Fatal("the rolling update never completed")
		}
		h.stopAll()
		for task, at := range h.runAll("n1") {
			runningAt[task] = at
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		h.s.WaitForIndex(ctx, idx)
		cancel()
	}
}

// collectMessages reads update status messages from service events, each
// once, until last.
func collectMessages(t *testing.T, sub *state.Subscription, last string) []string {
	t.Helper()
	var got []string
	timeout := time.After(waitLimit)
	for {
		select {
		case ev := <-sub.C:
			msg := ev.Object.(*api.Service).GetUpdateStatus().GetMessage()
			if msg != "" && (len(got) == 0 || got[len(got)-1] != msg) {
				got = append(got, msg)
			}
			if msg == last {
				return got
			}
		case <-timeout:
			t.Fatalf("update status never said %q (saw %q)", last, got)
		}
	}
}

// checkBatchDelay checks that each new task was made at least delay after
// the one before it ran.
func checkBatchDelay(t *testing.T, tasks []*api.Task, runningAt map[string]time.Time, delay time.Duration) {
	t.Helper()
	var fresh []*api.Task
	for _, task := range tasks {
		if task.SpecVersion == 2 {
			fresh = append(fresh, task)
		}
	}
	sortNewestFirst(fresh)
	slices.Reverse(fresh)
	for i := 1; i < len(fresh); i++ {
		prev, next := runningAt[fresh[i-1].Id], fresh[i].Status.Timestamp.AsTime()
		if fresh[i].Meta.CreatedAt.AsTime().Equal(fresh[i-1].Meta.CreatedAt.AsTime()) {
			continue // the same batch
		}
		if next.Sub(prev) < delay {
			t.Errorf("task %s made %v after the previous batch ran, want at least %v", fresh[i].Id, next.Sub(prev), delay)
		}
	}
}
