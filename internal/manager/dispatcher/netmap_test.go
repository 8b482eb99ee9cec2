package dispatcher

import (
	"testing"
	"time"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/internal/state"
)

// waitMap reads maps from the session until one satisfies cond.
func (n *nodeStream) waitMap(t *testing.T, what string, cond func(*api.NetworkMap) bool) *api.NetworkMap {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case m := <-n.maps:
			if cond(m) {
				return m
			}
		case err := <-n.end:
			t.Fatalf("session ended (%v) before %s", err, what)
		case <-deadline:
			t.Fatalf("no network map where %s within 10s", what)
		}
	}
}

func backends(m *api.NetworkMap, service string) []string {
	var out []string
	for _, s := range m.GetServices() {
		if s.GetName() == service {
			for _, b := range s.GetBackends() {
				out = append(out, b.GetTaskId()+"@"+b.GetAddress())
			}
		}
	}
	return out
}

// Registering with a WireGuard key gives the node a block, and every node
// gets a map with the mesh and each service's running backends; a task told
// to stop leaves the map before anything else happens to it.
func TestNetworkMapFollowsState(t *testing.T) {
	e := newTestEnv(t, testConfig())
	reg := func(id, key string) *api.RegisterRequest {
		return &api.RegisterRequest{NodeId: id, Addr: "10.0.0.1", Network: &api.NodeNetwork{WireguardPublicKey: key, WireguardEndpoint: "192.0.2.1:51820"}}
	}
	s1, err := e.connect(t, reg("n1", "key1"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.connect(t, reg("n2", "key2")); err != nil {
		t.Fatal(err)
	}
	m := s1.waitMap(t, "both nodes are in the mesh", func(m *api.NetworkMap) bool { return len(m.GetNodes()) == 2 })
	if b1, b2 := m.GetNodes()[0].GetBlock(), m.GetNodes()[1].GetBlock(); b1 == "" || b1 == b2 {
		t.Fatalf("blocks %q and %q: want two distinct blocks", b1, b2)
	}
	if e.node("n1").GetNetwork().GetWireguardEndpoint() != "192.0.2.1:51820" {
		t.Fatalf("endpoint not stored: %v", e.node("n1").GetNetwork())
	}

	e.update(t, func(tx state.Tx) error {
		svc := &api.Service{Id: "s1", Meta: &api.Meta{}, Spec: &api.ServiceSpec{Name: "web"}, Endpoint: &api.Endpoint{Vip: "10.201.0.1"}}
		if err := tx.Create(svc); err != nil {
			return err
		}
		for _, id := range []string{"t1", "t2"} {
			tk := newTask(id, "n2", api.TaskState_TASK_STATE_RUNNING)
			tk.Address = "10.200.1." + id[1:]
			if err := tx.Create(tk); err != nil {
				return err
			}
		}
		starting := newTask("t3", "n2", api.TaskState_TASK_STATE_STARTING)
		starting.Address = "10.200.1.3"
		if err := tx.Create(starting); err != nil {
			return err
		}
		unhealthy := newTask("t4", "n2", api.TaskState_TASK_STATE_RUNNING)
		unhealthy.Address = "10.200.1.4"
		unhealthy.Status.Health = &api.Health{State: api.Health_STATE_UNHEALTHY}
		return tx.Create(unhealthy)
	})
	s1.waitMap(t, "web has the two running, not unhealthy tasks", func(m *api.NetworkMap) bool {
		b := backends(m, "web")
		return len(b) == 2 && b[0] == "t1@10.200.1.1" && b[1] == "t2@10.200.1.2"
	})
	e.update(t, func(tx state.Tx) error {
		tk := tx.GetTask("t1")
		tk.DesiredState = api.TaskState_TASK_STATE_SHUTDOWN
		return tx.Update(tk)
	})
	s1.waitMap(t, "t1 left web", func(m *api.NetworkMap) bool {
		b := backends(m, "web")
		return len(b) == 1 && b[0] == "t2@10.200.1.2"
	})

	// A node that connects later gets the current map first.
	s1b, err := e.connect(t, reg("n1", "key1"))
	if err != nil {
		t.Fatal(err)
	}
	s1b.waitMap(t, "a new session starts with the current map", func(m *api.NetworkMap) bool {
		return len(backends(m, "web")) == 1 && len(m.GetNodes()) == 2
	})
}

// Only changes the map shows cost a rebuild: a task's steps before it
// runs, and a node's status, do not; a task becoming a backend, leaving,
// moving, and a node's new WireGuard key do.
func TestConcernsNetworkFiltersChanges(t *testing.T) {
	task := func(st api.TaskState, addr string) *api.Task {
		return &api.Task{Id: "t", NodeId: "n1", Address: addr, DesiredState: api.TaskState_TASK_STATE_RUNNING,
			Status: &api.TaskStatus{State: st}}
	}
	running := task(api.TaskState_TASK_STATE_RUNNING, "10.200.0.2")
	moved := task(api.TaskState_TASK_STATE_RUNNING, "10.200.0.3")
	node := func(key string, msg string) *api.Node {
		return &api.Node{Id: "n1", Network: &api.NodeNetwork{Block: "10.200.0.0/24", WireguardPublicKey: key},
			Status: &api.NodeStatus{Message: msg}}
	}
	cases := []struct {
		name string
		ev   state.Event
		want bool
	}{
		{"task pulling → starting", state.Event{Kind: state.EventUpdate, Object: task(api.TaskState_TASK_STATE_STARTING, "10.200.0.2"), Old: task(api.TaskState_TASK_STATE_PREPARING, "10.200.0.2")}, false},
		{"task starts running", state.Event{Kind: state.EventUpdate, Object: running, Old: task(api.TaskState_TASK_STATE_STARTING, "10.200.0.2")}, true},
		{"running task's address changes", state.Event{Kind: state.EventUpdate, Object: moved, Old: running}, true},
		{"running task deleted", state.Event{Kind: state.EventDelete, Object: running}, true},
		{"pending task created", state.Event{Kind: state.EventCreate, Object: task(api.TaskState_TASK_STATE_PENDING, "")}, false},
		{"node status only", state.Event{Kind: state.EventUpdate, Object: node("k1", "ready"), Old: node("k1", "down")}, false},
		{"node's new key", state.Event{Kind: state.EventUpdate, Object: node("k2", "ready"), Old: node("k1", "ready")}, true},
		{"service", state.Event{Kind: state.EventUpdate, Object: &api.Service{}, Old: &api.Service{}}, true},
		{"restore", state.Event{Kind: state.EventRestore}, true},
	}
	for _, c := range cases {
		if got := concernsNetwork(c.ev); got != c.want {
			t.Errorf("%s: concernsNetwork = %v, want %v", c.name, got, c.want)
		}
	}
}
