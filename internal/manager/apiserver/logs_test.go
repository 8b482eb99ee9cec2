package apiserver

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/internal/state"
)

// fakeLogs answers every node with a channel the test feeds.
type fakeLogs struct {
	mu    sync.Mutex
	asked chan string // "node: task,task tail=N follow=B"
	chans map[string]chan *api.LogMessage
}

func newFakeLogs() *fakeLogs {
	return &fakeLogs{asked: make(chan string, 100), chans: map[string]chan *api.LogMessage{}}
}

func (f *fakeLogs) Logs(_ context.Context, nodeID string, req *api.LogRequest) (<-chan *api.LogMessage, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ch := make(chan *api.LogMessage, 10)
	f.chans[nodeID+"/"+strings.Join(req.GetTaskIds(), ",")] = ch
	f.asked <- nodeID + ": " + strings.Join(req.GetTaskIds(), ",")
	return ch, nil
}

func (f *fakeLogs) feed(key string) chan *api.LogMessage {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.chans[key]
}

// logStream is a Control_LogsServer that records what is sent.
type logStream struct {
	grpc.ServerStream
	ctx  context.Context
	sent chan *api.LogMessage
}

func (s *logStream) Context() context.Context     { return s.ctx }
func (s *logStream) Send(m *api.LogMessage) error { s.sent <- m; return nil }

func logServer(t *testing.T) (*Server, *state.MemoryStore, *fakeLogs) {
	t.Helper()
	f := newFakeLogs()
	store := state.NewTestStore()
	err := store.Update(context.Background(), func(tx state.Tx) error {
		if err := tx.Create(&api.Service{Id: "svc1", Meta: &api.Meta{}, Spec: svcSpec("web", 1), SpecVersion: 1}); err != nil {
			return err
		}
		return tx.Create(&api.Service{Id: "svc2", Meta: &api.Meta{}, Spec: svcSpec("db", 1), SpecVersion: 1})
	})
	if err != nil {
		t.Fatal(err)
	}
	return New(Config{Store: store, Logs: f, Logger: quietLog}), store, f
}

func putTask(t *testing.T, store *state.MemoryStore, id, svc, node string, st api.TaskState) {
	t.Helper()
	err := store.Update(context.Background(), func(tx state.Tx) error {
		task := &api.Task{Id: id, Meta: &api.Meta{}, ServiceId: svc, NodeId: node, Status: &api.TaskStatus{State: st}}
		if old := tx.GetTask(id); old != nil {
			task.Meta = old.GetMeta()
			return tx.Update(task)
		}
		return tx.Create(task)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestLogsRequestErrors(t *testing.T) {
	s, store, _ := logServer(t)
	putTask(t, store, "t1", "svc1", "n1", api.TaskState_TASK_STATE_RUNNING)
	for _, tt := range []struct {
		name string
		req  *api.LogsRequest
		want codes.Code
	}{
		{"nothing named", &api.LogsRequest{}, codes.InvalidArgument},
		{"unknown service", &api.LogsRequest{Service: "nope"}, codes.NotFound},
		{"unknown task", &api.LogsRequest{Task: "nope"}, codes.NotFound},
		{"task of another service", &api.LogsRequest{Service: "db", Task: "t1"}, codes.InvalidArgument},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := s.Logs(tt.req, &logStream{ctx: context.Background(), sent: make(chan *api.LogMessage, 10)})
			if status.Code(err) != tt.want {
				t.Fatalf("Logs = %v; want %v", err, tt.want)
			}
		})
	}
	t.Run("no log source", func(t *testing.T) {
		s := New(Config{Store: store})
		err := s.Logs(&api.LogsRequest{Service: "web"}, &logStream{ctx: context.Background()})
		if status.Code(err) != codes.Unavailable {
			t.Fatalf("Logs = %v; want Unavailable", err)
		}
	})
}

func TestLogsGroupsTasksByNode(t *testing.T) {
	s, store, f := logServer(t)
	putTask(t, store, "t1", "svc1", "n1", api.TaskState_TASK_STATE_RUNNING)
	putTask(t, store, "t2", "svc1", "n2", api.TaskState_TASK_STATE_COMPLETE) // finished, still on its node
	putTask(t, store, "t3", "svc1", "n1", api.TaskState_TASK_STATE_RUNNING)
	putTask(t, store, "t4", "svc1", "", api.TaskState_TASK_STATE_PENDING) // never placed
	putTask(t, store, "t5", "svc2", "n1", api.TaskState_TASK_STATE_RUNNING)
	done := make(chan error, 1)
	sent := make(chan *api.LogMessage, 10)
	go func() {
		done <- s.Logs(&api.LogsRequest{Service: "web"}, &logStream{ctx: context.Background(), sent: sent})
	}()
	for _, want := range []string{"n1: t1,t3", "n2: t2"} {
		if got := <-f.asked; got != want {
			t.Fatalf("asked %q; want %q", got, want)
		}
	}
	close(f.feed("n1/t1,t3"))
	n2 := f.feed("n2/t2")
	n2 <- &api.LogMessage{NodeId: "n2", Notice: "node n2 is down"}
	close(n2)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if m := <-sent; m.GetNotice() != "node n2 is down" {
		t.Fatalf("sent %v; want the node's notice", m)
	}
}

func TestLogsFollowEnds(t *testing.T) {
	for _, tt := range []struct {
		name string
		req  *api.LogsRequest
		// end does what ends the call after its node streams closed.
		end func(t *testing.T, store *state.MemoryStore)
	}{
		{"one task", &api.LogsRequest{Task: "t1", Follow: true}, func(*testing.T, *state.MemoryStore) {}},
		{"a removed service", &api.LogsRequest{Service: "web", Follow: true}, func(t *testing.T, store *state.MemoryStore) {
			err := store.Update(context.Background(), func(tx state.Tx) error { return tx.Delete(tx.GetService("svc1")) })
			if err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s, store, f := logServer(t)
			putTask(t, store, "t1", "svc1", "n1", api.TaskState_TASK_STATE_RUNNING)
			done := make(chan error, 1)
			sent := make(chan *api.LogMessage, 10)
			go func() { done <- s.Logs(tt.req, &logStream{ctx: context.Background(), sent: sent}) }()
			<-f.asked
			line := &api.LogMessage{TaskId: "t1", Time: timestamppb.Now(), Line: []byte("last words")}
			f.feed("n1/t1") <- line
			close(f.feed("n1/t1"))
			tt.end(t, store)
			select {
			case err := <-done:
				if err != nil {
					t.Fatal(err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("Logs -f did not end with nothing left to follow")
			}
			if m := <-sent; string(m.GetLine()) != "last words" {
				t.Fatalf("sent %v; want the last line before the end", m)
			}
		})
	}
}

func TestLogsFollowAsksForTasksOnceTheirNodeHasThem(t *testing.T) {
	s, store, f := logServer(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- s.Logs(&api.LogsRequest{Service: "web", Follow: true}, &logStream{ctx: ctx, sent: make(chan *api.LogMessage, 10)})
	}()
	putTask(t, store, "t1", "svc1", "", api.TaskState_TASK_STATE_PENDING)
	putTask(t, store, "t1", "svc1", "n1", api.TaskState_TASK_STATE_ASSIGNED)
	putTask(t, store, "t2", "svc2", "n1", api.TaskState_TASK_STATE_RUNNING) // another service
	putTask(t, store, "t1", "svc1", "n1", api.TaskState_TASK_STATE_ACCEPTED)
	putTask(t, store, "t1", "svc1", "n1", api.TaskState_TASK_STATE_RUNNING)
	if got := <-f.asked; got != "n1: t1" {
		t.Fatalf("asked %q; want n1 for t1", got)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Logs -f ended with %v after the caller stopped; want nil", err)
	}
	select {
	case got := <-f.asked:
		t.Fatalf("asked again: %q", got)
	default:
	}
}
