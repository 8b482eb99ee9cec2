package clienttest

import (
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/warren-project/warren/api"
)

// next is the path a healthy task takes, one state per Step.
var next = map[api.TaskState]api.TaskState{
	api.TaskState_TASK_STATE_NEW:       api.TaskState_TASK_STATE_PENDING,
	api.TaskState_TASK_STATE_PENDING:   api.TaskState_TASK_STATE_ASSIGNED,
	api.TaskState_TASK_STATE_ASSIGNED:  api.TaskState_TASK_STATE_PREPARING,
	api.TaskState_TASK_STATE_PREPARING: api.TaskState_TASK_STATE_STARTING,
	api.TaskState_TASK_STATE_STARTING:  api.TaskState_TASK_STATE_RUNNING,
}

// Step moves every task one state along: tasks meant to run advance toward
// RUNNING (or are rejected, see Reject), tasks meant to stop shut down, and
// tasks meant to be removed disappear. Failed tasks are replaced.
func (f *Fake) Step() {
	f.mu.Lock()
	defer f.mu.Unlock()
	changed := false
	for _, t := range f.sortedTasks() {
		changed = f.stepTask(t) || changed
	}
	if !changed {
		return
	}
	idx := f.bump()
	for _, t := range f.tasks {
		if t.Meta.Version == 0 {
			t.Meta.Version = idx
		}
	}
	for _, s := range f.services {
		f.reconcile(s)
	}
}

// stepTask advances t; it marks a changed task with version 0, for Step to
// stamp. The caller holds mu.
func (f *Fake) stepTask(t *api.Task) bool {
	st := t.GetStatus().GetState()
	switch t.GetDesiredState() {
	case api.TaskState_TASK_STATE_REMOVE:
		delete(f.tasks, t.GetId())
		return true
	case api.TaskState_TASK_STATE_SHUTDOWN:
		if st > api.TaskState_TASK_STATE_RUNNING {
			return false
		}
		f.setState(t, api.TaskState_TASK_STATE_SHUTDOWN, "shutdown", "")
		return true
	}
	nxt, ok := next[st]
	if !ok {
		return false
	}
	if nxt == api.TaskState_TASK_STATE_STARTING {
		if msg, bad := f.rejects[t.GetSpec().GetContainer().GetImage()]; bad {
			f.setState(t, api.TaskState_TASK_STATE_REJECTED, "preparing failed", msg)
			return true
		}
	}
	if nxt == api.TaskState_TASK_STATE_ASSIGNED && t.GetNodeId() == "" && len(f.nodes) > 0 {
		t.NodeId = f.nodes[int(t.GetSlot())%len(f.nodes)].GetId()
	}
	f.setState(t, nxt, stateMessage(nxt), "")
	return true
}

func (f *Fake) setState(t *api.Task, s api.TaskState, msg, err string) {
	t.Status = &api.TaskStatus{State: s, Timestamp: f.now(), Message: msg, Err: err, RestartCount: t.GetStatus().GetRestartCount()}
	t.Meta.Version = 0
}

func stateMessage(s api.TaskState) string {
	return map[api.TaskState]string{
		api.TaskState_TASK_STATE_PENDING:   "waiting for a node",
		api.TaskState_TASK_STATE_ASSIGNED:  "assigned",
		api.TaskState_TASK_STATE_PREPARING: "preparing",
		api.TaskState_TASK_STATE_STARTING:  "starting",
		api.TaskState_TASK_STATE_RUNNING:   "started",
	}[s]
}

// reconcile makes the service's tasks match its spec: one task of the
// current task spec per slot (per node, for a global service), older or
// extra ones shut down. The caller holds mu and has bumped the index.
func (f *Fake) reconcile(svc *api.Service) {
	want := map[string]uint64{} // slot key -> slot
	if svc.GetSpec().GetGlobal() != nil {
		for _, n := range f.nodes {
			want[n.GetId()] = 0
		}
	} else {
		for s := uint64(1); s <= svc.GetSpec().GetReplicated().GetReplicas(); s++ {
			want[fmt.Sprint(s)] = s
		}
	}
	have := map[string]bool{}
	for _, t := range f.tasks {
		if t.GetServiceId() != svc.GetId() || t.GetDesiredState() != api.TaskState_TASK_STATE_RUNNING {
			continue
		}
		key := slotKey(svc, t)
		_, wanted := want[key]
		alive := t.GetStatus().GetState() <= api.TaskState_TASK_STATE_RUNNING
		// Like a real orchestrator, keep tasks whose spec did not change
		// (a scale changes the service's spec, not its tasks').
		current := t.GetSpecVersion() == svc.GetSpecVersion() || proto.Equal(t.GetSpec(), svc.GetSpec().GetTask())
		if wanted && alive && current && !have[key] {
			have[key] = true
			continue
		}
		t.DesiredState = api.TaskState_TASK_STATE_SHUTDOWN
		t.Meta.Version = f.index
	}
	for key, slot := range want {
		if !have[key] {
			f.newTask(svc, key, slot)
		}
	}
}

func slotKey(svc *api.Service, t *api.Task) string {
	if svc.GetSpec().GetGlobal() != nil {
		return t.GetNodeId()
	}
	return fmt.Sprint(t.GetSlot())
}

func (f *Fake) newTask(svc *api.Service, key string, slot uint64) {
	t := &api.Task{
		Id: f.newID("task"), Meta: f.meta(f.index), ServiceId: svc.GetId(), ServiceName: svc.GetSpec().GetName(),
		Slot: slot, Spec: proto.Clone(svc.GetSpec().GetTask()).(*api.TaskSpec), SpecVersion: svc.GetSpecVersion(),
		DesiredState: api.TaskState_TASK_STATE_RUNNING,
		Status:       &api.TaskStatus{State: api.TaskState_TASK_STATE_NEW, Timestamp: f.now(), Message: "created"},
	}
	if slot == 0 {
		t.NodeId = key
	}
	f.tasks[t.GetId()] = t
}
