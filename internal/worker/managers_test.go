package worker_test

import (
	"context"
	"net"
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
	"github.com/warren-project/warren/internal/runtime/fake"
)

// scriptedDispatcher answers session i with managers[i] in its session info,
// and ends it once the agent's first heartbeat shows the agent got past the
// start of the session; the last session stays open.
type scriptedDispatcher struct {
	api.UnimplementedDispatcherServer
	managers [][]string

	mu       sync.Mutex
	sessions int // sessions that got a heartbeat
}

func (d *scriptedDispatcher) Session(stream api.Dispatcher_SessionServer) error {
	if _, err := stream.Recv(); err != nil { // the registration
		return err
	}
	d.mu.Lock()
	i := d.sessions
	d.mu.Unlock()
	if i >= len(d.managers) {
		return status.Error(codes.FailedPrecondition, "the script has no more sessions")
	}
	info := &api.SessionInfo{SessionId: "s", NodeId: "n1", HeartbeatPeriod: durationpb.New(5 * time.Millisecond), Managers: d.managers[i]}
	if err := stream.Send(&api.SessionMessage{Msg: &api.SessionMessage_Session{Session: info}}); err != nil {
		return err
	}
	for {
		msg, err := stream.Recv()
		if err != nil {
			return err
		}
		if msg.GetHeartbeat() == nil {
			continue
		}
		d.mu.Lock()
		d.sessions++
		last := d.sessions == len(d.managers)
		d.mu.Unlock()
		if !last {
			return status.Error(codes.Unavailable, "session over, as scripted")
		}
		<-stream.Context().Done()
		return nil
	}
}

func (d *scriptedDispatcher) done() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.sessions == len(d.managers)
}

// serveDispatcher serves d on loopback and returns a connection to it.
func serveDispatcher(t *testing.T, d api.DispatcherServer) *grpc.ClientConn {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	api.RegisterDispatcherServer(srv, d)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

func TestOnManagersGetsEachSessionsManagers(t *testing.T) {
	disp := &scriptedDispatcher{managers: [][]string{{"m1:2377", "m2:2377"}, nil, {"m3:2377"}}}
	conn := serveDispatcher(t, disp)

	var mu sync.Mutex
	var got [][]string
	cfg := agentConfig("n1", fake.New(), func(context.Context) (api.DispatcherClient, error) {
		return api.NewDispatcherClient(conn), nil
	})
	cfg.OnManagers = func(addrs []string) {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, addrs)
	}
	c := &cluster{t: t}
	c.startAgent(cfg)
	waitFor(t, "three sessions, each with a heartbeat", disp.done)

	mu.Lock()
	defer mu.Unlock()
	want := [][]string{{"m1:2377", "m2:2377"}, {"m3:2377"}}
	if !slices.EqualFunc(got, want, slices.Equal) {
		t.Fatalf("OnManagers got %q, want %q (a session naming no managers passes nothing)", got, want)
	}
}

// roleDispatcher names the worker role at the start of its session and,
// once the agent heartbeats, the manager role: a promotion.
type roleDispatcher struct {
	api.UnimplementedDispatcherServer
}

func (roleDispatcher) Session(stream api.Dispatcher_SessionServer) error {
	if _, err := stream.Recv(); err != nil {
		return err
	}
	info := func(r api.NodeRole) *api.SessionMessage {
		return &api.SessionMessage{Msg: &api.SessionMessage_Session{Session: &api.SessionInfo{
			SessionId: "s", NodeId: "n1", HeartbeatPeriod: durationpb.New(5 * time.Millisecond), Role: r,
		}}}
	}
	if err := stream.Send(info(api.NodeRole_NODE_ROLE_WORKER)); err != nil {
		return err
	}
	for {
		msg, err := stream.Recv()
		if err != nil {
			return err
		}
		if msg.GetHeartbeat() != nil {
			if err := stream.Send(info(api.NodeRole_NODE_ROLE_MANAGER)); err != nil {
				return err
			}
			<-stream.Context().Done()
			return nil
		}
	}
}

func TestOnRoleGetsTheRoleAndItsChange(t *testing.T) {
	conn := serveDispatcher(t, roleDispatcher{})

	var mu sync.Mutex
	var got []api.NodeRole
	cfg := agentConfig("n1", fake.New(), func(context.Context) (api.DispatcherClient, error) {
		return api.NewDispatcherClient(conn), nil
	})
	cfg.OnRole = func(r api.NodeRole) {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, r)
	}
	c := &cluster{t: t}
	c.startAgent(cfg)
	want := []api.NodeRole{api.NodeRole_NODE_ROLE_WORKER, api.NodeRole_NODE_ROLE_MANAGER}
	waitFor(t, "the worker role, then the manager role", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return slices.Equal(got, want)
	})
}
