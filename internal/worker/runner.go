package worker

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/warren-project/warren/api"
)

// runner drives one task: one goroutine taking one step at a time until the
// task leaves the node. A change of the desired state interrupts the step
// in progress (a wait for the exit, a restart back-off, a pull), so the next
// step sees it at once.
type runner struct {
	id       string
	x        *taskExec
	log      *slog.Logger
	report   func(*api.TaskStatus)
	finish   func(*runner) bool // after teardown: true when the runner is done for good
	retryMin time.Duration
	retryMax time.Duration

	mu         sync.Mutex
	task       *api.Task
	removed    bool
	changed    chan struct{} // a change the current step or pause must see
	cancelStep context.CancelFunc

	// Owned by the run goroutine.
	status *api.TaskStatus
	rs     runState
}

// newRunner starts from the status the managers have: observed state only
// moves forward, so a task RUNNING with two restarts goes on from there.
func (a *Agent) newRunner(t *api.Task) *runner {
	st := t.GetStatus()
	if st == nil {
		st = &api.TaskStatus{}
	}
	return &runner{
		id:       t.GetId(),
		x:        a.exec,
		log:      a.log.With("task.id", t.GetId(), "service.name", t.GetServiceName()),
		report:   func(s *api.TaskStatus) { a.rep.report(t.GetId(), s) },
		finish:   a.finish,
		retryMin: a.cfg.RetryDelay,
		retryMax: a.cfg.RestartMaxDelay,
		task:     t,
		changed:  make(chan struct{}, 1),
		status:   proto.Clone(st).(*api.TaskStatus),
	}
}

// update gives the runner a newer version of its task.
func (r *runner) update(t *api.Task) {
	r.mu.Lock()
	defer r.mu.Unlock()
	changed := r.removed || t.GetDesiredState() != r.task.GetDesiredState()
	r.task, r.removed = t, false
	if changed {
		r.interruptLocked()
	}
}

// remove tells the runner its task left the node: it tears the container
// down, then ends.
func (r *runner) remove() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.removed = true
	r.interruptLocked()
}

func (r *runner) interruptLocked() {
	if r.cancelStep != nil {
		r.cancelStep()
	}
	select {
	case r.changed <- struct{}{}:
	default:
	}
}

// next returns what the next step works on, and a context that a change
// of the task cancels.
func (r *runner) next(ctx context.Context) (*api.Task, bool, context.Context, context.CancelFunc) {
	r.mu.Lock()
	defer r.mu.Unlock()
	select {
	case <-r.changed: // seen now
	default:
	}
	stepCtx, cancel := context.WithCancel(ctx)
	r.cancelStep = cancel
	return r.task, r.removed, stepCtx, cancel
}

func (r *runner) run(ctx context.Context) {
	retry := r.retryMin
	for ctx.Err() == nil {
		t, removed, stepCtx, done := r.next(ctx)
		var res stepResult
		var err error
		if removed {
			var finished bool
			finished, err = r.teardown(ctx, t)
			if finished {
				done()
				return
			}
		} else {
			res, err = r.x.step(stepCtx, t, r.status, &r.rs, r.report)
		}
		interrupted := stepCtx.Err() != nil
		done()
		if err != nil {
			if !interrupted {
				r.log.Warn("task step failed; will retry", "err", err, "retry.in", retry)
				r.pause(ctx, retry)
				retry = min(2*retry, r.retryMax)
			}
			continue
		}
		retry = r.retryMin
		if res.status != nil {
			r.log.Debug("task status", "state.transition", r.status.GetState().String()+"->"+res.status.GetState().String(), "message", res.status.GetMessage())
			r.status = res.status
			r.report(res.status)
		}
		switch {
		case res.idle:
			r.pause(ctx, 0)
		case res.delay > 0:
			r.pause(ctx, res.delay)
		}
	}
}

// teardown removes the container of a task that left the node. finished
// says the runner is done (or the agent is stopping: the next agent's
// orphan sweep will finish the job).
func (r *runner) teardown(ctx context.Context, t *api.Task) (finished bool, err error) {
	if ctx.Err() != nil {
		return true, nil
	}
	if r.status.GetState() == api.TaskState_TASK_STATE_RUNNING {
		if err := r.x.drain(ctx, t); err != nil {
			return false, err
		}
	}
	if err := r.x.destroy(ctx, r.id, r.x.grace(t)); err != nil {
		return false, err
	}
	r.log.Info("task left the node; its container is removed")
	return r.finish(r), nil
}

// pause waits for d (forever when d is 0), a change of the task, or ctx.
func (r *runner) pause(ctx context.Context, d time.Duration) {
	var expired <-chan time.Time
	if d > 0 {
		timer := time.NewTimer(d)
		defer timer.Stop()
		expired = timer.C
	}
	select {
	case <-ctx.Done():
	case <-r.changed:
	case <-expired:
	}
}
