package apiserver

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/internal/logfile"
	"github.com/warren-project/warren/internal/manager/dispatcher"
	"github.com/warren-project/warren/internal/network/fakenet"
	"github.com/warren-project/warren/internal/runtime/fake"
	"github.com/warren-project/warren/internal/state"
	"github.com/warren-project/warren/internal/worker"
)

// This file runs Logs end to end in one process: the API and a dispatcher
// on a loopback gRPC server, and agents on fake executors whose containers
// "print" by writing their log files through logfile. (Test-only imports of
// the dispatcher and the agent: Logs only means something across them.)

var quietLog = slog.New(slog.NewTextHandler(io.Discard, nil))

type logCluster struct {
	t          *testing.T
	store      *state.MemoryStore
	control    api.ControlClient
	dispatcher api.DispatcherClient
	execs      map[string]*fake.Executor
}

func newLogCluster(t *testing.T, nodes ...string) *logCluster {
	t.Helper()
	c := &logCluster{t: t, store: state.NewTestStore(), execs: map[string]*fake.Executor{}}
	c.update(func(tx state.Tx) error {
		if err := tx.Create(&api.Service{Id: "svc1", Meta: &api.Meta{}, Spec: svcSpec("web", 2), SpecVersion: 1}); err != nil {
			return err
		}
		for i, id := range nodes {
			n := &api.Node{Id: id, Meta: &api.Meta{}, Description: &api.NodeDescription{Hostname: fmt.Sprintf("edge-%d", i+1)}}
			if err := tx.Create(n); err != nil {
				return err
			}
		}
		return nil
	})
	d := dispatcher.New(c.store, dispatcher.Config{HeartbeatPeriod: 50 * time.Millisecond, NodeDownAfter: time.Minute, Logger: quietLog})
	ctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan error, 1)
	go func() { runDone <- d.Run(ctx) }()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	api.RegisterDispatcherServer(srv, d)
	api.RegisterControlServer(srv, New(Config{Store: c.store, Logs: d, Logger: quietLog}))
	go func() { _ = srv.Serve(lis) }()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	c.control, c.dispatcher = api.NewControlClient(conn), api.NewDispatcherClient(conn)
	t.Cleanup(func() {
		conn.Close()
		srv.Stop()
		cancel()
		<-runDone
	})
	return c
}

func (c *logCluster) update(fn func(state.Tx) error) {
	c.t.Helper()
	if err := c.store.Update(context.Background(), fn); err != nil {
		c.t.Fatalf("store update: %v", err)
	}
}

// startAgent runs node id's agent, with its logs under a directory of its own.
func (c *logCluster) startAgent(id string) {
	c.t.Helper()
	dial := func(context.Context) (api.DispatcherClient, error) { return c.dispatcher, nil }
	rt := fake.New()
	rt.AddImage("busybox")
	c.execs[id] = rt
	a, err := worker.New(worker.Config{NodeID: id, Executor: rt, Network: fakenet.New(), Dial: dial, DataDir: c.t.TempDir(), Logger: quietLog,
		ReconnectMin: 5 * time.Millisecond, ReconnectMax: 50 * time.Millisecond})
	if err != nil {
		c.t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- a.Run(context.Background()) }()
	c.t.Cleanup(func() {
		a.Stop()
		<-done
	})
	waitUntil(c.t, "node "+id+" ready", func() bool {
		var st api.NodeState
		c.store.View(func(tx state.ReadTx) { st = tx.GetNode(id).GetStatus().GetState() })
		return st == api.NodeState_NODE_STATE_READY
	})
}

// addTask places task id of service web (slot) on a node.
func (c *logCluster) addTask(id, nodeID string, slot uint64) {
	c.t.Helper()
	c.update(func(tx state.Tx) error {
		return tx.Create(&api.Task{
			Id: id, Meta: &api.Meta{}, ServiceId: "svc1", ServiceName: "web", Slot: slot, NodeId: nodeID,
			DesiredState: api.TaskState_TASK_STATE_RUNNING,
			Status:       &api.TaskStatus{State: api.TaskState_TASK_STATE_ASSIGNED},
			Spec:         &api.TaskSpec{Container: &api.ContainerSpec{Image: "busybox"}},
		})
	})
}

// print makes task id's container on nodeID print lines, stamped t0+sec.
func (c *logCluster) print(nodeID, id string, lines map[int]string) {
	c.t.Helper()
	var path string
	waitUntil(c.t, "the container of task "+id, func() bool {
		spec, ok := c.execs[nodeID].Spec(id)
		path = spec.LogPath
		return ok
	})
	w, err := logfile.OpenWriter(path, logfile.Options{})
	if err != nil {
		c.t.Fatal(err)
	}
	defer w.Close()
	for sec := range 100 {
		if l, ok := lines[sec]; ok {
			if err := w.Write(logfile.Record{Time: logT0.Add(time.Duration(sec) * time.Second), Stream: logfile.Stdout, Line: []byte(l)}); err != nil {
				c.t.Fatal(err)
			}
		}
	}
}

func (c *logCluster) waitRunning(id string) {
	c.t.Helper()
	waitUntil(c.t, "task "+id+" running", func() bool {
		var st api.TaskState
		c.store.View(func(tx state.ReadTx) { st = tx.GetTask(id).GetStatus().GetState() })
		return st == api.TaskState_TASK_STATE_RUNNING
	})
}

var logT0 = time.Date(2025, 1, 2, 3, 4, 0, 0, time.UTC)

// logs calls Logs and returns "task: line" and "notice: …" in order.
func (c *logCluster) logs(req *api.LogsRequest) []string {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stream, err := c.control.Logs(ctx, req)
	if err != nil {
		c.t.Fatal(err)
	}
	var out []string
	for {
		m, err := stream.Recv()
		if err == io.EOF {
			return out
		}
		if err != nil {
			c.t.Fatalf("Logs: %v (after %q)", err, out)
		}
		out = append(out, show(m))
	}
}

func show(m *api.LogMessage) string {
	if m.GetNotice() != "" {
		return "notice: " + m.GetNotice()
	}
	return m.GetTaskId() + ": " + string(m.GetLine())
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 10s", what)
		}
		time.Sleep(5 * time.Millisecond) // poll interval, bounded by the deadline
	}
}

func TestLogsAcrossNodes(t *testing.T) {
	c := newLogCluster(t, "n1", "n2", "n3")
	c.startAgent("n1")
	c.startAgent("n2")
	c.update(func(tx state.Tx) error { // n3 is down: no agent
		n := tx.GetNode("n3")
		n.Status = &api.NodeStatus{State: api.NodeState_NODE_STATE_DOWN}
		return tx.Update(n)
	})
	c.addTask("ta", "n1", 1)
	c.addTask("tb", "n2", 2)
	c.print("n1", "ta", map[int]string{1: "a1", 3: "a3", 5: "a5"})
	c.print("n2", "tb", map[int]string{2: "b2", 4: "b4"})

	for _, tt := range []struct {
		name string
		req  *api.LogsRequest
		want string
	}{
		{"merged in time order", &api.LogsRequest{Service: "web"}, "ta: a1|tb: b2|ta: a3|tb: b4|ta: a5"},
		{"tail per task", &api.LogsRequest{Service: "web", Tail: 2}, "tb: b2|ta: a3|tb: b4|ta: a5"},
		{"since", &api.LogsRequest{Service: "web", Since: tsAt(3)}, "ta: a3|tb: b4|ta: a5"},
		{"one task", &api.LogsRequest{Task: "tb"}, "tb: b2|tb: b4"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := strings.Join(c.logs(tt.req), "|"); got != tt.want {
				t.Fatalf("got %q; want %q", got, tt.want)
			}
		})
	}

	t.Run("a down node", func(t *testing.T) {
		c.addTask("tc", "n3", 3)
		start := time.Now()
		got := c.logs(&api.LogsRequest{Service: "web"})
		want := "notice: node edge-3 is down: logs of its tasks are not available"
		if len(got) != 6 || got[0] != want || strings.Join(got[1:], "|") != "ta: a1|tb: b2|ta: a3|tb: b4|ta: a5" {
			t.Fatalf("got %q; want the notice %q, then the other nodes' lines", got, want)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("Logs took %s with a node down; want no wait", d)
		}
	})
}

func tsAt(sec int) *timestamppb.Timestamp {
	return timestamppb.New(logT0.Add(time.Duration(sec) * time.Second))
}

func TestLogsFollowAcrossReplacement(t *testing.T) {
	c := newLogCluster(t, "n1", "n2")
	c.startAgent("n1")
	c.startAgent("n2")
	c.addTask("ta", "n1", 1)
	c.print("n1", "ta", map[int]string{1: "a1", 2: "a2"})
	c.waitRunning("ta")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stream, err := c.control.Logs(ctx, &api.LogsRequest{Service: "web", Follow: true, Tail: 1})
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 100)
	ended := make(chan error, 1)
	go func() {
		for {
			m, err := stream.Recv()
			if err != nil {
				ended <- err
				return
			}
			got <- show(m)
		}
	}()
	expect := func(want string) {
		t.Helper()
		select {
		case g := <-got:
			if g != want {
				t.Fatalf("got %q; want %q", g, want)
			}
		case err := <-ended:
			t.Fatalf("Logs ended (%v) before %q", err, want)
		case <-time.After(10 * time.Second):
			t.Fatalf("no %q within 10s", want)
		}
	}
	expect("ta: a2") // the tail
	c.print("n1", "ta", map[int]string{3: "a3"})
	expect("ta: a3")

	// The task is replaced by one on the other node, as the orchestrator
	// and scheduler would.
	c.update(func(tx state.Tx) error {
		ta := tx.GetTask("ta")
		ta.DesiredState = api.TaskState_TASK_STATE_SHUTDOWN
		return tx.Update(ta)
	})
	c.addTask("tb", "n2", 1)
	c.print("n2", "tb", map[int]string{4: "b4"})
	expect("tb: b4")
	c.print("n2", "tb", map[int]string{5: "b5"})
	expect("tb: b5")

	cancel()
	select {
	case <-ended:
	case <-time.After(10 * time.Second):
		t.Fatal("Logs went on after the caller stopped")
	}
}

func TestLogsFollowOfATaskEndsWhenItLeavesItsNode(t *testing.T) {
	c := newLogCluster(t, "n1")
	c.startAgent("n1")
	c.addTask("ta", "n1", 1)
	c.print("n1", "ta", map[int]string{1: "a1"})
	c.waitRunning("ta")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	stream, err := c.control.Logs(ctx, &api.LogsRequest{Task: "ta", Follow: true})
	if err != nil {
		t.Fatal(err)
	}
	if m, err := stream.Recv(); err != nil || show(m) != "ta: a1" {
		t.Fatalf("first message %v, %v; want ta: a1", m, err)
	}
	// The task is removed: its node tears the container down and deletes
	// its log, and the follow has nothing more to wait for.
	c.update(func(tx state.Tx) error { return tx.Delete(tx.GetTask("ta")) })
	if m, err := stream.Recv(); err != io.EOF {
		t.Fatalf("after the task was removed: %v, %v; want the end of the stream", m, err)
	}
}
