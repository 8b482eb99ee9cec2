package dispatcher

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/internal/state"
)

// maxStatusWrite bounds how many task statuses go into one store write, so
// that one Raft entry stays small.
const maxStatusWrite = 500

// statusQueue holds task status reports until they are written: the latest
// per task, so a task that moves fast costs one write per batch. A single
// writer drains it: under load reports pile up while a write is in flight
// and go out together; when idle, a report is written at once.
type statusQueue struct {
	mu      sync.Mutex
	pending map[string]*api.TaskStatus
	wake    chan struct{}
}

func newStatusQueue() *statusQueue {
	return &statusQueue{pending: map[string]*api.TaskStatus{}, wake: make(chan struct{}, 1)}
}

// add queues updates; of two statuses of a task the later one stays.
func (q *statusQueue) add(updates []*api.TaskStatusUpdate) {
	if len(updates) == 0 {
		return
	}
	q.mu.Lock()
	for _, u := range updates {
		q.putLocked(u.GetTaskId(), u.GetStatus())
	}
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

func (q *statusQueue) putLocked(taskID string, st *api.TaskStatus) {
	if old, ok := q.pending[taskID]; ok && state.StatusLess(st, old) {
		return
	}
	q.pending[taskID] = st
}

// take removes and returns up to max queued updates, ordered by task ID.
func (q *statusQueue) take(max int) []*api.TaskStatusUpdate {
	q.mu.Lock()
	defer q.mu.Unlock()
	ids := make([]string, 0, len(q.pending))
	for id := range q.pending {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	if len(ids) > max {
		ids = ids[:max]
	}
	out := make([]*api.TaskStatusUpdate, 0, len(ids))
	for _, id := range ids {
		out = append(out, &api.TaskStatusUpdate{TaskId: id, Status: q.pending[id]})
		delete(q.pending, id)
	}
	return out
}

// requeue puts back updates whose write failed, unless newer ones came.
func (q *statusQueue) requeue(updates []*api.TaskStatusUpdate) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, u := range updates {
		q.putLocked(u.GetTaskId(), u.GetStatus())
	}
}

func (q *statusQueue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.pending)
}

// run writes queued updates until ctx ends. A failed write is retried after
// a pause that doubles from retry up to retryMax.
func (q *statusQueue) run(ctx context.Context, write func(context.Context, []*api.TaskStatusUpdate) error, retry, retryMax time.Duration, log *slog.Logger) {
	pause := retry
	for {
		batch := q.take(maxStatusWrite)
		if len(batch) == 0 {
			select {
			case <-q.wake:
				continue
			case <-ctx.Done():
				return
			}
		}
		err := write(ctx, batch)
		if err == nil {
			pause = retry
			continue
		}
		q.requeue(batch)
		if ctx.Err() != nil {
			return
		}
		log.Warn("cannot write task status; will retry", "tasks", len(batch), "retry.in", pause, "err", err)
		select {
		case <-time.After(pause):
		case <-ctx.Done():
			return
		}
		pause = min(2*pause, retryMax)
	}
}

// writeStatuses writes a batch of task statuses in one store update. The
// store keeps a status only if it moves the task forward.
func (d *Dispatcher) writeStatuses(ctx context.Context, batch []*api.TaskStatusUpdate) error {
	err := d.store.Update(ctx, func(tx state.Tx) error {
		for _, u := range batch {
			if err := tx.UpdateTaskStatus(u.GetTaskId(), u.GetStatus()); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil && d.log.Enabled(ctx, slog.LevelDebug) {
		ids := make([]string, len(batch))
		for i, u := range batch {
			ids[i] = u.GetTaskId()
		}
		d.log.Debug("task status written", "tasks", strings.Join(ids, ","))
	}
	return err
}
