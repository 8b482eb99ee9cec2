package worker

import (
	"slices"
	"sync"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/internal/state"
)

// maxReportBatch bounds the updates in one TaskStatusReport message.
const maxReportBatch = 500

// reporter holds the latest status of every task until a session sends it.
// Reports of one task coalesce (latest wins); after a reconnect everything
// is sent again, since the manager may have missed some.
type reporter struct {
	mu      sync.Mutex
	latest  map[string]*api.TaskStatus
	pending map[string]bool
	wake    chan struct{}
}

func newReporter() *reporter {
	return &reporter{latest: map[string]*api.TaskStatus{}, pending: map[string]bool{}, wake: make(chan struct{}, 1)}
}

// report records st for task id, unless an already recorded status is
// later (a late pull progress after READY, say).
func (r *reporter) report(id string, st *api.TaskStatus) {
	r.mu.Lock()
	if old := r.latest[id]; old != nil && state.StatusLess(st, old) {
		r.mu.Unlock()
		return
	}
	r.latest[id] = st
	r.pending[id] = true
	r.mu.Unlock()
	r.signal()
}

func (r *reporter) signal() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// forget drops a task that left the node.
func (r *reporter) forget(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.latest, id)
	delete(r.pending, id)
}

// resendAll marks every known status as unsent, for a new session.
func (r *reporter) resendAll() {
	r.mu.Lock()
	for id := range r.latest {
		r.pending[id] = true
	}
	r.mu.Unlock()
	r.signal()
}

// take returns up to max unsent updates, ordered by task ID, as sent.
func (r *reporter) take(max int) []*api.TaskStatusUpdate {
	r.mu.Lock()
	defer r.mu.Unlock()
	ids := make([]string, 0, len(r.pending))
	for id := range r.pending {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	if len(ids) > max {
		ids = ids[:max]
	}
	out := make([]*api.TaskStatusUpdate, 0, len(ids))
	for _, id := range ids {
		out = append(out, &api.TaskStatusUpdate{TaskId: id, Status: r.latest[id]})
		delete(r.pending, id)
	}
	return out
}
