package worker

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/internal/logfile"
	"github.com/warren-project/warren/internal/runtime"
)

// action is what a task needs next.
type action int

const (
	actIdle    action = iota // nothing to do until the task changes
	actReport                // report the next status; no container work
	actPrepare               // get the image, create the container → READY
	actStart                 // start the container → RUNNING
	actAdopt                 // the container already runs: report RUNNING
	actWait                  // wait for the container to exit
	actStop                  // stop the container → SHUTDOWN
	actRemove                // delete the container and its log → REMOVE
)

// decide is the agent's state machine: from the task (its desired state),
// its status, its container (nil when there is none) and whether it has a
// health check, it returns the next action and the status to report once
// the action succeeds. It is a pure function; observed state only moves
// forward from st. A task with a check stays STARTING (its health
// STARTING) from the start of its container until the first healthy probe.
func decide(t *api.Task, st *api.TaskStatus, c *runtime.Container, checked bool, now time.Time) (action, *api.TaskStatus) {
	state := st.GetState()
	switch {
	case t.GetDesiredState() == api.TaskState_TASK_STATE_REMOVE && state >= api.TaskState_TASK_STATE_COMPLETE && state < api.TaskState_TASK_STATE_REMOVE:
		// Reporting REMOVE tells the manager the container is gone, so
		// `service rm` returns only once nothing is left on the node.
		return actRemove, advance(st, api.TaskState_TASK_STATE_REMOVE, "container removed", now)
	case state >= api.TaskState_TASK_STATE_COMPLETE:
		return actIdle, nil
	case t.GetDesiredState() > api.TaskState_TASK_STATE_RUNNING:
		return actStop, advance(st, api.TaskState_TASK_STATE_SHUTDOWN, "stopped by manager", now)
	case checked && state == api.TaskState_TASK_STATE_STARTING && healthStarted(st):
		// Started: waiting for a healthy probe, or the exit.
		return actWait, nil
	case c != nil && c.State == runtime.StateRunning && state < api.TaskState_TASK_STATE_RUNNING:
		next := started(st, checked, "adopted the running container", now)
		next.ContainerId, next.Pid = c.ID, c.Pid
		return actAdopt, next
	case state < api.TaskState_TASK_STATE_ACCEPTED:
		return actReport, advance(st, api.TaskState_TASK_STATE_ACCEPTED, "accepted", now)
	case state < api.TaskState_TASK_STATE_PREPARING:
		return actReport, advance(st, api.TaskState_TASK_STATE_PREPARING, "preparing", now)
	case state < api.TaskState_TASK_STATE_READY:
		return actPrepare, advance(st, api.TaskState_TASK_STATE_READY, "container created", now)
	case state < api.TaskState_TASK_STATE_STARTING:
		return actReport, advance(st, api.TaskState_TASK_STATE_STARTING, "starting", now)
	case state < api.TaskState_TASK_STATE_RUNNING:
		return actStart, started(st, checked, "started", now)
	}
	return actWait, nil
}

// started is the status of a task whose container runs: RUNNING, or with a
// health check STARTING until the check passes.
func started(st *api.TaskStatus, checked bool, msg string, now time.Time) *api.TaskStatus {
	if !checked {
		return advance(st, api.TaskState_TASK_STATE_RUNNING, msg, now)
	}
	next := advance(st, api.TaskState_TASK_STATE_STARTING, msg+"; waiting for the health check", now)
	next.Health = &api.Health{State: healthStarting}
	return next
}

// healthStarted tells a STARTING task whose container was started (its
// health is set) from one about to start (a restart round has none).
func healthStarted(st *api.TaskStatus) bool {
	return st.GetHealth().GetState() != healthNone
}

// stepResult is the outcome of one step.
type stepResult struct {
	status *api.TaskStatus // the next status to report; nil if unchanged
	delay  time.Duration   // pause before the next step (a restart back-off)
	idle   bool            // nothing to do until the task changes
}

// taskExec carries out steps on the executor. It holds configuration only;
// a task's memory is its status and its runState.
type taskExec struct {
	rt            runtime.Executor
	nodeID        string
	logDir        string
	now           func() time.Time
	progressEvery time.Duration
	stopGrace     time.Duration
	restart       restartConfig
	// archives loads imported images; nil pulls every missing image.
	archives archiveWaiter
	// imagesChanged, if set, is told when a pull added an image.
	imagesChanged func(ctx context.Context)
	// net is the node's overlay; nil without one.
	net         Network
	drainPeriod time.Duration
}

// archiveWaiter waits for the load of an imported image archive (the
// agent's imageLoader). handled is false when no known archive holds ref.
type archiveWaiter interface {
	await(ctx context.Context, ref string, progress func(string)) (handled bool, err error)
}

// step advances task t, whose status is st, by one step. A returned error
// is temporary (the runtime failed, or ctx ended): the caller retries.
// Failures that belong to the task come back as a REJECTED or FAILED status.
// report receives intermediate statuses (pull progress).
func (x *taskExec) step(ctx context.Context, t *api.Task, st *api.TaskStatus, rs *runState, report func(*api.TaskStatus)) (stepResult, error) {
	res, err := x.act(ctx, t, st, rs, report)
	if err == nil && onOverlay(t) && res.status != nil && res.status.GetState() >= api.TaskState_TASK_STATE_COMPLETE &&
		st.GetState() < api.TaskState_TASK_STATE_COMPLETE {
		// Stopped for good: its address goes back to managers with this
		// status, so the namespace must be gone first.
		if err := x.detach(t.GetId()); err != nil {
			return stepResult{}, fmt.Errorf("release the network of task %s: %w", t.GetId(), err)
		}
	}
	return res, err
}

func (x *taskExec) act(ctx context.Context, t *api.Task, st *api.TaskStatus, rs *runState, report func(*api.TaskStatus)) (stepResult, error) {
	c, err := x.inspect(ctx, t.GetId())
	if err != nil {
		return stepResult{}, err
	}
	hc, err := x.healthCheck(ctx, t, st, c, rs)
	if err != nil {
		return stepResult{}, err
	}
	act, next := decide(t, st, c, hc != nil, x.now())
	switch act {
	case actIdle:
		return stepResult{idle: true}, nil
	case actAdopt:
		rs.startedAt, rs.health = c.StartedAt, nil
		return stepResult{status: next}, nil
	case actPrepare:
		return x.prepare(ctx, t, st, next, report)
	case actStart:
		return x.start(ctx, t, st, next, rs)
	case actWait:
		if hc != nil {
			return x.watch(ctx, t, st, c, rs, hc)
		}
		return x.wait(ctx, t, st, rs)
	case actStop:
		if c != nil && c.State == runtime.StateRunning {
			if err := x.drain(ctx, t); err != nil {
				return stepResult{}, err
			}
		}
		return x.stop(ctx, t, next)
	case actRemove:
		if err := x.destroy(ctx, t.GetId(), x.grace(t)); err != nil {
			return stepResult{}, err
		}
		return stepResult{status: next}, nil
	}
	return stepResult{status: next}, nil
}

func (x *taskExec) inspect(ctx context.Context, id string) (*runtime.Container, error) {
	c, err := x.rt.Inspect(ctx, id)
	if errors.Is(err, runtime.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("inspect container %s: %w", id, err)
	}
	return &c, nil
}

// prepare gets the image and creates the container. A task that cannot be
// prepared is REJECTED: it never ran, so the orchestrator may place it anew.
func (x *taskExec) prepare(ctx context.Context, t *api.Task, st, next *api.TaskStatus, report func(*api.TaskStatus)) (stepResult, error) {
	progress := func(p string) {
		s := advance(st, st.GetState(), st.GetMessage(), x.now())
		s.Progress = p
		report(s)
	}
	if err := x.ensureContainer(ctx, t, progress); err != nil {
		if ctx.Err() != nil {
			return stepResult{}, ctx.Err()
		}
		return stepResult{status: failed(next, api.TaskState_TASK_STATE_REJECTED, err)}, nil
	}
	next.ContainerId = t.GetId()
	return stepResult{status: next}, nil
}

// ensureContainer makes sure the task's container exists: the image is
// there (pulled if not), and the container is created, or found.
func (x *taskExec) ensureContainer(ctx context.Context, t *api.Task, progress func(string)) error {
	image := t.GetSpec().GetContainer().GetImage()
	ref, err := x.rt.NormalizeRef(image)
	if err != nil {
		return fmt.Errorf("image %q: %w", image, err)
	}
	has, err := x.rt.HasImage(ctx, ref)
	if err != nil {
		return fmt.Errorf("look up image %s: %w", ref, err)
	}
	if !has {
		if err := x.obtain(ctx, ref, pullAuth(t, ref), progress); err != nil {
			return fmt.Errorf("image %s not found: %w", image, err)
		}
	}
	spec := containerSpec(t, x.nodeID, ref, logPath(x.logDir, t.GetId()))
	if spec.Network, err = x.attach(ctx, t); err != nil {
		return fmt.Errorf("network: %w", err)
	}
	err = x.rt.Create(ctx, spec)
	if err != nil && !errors.Is(err, runtime.ErrAlreadyExists) { // one that exists is ours: adopt it
		return fmt.Errorf("create container: %w", err)
	}
	return nil
}

// start starts (or restarts in place) the container, making it again if
// it has gone. A container that already runs is simply reported. A start
// that fails counts as a failed run: the restart policy decides.
func (x *taskExec) start(ctx context.Context, t *api.Task, st, next *api.TaskStatus, rs *runState) (stepResult, error) {
	err := x.rt.Start(ctx, t.GetId())
	if errors.Is(err, runtime.ErrNotFound) {
		if err = x.ensureContainer(ctx, t, nil); err == nil {
			err = x.rt.Start(ctx, t.GetId())
		}
	}
	if err != nil && !errors.Is(err, runtime.ErrAlreadyExists) {
		if ctx.Err() != nil {
			return stepResult{}, ctx.Err()
		}
		now := x.now()
		after, delay := afterExit(t, st, runtime.Exit{Code: -1, At: now}, rs, now, x.restart, "start container: "+err.Error())
		return stepResult{status: after, delay: delay}, nil
	}
	c, err := x.rt.Inspect(ctx, t.GetId())
	if err != nil {
		// It started; the next step finds it running and adopts it.
		return stepResult{}, fmt.Errorf("inspect started container %s: %w", t.GetId(), err)
	}
	rs.startedAt, rs.health = c.StartedAt, nil
	next.ContainerId, next.Pid = c.ID, c.Pid
	return stepResult{status: next}, nil
}

// wait waits for the container to exit and applies the restart policy.
func (x *taskExec) wait(ctx context.Context, t *api.Task, st *api.TaskStatus, rs *runState) (stepResult, error) {
	exit, err := x.waitExit(ctx, t.GetId())
	if err != nil {
		return stepResult{}, err
	}
	return x.exited(t, st, rs, exit), nil
}

func (x *taskExec) waitExit(ctx context.Context, id string) (runtime.Exit, error) {
	ch, err := x.rt.Wait(ctx, id)
	if errors.Is(err, runtime.ErrNotFound) {
		return runtime.Exit{Code: exitGone, At: x.now()}, nil
	}
	if err != nil {
		return runtime.Exit{}, fmt.Errorf("wait for container %s: %w", id, err)
	}
	return receiveExit(ctx, id, ch)
}

// receiveExit receives the exit of container id from ch, a Wait channel.
func receiveExit(ctx context.Context, id string, ch <-chan runtime.Exit) (runtime.Exit, error) {
	select {
	case exit, ok := <-ch:
		return checkExit(ctx, id, exit, ok)
	case <-ctx.Done():
		return runtime.Exit{}, ctx.Err()
	}
}

// checkExit tells a real exit from a wait that ended without one (ok is
// false when the channel was closed).
func checkExit(ctx context.Context, id string, exit runtime.Exit, ok bool) (runtime.Exit, error) {
	switch {
	case ctx.Err() != nil:
		return runtime.Exit{}, ctx.Err()
	case !ok:
		return runtime.Exit{}, fmt.Errorf("wait for container %s: no exit reported", id)
	case exit.Err != nil:
		return runtime.Exit{}, fmt.Errorf("wait for container %s: %w", id, exit.Err)
	}
	return exit, nil
}

// stop stops the container, keeping it (and its log) until the task is
// removed from the node.
func (x *taskExec) stop(ctx context.Context, t *api.Task, next *api.TaskStatus) (stepResult, error) {
	if err := x.rt.Stop(ctx, t.GetId(), x.grace(t)); err != nil && !errors.Is(err, runtime.ErrNotFound) {
		return stepResult{}, fmt.Errorf("stop container %s: %w", t.GetId(), err)
	}
	if c, err := x.rt.Inspect(ctx, t.GetId()); err == nil && c.State == runtime.StateStopped {
		next.LastExit = exitInfo(c.ExitCode, c.ExitedAt)
	}
	next.Pid = 0
	return stepResult{status: next}, nil
}

// destroy stops and removes task id's container and deletes its log.
func (x *taskExec) destroy(ctx context.Context, id string, grace time.Duration) error {
	if err := x.rt.Stop(ctx, id, grace); err != nil && !errors.Is(err, runtime.ErrNotFound) {
		return fmt.Errorf("stop container %s: %w", id, err)
	}
	if err := x.rt.Remove(ctx, id); err != nil {
		return fmt.Errorf("remove container %s: %w", id, err)
	}
	if err := x.detach(id); err != nil {
		return fmt.Errorf("release the network of task %s: %w", id, err)
	}
	if p := logPath(x.logDir, id); p != "" {
		if err := logfile.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("delete log of task %s: %w", id, err)
		}
	}
	return nil
}

func (x *taskExec) grace(t *api.Task) time.Duration {
	if g := t.GetSpec().GetContainer().GetStopGracePeriod(); g != nil && g.AsDuration() > 0 {
		return g.AsDuration()
	}
	return x.stopGrace
}

// failed turns next into a failure state with err, for a person to read.
func failed(next *api.TaskStatus, s api.TaskState, err error) *api.TaskStatus {
	out := advance(next, s, err.Error(), next.GetTimestamp().AsTime())
	out.Err, out.Pid = err.Error(), 0
	return out
}
