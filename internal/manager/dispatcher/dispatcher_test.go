package dispatcher

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/internal/state"
)

func TestSessionRefused(t *testing.T) {
	cfg := testConfig()
	cfg.Authorize = func(_ context.Context, nodeID string) error {
		if nodeID == "n2" {
			return errors.New("certificate names another node")
		}
		return nil
	}
	e := newTestEnv(t, cfg)
	cases := []struct {
		name    string
		first   *api.SessionRequest
		code    codes.Code
		message string
	}{
		{"unknown node", registration("nope"), codes.NotFound, "node nope is not part of this cluster"},
		{"heartbeat first", &api.SessionRequest{Msg: &api.SessionRequest_Heartbeat{Heartbeat: &api.Heartbeat{}}}, codes.InvalidArgument, "must be a registration"},
		{"no node ID", registration(""), codes.InvalidArgument, "without a node ID"},
		{"not authorized", registration("n2"), codes.PermissionDenied, "certificate names another node"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			stream, err := e.client.Session(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if err := stream.Send(c.first); err != nil {
				t.Fatal(err)
			}
			_, err = stream.Recv()
			if status.Code(err) != c.code || !strings.Contains(err.Error(), c.message) {
				t.Fatalf("session error = %v, want %v containing %q", err, c.code, c.message)
			}
		})
	}
}

func registration(nodeID string) *api.SessionRequest {
	return &api.SessionRequest{Msg: &api.SessionRequest_Register{Register: &api.RegisterRequest{NodeId: nodeID}}}
}

func TestRegisterMarksReadyOnce(t *testing.T) {
	e := newTestEnv(t, testConfig())
	reg := &api.RegisterRequest{NodeId: "n1", Addr: "192.0.2.7", Description: &api.NodeDescription{Hostname: "edge-1"}}
	n, err := e.connect(t, reg)
	if err != nil {
		t.Fatal(err)
	}
	if n.info.GetNodeId() != "n1" || n.info.GetSessionId() == "" || n.info.GetHeartbeatPeriod().AsDuration() != 50*time.Millisecond {
		t.Fatalf("session info = %v", n.info)
	}
	node := e.node("n1")
	if node.GetStatus().GetState() != api.NodeState_NODE_STATE_READY || node.GetStatus().GetAddr() != "192.0.2.7" || node.GetDescription().GetHostname() != "edge-1" {
		t.Fatalf("node after register = %v", node)
	}

	// A quick reconnect with the same description writes nothing.
	n.cancel()
	n.ended(t)
	before := e.store.Index()
	if _, err := e.connect(t, reg); err != nil {
		t.Fatal(err)
	}
	if after := e.store.Index(); after != before {
		t.Fatalf("store index moved from %d to %d on an unchanged registration", before, after)
	}
}

func TestSilentNodeGoesDown(t *testing.T) {
	cfg := testConfig()
	cfg.HeartbeatPeriod, cfg.NodeDownAfter = 20*time.Millisecond, 200*time.Millisecond
	e := newTestEnv(t, cfg)
	n := e.mustConnect(t, "n1")
	// No heartbeats: the node goes down and its session ends.
	waitFor(t, "node n1 DOWN", func() bool { return e.node("n1").GetStatus().GetState() == api.NodeState_NODE_STATE_DOWN })
	if msg := e.node("n1").GetStatus().GetMessage(); msg != "no heartbeat for 200ms" {
		t.Fatalf("down message = %q", msg)
	}
	if err := n.ended(t); status.Code(err) != codes.Unavailable {
		t.Fatalf("session of a silent node ended with %v, want Unavailable", err)
	}
	// It comes back when it registers again.
	e.mustConnect(t, "n1")
	if st := e.node("n1").GetStatus().GetState(); st != api.NodeState_NODE_STATE_READY {
		t.Fatalf("node after re-register = %v", st)
	}
}

func TestHeartbeatsKeepNodeReadyAcrossReconnect(t *testing.T) {
	cfg := testConfig()
	cfg.HeartbeatPeriod, cfg.NodeDownAfter = 20*time.Millisecond, 300*time.Millisecond
	e := newTestEnv(t, cfg)
	sub := e.store.Watch(func(ev state.Event) bool {
		n, ok := ev.Object.(*api.Node)
		return ok && n.GetStatus().GetState() == api.NodeState_NODE_STATE_DOWN
	})
	defer sub.Cancel()

	beatFor := func(n *nodeStream, d time.Duration) {
		t.Helper()
		tick := time.NewTicker(cfg.HeartbeatPeriod)
		defer tick.Stop()
		for end := time.Now().Add(d); time.Now().Before(end); <-tick.C {
			if err := n.heartbeat(); err != nil {
				t.Fatalf("heartbeat: %v", err)
			}
		}
	}
	n := e.mustConnect(t, "n1")
	beatFor(n, 2*cfg.NodeDownAfter)
	// The session closes; a quick reconnect must not make the node flap.
	n.cancel()
	n.ended(t)
	if st := e.node("n1").GetStatus().GetState(); st != api.NodeState_NODE_STATE_READY {
		t.Fatalf("node right after its session closed = %v, want READY until the deadline", st)
	}
	beatFor(e.mustConnect(t, "n1"), 2*cfg.NodeDownAfter)
	select {
	case ev := <-sub.C:
		t.Fatalf("node went down while heartbeating: %v", ev.Object)
	default:
	}
	// Closed for good: down after the deadline.
	e.d.endSession("n1", context.Canceled)
	waitFor(t, "node n1 DOWN after its session closed", func() bool {
		return e.node("n1").GetStatus().GetState() == api.NodeState_NODE_STATE_DOWN
	})
}

func TestKnownReadyNodeExpiresWithoutSession(t *testing.T) {
	cfg := testConfig()
	cfg.NodeDownAfter = 100 * time.Millisecond
	store := state.NewTestStore()
	if err := store.Update(context.Background(), func(tx state.Tx) error {
		return tx.Create(&api.Node{Id: "n1", Meta: &api.Meta{}, Status: &api.NodeStatus{State: api.NodeState_NODE_STATE_READY}})
	}); err != nil {
		t.Fatal(err)
	}
	d := New(store, cfg)
	go func() { _ = d.Run(context.Background()) }()
	defer d.Stop()
	waitFor(t, "a READY node that never connects to go DOWN", func() bool {
		var st api.NodeState
		store.View(func(tx state.ReadTx) { st = tx.GetNode("n1").GetStatus().GetState() })
		return st == api.NodeState_NODE_STATE_DOWN
	})
}

func TestSecondSessionReplacesFirst(t *testing.T) {
	e := newTestEnv(t, testConfig())
	first := e.mustConnect(t, "n1")
	first.next(t) // COMPLETE
	second := e.mustConnect(t, "n1")
	second.next(t)
	if err := first.ended(t); status.Code(err) != codes.Aborted {
		t.Fatalf("first session ended with %v, want Aborted", err)
	}
	// The second one carries on.
	e.update(t, func(tx state.Tx) error { return tx.Create(newTask("t1", "n1", api.TaskState_TASK_STATE_ASSIGNED)) })
	if a := second.next(t); len(a.GetTasks()) != 1 || a.GetTasks()[0].GetId() != "t1" {
		t.Fatalf("second session got %v, want t1", a)
	}
	if err := second.heartbeat(); err != nil {
		t.Fatalf("heartbeat on the second session: %v", err)
	}
}

func TestStopEndsSessions(t *testing.T) {
	e := newTestEnv(t, testConfig())
	n := e.mustConnect(t, "n1")
	// A stream that never registers must not hold Stop up.
	silent, err := e.client.Session(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	stopped := make(chan struct{})
	go func() {
		e.d.Stop()
		close(stopped)
	}()
	select {
	case <-stopped:
	case <-time.After(10 * time.Second):
		t.Fatal("Stop did not return within 10s")
	}
	if _, err := silent.Recv(); status.Code(err) != codes.Unavailable {
		t.Fatalf("unregistered stream ended with %v on Stop, want Unavailable", err)
	}
	if err := n.ended(t); status.Code(err) != codes.Unavailable {
		t.Fatalf("session ended with %v on Stop, want Unavailable", err)
	}
	if _, err := e.connect(t, &api.RegisterRequest{NodeId: "n1"}); status.Code(err) != codes.Unavailable {
		t.Fatalf("session after Stop = %v, want Unavailable", err)
	}

	// A manager that leads again runs the same dispatcher again.
	again := make(chan error, 1)
	go func() { again <- e.d.Run(context.Background()) }()
	waitFor(t, "the dispatcher running again", func() bool { return e.d.current() != nil })
	n = e.mustConnect(t, "n1")
	if a := n.next(t); a.GetType() != api.Assignments_TYPE_COMPLETE {
		t.Fatalf("first assignments of the second run = %v", a)
	}
	e.d.Stop()
	if err := <-again; err != nil {
		t.Fatalf("second Run: %v", err)
	}
}

// A session names the node's current role, and names it again when the
// role changes: that is how a promoted worker learns to become a manager,
// and a demoted manager a worker. A change of the asked-for role alone
// (spec.role, before the leader moved the node) says nothing.
func TestSessionSendsRoleChanges(t *testing.T) {
	e := newTestEnv(t, testConfig())
	e.update(t, func(tx state.Tx) error {
		n := tx.GetNode("n1")
		n.Spec, n.Role = &api.NodeSpec{Role: api.NodeRole_NODE_ROLE_WORKER}, api.NodeRole_NODE_ROLE_WORKER
		return tx.Update(n)
	})
	s := e.mustConnect(t, "n1")
	if got := s.info.GetRole(); got != api.NodeRole_NODE_ROLE_WORKER {
		t.Fatalf("first session info names role %v, want worker", got)
	}
	setRole := func(spec, current api.NodeRole) {
		e.update(t, func(tx state.Tx) error {
			n := tx.GetNode("n1")
			n.Spec.Role, n.Role = spec, current
			return tx.Update(n)
		})
	}
	setRole(api.NodeRole_NODE_ROLE_MANAGER, api.NodeRole_NODE_ROLE_WORKER)
	setRole(api.NodeRole_NODE_ROLE_MANAGER, api.NodeRole_NODE_ROLE_MANAGER)
	select {
	case info := <-s.infos:
		if info.GetRole() != api.NodeRole_NODE_ROLE_MANAGER || info.GetSessionId() != s.info.GetSessionId() {
			t.Fatalf("session info after the promotion = %v, want role manager in session %s", info, s.info.GetSessionId())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no session info within 10s of the promotion")
	}
	select {
	case info := <-s.infos:
		t.Fatalf("a second session info (%v) for one role change", info)
	default:
	}
}
