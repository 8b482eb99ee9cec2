package scheduler

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/internal/manager/allocator"
	"github.com/warren-project/warren/internal/spec"
	"github.com/warren-project/warren/internal/state"
)

// pass places every pending task and writes the decisions in one update.
func (r *runner) pass(ctx context.Context) {
	if !r.dirty || len(r.inflight) > 0 {
		// Waiting for our last write's events; each re-arms the timer.
		return
	}
	r.dirty = false
	if len(r.pending) == 0 {
		return
	}
	r.s.passes.Add(1)
	start := time.Now()
	decisions := Schedule(values(r.nodes), values(r.tasks), values(r.pending))
	inflight, err := r.write(ctx, decisions)
	if err != nil {
		if ctx.Err() != nil {
			return
		}
		r.s.log.Error("placement not written; will retry", "error", err, "retry.in", r.s.cfg.RetryInterval)
		r.dirty, r.burst = true, time.Now()
		r.timer.Reset(r.s.cfg.RetryInterval)
		return
	}
	r.inflight = inflight
	if len(inflight) > 0 {
		placed := 0
		for _, d := range decisions {
			if d.NodeID != "" {
				placed++
			}
		}
		r.s.log.Info("placement pass", "tasks.considered", len(decisions), "tasks.placed", placed,
			"tasks.written", len(inflight), "took", time.Since(start))
	}
}

// write applies the decisions in one store update and returns, for each task
// written, the version it had before. A task that changed since the cache saw
// it is skipped: its event brings another pass, on the newer state.
func (r *runner) write(ctx context.Context, decisions []Decision) (map[string]uint64, error) {
	now := timestamppb.New(r.s.cfg.Now())
	var written map[string]uint64
	err := r.s.store.Update(ctx, func(tx state.Tx) error {
		// Update may run this again after a conflict: start afresh.
		written = map[string]uint64{}
		nodes := map[string]*api.Node{}
		addrs := map[string]map[netip.Addr]bool{}
		for _, d := range decisions {
			t := tx.GetTask(d.TaskID)
			if t == nil || r.tasks[d.TaskID].GetMeta().GetVersion() != t.GetMeta().GetVersion() || !isPending(t) {
				continue
			}
			if !r.apply(tx, t, d, now, nodes, addrs) {
				continue
			}
			base := t.GetMeta().GetVersion()
			if err := tx.Update(t); err != nil {
				return fmt.Errorf("task %s: %w", t.GetId(), err)
			}
			written[t.GetId()] = base
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("scheduler: write %d placement decisions: %w", len(decisions), err)
	}
	return written, nil
}

// apply changes t as decided and tells whether there is anything to write.
func (r *runner) apply(tx state.ReadTx, t *api.Task, d Decision, now *timestamppb.Timestamp, nodes map[string]*api.Node, addrs map[string]map[netip.Addr]bool) bool {
	if d.NodeID == "" {
		return pending(t, d.Reason, now)
	}
	n, ok := nodes[d.NodeID]
	if !ok {
		n = tx.GetNode(d.NodeID)
		nodes[d.NodeID] = n
	}
	// The cache may lag the store: a node that went away or stopped taking
	// tasks since is left alone; its event brings another pass.
	if n.GetStatus().GetState() != api.NodeState_NODE_STATE_READY ||
		n.GetSpec().GetAvailability() != api.NodeAvailability_NODE_AVAILABILITY_ACTIVE {
		return false
	}
	name := n.GetDescription().GetHostname()
	if name == "" {
		name = n.GetId()
	}
	if t.GetSpec().GetContainer().GetNetwork() == spec.NetworkOverlay {
		used, ok := addrs[n.GetId()]
		if !ok {
			used = allocator.UsedAddresses(tx, n.GetId())
			addrs[n.GetId()] = used
		}
		a, err := allocator.TaskAddress(n, used, r.lastAddr[n.GetId()])
		if err != nil {
			return pending(t, "no overlay address on node "+name+": "+err.Error(), now)
		}
		r.lastAddr[n.GetId()] = a
		t.Address = a.String()
	}
	t.NodeId = d.NodeID
	t.Status = &api.TaskStatus{State: api.TaskState_TASK_STATE_ASSIGNED, Message: "assigned to node " + name, Timestamp: now}
	return true
}

// pending keeps t pending for reason and tells whether that is news.
func pending(t *api.Task, reason string, now *timestamppb.Timestamp) bool {
	msg := "pending: " + reason
	if t.GetStatus().GetState() == api.TaskState_TASK_STATE_PENDING && t.GetStatus().GetMessage() == msg {
		return false // no write churn: nothing new to say
	}
	t.Status = &api.TaskStatus{State: api.TaskState_TASK_STATE_PENDING, Message: msg, Timestamp: now}
	return true
}

func values[T any](m map[string]T) []T {
	out := make([]T, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	return out
}
