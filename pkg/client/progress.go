package client

import (
	"sort"

	"google.golang.org/protobuf/proto"

	"github.com/warren-project/warren/api"
)

// BuildProgress computes a service's progress from its tasks. Failures
// lists the failed tasks of the current spec whose IDs are not in reported,
// and adds them to it (reported may be nil to list them all).
func BuildProgress(svc *api.Service, tasks []*api.Task, reported map[string]bool) ServiceProgress {
	p := ServiceProgress{Service: svc}
	if svc.GetSpec().GetGlobal() != nil {
		p.Slots = globalSlots(tasks, svc)
	} else {
		p.Slots = replicatedSlots(tasks, svc)
	}
	p.Desired = len(p.Slots)
	for _, s := range p.Slots {
		if s.Done {
			p.Running++
		}
	}
	p.Converged = p.Running == p.Desired && !extraRunning(svc, tasks)
	if svc.GetSpec().GetGlobal() != nil && p.Desired == 0 {
		p.Converged = false // a global service with no task yet has not started
	}
	p.Failures = failures(tasks, svc, reported)
	return p
}

// ofCurrentSpec tells whether t was made from the service's current spec:
// by its spec version, or, when the orchestrator keeps tasks across a
// change that does not touch them (a scale), by an equal task spec.
func ofCurrentSpec(t *api.Task, svc *api.Service) bool {
	return t.GetSpecVersion() == svc.GetSpecVersion() || proto.Equal(t.GetSpec(), svc.GetSpec().GetTask())
}

func replicatedSlots(tasks []*api.Task, svc *api.Service) []SlotProgress {
	replicas := svc.GetSpec().GetReplicated().GetReplicas()
	bySlot := map[uint64][]*api.Task{}
	for _, t := range tasks {
		bySlot[t.GetSlot()] = append(bySlot[t.GetSlot()], t)
	}
	slots := make([]SlotProgress, 0, replicas)
	for n := uint64(1); n <= replicas; n++ {
		s := slotOf(current(bySlot[n], svc), svc)
		s.Slot = n
		slots = append(slots, s)
	}
	return slots
}

func globalSlots(tasks []*api.Task, svc *api.Service) []SlotProgress {
	byNode := map[string][]*api.Task{}
	for _, t := range tasks {
		byNode[t.GetNodeId()] = append(byNode[t.GetNodeId()], t)
	}
	var slots []SlotProgress
	for node, ts := range byNode {
		cur := current(ts, svc)
		if cur.GetDesiredState() != api.TaskState_TASK_STATE_RUNNING {
			continue // the node no longer runs this service
		}
		s := slotOf(cur, svc)
		s.NodeID = node
		slots = append(slots, s)
	}
	sort.Slice(slots, func(i, j int) bool { return slots[i].NodeID < slots[j].NodeID })
	return slots
}

// extraRunning is true while a replicated service scaled down still has
// tasks meant to run beyond its replica count.
func extraRunning(svc *api.Service, tasks []*api.Task) bool {
	r := svc.GetSpec().GetReplicated()
	if r == nil {
		return false
	}
	for _, t := range tasks {
		if t.GetSlot() > r.GetReplicas() && t.GetDesiredState() == api.TaskState_TASK_STATE_RUNNING &&
			t.GetStatus().GetState() <= api.TaskState_TASK_STATE_RUNNING {
			return true
		}
	}
	return false
}

// current picks a slot's current task: the newest one meant to run the
// current spec, else the newest of all (which shows why the slot is empty).
func current(ts []*api.Task, svc *api.Service) *api.Task {
	var best, newest *api.Task
	for _, t := range ts {
		if newer(t, newest) {
			newest = t
		}
		if t.GetDesiredState() == api.TaskState_TASK_STATE_RUNNING && ofCurrentSpec(t, svc) && newer(t, best) {
			best = t
		}
	}
	if best != nil {
		return best
	}
	return newest
}

func newer(a, b *api.Task) bool {
	if b == nil {
		return true
	}
	ta, tb := a.GetMeta().GetCreatedAt().AsTime(), b.GetMeta().GetCreatedAt().AsTime()
	if !ta.Equal(tb) {
		return ta.After(tb)
	}
	return a.GetMeta().GetVersion() > b.GetMeta().GetVersion()
}

func slotOf(t *api.Task, svc *api.Service) SlotProgress {
	if t == nil {
		return SlotProgress{State: api.TaskState_TASK_STATE_NEW, Message: "no task yet"}
	}
	st := t.GetStatus()
	return SlotProgress{
		Slot: t.GetSlot(), NodeID: t.GetNodeId(), TaskID: t.GetId(),
		State: st.GetState(), Message: st.GetMessage(), Err: st.GetErr(), Progress: st.GetProgress(),
		Done: t.GetDesiredState() == api.TaskState_TASK_STATE_RUNNING && ofCurrentSpec(t, svc) &&
			st.GetState() == api.TaskState_TASK_STATE_RUNNING,
	}
}

func failures(tasks []*api.Task, svc *api.Service, reported map[string]bool) []TaskFailure {
	var out []TaskFailure
	for _, t := range tasks {
		st := t.GetStatus().GetState()
		if !ofCurrentSpec(t, svc) || reported[t.GetId()] ||
			(st != api.TaskState_TASK_STATE_FAILED && st != api.TaskState_TASK_STATE_REJECTED) {
			continue
		}
		if reported != nil {
			reported[t.GetId()] = true
		}
		out = append(out, TaskFailure{TaskID: t.GetId(), NodeID: t.GetNodeId(), Slot: t.GetSlot(), State: st, Err: t.GetStatus().GetErr()})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].TaskID < out[j].TaskID })
	return out
}
