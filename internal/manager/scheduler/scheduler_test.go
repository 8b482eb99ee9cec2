package scheduler

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/internal/state"
)

func testConfig() Config {
	return Config{
		Logger:        slog.New(slog.NewTextHandler(io.Discard, nil)),
		QuietPeriod:   time.Millisecond,
		MaxDelay:      5 * time.Millisecond,
		SweepInterval: time.Hour,
	}
}

// startScheduler runs a scheduler over store until the test ends.
func startScheduler(t *testing.T, store *state.MemoryStore, cfg Config) *Scheduler {
	t.Helper()
	s := New(store, cfg)
	errc := make(chan error, 1)
	go func() { errc <- s.Run(context.Background()) }()
	t.Cleanup(func() {
		s.Stop()
		if err := <-errc; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return s
}

func create(t *testing.T, store *state.MemoryStore, objs ...state.Object) {
	t.Helper()
	err := store.Update(context.Background(), func(tx state.Tx) error {
		for _, o := range objs {
			if err := tx.Create(o); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("create: %v", err)
	}
}

func objects(tasks []*api.Task) []state.Object {
	out := make([]state.Object, len(tasks))
	for i, t := range tasks {
		out[i] = t
	}
	return out
}

func update(t *testing.T, store *state.MemoryStore, fn func(tx state.Tx) error) {
	t.Helper()
	if err := store.Update(context.Background(), fn); err != nil {
		t.Fatalf("update: %v", err)
	}
}

// waitFor waits, on the store's index rather than a clock, until cond
// holds, and fails the test saying what never happened.
func waitFor(t *testing.T, store *state.MemoryStore, what string, cond func(tx state.ReadTx) bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		idx := store.Index()
		ok := false
		store.View(func(tx state.ReadTx) { ok = cond(tx) })
		if ok {
			return
		}
		if ctx.Err() != nil {
			t.Fatalf("%s never happened", what)
		}
		store.WaitForIndex(ctx, idx)
	}
}

func taskState(tx state.ReadTx, id string) (api.TaskState, string, string) {
	task := tx.GetTask(id)
	return task.GetStatus().GetState(), task.GetNodeId(), task.GetStatus().GetMessage()
}

func TestSchedulerAssignsPendingTasks(t *testing.T) {
	store := state.NewTestStore()
	create(t, store, mkNode("n1"), mkNode("n2"), mkNode("n3"))
	create(t, store, mkTask("done", "web", running("n1"), shutdownState))
	startScheduler(t, store, testConfig())

	tasks := mkTasks(6, "web")
	for _, task := range tasks {
		create(t, store, task) // one write each: a burst for the scheduler
	}
	waitFor(t, store, "all 6 tasks assigned", func(tx state.ReadTx) bool {
		for _, task := range tasks {
			if s, _, _ := taskState(tx, task.Id); s != api.TaskState_TASK_STATE_ASSIGNED {
				return false
			}
		}
		return true
	})
	store.View(func(tx state.ReadTx) {
		count := map[string]int{}
		for _, task := range tasks {
			got := tx.GetTask(task.Id)
			count[got.NodeId]++
			if want := "assigned to node host-" + got.NodeId; got.Status.Message != want || got.Status.Timestamp == nil {
				t.Errorf("task %s: status %v, want message %q and a timestamp", task.Id, got.Status, want)
			}
		}
		if count["n1"] != 2 || count["n2"] != 2 || count["n3"] != 2 {
			t.Errorf("tasks per node = %v, want 2 each", count)
		}
		if s, n, _ := taskState(tx, "done"); s != api.TaskState_TASK_STATE_RUNNING || n != "n1" {
			t.Errorf("a task meant to shut down was touched: %v on %s", s, n)
		}
	})
}

// Node changes re-run placement: a task that fits nowhere waits, PENDING
// with its reason, and is placed once a node that fits comes.
func TestSchedulerPlacesPendingWhenNodesChange(t *testing.T) {
	setNode := func(id string, change func(*api.Node)) func(state.Tx) error {
		return func(tx state.Tx) error {
			n := tx.GetNode(id)
			change(n)
			return tx.Update(n)
		}
	}
	cases := []struct {
		name   string
		nodes  []*api.Node
		task   *api.Task
		reason string
		change func(state.Tx) error
	}{
		{"a node that fits joins", []*api.Node{mkNode("n1", capacity(cpu, gib))}, mkTask("t", "web", reserve(0, 2*gib)),
			"insufficient memory on 1 node",
			func(tx state.Tx) error { return tx.Create(mkNode("n2", capacity(cpu, 4*gib))) }},
		{"a down node becomes ready", []*api.Node{mkNode("n2", stateDown)}, mkTask("t", "web"), "node down on 1 node",
			setNode("n2", func(n *api.Node) { n.Status.State = api.NodeState_NODE_STATE_READY })},
		{"a drained node becomes active", []*api.Node{mkNode("n2", drained)}, mkTask("t", "web"),
			"node is paused/drained on 1 node",
			setNode("n2", func(n *api.Node) { n.Spec.Availability = api.NodeAvailability_NODE_AVAILABILITY_ACTIVE })},
		{"a node gets the label", []*api.Node{mkNode("n2")}, mkTask("t", "web", constraints("node.labels.zone==edge")),
			"no node satisfies constraint node.labels.zone==edge (1 node)",
			setNode("n2", func(n *api.Node) { n.Spec.Labels = map[string]string{"zone": "edge"} })},
		{"a node grows", []*api.Node{mkNode("n2", capacity(cpu, gib))}, mkTask("t", "web", reserve(2*cpu, 0)),
			"insufficient CPU on 1 node",
			setNode("n2", func(n *api.Node) { n.Description.Resources.NanoCpus = 4 * cpu })},
		{"a task ends and frees room",
			[]*api.Node{mkNode("n2", capacity(cpu, gib))}, mkTask("t", "web", reserve(cpu, 0)),
			"insufficient CPU on 1 node",
			func(tx state.Tx) error {
				return tx.UpdateTaskStatus("hog", &api.TaskStatus{State: api.TaskState_TASK_STATE_FAILED})
			}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			store := state.NewTestStore()
			for _, n := range c.nodes {
				create(t, store, n)
			}
			create(t, store, mkTask("hog", "db", running(c.nodes[0].Id), reserve(cpu/2, 0)))
			startScheduler(t, store, testConfig())
			create(t, store, c.task)
			want := "pending: " + c.reason
			waitFor(t, store, "task PENDING with "+want, func(tx state.ReadTx) bool {
				s, _, msg := taskState(tx, "t")
				return s == api.TaskState_TASK_STATE_PENDING && msg == want
			})
			update(t, store, c.change)
			waitFor(t, store, "task assigned to n2", func(tx state.ReadTx) bool {
				s, node, _ := taskState(tx, "t")
				return s == api.TaskState_TASK_STATE_ASSIGNED && node == "n2"
			})
		})
	}
}

// Passes that decide nothing new write nothing: the store's index stays.
func TestSchedulerDoesNotRewriteUnchangedPending(t *testing.T) {
	store := state.NewTestStore()
	create(t, store, mkNode("n1", capacity(cpu, gib)))
	create(t, store, objects(mkTasks(3, "web", reserve(0, 2*gib)))...)
	cfg := testConfig()
	cfg.SweepInterval = 2 * time.Millisecond // each sweep is a full pass
	s := startScheduler(t, store, cfg)
	waitFor(t, store, "3 tasks PENDING", func(tx state.ReadTx) bool {
		for i := 1; i <= 3; i++ {
			if st, _, _ := taskState(tx, fmt.Sprintf("web-%d", i)); st != api.TaskState_TASK_STATE_PENDING {
				return false
			}
		}
		return true
	})
	index, passes := store.Index(), s.passes.Load()
	waitPasses(t, s, passes+5)
	if got := store.Index(); got != index {
		t.Fatalf("store index moved from %d to %d though no decision changed", index, got)
	}
}

// waitPasses polls the pass counter, which no store change reports.
func waitPasses(t *testing.T, s *Scheduler, n int64) {
	t.Helper()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	deadline := time.After(10 * time.Second)
	for s.passes.Load() < n {
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("only %d placement passes ran, want %d", s.passes.Load(), n)
		}
	}
}

// A burst of tasks written one by one never puts more on a node than it
// holds, though the scheduler's cache lags its own writes.
func TestSchedulerBurstNeverOvercommits(t *testing.T) {
	store := state.NewTestStore()
	for i := 1; i <= 4; i++ {
		create(t, store, mkNode(fmt.Sprintf("n%d", i), capacity(cpu, gib)))
	}
	startScheduler(t, store, testConfig())
	tasks := mkTasks(20, "web", reserve(0, 250*mib))
	for _, task := range tasks {
		create(t, store, task)
	}
	waitFor(t, store, "16 tasks assigned and 4 pending", func(tx state.ReadTx) bool {
		count := map[api.TaskState]int{}
		for _, task := range tasks {
			s, _, _ := taskState(tx, task.Id)
			count[s]++
		}
		return count[api.TaskState_TASK_STATE_ASSIGNED] == 16 && count[api.TaskState_TASK_STATE_PENDING] == 4
	})
	store.View(func(tx state.ReadTx) {
		for _, n := range tx.ListNodes() {
			if got := len(tx.ListTasks(state.ByNode(n.Id))); got != 4 {
				t.Errorf("node %s got %d tasks, want 4", n.Id, got)
			}
		}
	})
}

// After a snapshot restore the scheduler reloads and places what it finds.
func TestSchedulerReloadsOnRestore(t *testing.T) {
	src := state.NewTestStore()
	create(t, src, mkNode("n1"))
	create(t, src, objects(mkTasks(2, "web"))...)

	dst := state.NewTestStore()
	startScheduler(t, dst, testConfig())
	if err := dst.Restore(src.Snapshot()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, dst, "restored tasks assigned", func(tx state.ReadTx) bool {
		for _, id := range []string{"web-1", "web-2"} {
			if s, n, _ := taskState(tx, id); s != api.TaskState_TASK_STATE_ASSIGNED || n != "n1" {
				return false
			}
		}
		return true
	})
}

func TestSchedulerStop(t *testing.T) {
	store := state.NewTestStore()
	t.Run("before run", func(t *testing.T) {
		s := New(store, testConfig())
		s.Stop()
		if err := s.Run(context.Background()); err != nil {
			t.Fatalf("Run after Stop = %v", err)
		}
	})
	t.Run("context ends", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		errc := make(chan error, 1)
		go func() { errc <- New(store, testConfig()).Run(ctx) }()
		cancel()
		select {
		case err := <-errc:
			if err != nil && !errors.Is(err, context.Canceled) {
				t.Fatalf("Run = %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Run did not return when its context ended")
		}
	})
}

// The log carries the module attribute.
func TestSchedulerLogsWithModule(t *testing.T) {
	var buf strings.Builder
	cfg := testConfig()
	cfg.Logger = slog.New(slog.NewTextHandler(&buf, nil))
	s := New(state.NewTestStore(), cfg)
	s.log.Info("hello")
	if !strings.Contains(buf.String(), "module=scheduler") {
		t.Fatalf("log line %q has no module=scheduler", buf.String())
	}
}
