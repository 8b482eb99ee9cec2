package state

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/proto"

	"github.com/warren-project/warren/api"
)

func newService(id, name string) *api.Service {
	return &api.Service{Id: id, Meta: &api.Meta{}, Spec: &api.ServiceSpec{Name: name}, SpecVersion: 1}
}

func newTask(id, serviceID, nodeID string) *api.Task {
	return &api.Task{Id: id, Meta: &api.Meta{}, ServiceId: serviceID, NodeId: nodeID, DesiredState: api.TaskState_TASK_STATE_RUNNING}
}

func mustUpdate(t *testing.T, s *MemoryStore, fn func(Tx) error) {
	t.Helper()
	if err := s.Update(context.Background(), fn); err != nil {
		t.Fatalf("update: %v", err)
	}
}

func TestCreateUpdateDelete(t *testing.T) {
	s := NewTestStore()
	mustUpdate(t, s, func(tx Tx) error { return tx.Create(newService("s1", "web")) })

	var got *api.Service
	s.View(func(tx ReadTx) { got = tx.GetServiceByName("web") })
	if got == nil || got.Meta.Version != 1 || got.Meta.CreatedAt == nil {
		t.Fatalf("created service = %v, want version 1 with a creation time", got)
	}

	got.Spec.Labels = map[string]string{"a": "b"}
	mustUpdate(t, s, func(tx Tx) error { return tx.Update(got) })
	s.View(func(tx ReadTx) { got = tx.GetService("s1") })
	if got.Meta.Version != 2 || got.Spec.Labels["a"] != "b" {
		t.Fatalf("updated service = %v, want version 2 with the label", got)
	}

	mustUpdate(t, s, func(tx Tx) error { return tx.Delete(got) })
	s.View(func(tx ReadTx) { got = tx.GetService("s1") })
	if got != nil {
		t.Fatalf("service still there after delete: %v", got)
	}
}

func TestWriteErrorsChangeNothing(t *testing.T) {
	s := NewTestStore()
	mustUpdate(t, s, func(tx Tx) error { return tx.Create(newService("s1", "web")) })
	stale := func() *api.Service {
		var svc *api.Service
		s.View(func(tx ReadTx) { svc = tx.GetService("s1") })
		return svc
	}()
	mustUpdate(t, s, func(tx Tx) error { return tx.Update(stale) }) // moves the version on

	cases := []struct {
		name string
		fn   func(Tx) error
		want error
	}{
		{"same name", func(tx Tx) error { return tx.Create(newService("s2", "web")) }, ErrNameConflict},
		{"same id", func(tx Tx) error { return tx.Create(newService("s1", "other")) }, ErrAlreadyExists},
		{"update missing", func(tx Tx) error { return tx.Update(newService("nope", "x")) }, ErrNotFound},
		{"stale version", func(tx Tx) error { return tx.Update(stale) }, ErrVersionConflict},
		{"rename onto another", func(tx Tx) error {
			if err := tx.Create(newService("s3", "db")); err != nil {
				return err
			}
			svc := tx.GetService("s3")
			svc.Spec.Name = "web"
			return tx.Update(svc)
		}, ErrNameConflict},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := s.Index()
			err := s.Update(context.Background(), c.fn)
			if !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
			if s.Index() != before {
				t.Fatalf("index moved from %d to %d on a failed write", before, s.Index())
			}
		})
	}
	s.View(func(tx ReadTx) {
		if n := len(tx.ListServices()); n != 1 {
			t.Fatalf("%d services stored, want 1", n)
		}
	})
}

// racingProposer lets another writer's change land just before the first
// proposal, as a concurrent manager component would.
type racingProposer struct {
	local *LocalProposer
	race  func()
}

func (p *racingProposer) Propose(ctx context.Context, cmd *api.StoreCommand) error {
	if p.race != nil {
		race := p.race
		p.race = nil
		race()
	}
	return p.local.Propose(ctx, cmd)
}

// A conflict found only when the command applies (another writer got in
// between) makes Update run the callback again on the newer state, so
// neither change is lost.
func TestUpdateRetriesOnConflict(t *testing.T) {
	s := NewTestStore()
	mustUpdate(t, s, func(tx Tx) error { return tx.Create(newService("s1", "web")) })
	p := &racingProposer{local: &LocalProposer{Store: s}}
	p.race = func() {
		mustUpdate(t, s, func(tx Tx) error {
			other := tx.GetService("s1")
			other.Spec.Labels = map[string]string{"other": "1"}
			return tx.Update(other)
		})
	}
	s.SetProposer(p)
	runs := 0
	mustUpdate(t, s, func(tx Tx) error {
		runs++
		svc := tx.GetService("s1")
		if svc.Spec.Labels == nil {
			svc.Spec.Labels = map[string]string{}
		}
		svc.Spec.Labels["mine"] = "1"
		return tx.Update(svc)
	})
	if runs != 2 {
		t.Fatalf("callback ran %d times, want 2 (once more after the conflict)", runs)
	}
	s.View(func(tx ReadTx) {
		if l := tx.GetService("s1").Spec.Labels; l["mine"] != "1" || l["other"] != "1" {
			t.Fatalf("labels = %v, want both writers' changes", l)
		}
	})
}

func TestTaskStatusOnlyMovesForward(t *testing.T) {
	s := NewTestStore()
	mustUpdate(t, s, func(tx Tx) error { return tx.Create(newTask("t1", "s1", "n1")) })
	report := func(restarts uint32, state api.TaskState) {
		mustUpdate(t, s, func(tx Tx) error {
			return tx.UpdateTaskStatus("t1", &api.TaskStatus{State: state, RestartCount: restarts})
		})
	}
	report(0, api.TaskState_TASK_STATE_RUNNING)
	report(0, api.TaskState_TASK_STATE_STARTING) // stale: dropped
	assertStatus(t, s, 0, api.TaskState_TASK_STATE_RUNNING)
	report(1, api.TaskState_TASK_STATE_STARTING) // a restart: a new round
	assertStatus(t, s, 1, api.TaskState_TASK_STATE_STARTING)

	// A manager's update of desired state keeps the node's newer status.
	mustUpdate(t, s, func(tx Tx) error {
		task := tx.GetTask("t1")
		task.Status = &api.TaskStatus{State: api.TaskState_TASK_STATE_ASSIGNED}
		task.DesiredState = api.TaskState_TASK_STATE_SHUTDOWN
		return tx.Update(task)
	})
	assertStatus(t, s, 1, api.TaskState_TASK_STATE_STARTING)

	// A report about a task that is gone is dropped quietly.
	mustUpdate(t, s, func(tx Tx) error {
		return tx.UpdateTaskStatus("gone", &api.TaskStatus{State: api.TaskState_TASK_STATE_RUNNING})
	})
}

func assertStatus(t *testing.T, s *MemoryStore, restarts uint32, state api.TaskState) {
	t.Helper()
	s.View(func(tx ReadTx) {
		st := tx.GetTask("t1").GetStatus()
		if st.GetRestartCount() != restarts || st.GetState() != state {
			t.Fatalf("status = (%d, %v), want (%d, %v)", st.GetRestartCount(), st.GetState(), restarts, state)
		}
	})
}

func TestIndexesAndLookups(t *testing.T) {
	s := NewTestStore()
	mustUpdate(t, s, func(tx Tx) error {
		for _, svc := range []*api.Service{newService("abc123", "web"), newService("abd456", "db")} {
			if err := tx.Create(svc); err != nil {
				return err
			}
		}
		for _, task := range []*api.Task{newTask("t1", "abc123", "n1"), newTask("t2", "abc123", "n2"), newTask("t3", "abd456", "n1")} {
			if err := tx.Create(task); err != nil {
				return err
			}
		}
		return nil
	})
	s.View(func(tx ReadTx) {
		if n := len(tx.ListTasks(ByService("abc123"))); n != 2 {
			t.Errorf("ByService = %d tasks, want 2", n)
		}
		if n := len(tx.ListTasks(ByNode("n1"))); n != 2 {
			t.Errorf("ByNode = %d tasks, want 2", n)
		}
		if svc, err := tx.LookupService("abc"); err != nil || svc.Spec.Name != "web" {
			t.Errorf("LookupService(abc) = %v, %v; want web", svc, err)
		}
		if _, err := tx.LookupService("ab"); !errors.Is(err, ErrAmbiguous) {
			t.Errorf("LookupService(ab) err = %v, want ambiguous", err)
		}
		if svc, err := tx.LookupService("db"); err != nil || svc.Id != "abd456" {
			t.Errorf("LookupService(db) = %v, %v", svc, err)
		}
		if _, err := tx.LookupService("zzz"); !errors.Is(err, ErrNotFound) {
			t.Errorf("LookupService(zzz) err = %v, want not found", err)
		}
	})
}

func TestViewAndWatchMissesNothing(t *testing.T) {
	s := NewTestStore()
	mustUpdate(t, s, func(tx Tx) error { return tx.Create(newService("s1", "web")) })
	var seen int
	sub := s.ViewAndWatch(nil, func(tx ReadTx) { seen = len(tx.ListServices()) })
	defer sub.Cancel()
	mustUpdate(t, s, func(tx Tx) error { return tx.Create(newService("s2", "db")) })
	mustUpdate(t, s, func(tx Tx) error { return tx.Delete(newService("s1", "web")) })

	want := []EventKind{EventCreate, EventDelete}
	for i, kind := range want {
		select {
		case ev := <-sub.C:
			if ev.Kind != kind {
				t.Fatalf("event %d = %v, want %v", i, ev.Kind, kind)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("event %d (%v) never came", i, kind)
		}
	}
	if seen != 1 {
		t.Fatalf("view saw %d services, want 1", seen)
	}
}

func TestWaitForIndex(t *testing.T) {
	s := NewTestStore()
	start := s.Index()
	done := make(chan uint64)
	go func() { done <- s.WaitForIndex(context.Background(), start) }()
	mustUpdate(t, s, func(tx Tx) error { return tx.Create(newService("s1", "web")) })
	select {
	case idx := <-done:
		if idx <= start {
			t.Fatalf("woke at index %d, want > %d", idx, start)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("WaitForIndex did not wake on a write")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if idx := s.WaitForIndex(ctx, s.Index()); idx != s.Index() {
		t.Fatalf("timed-out wait returned %d", idx)
	}
}

type memSink struct {
	bytes.Buffer
	cancelled bool
}

func (m *memSink) ID() string    { return "mem" }
func (m *memSink) Cancel() error { m.cancelled = true; return nil }
func (m *memSink) Close() error  { return nil }

func TestSnapshotRestoreIntoNonEmptyStore(t *testing.T) {
	src := NewTestStore()
	mustUpdate(t, src, func(tx Tx) error {
		if err := tx.Create(&api.Cluster{Id: "c1", Meta: &api.Meta{}, Name: "edge"}); err != nil {
			return err
		}
		if err := tx.Create(&api.Node{Id: "n1", Meta: &api.Meta{}, Description: &api.NodeDescription{Hostname: "h1"}}); err != nil {
			return err
		}
		if err := tx.Create(newService("s1", "web")); err != nil {
			return err
		}
		return tx.Create(newTask("t1", "s1", "n1"))
	})
	fsm := &FSM{Store: src}
	snap, err := fsm.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	sink := &memSink{}
	if err := snap.Persist(sink); err != nil {
		t.Fatal(err)
	}

	dst := NewTestStore()
	mustUpdate(t, dst, func(tx Tx) error {
		if err := tx.Create(newService("old", "web")); err != nil { // same name, other ID
			return err
		}
		return tx.Create(newTask("stale", "old", "n9"))
	})
	sub := dst.Watch(nil)
	defer sub.Cancel()
	if err := (&FSM{Store: dst}).Restore(io.NopCloser(bytes.NewReader(sink.Bytes()))); err != nil {
		t.Fatal(err)
	}
	if dst.Index() != src.Index() {
		t.Fatalf("restored index %d, want %d", dst.Index(), src.Index())
	}
	if !proto.Equal(dst.Snapshot(), src.Snapshot()) {
		t.Fatalf("restored state differs:\n got %v\nwant %v", dst.Snapshot(), src.Snapshot())
	}
	select {
	case ev := <-sub.C:
		if ev.Kind != EventRestore {
			t.Fatalf("watcher got %v, want restore", ev.Kind)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("watcher was not told of the restore")
	}
	// The restored store accepts writes on top.
	mustUpdate(t, dst, func(tx Tx) error { return tx.Create(newService("s2", "db")) })
}

func TestFSMApplyThroughRaftLog(t *testing.T) {
	s := NewMemoryStore(nil)
	fsm := &FSM{Store: s}
	cmd := &api.StoreCommand{Actions: []*api.StoreAction{{
		Kind:   api.StoreAction_KIND_CREATE,
		Target: &api.StoreAction_Service{Service: newService("s1", "web")},
	}}}
	data, _ := proto.Marshal(cmd)
	if res := fsm.Apply(&raft.Log{Index: 7, Type: raft.LogCommand, Data: data}); res != nil {
		t.Fatalf("apply = %v", res)
	}
	if res := fsm.Apply(&raft.Log{Index: 8, Type: raft.LogCommand, Data: data}); !errors.Is(res.(error), ErrAlreadyExists) {
		t.Fatalf("second apply = %v, want already exists", res)
	}
	if res := fsm.Apply(&raft.Log{Index: 9, Type: raft.LogCommand, Data: []byte{0xff, 0xff}}); res == nil {
		t.Fatal("garbage entry applied without error")
	}
	s.View(func(tx ReadTx) {
		if svc := tx.GetService("s1"); svc.GetMeta().GetVersion() != 7 {
			t.Fatalf("version = %d, want the log index 7", svc.GetMeta().GetVersion())
		}
	})
}

func TestCount(t *testing.T) {
	s := NewTestStore()
	err := s.Update(context.Background(), func(tx Tx) error {
		for _, o := range []Object{
			&api.Node{Id: "n1", Meta: &api.Meta{}}, &api.Node{Id: "n2", Meta: &api.Meta{}},
			&api.Service{Id: "s1", Meta: &api.Meta{}, Spec: &api.ServiceSpec{Name: "web"}},
			&api.Task{Id: "t1", ServiceId: "s1", Meta: &api.Meta{}}, &api.Task{Id: "t2", ServiceId: "s1", Meta: &api.Meta{}},
			&api.Task{Id: "t3", ServiceId: "s1", Meta: &api.Meta{}},
		} {
			if err := tx.Create(o); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var got Counts
	s.View(func(tx ReadTx) { got = tx.Count() })
	if want := (Counts{Nodes: 2, Services: 1, Tasks: 3}); got != want {
		t.Fatalf("Count = %+v, want %+v", got, want)
	}
}
