package node

import (
	"context"
	"net"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/internal/runtime"
	"github.com/warren-project/warren/internal/runtime/fake"
	"github.com/warren-project/warren/internal/testutil"
	"github.com/warren-project/warren/internal/worker"
)

// fakeManager is a manager's dispatcher as a node sees it: a follower
// refuses sessions as Warren's does (Unavailable); a leader accepts them,
// names the managers and assigns the node its task.
type fakeManager struct {
	api.UnimplementedDispatcherServer
	leader   bool
	managers []string
	task     *api.Task
	srv      *grpc.Server
	addr     string

	mu             sync.Mutex
	refused, opens int // sessions refused, sessions accepted
	live           int // sessions open now
}

func startFakeManager(t *testing.T, addr string, m *fakeManager) *fakeManager {
	t.Helper()
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	m.srv, m.addr = grpc.NewServer(), lis.Addr().String()
	api.RegisterDispatcherServer(m.srv, m)
	go func() { _ = m.srv.Serve(lis) }()
	t.Cleanup(m.srv.Stop)
	return m
}

func (m *fakeManager) Session(stream api.Dispatcher_SessionServer) error {
	if !m.leader {
		m.count(&m.refused, 1)
		return status.Error(codes.Unavailable, "dispatcher is not running")
	}
	if _, err := stream.Recv(); err != nil { // the registration
		return err
	}
	m.mu.Lock()
	info := &api.SessionInfo{SessionId: "s", NodeId: "n1", HeartbeatPeriod: durationpb.New(50 * time.Millisecond), Managers: m.managers}
	m.mu.Unlock()
	asg := &api.Assignments{Type: api.Assignments_TYPE_COMPLETE, Sequence: 1, Tasks: []*api.Task{m.task}}
	for _, msg := range []*api.SessionMessage{
		{Msg: &api.SessionMessage_Session{Session: info}},
		{Msg: &api.SessionMessage_Assignments{Assignments: asg}},
	} {
		if err := stream.Send(msg); err != nil {
			return err
		}
	}
	m.count(&m.opens, 1)
	m.count(&m.live, 1)
	defer m.count(&m.live, -1)
	for {
		if _, err := stream.Recv(); err != nil {
			return err
		}
	}
}

func (m *fakeManager) setManagers(addrs ...string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.managers = addrs
}

func (m *fakeManager) count(n *int, d int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	*n += d
}

func (m *fakeManager) get(n *int) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return *n
}

// A node's agent, through the pool, finds the leader past a follower that
// refuses it, and when the leader goes, finds the next one: a manager it
// learnt of only from the leader's session info. Its container runs on,
// untouched, across the failover.
func TestAgentFailsOverBetweenManagers(t *testing.T) {
	addr3 := testutil.FreeAddr(t) // the third manager starts later
	task := &api.Task{
		Id: "t1", Meta: &api.Meta{}, NodeId: "n1", DesiredState: api.TaskState_TASK_STATE_RUNNING,
		Status: &api.TaskStatus{State: api.TaskState_TASK_STATE_ASSIGNED},
		Spec:   &api.TaskSpec{Container: &api.ContainerSpec{Image: "busybox"}},
	}
	follower := startFakeManager(t, "127.0.0.1:0", &fakeManager{task: task})
	leader := startFakeManager(t, "127.0.0.1:0", &fakeManager{leader: true, task: task})
	addr1, addr2 := follower.addr, leader.addr
	leader.setManagers(addr1, addr2, addr3)

	file := filepath.Join(t.TempDir(), ManagersFile)
	dial := func(addr string) (*grpc.ClientConn, error) {
		return grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	}
	// As a node configured with the follower's address that joined
	// knowing the leader's.
	pool, err := newPool([]string{addr1, addr2}, file, dial, quiet)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	rt := fake.New()
	rt.AddImage("busybox")
	startAgent(t, worker.Config{
		NodeID: "n1", Executor: rt, Logger: quiet, Dial: pool.Dial, OnManagers: pool.Learn,
		ReconnectMin: 5 * time.Millisecond, ReconnectMax: 50 * time.Millisecond,
	})

	testutil.WaitFor(t, 10*time.Second, "a session on the leader", func() bool { return leader.get(&leader.live) == 1 })
	if follower.get(&follower.refused) == 0 {
		t.Fatal("the agent never tried the follower, the first manager it knew")
	}
	ctr := waitRunning(t, rt, "t1")
	if got, want := pool.Addrs(), []string{addr1, addr2, addr3}; !slices.Equal(got, want) {
		t.Fatalf("pool knows %q, want %q (learnt from the session)", got, want)
	}

	// The leader dies; a third manager, known only from its session info,
	// takes over, naming the managers left.
	refused := follower.get(&follower.refused)
	leader.srv.Stop()
	// Past the third manager while it is not up yet, round to the follower.
	testutil.WaitFor(t, 10*time.Second, "the follower tried again after the leader died", func() bool {
		return follower.get(&follower.refused) > refused
	})
	third := startFakeManager(t, addr3, &fakeManager{leader: true, task: task, managers: []string{addr3, addr1}})
	testutil.WaitFor(t, 10*time.Second, "a session on the third manager", func() bool { return third.get(&third.live) == 1 })
	testutil.WaitFor(t, 10*time.Second, "the pool and its file updated to the managers left", func() bool {
		want := []string{addr1, addr3}
		return slices.Equal(pool.Addrs(), want) && slices.Equal(loadManagers(file, quiet), want)
	})
	if after := waitRunning(t, rt, "t1"); after.Pid != ctr.Pid {
		t.Fatalf("container pid %d after the failover, was %d: it was restarted", after.Pid, ctr.Pid)
	}
	if n := leader.get(&leader.opens) + third.get(&third.opens); n != 2 {
		t.Fatalf("%d sessions accepted, want 2 (one per leader)", n)
	}
}

func waitRunning(t *testing.T, rt *fake.Executor, id string) runtime.Container {
	t.Helper()
	var ctr runtime.Container
	testutil.WaitFor(t, 10*time.Second, "container "+id+" running", func() bool {
		c, err := rt.Inspect(context.Background(), id)
		ctr = c
		return err == nil && c.State == runtime.StateRunning
	})
	return ctr
}

// startAgent runs an agent until the end of the test.
func startAgent(t *testing.T, cfg worker.Config) {
	t.Helper()
	a, err := worker.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- a.Run(context.Background()) }()
	t.Cleanup(func() {
		a.Stop()
		if err := <-done; err != nil {
			t.Errorf("agent Run: %v", err)
		}
	})
}
