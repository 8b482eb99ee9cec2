package worker_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/internal/manager/dispatcher"
	"github.com/warren-project/warren/internal/runtime"
	"github.com/warren-project/warren/internal/runtime/fake"
	"github.com/warren-project/warren/internal/state"
	"github.com/warren-project/warren/internal/worker"
)

// This file is the in-process cluster the agent tests run in: a store, a
// dispatcher on a real gRPC server on loopback, and agents on a fake
// executor. (A test-only import of the dispatcher: the agent's behaviour is
// only meaningful against the other end of its session.)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// countingProposer applies writes locally and counts them.
type countingProposer struct {
	local *state.LocalProposer
	mu    sync.Mutex
	n     int
}

func (p *countingProposer) Propose(ctx context.Context, cmd *api.StoreCommand) error {
	p.mu.Lock()
	p.n++
	p.mu.Unlock()
	return p.local.Propose(ctx, cmd)
}

func (p *countingProposer) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.n
}

type cluster struct {
	t        *testing.T
	store    *state.MemoryStore
	writes   *countingProposer
	rt       *fake.Executor
	mu       sync.Mutex
	client   api.DispatcherClient
	stopMgr  func()
	dispConf dispatcher.Config
}

func newCluster(t *testing.T) *cluster {
	t.Helper()
	store := state.NewMemoryStore(nil)
	p := &countingProposer{local: &state.LocalProposer{Store: store}}
	store.SetProposer(p)
	c := &cluster{t: t, store: store, writes: p, rt: fake.New(), dispConf: dispatcher.Config{
		HeartbeatPeriod: 20 * time.Millisecond,
		NodeDownAfter:   time.Minute,
		Logger:          quiet,
	}}
	c.rt.AddImage("busybox")
	c.update(func(tx state.Tx) error { return tx.Create(&api.Node{Id: "n1", Meta: &api.Meta{}}) })
	return c
}

// startManager runs a dispatcher on a fresh loopback gRPC server; agents
// dial it from then on.
func (c *cluster) startManager() {
	c.t.Helper()
	d := dispatcher.New(c.store, c.dispConf)
	runDone := make(chan error, 1)
	go func() { runDone <- d.Run(context.Background()) }()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		c.t.Fatal(err)
	}
	srv := grpc.NewServer()
	api.RegisterDispatcherServer(srv, d)
	go func() { _ = srv.Serve(lis) }()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		c.t.Fatal(err)
	}
	var once sync.Once
	stop := func() {
		once.Do(func() {
			d.Stop()
			srv.Stop()
			_ = conn.Close()
			<-runDone
		})
	}
	c.mu.Lock()
	c.client, c.stopMgr = api.NewDispatcherClient(conn), stop
	c.mu.Unlock()
	c.t.Cleanup(stop)
}

func (c *cluster) stopManager() {
	c.mu.Lock()
	stop := c.stopMgr
	c.mu.Unlock()
	stop()
}

func (c *cluster) dial(context.Context) (api.DispatcherClient, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.client, nil
}

func agentConfig(nodeID string, rt runtime.Executor, dial func(context.Context) (api.DispatcherClient, error)) worker.Config {
	return worker.Config{
		NodeID: nodeID, Addr: "192.0.2.1", Executor: rt, Dial: dial, Logger: quiet,
		Description:  &api.NodeDescription{Hostname: "edge-" + nodeID},
		ReconnectMin: 5 * time.Millisecond, ReconnectMax: 50 * time.Millisecond,
		RestartDelay: 2 * time.Millisecond, RetryDelay: 5 * time.Millisecond,
	}
}

// startAgent runs an agent; it stops at the end of the test, or earlier
// through the returned function.
func (c *cluster) startAgent(cfg worker.Config) (stop func()) {
	c.t.Helper()
	a, err := worker.New(cfg)
	if err != nil {
		c.t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- a.Run(context.Background()) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			a.Stop()
			if err := <-done; err != nil {
				c.t.Errorf("agent Run: %v", err)
			}
		})
	}
	c.t.Cleanup(stop)
	return stop
}

func (c *cluster) update(fn func(state.Tx) error) {
	c.t.Helper()
	if err := c.store.Update(context.Background(), fn); err != nil {
		c.t.Fatalf("store update: %v", err)
	}
}

// addTask places a task of service web on nodeID.
func (c *cluster) addTask(id, nodeID string, policy *api.RestartPolicy) {
	c.t.Helper()
	c.update(func(tx state.Tx) error {
		return tx.Create(&api.Task{
			Id: id, Meta: &api.Meta{}, ServiceId: "svc1", ServiceName: "web", Slot: 1, NodeId: nodeID,
			DesiredState: api.TaskState_TASK_STATE_RUNNING,
			Status:       &api.TaskStatus{State: api.TaskState_TASK_STATE_ASSIGNED, Message: "scheduled"},
			Spec:         &api.TaskSpec{Container: &api.ContainerSpec{Image: "busybox"}, Restart: policy},
		})
	})
}

func (c *cluster) setDesired(id string, s api.TaskState) {
	c.t.Helper()
	c.update(func(tx state.Tx) error {
		task := tx.GetTask(id)
		task.DesiredState = s
		return tx.Update(task)
	})
}

func (c *cluster) task(id string) *api.Task {
	var t *api.Task
	c.store.View(func(tx state.ReadTx) { t = tx.GetTask(id) })
	return t
}

func (c *cluster) node(id string) *api.Node {
	var n *api.Node
	c.store.View(func(tx state.ReadTx) { n = tx.GetNode(id) })
	return n
}

// waitStatus waits until task id is in state s after restarts restarts.
func (c *cluster) waitStatus(id string, restarts uint32, s api.TaskState) *api.TaskStatus {
	c.t.Helper()
	var st *api.TaskStatus
	waitFor(c.t, "task "+id+" "+s.String(), func() bool {
		st = c.task(id).GetStatus()
		return st.GetState() == s && st.GetRestartCount() == restarts
	})
	return st
}

// container returns the fake's view of container id.
func (c *cluster) container(id string) (runtime.Container, error) {
	return c.rt.Inspect(context.Background(), id)
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited 10s, but never saw %s", what)
		}
		time.Sleep(2 * time.Millisecond) // poll interval, bounded by the deadline
	}
}

// holds checks that cond stays true for d: for the "nothing else happens"
// half of a test.
func holds(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(5 * time.Millisecond) {
		if !cond() {
			t.Fatalf("%s stopped being true", what)
		}
	}
}

// countingExec counts the calls that would show a duplicate container.
type countingExec struct {
	runtime.Executor
	mu    sync.Mutex
	calls map[string]int
}

func (e *countingExec) count(m string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.calls == nil {
		e.calls = map[string]int{}
	}
	e.calls[m]++
}

func (e *countingExec) n(m string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.calls[m]
}

func (e *countingExec) Create(ctx context.Context, spec runtime.Spec) error {
	e.count("Create")
	return e.Executor.Create(ctx, spec)
}

func (e *countingExec) Start(ctx context.Context, id string) error {
	e.count("Start")
	return e.Executor.Start(ctx, id)
}

func (e *countingExec) Wait(ctx context.Context, id string) (<-chan runtime.Exit, error) {
	e.count("Wait")
	return e.Executor.Wait(ctx, id)
}
