package daemon_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/internal/daemon"
	"github.com/warren-project/warren/internal/manager"
	"github.com/warren-project/warren/internal/network/fakenet"
	"github.com/warren-project/warren/internal/node"
	"github.com/warren-project/warren/internal/runtime"
	"github.com/warren-project/warren/internal/runtime/fake"
	"github.com/warren-project/warren/internal/security/ca"
	"github.com/warren-project/warren/internal/testutil"
	"github.com/warren-project/warren/pkg/client"
)

const image = "busybox:latest"

// host is one machine of the test cluster: a daemon that may switch role.
type host struct {
	t    *testing.T
	name string
	cfg  daemon.Config
	exec *fake.Executor

	mu     sync.Mutex
	roles  []string // the role of each start, in order
	parts  []any    // what each start made: *manager.Manager or *node.Node
	cancel context.CancelFunc
	done   chan error
}

func newHost(t *testing.T, name, firstRole string) *host {
	t.Helper()
	dir, err := os.MkdirTemp("/tmp", "wrd")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	exec := fake.New()
	exec.AddImage(image)
	data := filepath.Join(dir, "data")
	h := &host{t: t, name: name, exec: exec}
	h.cfg = daemon.Config{
		FirstRole: firstRole,
		Manager: manager.Config{
			DataDir: data, SocketPath: filepath.Join(dir, "w.sock"),
			ListenAddr: testutil.FreeAddr(t), RaftAddr: testutil.FreeAddr(t),
			Executor: exec, Network: fakenet.New(), HeartbeatPeriod: time.Second,
			RaftHeartbeat: 100 * time.Millisecond, RaftElection: 100 * time.Millisecond, RaftLeaderLease: 50 * time.Millisecond,
		},
		Node: node.Config{DataDir: data, Executor: exec, Network: fakenet.New(), Description: &api.NodeDescription{Hostname: name}},
		OnStart: func(role string, part any) {
			h.mu.Lock()
			defer h.mu.Unlock()
			h.roles, h.parts = append(h.roles, role), append(h.parts, part)
		},
	}
	return h
}

// start runs the daemon until the test ends or stop.
func (h *host) start() {
	h.mu.Lock()
	h.roles, h.parts = nil, nil // waitRole waits for this run's starts
	h.mu.Unlock()
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel, h.done = cancel, make(chan error, 1)
	go func() { h.done <- daemon.Run(ctx, h.cfg) }()
	h.t.Cleanup(h.stop)
}

func (h *host) stop() {
	if h.cancel == nil {
		return
	}
	h.cancel()
	if err := <-h.done; err != nil {
		h.t.Errorf("host %s stopped with %v", h.name, err)
	}
	h.cancel = nil
}

// waitRole waits until the host's latest start is role, and ready.
func (h *host) waitRole(role string) {
	h.t.Helper()
	testutil.WaitFor(h.t, 60*time.Second, h.name+" running as a ready "+role, func() bool {
		h.mu.Lock()
		defer h.mu.Unlock()
		if len(h.roles) == 0 || h.roles[len(h.roles)-1] != role {
			return false
		}
		var ready <-chan struct{}
		switch p := h.parts[len(h.parts)-1].(type) {
		case *manager.Manager:
			ready = p.Ready()
		case *node.Node:
			ready = p.Ready()
		}
		select {
		case <-ready:
			return true
		default:
			return false
		}
	})
}

func (h *host) manager() *manager.Manager {
	h.mu.Lock()
	defer h.mu.Unlock()
	m, _ := h.parts[len(h.parts)-1].(*manager.Manager)
	return m
}

func (h *host) client() *client.Client {
	h.t.Helper()
	c, err := client.New("unix://" + h.cfg.Manager.SocketPath)
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { c.Close() })
	return c
}

// containers are the host's running containers, by ID, with their start.
func (h *host) containers() map[string]time.Time {
	h.t.Helper()
	cs, err := h.exec.List(context.Background(), nil)
	if err != nil {
		h.t.Fatal(err)
	}
	out := map[string]time.Time{}
	for _, c := range cs {
		if c.State == runtime.StateRunning {
			out[c.ID] = c.StartedAt
		}
	}
	return out
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func setRole(t *testing.T, c *client.Client, nodeID string, role api.NodeRole) error {
	t.Helper()
	got, err := c.GetNode(ctxT(t), &api.GetNodeRequest{Node: nodeID})
	if err != nil {
		t.Fatal(err)
	}
	sp := got.GetNode().GetSpec()
	sp.Role = role
	_, err = c.UpdateNode(ctxT(t), &api.UpdateNodeRequest{Node: nodeID, Spec: sp})
	return err
}

// voters are the Raft members a manager sees.
func voters(t *testing.T, c *client.Client) []string {
	t.Helper()
	info, err := c.GetClusterInfo(ctxT(t), &api.GetClusterInfoRequest{})
	if err != nil {
		return nil
	}
	var ids []string
	for _, s := range info.GetRaft().GetServers() {
		ids = append(ids, s.GetId())
	}
	slices.Sort(ids)
	return ids
}

func nodeIDOf(t *testing.T, c *client.Client, hostname string) string {
	t.Helper()
	resp, err := c.ListNodes(ctxT(t), &api.ListNodesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range resp.GetNodes() {
		if n.GetDescription().GetHostname() == hostname {
			return n.GetId()
		}
	}
	t.Fatalf("no node %s", hostname)
	return ""
}

// Two workers are promoted: each becomes a Raft voter serving the API,
// without restarting its containers. With one manager of three down, a
// demotion that would break quorum is refused and changes nothing; the
// one down may be demoted, and restarted it goes on as a worker. Then the
// founder, which leads, is demoted: it hands leadership over, leaves Raft
// and goes on as a worker, its containers untouched, and the last manager
// keeps accepting writes.
func TestPromoteAndDemote(t *testing.T) {
	a := newHost(t, "a", ca.RoleManager)
	a.start()
	a.waitRole(ca.RoleManager)
	ac := a.client()
	tok, err := ac.GetJoinToken(ctxT(t), &api.GetJoinTokenRequest{Role: api.NodeRole_NODE_ROLE_WORKER})
	if err != nil {
		t.Fatal(err)
	}
	workers := []*host{newHost(t, "w", ca.RoleWorker), newHost(t, "x", ca.RoleWorker)}
	for _, w := range workers {
		w.cfg.Node.ManagerAddr, w.cfg.Node.Token = tok.GetManagerAddrs()[0], tok.GetToken()
		w.cfg.Manager.JoinAddr = tok.GetManagerAddrs()[0]
		w.start()
		w.waitRole(ca.RoleWorker)
	}
	_, err = ac.CreateService(ctxT(t), &api.CreateServiceRequest{Spec: &api.ServiceSpec{
		Name: "web", Mode: &api.ServiceSpec_Replicated{Replicated: &api.ReplicatedService{Replicas: 6}},
		Task: &api.TaskSpec{Container: &api.ContainerSpec{Image: image, Args: []string{"sleep", "1000"}}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	before := map[string]map[string]time.Time{}
	for _, h := range []*host{a, workers[0], workers[1]} {
		testutil.WaitFor(t, 30*time.Second, "two tasks running on "+h.name, func() bool { return len(h.containers()) == 2 })
		before[h.name] = h.containers()
	}

	for _, w := range workers {
		if err := setRole(t, ac, nodeIDOf(t, ac, w.name), api.NodeRole_NODE_ROLE_MANAGER); err != nil {
			t.Fatalf("promote %s: %v", w.name, err)
		}
		w.waitRole(ca.RoleManager)
		id := w.manager().NodeID()
		testutil.WaitFor(t, 30*time.Second, w.name+" a Raft voter", func() bool { return slices.Contains(voters(t, ac), id) })
		// It serves the API, with the whole state.
		got, err := w.client().GetService(ctxT(t), &api.GetServiceRequest{Service: "web"})
		if err != nil || got.GetService().GetSpec().GetName() != "web" {
			t.Fatalf("the service through promoted %s: %v, %v", w.name, got, err)
		}
	}
	if got := len(voters(t, ac)); got != 3 {
		t.Fatalf("%d Raft voters after two promotions, want 3", got)
	}

	// One manager down: demoting another would leave two voters of which
	// one answers. Refused, with the reason, and nothing changes.
	w, x := workers[0], workers[1]
	wID, xID := w.manager().NodeID(), x.manager().NodeID()
	xReachable := func(c *client.Client) bool {
		info, err := c.GetClusterInfo(ctxT(t), &api.GetClusterInfoRequest{})
		for _, s := range info.GetRaft().GetServers() {
			if s.GetId() == xID {
				return err == nil && s.GetReachable()
			}
		}
		return false
	}
	testutil.WaitFor(t, 30*time.Second, "a to see x reachable", func() bool { return xReachable(ac) })
	x.stop()
	testutil.WaitFor(t, 30*time.Second, "a to see x unreachable", func() bool { return !xReachable(ac) })
	err = setRole(t, ac, wID, api.NodeRole_NODE_ROLE_WORKER)
	if client.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "quorum") {
		t.Fatalf("demoting w with x down: %v, want FailedPrecondition explaining quorum", err)
	}
	if got, _ := ac.GetNode(ctxT(t), &api.GetNodeRequest{Node: wID}); got.GetNode().GetSpec().GetRole() != api.NodeRole_NODE_ROLE_MANAGER {
		t.Fatalf("a refused demotion changed w's role to %v", got.GetNode().GetSpec().GetRole())
	}

	// x, down, may be demoted: the two others keep quorum. Restarted, it
	// hears from no leader, learns from the others that it is no longer a
	// manager, and goes on as a worker.
	if err := setRole(t, ac, xID, api.NodeRole_NODE_ROLE_WORKER); err != nil {
		t.Fatalf("demote x while it is down: %v", err)
	}
	testutil.WaitFor(t, 30*time.Second, "x out of Raft", func() bool { return !slices.Contains(voters(t, ac), xID) })
	x.start()
	x.waitRole(ca.RoleWorker)
	if _, err := os.Stat(filepath.Join(x.cfg.Node.DataDir, "raft")); !os.IsNotExist(err) {
		t.Errorf("x, demoted while away, still holds Raft state (%v)", err)
	}
	wc := w.client()
	// The founder leads; demoted, it hands over and leaves.
	aID := a.manager().NodeID()
	if err := setRole(t, wc, aID, api.NodeRole_NODE_ROLE_WORKER); err != nil {
		t.Fatalf("demote a: %v", err)
	}
	a.waitRole(ca.RoleWorker)
	testutil.WaitFor(t, 30*time.Second, "a out of Raft", func() bool {
		v := voters(t, wc)
		return len(v) == 1 && v[0] == wID
	})
	if _, err := wc.CreateService(ctxT(t), &api.CreateServiceRequest{Spec: &api.ServiceSpec{
		Name: "after", Task: &api.TaskSpec{Container: &api.ContainerSpec{Image: image, Args: []string{"sleep", "1000"}}},
	}}); err != nil {
		t.Fatalf("a write after the founder left: %v", err)
	}
	testutil.WaitFor(t, 30*time.Second, "a's session as a worker", func() bool {
		got, err := wc.GetNode(ctxT(t), &api.GetNodeRequest{Node: aID})
		return err == nil && !got.GetNode().IsManager() && got.GetNode().GetStatus().GetState() == api.NodeState_NODE_STATE_READY
	})
	// x was down long enough for its tasks to move; a and w never stopped.
	for _, h := range []*host{a, w} {
		now := h.containers()
		for id, started := range before[h.name] {
			if s, ok := now[id]; !ok || !s.Equal(started) {
				t.Errorf("%s: container %s was restarted or stopped by the role changes", h.name, id)
			}
		}
	}
	if _, err := os.Stat(filepath.Join(a.cfg.Node.DataDir, "ca", "ca.key")); !os.IsNotExist(err) {
		t.Errorf("the demoted founder still holds the CA key (%v)", err)
	}
}
