package scheduler

import (
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/warren-project/warren/api"
)

const (
	gib = int64(1) << 30
	mib = int64(1) << 20
	cpu = int64(1e9)
)

type nodeOpt func(*api.Node)

// blocks numbers the test nodes' overlay blocks.
var blocks atomic.Int32

// mkNode returns a ready, active linux/amd64 worker with 4 CPUs and 8 GiB.
func mkNode(id string, opts ...nodeOpt) *api.Node {
	n := &api.Node{
		Id:   id,
		Meta: &api.Meta{},
		Spec: &api.NodeSpec{Role: api.NodeRole_NODE_ROLE_WORKER},
		Description: &api.NodeDescription{
			Hostname:  "host-" + id,
			Platform:  &api.Platform{Architecture: "amd64", Os: "linux"},
			Resources: &api.Resources{NanoCpus: 4 * cpu, MemoryBytes: 8 * gib},
		},
		Status:  &api.NodeStatus{State: api.NodeState_NODE_STATE_READY},
		Network: &api.NodeNetwork{Block: fmt.Sprintf("10.200.%d.0/24", blocks.Add(1)%256)},
	}
	for _, o := range opts {
		o(n)
	}
	return n
}

func capacity(nanoCPUs, mem int64) nodeOpt {
	return func(n *api.Node) { n.Description.Resources = &api.Resources{NanoCpus: nanoCPUs, MemoryBytes: mem} }
}

func nodeState(s api.NodeState) nodeOpt { return func(n *api.Node) { n.Status.State = s } }

func availability(a api.NodeAvailability) nodeOpt {
	return func(n *api.Node) { n.Spec.Availability = a }
}

func role(r api.NodeRole) nodeOpt { return func(n *api.Node) { n.Spec.Role = r } }

func platform(arch, os string) nodeOpt {
	return func(n *api.Node) { n.Description.Platform = &api.Platform{Architecture: arch, Os: os} }
}

func hostname(h string) nodeOpt { return func(n *api.Node) { n.Description.Hostname = h } }

func labels(kv ...string) nodeOpt {
	return func(n *api.Node) {
		n.Spec.Labels = map[string]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			n.Spec.Labels[kv[i]] = kv[i+1]
		}
	}
}

type taskOpt func(*api.Task)

// mkTask returns a new task of service svc that is meant to run.
func mkTask(id, svc string, opts ...taskOpt) *api.Task {
	t := &api.Task{
		Id:           id,
		Meta:         &api.Meta{},
		ServiceId:    svc,
		ServiceName:  svc,
		Spec:         &api.TaskSpec{},
		DesiredState: api.TaskState_TASK_STATE_RUNNING,
		Status:       &api.TaskStatus{State: api.TaskState_TASK_STATE_NEW},
	}
	for _, o := range opts {
		o(t)
	}
	return t
}

// mkTasks returns n tasks of svc with IDs svc-1 ... svc-n and slots 1 ... n.
func mkTasks(n int, svc string, opts ...taskOpt) []*api.Task {
	out := make([]*api.Task, n)
	for i := range out {
		out[i] = mkTask(fmt.Sprintf("%s-%d", svc, i+1), svc, opts...)
		out[i].Slot = uint64(i + 1)
	}
	return out
}

// running puts a task on a node, running.
func running(nodeID string) taskOpt {
	return func(t *api.Task) {
		t.NodeId = nodeID
		t.Status.State = api.TaskState_TASK_STATE_RUNNING
	}
}

func onNode(nodeID string) taskOpt { return func(t *api.Task) { t.NodeId = nodeID } }

func observed(s api.TaskState) taskOpt { return func(t *api.Task) { t.Status.State = s } }

func desired(s api.TaskState) taskOpt { return func(t *api.Task) { t.DesiredState = s } }

func reserve(nanoCPUs, mem int64) taskOpt {
	return func(t *api.Task) {
		t.Spec.Resources = &api.ResourceRequirements{Reservations: &api.Resources{NanoCpus: nanoCPUs, MemoryBytes: mem}}
	}
}

func constraints(c ...string) taskOpt {
	return func(t *api.Task) {
		if t.Spec.Placement == nil {
			t.Spec.Placement = &api.Placement{}
		}
		t.Spec.Placement.Constraints = c
	}
}

func maxPerNode(m uint64) taskOpt {
	return func(t *api.Task) {
		if t.Spec.Placement == nil {
			t.Spec.Placement = &api.Placement{}
		}
		t.Spec.Placement.MaxReplicasPerNode = m
	}
}

// perNode counts the decisions per node; "" counts the unplaced.
func perNode(ds []Decision) map[string]int {
	out := map[string]int{}
	for _, d := range ds {
		out[d.NodeID]++
	}
	return out
}

// checkCapacity fails the test when the decisions put more reservations on
// a node than it has, counting the tasks that were already there.
func checkCapacity(t *testing.T, nodes []*api.Node, tasks, pending []*api.Task, ds []Decision) {
	t.Helper()
	used := map[string]resources{}
	addUse := func(nodeID string, task *api.Task) {
		r := resourcesOf(task.GetSpec().GetResources().GetReservations())
		u := used[nodeID]
		u.nanoCPUs += r.nanoCPUs
		u.memoryBytes += r.memoryBytes
		used[nodeID] = u
	}
	for _, task := range tasks {
		if task.NodeId != "" && holdsResources(task) {
			addUse(task.NodeId, task)
		}
	}
	for i, d := range ds {
		if d.NodeID != "" {
			addUse(d.NodeID, pending[i])
		}
	}
	for _, n := range nodes {
		c, u := resourcesOf(n.Description.Resources), used[n.Id]
		if u.nanoCPUs > c.nanoCPUs || u.memoryBytes > c.memoryBytes {
			t.Errorf("node %s holds %+v, more than its capacity %+v", n.Id, u, c)
		}
	}
}
