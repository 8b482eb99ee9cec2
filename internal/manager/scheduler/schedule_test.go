package scheduler

import (
	"math/rand"
	"reflect"
	"testing"

	"github.com/warren-project/warren/api"
)

var (
	stateDown     = nodeState(api.NodeState_NODE_STATE_DOWN)
	paused        = availability(api.NodeAvailability_NODE_AVAILABILITY_PAUSE)
	drained       = availability(api.NodeAvailability_NODE_AVAILABILITY_DRAIN)
	complete      = observed(api.TaskState_TASK_STATE_COMPLETE)
	shutdownState = desired(api.TaskState_TASK_STATE_SHUTDOWN)
)

func TestScheduleSpread(t *testing.T) {
	three := []*api.Node{mkNode("n1"), mkNode("n2"), mkNode("n3")}
	cases := []struct {
		name    string
		nodes   []*api.Node
		tasks   []*api.Task
		pending []*api.Task
		want    map[string]int
	}{
		{"10 replicas on 3 nodes", three, nil, mkTasks(10, "web"),
			map[string]int{"n1": 4, "n2": 3, "n3": 3}},
		{"replicas already running count", three,
			[]*api.Task{mkTask("old1", "web", running("n1")), mkTask("old2", "web", running("n1"))},
			mkTasks(4, "web"), map[string]int{"n2": 2, "n3": 2}},
		{"other services break ties", three,
			[]*api.Task{mkTask("db1", "db", running("n1")), mkTask("db2", "db", running("n2"))},
			mkTasks(1, "web"), map[string]int{"n3": 1}},
		{"same service outweighs total load", three,
			[]*api.Task{
				mkTask("w1", "web", running("n1")), mkTask("w2", "web", running("n3")),
				mkTask("db1", "db", running("n2")), mkTask("db2", "db", running("n2")),
			},
			mkTasks(1, "web"), map[string]int{"n2": 1}},
		{"finished tasks do not count", three,
			[]*api.Task{mkTask("w1", "web", running("n1"), complete), mkTask("w2", "web", running("n1"), shutdownState)},
			mkTasks(1, "web"), map[string]int{"n1": 1}},
		{"ties go to the lowest node ID", []*api.Node{mkNode("c"), mkNode("a"), mkNode("b")}, nil,
			mkTasks(1, "web"), map[string]int{"a": 1}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ds := Schedule(c.nodes, c.tasks, c.pending)
			if got := perNode(ds); !reflect.DeepEqual(got, c.want) {
				t.Fatalf("tasks per node = %v, want %v (decisions %+v)", got, c.want, ds)
			}
		})
	}
}

func TestScheduleResources(t *testing.T) {
	small := func(id string) *api.Node { return mkNode(id, capacity(2*cpu, gib)) }
	cases := []struct {
		name       string
		nodes      []*api.Node
		tasks      []*api.Task
		pending    []*api.Task
		want       map[string]int
		wantReason string
	}{
		{"memory accumulates within one call", []*api.Node{small("n1"), small("n2")}, nil,
			mkTasks(5, "web", reserve(0, 400*mib)),
			map[string]int{"n1": 2, "n2": 2, "": 1}, "insufficient memory on 2 nodes"},
		{"CPU accumulates within one call", []*api.Node{small("n1"), small("n2")}, nil,
			mkTasks(6, "web", reserve(cpu, 0)),
			map[string]int{"n1": 2, "n2": 2, "": 2}, "insufficient CPU on 2 nodes"},
		{"a task fills a node exactly", []*api.Node{small("n1")}, nil,
			mkTasks(1, "web", reserve(2*cpu, gib)), map[string]int{"n1": 1}, ""},
		{"running tasks hold their reservations", []*api.Node{small("n1")},
			[]*api.Task{mkTask("db1", "db", running("n1"), reserve(0, 800*mib))},
			mkTasks(1, "web", reserve(0, 400*mib)), map[string]int{"": 1}, "insufficient memory on 1 node"},
		{"assigned but not started tasks hold them too", []*api.Node{small("n1")},
			[]*api.Task{mkTask("db1", "db", onNode("n1"), observed(api.TaskState_TASK_STATE_ASSIGNED), reserve(0, 800*mib))},
			mkTasks(1, "web", reserve(0, 400*mib)), map[string]int{"": 1}, "insufficient memory on 1 node"},
		{"finished tasks free them", []*api.Node{small("n1")},
			[]*api.Task{
				mkTask("db1", "db", running("n1"), complete, reserve(0, 800*mib)),
				mkTask("db2", "db", running("n1"), shutdownState, reserve(0, 800*mib)),
			},
			mkTasks(1, "web", reserve(0, 400*mib)), map[string]int{"n1": 1}, ""},
		{"equal shortages follow the filter order", []*api.Node{small("n1"), mkNode("n2", capacity(cpu/2, 8*gib))}, nil,
			mkTasks(1, "web", reserve(cpu, 2*gib)), map[string]int{"": 1},
			"no suitable node (insufficient memory on 1 node; insufficient CPU on 1 node)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ds := Schedule(c.nodes, c.tasks, c.pending)
			checkCapacity(t, c.nodes, c.tasks, c.pending, ds)
			if got := perNode(ds); !reflect.DeepEqual(got, c.want) {
				t.Fatalf("tasks per node = %v, want %v (decisions %+v)", got, c.want, ds)
			}
			for _, d := range ds {
				if d.NodeID == "" && d.Reason != c.wantReason {
					t.Errorf("task %s: reason %q, want %q", d.TaskID, d.Reason, c.wantReason)
				}
			}
		})
	}
}

// A task that reserves nothing always fits, even on a node whose tasks
// already hold more than it has (its capacity may have been lowered).
func TestScheduleNoReservationAlwaysFits(t *testing.T) {
	nodes := []*api.Node{mkNode("n1", capacity(cpu, gib))}
	tasks := []*api.Task{mkTask("big", "db", running("n1"), reserve(2*cpu, 2*gib))}
	ds := Schedule(nodes, tasks, append(mkTasks(3, "web"), mkTasks(1, "needy", reserve(0, 1))...))
	if got, want := perNode(ds), map[string]int{"n1": 3, "": 1}; !reflect.DeepEqual(got, want) {
		t.Fatalf("tasks per node = %v, want %v", got, want)
	}
	if nodes := []*api.Node{mkNode("n2", capacity(0, 0))}; Schedule(nodes, nil, mkTasks(1, "web"))[0].NodeID != "n2" {
		t.Fatal("a node that reports no resources refused a task that reserves none")
	}
}

func TestScheduleMaxPerNode(t *testing.T) {
	nodes := []*api.Node{mkNode("n1"), mkNode("n2"), mkNode("n3")}
	cases := []struct {
		name       string
		tasks      []*api.Task
		pending    []*api.Task
		want       map[string]int
		wantReason string
	}{
		{"one per node", nil, mkTasks(5, "web", maxPerNode(1)),
			map[string]int{"n1": 1, "n2": 1, "n3": 1, "": 2}, "max replicas per node (1) reached on 3 nodes"},
		{"running replicas count", []*api.Task{mkTask("w0", "web", running("n2"))}, mkTasks(3, "web", maxPerNode(1)),
			map[string]int{"n1": 1, "n3": 1, "": 1}, "max replicas per node (1) reached on 3 nodes"},
		{"other services do not count", []*api.Task{mkTask("d1", "db", running("n1")), mkTask("d2", "db", running("n1"))},
			mkTasks(6, "web", maxPerNode(2)), map[string]int{"n1": 2, "n2": 2, "n3": 2}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ds := Schedule(nodes, c.tasks, c.pending)
			if got := perNode(ds); !reflect.DeepEqual(got, c.want) {
				t.Fatalf("tasks per node = %v, want %v", got, c.want)
			}
			for _, d := range ds {
				if d.NodeID == "" && d.Reason != c.wantReason {
					t.Errorf("task %s: reason %q, want %q", d.TaskID, d.Reason, c.wantReason)
				}
			}
		})
	}
}

// TestScheduleExplanations checks the reason a pending task shows.
func TestScheduleExplanations(t *testing.T) {
	full := capacity(cpu, 100*mib)
	cases := []struct {
		name  string
		nodes []*api.Node
		task  *api.Task
		want  string
	}{
		{"node down", []*api.Node{mkNode("n1", stateDown)}, mkTask("t", "web"), "node down on 1 node"},
		{"disconnected and unknown are down too", []*api.Node{
			mkNode("n1", nodeState(api.NodeState_NODE_STATE_DISCONNECTED)), mkNode("n2", nodeState(api.NodeState_NODE_STATE_UNKNOWN)),
		}, mkTask("t", "web"), "node down on 2 nodes"},
		{"paused and drained", []*api.Node{mkNode("n1", paused), mkNode("n2", drained)}, mkTask("t", "web"),
			"node is paused/drained on 2 nodes"},
		{"constraint", []*api.Node{mkNode("n1"), mkNode("n2"), mkNode("n3", labels("zone", "core"))},
			mkTask("t", "web", constraints("node.labels.zone==edge")),
			"no node satisfies constraint node.labels.zone==edge (3 nodes)"},
		{"constraints that fail on different nodes", []*api.Node{mkNode("n1", labels("zone", "edge")), mkNode("n2")},
			mkTask("t", "web", constraints("node.labels.zone == edge", "node.role==manager")),
			"no node satisfies constraints node.labels.zone==edge, node.role==manager (2 nodes)"},
		{"several filters, most nodes first", []*api.Node{mkNode("n1", stateDown), mkNode("n2", full), mkNode("n3", full)},
			mkTask("t", "web", reserve(0, gib)),
			"no suitable node (insufficient memory on 2 nodes; node down on 1 node)"},
		{"a node counts against its first failing filter only",
			[]*api.Node{mkNode("n1", stateDown, drained, full), mkNode("n2", drained, full)},
			mkTask("t", "web", reserve(0, gib)),
			"no suitable node (node down on 1 node; node is paused/drained on 1 node)"},
		{"no nodes", nil, mkTask("t", "web"), "no nodes in the cluster"},
		{"bad constraint", []*api.Node{mkNode("n1")}, mkTask("t", "web", constraints("node.zone==edge")),
			`invalid placement: invalid placement constraint "node.zone==edge": unknown key "node.zone" ` +
				`(want node.id, node.hostname, node.role, node.platform.arch, node.platform.os or node.labels.NAME)`},
		{"its own node is gone", []*api.Node{mkNode("n1")}, mkTask("t", "web", onNode("n9")),
			"its node n9 is not in the cluster"},
		{"its own node is full", []*api.Node{mkNode("n1", full), mkNode("n2")}, mkTask("t", "web", onNode("n1"), reserve(0, gib)),
			"insufficient memory on 1 node"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := Schedule(c.nodes, nil, []*api.Task{c.task})[0]
			if d.NodeID != "" || d.Reason != c.want {
				t.Fatalf("decision = %+v, want no node and reason %q", d, c.want)
			}
		})
	}
}

func TestSchedulePinnedTasks(t *testing.T) {
	nodes := []*api.Node{mkNode("n1", capacity(cpu, gib)), mkNode("n2", capacity(cpu, gib))}
	pinned := mkTask("g1", "global", onNode("n2"), reserve(0, 600*mib))
	loose := mkTasks(2, "web", reserve(0, 600*mib))
	// The pinned task is also in the snapshot: it must not count twice.
	tasks := append([]*api.Task{pinned}, loose...)
	// The loose tasks come first, yet the pinned one, having no choice, is
	// placed first: n2 is its, and one loose task stays pending.
	ds := Schedule(nodes, tasks, append(loose, pinned))
	got := map[string]string{}
	for _, d := range ds {
		got[d.TaskID] = d.NodeID
	}
	want := map[string]string{"g1": "n2", "web-1": "n1", "web-2": ""}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("placements = %v, want %v", got, want)
	}
	checkCapacity(t, nodes, nil, append(loose, pinned), ds)
}

// The decisions do not depend on the order of nodes, tasks or pending.
func TestScheduleDeterminism(t *testing.T) {
	var nodes []*api.Node
	for _, id := range []string{"a", "b", "c", "d", "e"} {
		nodes = append(nodes, mkNode(id, capacity(4*cpu, 2*gib)))
	}
	tasks := []*api.Task{mkTask("x1", "web", running("c")), mkTask("x2", "db", running("a"), reserve(0, gib))}
	var pending []*api.Task
	pending = append(pending, mkTasks(7, "web", reserve(0, 300*mib))...)
	pending = append(pending, mkTasks(5, "db", reserve(cpu, 500*mib))...)
	pending = append(pending, mkTasks(3, "cache", maxPerNode(1))...)

	byTask := func(ds []Decision) map[string]Decision {
		m := map[string]Decision{}
		for _, d := range ds {
			m[d.TaskID] = d
		}
		return m
	}
	want := byTask(Schedule(nodes, tasks, pending))
	rng := rand.New(rand.NewSource(1))
	for i := 0; i < 20; i++ {
		rng.Shuffle(len(nodes), func(a, b int) { nodes[a], nodes[b] = nodes[b], nodes[a] })
		rng.Shuffle(len(pending), func(a, b int) { pending[a], pending[b] = pending[b], pending[a] })
		rng.Shuffle(len(tasks), func(a, b int) { tasks[a], tasks[b] = tasks[b], tasks[a] })
		if got := byTask(Schedule(nodes, tasks, pending)); !reflect.DeepEqual(got, want) {
			t.Fatalf("shuffle %d: decisions = %v, want %v", i, got, want)
		}
	}
}
