package worker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/internal/runtime"
)

// healthCheck returns task t's check, nil for none, once its container may
// run: from the spec and the image's HEALTHCHECK, looked up once per runner.
func (x *taskExec) healthCheck(ctx context.Context, t *api.Task, st *api.TaskStatus, c *runtime.Container, rs *runState) (*healthCheck, error) {
	state := st.GetState()
	if rs.checkKnown || state >= api.TaskState_TASK_STATE_COMPLETE || t.GetDesiredState() > api.TaskState_TASK_STATE_RUNNING ||
		(c == nil && state < api.TaskState_TASK_STATE_STARTING) {
		return rs.check, nil // known, or not needed yet
	}
	spec := t.GetSpec().GetContainer().GetHealthcheck()
	var img *runtime.Healthcheck
	if !spec.GetDisabled() {
		var err error
		if img, err = x.imageHealthcheck(ctx, t); err != nil {
			return nil, err
		}
	}
	rs.check, rs.checkKnown = resolveHealth(spec, img), true
	return rs.check, nil
}

// imageHealthcheck is the HEALTHCHECK of task t's image. An image gone
// from the node (removed under a running container) declares none.
func (x *taskExec) imageHealthcheck(ctx context.Context, t *api.Task) (*runtime.Healthcheck, error) {
	ref, err := x.rt.NormalizeRef(t.GetSpec().GetContainer().GetImage())
	if err != nil {
		return nil, nil // prepare rejects the task
	}
	cfg, err := x.rt.ImageConfig(ctx, ref)
	if errors.Is(err, runtime.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the config of image %s: %w", ref, err)
	}
	return cfg.Healthcheck, nil
}

// healthFor returns the health of the container's current run, starting it
// from the status (STARTING after a start, the last report after an agent
// restart) when the runner has none.
func (rs *runState) healthFor(c *runtime.Container, st *api.TaskStatus, now time.Time) *healthRun {
	if rs.health != nil {
		return rs.health
	}
	h := &api.Health{State: healthStarting}
	if prev := st.GetHealth(); prev.GetState() != healthNone {
		h = proto.Clone(prev).(*api.Health)
	}
	started := c.StartedAt
	if started.IsZero() {
		started = now
	}
	rs.health = &healthRun{startedAt: started, health: h}
	return rs.health
}

// watch waits for the exit of a container that has a health check, probing
// it meanwhile. It returns when the health changes (the status to report:
// RUNNING on the first success while STARTING) or the container exits. A
// task found unhealthy is reported first; the next watch stops it.
func (x *taskExec) watch(ctx context.Context, t *api.Task, st *api.TaskStatus, c *runtime.Container, rs *runState, hc *healthCheck) (stepResult, error) {
	exits, err := x.rt.Wait(ctx, t.GetId())
	if c == nil || errors.Is(err, runtime.ErrNotFound) {
		return x.exited(t, st, rs, runtime.Exit{Code: exitGone, At: x.now()}), nil
	}
	if err != nil {
		return stepResult{}, fmt.Errorf("wait for container %s: %w", t.GetId(), err)
	}
	hr := rs.healthFor(c, st, x.now())
	if hr.killed != "" {
		if err := x.rt.Stop(ctx, t.GetId(), x.grace(t)); err != nil && !errors.Is(err, runtime.ErrNotFound) {
			return stepResult{}, fmt.Errorf("stop unhealthy container %s: %w", t.GetId(), err)
		}
		exit, err := receiveExit(ctx, t.GetId(), exits)
		if err != nil {
			return stepResult{}, err
		}
		return x.exited(t, st, rs, exit), nil
	}
	for {
		timer := time.NewTimer(max(0, hc.nextProbe(hr).Sub(x.now())))
		select {
		case e, ok := <-exits:
			timer.Stop()
			return x.exitOf(ctx, t, st, rs, e, ok)
		case <-ctx.Done():
			timer.Stop()
			return stepResult{}, ctx.Err()
		case <-timer.C:
		}
		select { // an exit already known wins over the probe due with it
		case e, ok := <-exits:
			return x.exitOf(ctx, t, st, rs, e, ok)
		default:
		}
		res, exit, ok := x.probeOrExit(ctx, t, hc, exits)
		if ctx.Err() != nil {
			return stepResult{}, ctx.Err()
		}
		if exit != nil {
			return x.exitOf(ctx, t, st, rs, *exit, ok)
		}
		if next := observeProbe(st, hc, hr, res); next != nil {
			return stepResult{status: next}, nil
		}
	}
}

// probeOrExit runs a probe, unless the container exits first: then the
// probe is abandoned and the exit returned (ok as received).
func (x *taskExec) probeOrExit(ctx context.Context, t *api.Task, hc *healthCheck, exits <-chan runtime.Exit) (probeResult, *runtime.Exit, bool) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan probeResult, 1)
	go func() { done <- x.probe(ctx, t, hc) }()
	select {
	case r := <-done:
		return r, nil, false
	case e, ok := <-exits:
		cancel()
		<-done
		return probeResult{}, &e, ok
	case <-ctx.Done():
		<-done
		return probeResult{}, nil, false
	}
}

// observeProbe folds a probe's result into hr and returns the status to
// report, or nil when the health is the same. Only a new health state or
// failing streak is reported: a healthy task costs no writes.
func observeProbe(st *api.TaskStatus, hc *healthCheck, hr *healthRun, res probeResult) *api.TaskStatus {
	prev := hr.health
	next, unhealthy := hc.observe(prev, res, hr.startedAt)
	hr.health, hr.lastProbe = next, res.at
	switch {
	case unhealthy:
		hr.killed = unhealthyReason(next, res.reason)
		out := withHealth(st, next)
		out.Message = hr.killed + "; stopping the container"
		return out
	case st.GetState() == api.TaskState_TASK_STATE_STARTING && next.GetState() == healthHealthy:
		out := advance(st, api.TaskState_TASK_STATE_RUNNING, "started; the health check passed", res.at)
		out.Health = next
		return out
	case next.GetState() != prev.GetState() || next.GetFailingStreak() != prev.GetFailingStreak():
		return withHealth(st, next)
	}
	return nil
}

// withHealth is st with health h: the same state and restart round, which
// the store accepts as a report of equal order.
func withHealth(st *api.TaskStatus, h *api.Health) *api.TaskStatus {
	out := proto.Clone(st).(*api.TaskStatus)
	out.Health = h
	return out
}

// exitOf applies the restart policy to an exit received (ok) from Wait.
func (x *taskExec) exitOf(ctx context.Context, t *api.Task, st *api.TaskStatus, rs *runState, e runtime.Exit, ok bool) (stepResult, error) {
	exit, err := checkExit(ctx, t.GetId(), e, ok)
	if err != nil {
		return stepResult{}, err
	}
	return x.exited(t, st, rs, exit), nil
}

// exited applies the restart policy to an exit. An exit that follows an
// unhealthy verdict is a failure whatever its code, and says so; a task
// that ends keeps its last health for people to see.
func (x *taskExec) exited(t *api.Task, st *api.TaskStatus, rs *runState, exit runtime.Exit) stepResult {
	var cause string
	var health *api.Health
	if hr := rs.health; hr != nil {
		cause, health = hr.killed, hr.health
	}
	rs.health = nil
	next, delay := afterExit(t, st, exit, rs, x.now(), x.restart, cause)
	if next.GetState() != api.TaskState_TASK_STATE_STARTING {
		next.Health = health
	}
	return stepResult{status: next, delay: delay}
}
