package integration

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/internal/runtime"
	"github.com/warren-project/warren/internal/state"
	"github.com/warren-project/warren/internal/testutil"
	"github.com/warren-project/warren/pkg/client"
)

// Workers join with a token; a service spreads evenly over all nodes.
func TestJoinAndSpread(t *testing.T) {
	c := newCluster(t)
	w1 := c.join("w1", nil)
	w2 := c.join("w2", nil)
	nodes, err := c.client.ListNodes(context.Background(), &api.ListNodesRequest{})
	if err != nil || len(nodes.GetNodes()) != 3 {
		t.Fatalf("nodes = %v, %v; want the manager and 2 workers", nodes.GetNodes(), err)
	}
	id := c.createService(replicated("web", 6))
	c.waitConverged(id)
	got := c.runningByNode(id)
	for _, n := range []string{c.mgr.NodeID(), w1.node.NodeID(), w2.node.NodeID()} {
		if got[n] != 2 {
			t.Fatalf("running per node = %v, want 2 on each of 3 nodes", got)
		}
	}
	if n := countRunning(t, w1.exec); n != 2 {
		t.Fatalf("w1's runtime runs %d containers, want 2", n)
	}
}

func countRunning(t *testing.T, exec runtime.Executor) int {
	t.Helper()
	cs, err := exec.List(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, ctr := range cs {
		if ctr.State == runtime.StateRunning {
			n++
		}
	}
	return n
}

// Constraints pick nodes by label; a task nothing fits stays pending and
// says why, and is placed as soon as a node fits.
func TestConstraintsAndPendingReason(t *testing.T) {
	c := newCluster(t)
	w1 := c.join("w1", nil)
	c.join("w2", nil)

	spec := replicated("edge", 2)
	spec.Task.Placement = &api.Placement{Constraints: []string{"node.labels.zone==edge"}}
	id := c.createService(spec)
	testutil.WaitFor(t, 10*time.Second, "tasks pending with the constraint named", func() bool {
		tasks, _ := c.client.ListTasks(context.Background(), &api.ListTasksRequest{Service: id})
		for _, task := range tasks.GetTasks() {
			st := task.GetStatus()
			if st.GetState() != api.TaskState_TASK_STATE_PENDING || !strings.Contains(st.GetMessage(), "node.labels.zone==edge") {
				return false
			}
		}
		return len(tasks.GetTasks()) == 2
	})

	updateNode(t, c.client, w1.node.NodeID(), func(s *api.NodeSpec) { s.Labels = map[string]string{"zone": "edge"} })
	c.waitConverged(id)
	if got := c.runningByNode(id); got[w1.node.NodeID()] != 2 {
		t.Fatalf("running per node = %v, want both on the edge node", got)
	}
}

// Reservations never overcommit a node: what does not fit waits, with the
// reason, until a node with room joins.
func TestReservations(t *testing.T) {
	c := newCluster(t)
	small := &api.NodeDescription{Hostname: "small", Platform: &api.Platform{Architecture: "amd64", Os: "linux"},
		Resources: &api.Resources{NanoCpus: 2e9, MemoryBytes: 1 << 30}}
	c.join("small", small)
	// The manager's own node must not take these: pin them to workers.
	spec := replicated("fat", 3)
	spec.Task.Resources = &api.ResourceRequirements{Reservations: &api.Resources{MemoryBytes: 600 << 20}}
	spec.Task.Placement = &api.Placement{Constraints: []string{"node.role==worker"}}
	id := c.createService(spec)
	testutil.WaitFor(t, 10*time.Second, "one placed, two pending for memory", func() bool {
		tasks, _ := c.client.ListTasks(context.Background(), &api.ListTasksRequest{Service: id})
		placed, pending := 0, 0
		for _, task := range tasks.GetTasks() {
			switch st := task.GetStatus(); {
			case st.GetState() == api.TaskState_TASK_STATE_RUNNING:
				placed++
			case st.GetState() == api.TaskState_TASK_STATE_PENDING && strings.Contains(st.GetMessage(), "insufficient memory"):
				pending++
			}
		}
		return placed == 1 && pending == 2
	})
	big := &api.NodeDescription{Hostname: "big", Platform: &api.Platform{Architecture: "amd64", Os: "linux"},
		Resources: &api.Resources{NanoCpus: 8e9, MemoryBytes: 2 << 30}}
	c.join("big", big)
	c.waitConverged(id)
}

// Drain moves tasks away; a node that stops heartbeating goes down and its
// tasks run elsewhere; when it comes back, the tasks it still ran but that
// were replaced are stopped.
func TestDrainAndNodeLoss(t *testing.T) {
	c := newCluster(t)
	w1 := c.join("w1", nil)
	w2 := c.join("w2", nil)
	id := c.createService(replicated("web", 6))
	c.waitConverged(id)

	updateNode(t, c.client, w2.node.NodeID(), func(s *api.NodeSpec) { s.Availability = api.NodeAvailability_NODE_AVAILABILITY_DRAIN })
	testutil.WaitFor(t, 20*time.Second, "drained node empty, 6 running elsewhere", func() bool {
		got := c.runningByNode(id)
		return got[w2.node.NodeID()] == 0 && got[c.mgr.NodeID()]+got[w1.node.NodeID()] == 6
	})
	// Its containers stop once they have drained out of load balancing.
	testutil.WaitFor(t, 20*time.Second, "drained node's containers stopped", func() bool { return countRunning(t, w2.exec) == 0 })
	updateNode(t, c.client, w2.node.NodeID(), func(s *api.NodeSpec) { s.Availability = api.NodeAvailability_NODE_AVAILABILITY_ACTIVE })

	// w1 dies (its containers keep running, as after a network cut).
	before := countRunning(t, w1.exec)
	w1.stop()
	c.waitNodeState(w1.node.NodeID(), api.NodeState_NODE_STATE_DOWN)
	testutil.WaitFor(t, 20*time.Second, "6 tasks running without w1", func() bool {
		got := c.runningByNode(id)
		return got[w1.node.NodeID()] == 0 && got[c.mgr.NodeID()]+got[w2.node.NodeID()] == 6
	})
	if before == 0 || countRunning(t, w1.exec) != before {
		t.Fatalf("w1's containers changed while it was cut off: %d then %d", before, countRunning(t, w1.exec))
	}

	// w1 returns with its data dir: no token needed; its replaced tasks stop.
	if err := c.start(w1, "", nil); err != nil {
		t.Fatal(err)
	}
	c.waitNodeState(w1.node.NodeID(), api.NodeState_NODE_STATE_READY)
	testutil.WaitFor(t, 20*time.Second, "the returning node's replaced containers stopped", func() bool {
		return countRunning(t, w1.exec) == 0
	})
	if got := c.runningByNode(id); got[c.mgr.NodeID()]+got[w2.node.NodeID()] != 6 {
		t.Fatalf("running per node = %v after w1 returned, want 6 (existing tasks are not moved)", got)
	}
}

// A rotated-out token admits no new node; nodes already in keep working;
// the new token admits.
func TestTokenRotation(t *testing.T) {
	c := newCluster(t)
	old := c.token(api.NodeRole_NODE_ROLE_WORKER)
	w1 := c.join("w1", nil)
	if _, err := c.client.GetJoinToken(context.Background(), &api.GetJoinTokenRequest{Role: api.NodeRole_NODE_ROLE_WORKER, Rotate: true}); err != nil {
		t.Fatal(err)
	}
	late := &worker{name: "late", dir: c.dir + "/late", exec: w1.exec}
	err := c.start(late, old, nil)
	if err == nil || !strings.Contains(err.Error(), "not valid") {
		t.Fatalf("join with the old token: %v, want refused", err)
	}
	var nodes int
	c.mgr.Store().View(func(tx state.ReadTx) { nodes = len(tx.ListNodes()) })
	if nodes != 2 {
		t.Fatalf("%d nodes after the refused join, want 2", nodes)
	}
	id := c.createService(replicated("web", 4))
	c.waitConverged(id)
	if got := c.runningByNode(id); got[w1.node.NodeID()] != 2 {
		t.Fatalf("running per node = %v: the node that joined before rotation should still work", got)
	}
	c.join("w2", nil)
}

func updateNode(t *testing.T, c *client.Client, id string, change func(*api.NodeSpec)) {
	t.Helper()
	ctx := context.Background()
	got, err := c.GetNode(ctx, &api.GetNodeRequest{Node: id})
	if err != nil {
		t.Fatal(err)
	}
	spec := got.GetNode().GetSpec()
	change(spec)
	if _, err := c.UpdateNode(ctx, &api.UpdateNodeRequest{Node: id, NodeVersion: got.GetNode().GetMeta().GetVersion(), Spec: spec}); err != nil {
		t.Fatalf("update node %s: %v", id, err)
	}
}
