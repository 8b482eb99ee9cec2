package orchestrator

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/warren-project/warren/api"
)

// rollingUpdate replaces units whose current task was made from an older
// spec version, update.parallelism at a time, stop-first. A batch starts
// only when every up-to-date task is running (or has ended) and update.delay
// has passed since the last of them got there. Everything it needs is in
// the store, so an update carries on across a manager restart.
//
// Only a change of the task template is an update: the API bumps
// spec_version for it, not for a change of replicas (which only scales).
// Frozen units (a global service's down node) are left for when they thaw.
// It returns how many units were out of date before this pass.
func (p *planner) rollingUpdate(units []*unit) int {
	version := p.service.GetSpecVersion()
	var stale []*unit
	inflight := 0
	var lastUp time.Time
	for _, u := range units {
		c := u.current
		switch {
		case c == nil || u.frozen:
		case c.GetSpecVersion() != version:
			stale = append(stale, u)
		case observed(c) < stateRunning:
			inflight++
		default:
			if ts := statusTime(c); ts.After(lastUp) {
				lastUp = ts
			}
		}
	}
	if len(stale) == 0 || inflight > 0 {
		return len(stale)
	}
	if d := p.service.GetSpec().GetUpdate().GetDelay().AsDuration(); d > 0 && !lastUp.IsZero() {
		if due := lastUp.Add(d); p.now.Before(due) {
			p.wakeAt(due)
			return len(stale)
		}
	}
	// Tasks that are not running gain most from the new spec: they go first.
	slices.SortFunc(stale, func(a, b *unit) int {
		ra, rb := observed(a.current) == stateRunning, observed(b.current) == stateRunning
		if ra != rb {
			if ra {
				return 1
			}
			return -1
		}
		return cmp.Or(cmp.Compare(a.slot, b.slot), cmp.Compare(a.nodeID, b.nodeID))
	})
	batch := max(p.service.GetSpec().GetUpdate().GetParallelism(), 1)
	reason := fmt.Sprintf("update to spec version %d", version)
	for _, u := range stale[:min(batch, uint64(len(stale)))] {
		p.replace(u, reason)
	}
	return len(stale)
}

// updateStatus keeps service.update_status in step: UPDATING with a count
// while out-of-date tasks exist or the last batch is not yet running,
// COMPLETED once it is. A service never updated has none. It is written
// only when its state or message changes.
func (p *planner) updateStatus(units []*unit, staleBefore int) {
	version := p.service.GetSpecVersion()
	total, fresh, inflight := 0, 0, 0
	for _, u := range units {
		c := u.current
		if c == nil || u.frozen {
			continue
		}
		total++
		if c.GetSpecVersion() == version {
			fresh++
			if observed(c) < stateRunning {
				inflight++
			}
		}
	}
	cur := p.service.GetUpdateStatus()
	updating := cur.GetState() == api.UpdateStatus_STATE_UPDATING
	var next *api.UpdateStatus
	switch {
	case staleBefore > 0 || (updating && inflight > 0):
		next = &api.UpdateStatus{
			State:     api.UpdateStatus_STATE_UPDATING,
			StartedAt: cur.GetStartedAt(),
			Message:   fmt.Sprintf("updating %d/%d", fresh, total),
		}
		if !updating {
			next.StartedAt = timestamppb.New(p.now)
		}
	case updating:
		next = &api.UpdateStatus{
			State:       api.UpdateStatus_STATE_COMPLETED,
			StartedAt:   cur.GetStartedAt(),
			CompletedAt: timestamppb.New(p.now),
			Message:     "update completed",
		}
	default:
		return
	}
	if cur.GetState() == next.GetState() && cur.GetMessage() == next.GetMessage() {
		return
	}
	p.service.UpdateStatus = next
	p.svcUpdate = p.service
}
