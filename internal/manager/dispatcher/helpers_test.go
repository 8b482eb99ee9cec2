package dispatcher

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
	"github.com/warren-project/warren/internal/state"
)

// testConfig has short batching and a long node expiry, so that only the
// tests about heartbeats see nodes go down.
func testConfig() Config {
	return Config{
		HeartbeatPeriod: 50 * time.Millisecond,
		NodeDownAfter:   time.Minute,
		Logger:          slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
}

// gatedProposer applies writes locally, counts them, and can hold the next
// write until released, so tests can make status reports pile up.
type gatedProposer struct {
	local *state.LocalProposer

	mu      sync.Mutex
	calls   int
	gate    chan struct{} // when set, the next Propose waits for it to close
	entered chan int      // gets the held write's action count
}

func (p *gatedProposer) Propose(ctx context.Context, cmd *api.StoreCommand) error {
	p.mu.Lock()
	p.calls++
	gate, entered := p.gate, p.entered
	p.gate = nil
	p.mu.Unlock()
	if gate != nil {
		entered <- len(cmd.GetActions())
		<-gate
	}
	return p.local.Propose(ctx, cmd)
}

func (p *gatedProposer) hold() (entered chan int, release func()) {
	p.mu.Lock()
	defer p.mu.Unlock()
	gate := make(chan struct{})
	p.gate, p.entered = gate, make(chan int, 1)
	return p.entered, func() { close(gate) }
}

func (p *gatedProposer) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.calls
}

type testEnv struct {
	store    *state.MemoryStore
	proposer *gatedProposer
	d        *Dispatcher
	client   api.DispatcherClient
}

// newTestEnv runs a dispatcher on a real gRPC server on loopback, with node
// n1 (and n2) in the store.
func newTestEnv(t *testing.T, cfg Config) *testEnv {
	t.Helper()
	store := state.NewMemoryStore(nil)
	p := &gatedProposer{local: &state.LocalProposer{Store: store}}
	store.SetProposer(p)
	e := &testEnv{store: store, proposer: p, d: New(store, cfg)}
	e.update(t, func(tx state.Tx) error {
		for _, id := range []string{"n1", "n2"} {
			if err := tx.Create(&api.Node{Id: id, Meta: &api.Meta{}}); err != nil {
				return err
			}
		}
		return nil
	})

	ctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan error, 1)
	go func() { runDone <- e.d.Run(ctx) }()
	waitFor(t, "the dispatcher to run", func() bool {
		e.d.mu.Lock()
		defer e.d.mu.Unlock()
		return e.d.cur != nil
	})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	api.RegisterDispatcherServer(srv, e.d)
	go func() { _ = srv.Serve(lis) }()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	e.client = api.NewDispatcherClient(conn)
	t.Cleanup(func() {
		_ = conn.Close()
		e.d.Stop()
		srv.Stop()
		cancel()
		if err := <-runDone; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return e
}

func (e *testEnv) update(t *testing.T, fn func(state.Tx) error) {
	t.Helper()
	if err := e.store.Update(context.Background(), fn); err != nil {
		t.Fatalf("store update: %v", err)
	}
}

func (e *testEnv) node(id string) *api.Node {
	var n *api.Node
	e.store.View(func(tx state.ReadTx) { n = tx.GetNode(id) })
	return n
}

func (e *testEnv) task(id string) *api.Task {
	var task *api.Task
	e.store.View(func(tx state.ReadTx) { task = tx.GetTask(id) })
	return task
}

func newTask(id, nodeID string, st api.TaskState) *api.Task {
	return &api.Task{
		Id: id, Meta: &api.Meta{}, NodeId: nodeID, ServiceId: "s1",
		DesiredState: api.TaskState_TASK_STATE_RUNNING,
		Status:       &api.TaskStatus{State: st},
		Spec:         &api.TaskSpec{Container: &api.ContainerSpec{Image: "busybox"}},
	}
}

// nodeStream is a node's side of a session, read in the background.
type nodeStream struct {
	stream api.Dispatcher_SessionClient
	cancel context.CancelFunc
	info   *api.SessionInfo
	msgs   chan *api.Assignments
	loads  chan *api.ImageArchive
	maps   chan *api.NetworkMap
	infos  chan *api.SessionInfo // after the first
	end    chan error
	sendMu sync.Mutex
}

// connect opens a session as nodeID and waits for its SessionInfo.
func (e *testEnv) connect(t *testing.T, reg *api.RegisterRequest) (*nodeStream, error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	stream, err := e.client.Session(ctx)
	if err != nil {
		cancel()
		return nil, err
	}
	n := &nodeStream{stream: stream, cancel: cancel, msgs: make(chan *api.Assignments, 100), loads: make(chan *api.ImageArchive, 100), maps: make(chan *api.NetworkMap, 100), infos: make(chan *api.SessionInfo, 10), end: make(chan error, 1)}
	// A Send that fails with io.EOF means the server ended the stream: its
	// status comes from Recv below.
	if err := n.send(&api.SessionRequest{Msg: &api.SessionRequest_Register{Register: reg}}); err != nil && err != io.EOF {
		cancel()
		return nil, err
	}
	first, err := stream.Recv()
	if err != nil {
		cancel()
		return nil, err
	}
	n.info = first.GetSession()
	go n.read()
	return n, nil
}

func (e *testEnv) mustConnect(t *testing.T, nodeID string) *nodeStream {
	t.Helper()
	n, err := e.connect(t, &api.RegisterRequest{NodeId: nodeID, Addr: "10.0.0.1"})
	if err != nil {
		t.Fatalf("connect as %s: %v", nodeID, err)
	}
	return n
}

func (n *nodeStream) read() {
	for {
		msg, err := n.stream.Recv()
		if err != nil {
			n.end <- err
			return
		}
		if a := msg.GetAssignments(); a != nil {
			n.msgs <- a
		}
		if l := msg.GetLoadImage(); l != nil {
			n.loads <- l
		}
		if m := msg.GetNetworkMap(); m != nil {
			n.maps <- m
		}
		if i := msg.GetSession(); i != nil {
			n.infos <- i
		}
	}
}

func (n *nodeStream) send(req *api.SessionRequest) error {
	n.sendMu.Lock()
	defer n.sendMu.Unlock()
	return n.stream.Send(req)
}

func (n *nodeStream) heartbeat() error {
	return n.send(&api.SessionRequest{Msg: &api.SessionRequest_Heartbeat{Heartbeat: &api.Heartbeat{}}})
}

func (n *nodeStream) report(updates ...*api.TaskStatusUpdate) error {
	return n.send(&api.SessionRequest{Msg: &api.SessionRequest_Status{Status: &api.TaskStatusReport{Updates: updates}}})
}

// next returns the next assignments message.
func (n *nodeStream) next(t *testing.T) *api.Assignments {
	t.Helper()
	select {
	case a := <-n.msgs:
		return a
	case err := <-n.end:
		t.Fatalf("session ended (%v) before the next assignments came", err)
	case <-time.After(10 * time.Second):
		t.Fatal("no assignments within 10s")
	}
	return nil
}

// ended returns the error the session ended with.
func (n *nodeStream) ended(t *testing.T) error {
	t.Helper()
	for {
		select {
		case <-n.msgs:
		case err := <-n.end:
			return err
		case <-time.After(10 * time.Second):
			t.Fatal("session did not end within 10s")
			return nil
		}
	}
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

func (d *Dispatcher) current() *term {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cur
}
