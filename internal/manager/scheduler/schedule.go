// Package scheduler places tasks on nodes. Schedule is a pure function of a
// state snapshot (nodes, tasks) and the tasks to place, so it is tested and
// benchmarked with no cluster; Scheduler is the thin component that feeds it
// from the store and writes its decisions back.
package scheduler

import (
	"fmt"
	"sort"
	"strings"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/internal/manager/allocator"
)

// Decision is where one task goes, or why it cannot go anywhere.
type Decision struct {
	TaskID string
	// NodeID is the chosen node, or "" when no node fits.
	NodeID string
	// Reason says, for a person, why no node fits.
	Reason string
}

// Schedule decides a node for each task of pending, given every node and
// every task of the cluster (a snapshot; pending tasks may be among them).
// Decisions are returned in the order of pending and account for each other:
// the load a task adds counts for the tasks placed after it.
//
// A pending task that already names a node (a global service's copy) is
// only checked against that node. Others go where the filters allow, spread:
// fewest tasks of the same service, then fewest tasks, then lowest node ID.
// The result does not depend on the order of the inputs.
func Schedule(nodes []*api.Node, tasks []*api.Task, pending []*api.Task) []Decision {
	s := newScheduling(nodes, tasks, pending)
	out := make([]Decision, len(pending))
	for i, t := range pending {
		out[i].TaskID = t.GetId()
	}
	for _, g := range groupTasks(pending) {
		s.placeGroup(g, out)
	}
	return out
}

// scheduling is the state of one Schedule call.
type scheduling struct {
	nodes   []*nodeInfo // by ID, so that scans break ties by ID
	byID    map[string]*nodeInfo
	filters []filter
}

func newScheduling(nodes []*api.Node, tasks []*api.Task, pending []*api.Task) *scheduling {
	s := &scheduling{byID: make(map[string]*nodeInfo, len(nodes)), filters: newFilters()}
	for _, n := range nodes {
		ni := newNodeInfo(n)
		s.nodes = append(s.nodes, ni)
		s.byID[n.GetId()] = ni
	}
	sort.Slice(s.nodes, func(i, j int) bool { return s.nodes[i].node.GetId() < s.nodes[j].node.GetId() })
	placing := make(map[string]bool, len(pending))
	for _, t := range pending {
		placing[t.GetId()] = true
	}
	for _, t := range tasks {
		n := s.byID[t.GetNodeId()]
		if n == nil || placing[t.GetId()] {
			continue
		}
		if allocator.HoldsAddress(t) {
			n.freeAddrs--
		}
		if holdsResources(t) {
			n.add(t.GetServiceId(), resourcesOf(t.GetSpec().GetResources().GetReservations()))
		}
	}
	return s
}

// holdsResources tells whether a task counts against its node: it is meant
// to run and has not finished.
func holdsResources(t *api.Task) bool {
	return t.GetDesiredState() == api.TaskState_TASK_STATE_RUNNING &&
		t.GetStatus().GetState() <= api.TaskState_TASK_STATE_RUNNING
}

// placeGroup places a group of like tasks one by one. Static filters run
// once for the group; the load-dependent ones run for each task.
func (s *scheduling) placeGroup(g *group, out []Decision) {
	if g.err != nil {
		g.fail(out, 0, fmt.Sprintf("invalid placement: %v", g.err))
		return
	}
	pool := s.nodes
	if g.pinned != "" {
		n := s.byID[g.pinned]
		if n == nil {
			g.fail(out, 0, fmt.Sprintf("its node %s is not in the cluster", g.pinned))
			return
		}
		pool = []*nodeInfo{n}
	}
	if len(pool) == 0 {
		g.fail(out, 0, "no nodes in the cluster")
		return
	}
	var static, dynamic []int // indexes into s.filters
	for i, f := range s.filters {
		switch {
		case !f.SetTask(&g.info):
		case f.Static():
			static = append(static, i)
		default:
			dynamic = append(dynamic, i)
		}
	}
	fails := make([]int, len(s.filters))
	cands := make([]*nodeInfo, 0, len(pool))
	for _, n := range pool {
		if i := s.firstFailing(static, &g.info, n); i >= 0 {
			fails[i]++
			continue
		}
		cands = append(cands, n)
	}
	s.placeEach(g, cands, dynamic, fails, out)
}

func (s *scheduling) placeEach(g *group, cands []*nodeInfo, dynamic []int, fails []int, out []Decision) {
	// Counts of the group's service per candidate, kept beside the maps so
	// the ranking loop does no map look-ups.
	same := make([]int, len(cands))
	for i, n := range cands {
		same[i] = n.byService[g.info.serviceID]
	}
	for k, idx := range g.members {
		best := -1
		for i, n := range cands {
			if s.firstFailing(dynamic, &g.info, n) >= 0 {
				continue
			}
			if best < 0 || same[i] < same[best] || (same[i] == same[best] && n.tasks < cands[best].tasks) {
				best = i
			}
		}
		if best < 0 {
			for _, n := range cands {
				fails[s.firstFailing(dynamic, &g.info, n)]++
			}
			// Nothing was placed since: the rest of the group fails alike.
			g.fail(out, k, s.explain(fails))
			return
		}
		cands[best].add(g.info.serviceID, g.info.need)
		if g.info.overlay {
			cands[best].freeAddrs--
		}
		same[best]++
		out[idx].NodeID = cands[best].node.GetId()
	}
}

func (s *scheduling) firstFailing(which []int, t *taskInfo, n *nodeInfo) int {
	for _, i := range which {
		if !s.filters[i].Check(t, n) {
			return i
		}
	}
	return -1
}

// explain joins the filters' explanations, the one that eliminated most
// nodes first.
func (s *scheduling) explain(fails []int) string {
	var order []int
	for i, k := range fails {
		if k > 0 {
			order = append(order, i)
		}
	}
	sort.SliceStable(order, func(a, b int) bool { return fails[order[a]] > fails[order[b]] })
	parts := make([]string, len(order))
	for j, i := range order {
		parts[j] = s.filters[i].Explain(fails[i])
	}
	if len(parts) == 1 {
		return parts[0]
	}
	return "no suitable node (" + strings.Join(parts, "; ") + ")"
}
