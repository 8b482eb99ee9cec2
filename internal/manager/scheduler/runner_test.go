package scheduler

import (
	"context"
	"testing"
	"time"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/internal/state"
)

// These tests drive a runner by hand, one step at a time, to pin down
// orderings that a running scheduler only meets by chance.

// The component re-reads each task in its write: one that changed since the
// pass saw it (here: told to shut down) is left alone.
func TestSchedulerWriteSkipsTasksChangedMeanwhile(t *testing.T) {
	store := state.NewTestStore()
	create(t, store, mkNode("n1"))
	create(t, store, objects(mkTasks(2, "web"))...)
	r := newRunner(New(store, testConfig()))
	r.reload()
	defer r.sub.Cancel()
	decisions := Schedule(values(r.nodes), values(r.tasks), values(r.pending))

	update(t, store, func(tx state.Tx) error {
		task := tx.GetTask("web-1")
		task.DesiredState = api.TaskState_TASK_STATE_SHUTDOWN
		return tx.Update(task)
	})
	written, err := r.write(context.Background(), decisions)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := written["web-1"]; ok || len(written) != 1 {
		t.Fatalf("wrote %v, want only web-2", written)
	}
	store.View(func(tx state.ReadTx) {
		if s, node, _ := taskState(tx, "web-1"); s != api.TaskState_TASK_STATE_NEW || node != "" {
			t.Fatalf("changed task was written: %v on %q", s, node)
		}
	})
}

// A pass waits until the cache shows the scheduler's own last write: on a
// cache that misses it, the next task would land on a node already full.
func TestSchedulerWaitsForItsOwnWrites(t *testing.T) {
	store := state.NewTestStore()
	create(t, store, mkNode("n1", capacity(cpu, gib)))
	create(t, store, objects(mkTasks(2, "web", reserve(0, 400*mib)))...)
	s := New(store, testConfig())
	r := newRunner(s)
	r.reload()
	defer r.sub.Cancel()
	ctx := context.Background()
	r.markDirty()
	r.pass(ctx)
	if len(r.inflight) != 2 {
		t.Fatalf("first pass wrote %v, want both tasks", r.inflight)
	}
	create(t, store, mkTask("web-3", "web", reserve(0, 400*mib)))
	r.markDirty()
	r.pass(ctx) // the cache has seen neither write: this pass must wait
	if got := s.passes.Load(); got != 1 {
		t.Fatalf("%d passes ran before the cache saw the first one's write, want 1", got)
	}
	timeout := time.After(10 * time.Second)
	for len(r.inflight) > 0 || r.tasks["web-3"] == nil {
		select {
		case ev := <-r.sub.C:
			r.handle(ev)
		case <-timeout:
			t.Fatal("the events of the scheduler's write never came")
		}
	}
	r.pass(ctx)
	waitFor(t, store, "web-3 PENDING for lack of memory", func(tx state.ReadTx) bool {
		st, _, msg := taskState(tx, "web-3")
		return st == api.TaskState_TASK_STATE_PENDING && msg == "pending: insufficient memory on 1 node"
	})
}
