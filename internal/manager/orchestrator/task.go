package orchestrator

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/internal/ids"
)

// Task states, short.
const (
	stateNew       = api.TaskState_TASK_STATE_NEW
	stateAssigned  = api.TaskState_TASK_STATE_ASSIGNED
	stateRunning   = api.TaskState_TASK_STATE_RUNNING
	stateComplete  = api.TaskState_TASK_STATE_COMPLETE
	stateShutdown  = api.TaskState_TASK_STATE_SHUTDOWN
	stateFailed    = api.TaskState_TASK_STATE_FAILED
	stateRejected  = api.TaskState_TASK_STATE_REJECTED
	stateRemove    = api.TaskState_TASK_STATE_REMOVE
	stateOrphaned  = api.TaskState_TASK_STATE_ORPHANED
	defaultHistory = 5
)

// NewID returns a new random object ID: 25 lowercase base32 characters
// (125 bits), the format of every stored object's ID.
func NewID() string { return ids.New() }

// newTask makes the task that fills a slot (replicated) or a node (global)
// from the service's current spec. The store sets its meta.
func newTask(svc *api.Service, slot uint64, nodeID, message string, now time.Time) *api.Task {
	var spec *api.TaskSpec
	if s := svc.GetSpec().GetTask(); s != nil {
		spec = proto.Clone(s).(*api.TaskSpec)
	}
	return &api.Task{
		Id:           NewID(),
		Meta:         &api.Meta{},
		ServiceId:    svc.GetId(),
		ServiceName:  svc.GetSpec().GetName(),
		Slot:         slot,
		NodeId:       nodeID,
		Spec:         spec,
		SpecVersion:  svc.GetSpecVersion(),
		DesiredState: stateRunning,
		Status: &api.TaskStatus{
			State:     stateNew,
			Message:   message,
			Timestamp: timestamppb.New(now),
		},
	}
}

func observed(t *api.Task) api.TaskState { return t.GetStatus().GetState() }

// isCurrent tells whether managers still want the task to run.
func isCurrent(t *api.Task) bool { return t.GetDesiredState() <= stateRunning }

// statusTime is when the task's status last changed: the node's timestamp,
// or the store's time of the write when the node gave none.
func statusTime(t *api.Task) time.Time {
	if ts := t.GetStatus().GetTimestamp(); ts != nil {
		return ts.AsTime()
	}
	return t.GetMeta().GetUpdatedAt().AsTime()
}

// sortNewestFirst orders tasks by creation, newest first; the ID breaks ties
// so the order never depends on how the store listed them.
func sortNewestFirst(tasks []*api.Task) {
	slices.SortFunc(tasks, func(a, b *api.Task) int {
		ta, tb := a.GetMeta().GetCreatedAt().AsTime(), b.GetMeta().GetCreatedAt().AsTime()
		if c := tb.Compare(ta); c != 0 {
			return c
		}
		return cmp.Compare(b.GetId(), a.GetId())
	})
}

// stateName is a task state as a person reads it: "rejected".
func stateName(s api.TaskState) string {
	return strings.ToLower(strings.TrimPrefix(s.String(), "TASK_STATE_"))
}

// endReason says why a task that ended while it was wanted must be replaced.
func endReason(t *api.Task) string {
	st := observed(t)
	detail := t.GetStatus().GetErr()
	if detail == "" {
		detail = t.GetStatus().GetMessage()
	}
	what := stateName(st)
	if st == stateShutdown || st == stateRemove {
		what = "stopped unexpectedly (" + what + ")"
	}
	if detail == "" {
		return what
	}
	return what + ": " + detail
}

// nodeLabel names a node for a person: its ID, and its hostname when known.
func nodeLabel(n *api.Node) string {
	if h := n.GetDescription().GetHostname(); h != "" && h != n.GetId() {
		return fmt.Sprintf("%s (%s)", n.GetId(), h)
	}
	return n.GetId()
}

// backoffDelay is base doubled for each failure after the first, capped.
func backoffDelay(base time.Duration, failures int, max time.Duration) time.Duration {
	d := base
	for i := 1; i < failures && d < max; i++ {
		d *= 2
	}
	return min(d, max)
}
