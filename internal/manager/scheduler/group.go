package scheduler

import (
	"sort"
	"strconv"
	"strings"

	"github.com/warren-project/warren/internal/spec"

	"github.com/warren-project/warren/api"
)

// group is a set of pending tasks with the same service and the same
// placement needs: filters that look only at the spec decide for all of them
// at once, which is what makes placing thousands of replicas cheap.
type group struct {
	info    taskInfo
	pinned  string // the node every member already names, if any
	err     error  // the members' constraints do not parse
	members []int  // indexes into pending, in placement order
}

// fail gives members[from:] the same reason.
func (g *group) fail(out []Decision, from int, reason string) {
	for _, idx := range g.members[from:] {
		out[idx].Reason = reason
	}
}

// groupTasks groups pending tasks. Groups and members come in a fixed order
// (pinned tasks first, since they have no choice; then by service, slot and
// ID) so that the decisions do not depend on the order of pending.
func groupTasks(pending []*api.Task) []*group {
	order := make([]int, len(pending))
	for i := range order {
		order[i] = i
	}
	sort.Slice(order, func(a, b int) bool { return taskBefore(pending[order[a]], pending[order[b]]) })

	var groups []*group
	byKey := map[string]*group{}
	for _, idx := range order {
		t := pending[idx]
		key := groupKey(t)
		g := byKey[key]
		if g == nil {
			g = newGroup(t)
			byKey[key] = g
			groups = append(groups, g)
		}
		g.members = append(g.members, idx)
	}
	return groups
}

func taskBefore(a, b *api.Task) bool {
	if pa, pb := a.GetNodeId() != "", b.GetNodeId() != ""; pa != pb {
		return pa
	}
	if a.GetServiceId() != b.GetServiceId() {
		return a.GetServiceId() < b.GetServiceId()
	}
	if a.GetSlot() != b.GetSlot() {
		return a.GetSlot() < b.GetSlot()
	}
	return a.GetId() < b.GetId()
}

func newGroup(t *api.Task) *group {
	placement := t.GetSpec().GetPlacement()
	g := &group{
		pinned: t.GetNodeId(),
		info: taskInfo{
			serviceID:  t.GetServiceId(),
			need:       resourcesOf(t.GetSpec().GetResources().GetReservations()),
			maxPerNode: placement.GetMaxReplicasPerNode(),
			overlay:    t.GetSpec().GetContainer().GetNetwork() == spec.NetworkOverlay,
		},
	}
	g.info.constraints, g.err = ParseConstraints(placement.GetConstraints())
	return g
}

// groupKey names what placement depends on: two tasks with the same key
// are interchangeable to the filters and the ranking.
func groupKey(t *api.Task) string {
	var b strings.Builder
	res := t.GetSpec().GetResources().GetReservations()
	placement := t.GetSpec().GetPlacement()
	b.WriteString(t.GetNodeId())
	b.WriteByte(0)
	b.WriteString(t.GetServiceId())
	b.WriteByte(0)
	b.WriteString(strconv.FormatInt(res.GetNanoCpus(), 10))
	b.WriteByte(0)
	b.WriteString(strconv.FormatInt(res.GetMemoryBytes(), 10))
	b.WriteByte(0)
	b.WriteString(strconv.FormatUint(placement.GetMaxReplicasPerNode(), 10))
	b.WriteByte(0)
	b.WriteString(t.GetSpec().GetContainer().GetNetwork())
	for _, c := range placement.GetConstraints() {
		b.WriteByte(0)
		b.WriteString(c)
	}
	return b.String()
}
