package scheduler

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/internal/network/ipam"
)

// resources is a CPU and memory amount: plain integers, since the inner
// loop of Schedule compares them millions of times.
type resources struct {
	nanoCPUs    int64
	memoryBytes int64
}

func resourcesOf(r *api.Resources) resources {
	return resources{nanoCPUs: r.GetNanoCpus(), memoryBytes: r.GetMemoryBytes()}
}

// nodeInfo is a node with its load, as tasks placed so far leave it.
type nodeInfo struct {
	node      *api.Node
	capacity  resources
	reserved  resources
	tasks     int
	byService map[string]int
	// freeAddrs is how many overlay addresses its block has left.
	freeAddrs int
}

func newNodeInfo(n *api.Node) *nodeInfo {
	ni := &nodeInfo{node: n, capacity: resourcesOf(n.GetDescription().GetResources()), byService: map[string]int{}}
	if block, err := netip.ParsePrefix(n.GetNetwork().GetBlock()); err == nil {
		ni.freeAddrs = ipam.TaskAddresses(block)
	}
	return ni
}

func (n *nodeInfo) add(serviceID string, r resources) {
	n.tasks++
	n.byService[serviceID]++
	n.reserved.nanoCPUs += r.nanoCPUs
	n.reserved.memoryBytes += r.memoryBytes
}

// taskInfo is what the filters need of a task, worked out once per group of
// tasks with the same service and placement needs.
type taskInfo struct {
	serviceID   string
	constraints []Constraint
	need        resources
	maxPerNode  uint64
	overlay     bool // needs an overlay address from the node's block
}

// filter eliminates nodes that cannot run a task, and says why in words a
// person can read: the explanation is what a pending task shows.
type filter interface {
	// SetTask readies the filter for a group of like tasks. It returns false
	// when the filter cannot eliminate any node for them, so it is skipped.
	SetTask(t *taskInfo) bool
	// Static filters look only at the node and the task's spec, which do
	// not change within a Schedule call, so they run once per group.
	Static() bool
	Check(t *taskInfo, n *nodeInfo) bool
	// Explain says why nFailed nodes were eliminated.
	Explain(nFailed int) string
}

// newFilters returns the pipeline in order: a node is counted against the
// first filter it fails.
func newFilters() []filter {
	return []filter{&readyFilter{}, &availabilityFilter{}, overlayFilter{}, &constraintFilter{}, &memoryFilter{}, &cpuFilter{}, &maxPerNodeFilter{}, addressFilter{}}
}

func nodes(n int) string {
	if n == 1 {
		return "1 node"
	}
	return fmt.Sprintf("%d nodes", n)
}

// readyFilter keeps nodes that are READY; down, disconnected and not yet
// heard from are all "down" to a user waiting for a placement.
type readyFilter struct{}

func (readyFilter) SetTask(*taskInfo) bool { return true }
func (readyFilter) Static() bool           { return true }
func (readyFilter) Check(_ *taskInfo, n *nodeInfo) bool {
	return n.node.GetStatus().GetState() == api.NodeState_NODE_STATE_READY
}
func (readyFilter) Explain(k int) string { return "node down on " + nodes(k) }

type availabilityFilter struct{}

func (availabilityFilter) SetTask(*taskInfo) bool { return true }
func (availabilityFilter) Static() bool           { return true }
func (availabilityFilter) Check(_ *taskInfo, n *nodeInfo) bool {
	return n.node.GetSpec().GetAvailability() == api.NodeAvailability_NODE_AVAILABILITY_ACTIVE
}
func (availabilityFilter) Explain(k int) string { return "node is paused/drained on " + nodes(k) }

// overlayFilter keeps nodes with an overlay address block for tasks on the
// overlay: a node running the overlay gets one when it registers, unless
// the subnet is full.
type overlayFilter struct{}

func (overlayFilter) SetTask(t *taskInfo) bool { return t.overlay }
func (overlayFilter) Static() bool             { return true }
func (overlayFilter) Check(_ *taskInfo, n *nodeInfo) bool {
	return n.node.GetNetwork().GetBlock() != ""
}
func (overlayFilter) Explain(k int) string {
	return "no overlay network (started with --overlay=false, or the cluster subnet is full) on " + nodes(k)
}

// addressFilter keeps nodes whose block has an overlay address left for
// a task on the overlay: a full node must not win the placement (by
// spreading, say) and leave the task pending while others have room.
type addressFilter struct{}

func (addressFilter) SetTask(t *taskInfo) bool { return t.overlay }
func (addressFilter) Static() bool             { return false }
func (addressFilter) Check(_ *taskInfo, n *nodeInfo) bool {
	return n.freeAddrs > 0
}
func (addressFilter) Explain(k int) string {
	return "no free address in the overlay block of " + nodes(k)
}

// constraintFilter remembers which constraints failed, so the explanation
// names them.
type constraintFilter struct {
	constraints []Constraint
	failed      []bool
}

func (f *constraintFilter) SetTask(t *taskInfo) bool {
	f.constraints = t.constraints
	f.failed = make([]bool, len(t.constraints))
	return len(t.constraints) > 0
}

func (f *constraintFilter) Static() bool { return true }

func (f *constraintFilter) Check(_ *taskInfo, n *nodeInfo) bool {
	for i, c := range f.constraints {
		if !c.Match(n.node) {
			f.failed[i] = true
			return false
		}
	}
	return true
}

func (f *constraintFilter) Explain(k int) string {
	var names []string
	for i, c := range f.constraints {
		if f.failed[i] {
			names = append(names, c.String())
		}
	}
	word := "constraint"
	if len(names) > 1 {
		word = "constraints"
	}
	return fmt.Sprintf("no node satisfies %s %s (%s)", word, strings.Join(names, ", "), nodes(k))
}

// memoryFilter and cpuFilter keep a node's reservations within its
// capacity. A task that reserves nothing always fits, even on a node that is
// already full (its capacity may have shrunk under its tasks).
type memoryFilter struct{}

func (memoryFilter) SetTask(t *taskInfo) bool { return t.need.memoryBytes > 0 }
func (memoryFilter) Static() bool             { return false }
func (memoryFilter) Check(t *taskInfo, n *nodeInfo) bool {
	return n.reserved.memoryBytes+t.need.memoryBytes <= n.capacity.memoryBytes
}
func (memoryFilter) Explain(k int) string { return "insufficient memory on " + nodes(k) }

type cpuFilter struct{}

func (cpuFilter) SetTask(t *taskInfo) bool { return t.need.nanoCPUs > 0 }
func (cpuFilter) Static() bool             { return false }
func (cpuFilter) Check(t *taskInfo, n *nodeInfo) bool {
	return n.reserved.nanoCPUs+t.need.nanoCPUs <= n.capacity.nanoCPUs
}
func (cpuFilter) Explain(k int) string { return "insufficient CPU on " + nodes(k) }

type maxPerNodeFilter struct{ max uint64 }

func (f *maxPerNodeFilter) SetTask(t *taskInfo) bool {
	f.max = t.maxPerNode
	return t.maxPerNode > 0
}
func (f *maxPerNodeFilter) Static() bool { return false }
func (f *maxPerNodeFilter) Check(t *taskInfo, n *nodeInfo) bool {
	return uint64(n.byService[t.serviceID]) < f.max
}
func (f *maxPerNodeFilter) Explain(k int) string {
	return fmt.Sprintf("max replicas per node (%d) reached on %s", f.max, nodes(k))
}
