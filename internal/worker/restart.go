package worker

import (
	"fmt"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/internal/runtime"
)

// exitGone is the exit code the agent uses when a container it was
// watching has vanished, so that no real exit code is known.
const exitGone = -1

// restartConfig bounds in-place restarts.
type restartConfig struct {
	delay      time.Duration // first back-off when the policy sets none
	maxDelay   time.Duration // back-off cap
	resetAfter time.Duration // a run this long resets the back-off
}

// runState is what a task's runner remembers between steps, beyond the
// status: it lives in memory only and starts afresh with the agent.
type runState struct {
	startedAt time.Time   // when the current container process started
	restarts  []time.Time // restarts by this agent, for max_attempts within a window
	backoff   int         // restarts since the container last ran long enough

	check      *healthCheck // the task's health check; nil for none
	checkKnown bool         // check was resolved (the image read)
	health     *healthRun   // health of the current run; nil until watched
}

// afterExit decides what follows the exit of a task's container: a restart
// in place (the next status is a new STARTING round, to be started after
// the returned delay) or the end (COMPLETE or FAILED). It records the
// restart in rs. cause, when set, is why the agent ended the container
// (an unhealthy verdict): the exit is then a failure whatever its code.
func afterExit(t *api.Task, st *api.TaskStatus, exit runtime.Exit, rs *runState, now time.Time, cfg restartConfig, cause string) (*api.TaskStatus, time.Duration) {
	p := t.GetSpec().GetRestart()
	last := exitInfo(exit.Code, exit.At)
	if cause != "" {
		last.Reason = cause
	}
	failure := exit.Code != 0 || cause != ""
	if !wantsRestart(p, failure) {
		return finished(st, last, now, cause, ""), 0
	}
	if limit := p.GetMaxAttempts(); limit > 0 && attemptsUsed(p, st, rs, now) >= limit {
		return finished(st, last, now, cause, fmt.Sprintf("; restart limit of %d reached", limit)), 0
	}
	delay := rs.nextDelay(p, exit, cfg)
	rs.restarts = append(rs.restarts, now)
	attempt := st.GetRestartCount() + 1
	why := exitSummary(exit.Code)
	if cause != "" {
		why = cause
	}
	next := advance(st, api.TaskState_TASK_STATE_STARTING, fmt.Sprintf("restarting after %s; attempt %d", why, attempt), now)
	next.RestartCount, next.LastExit, next.Pid = attempt, last, 0
	return next, delay
}

// wantsRestart applies the policy's condition to an exit that was, or was
// not, a failure.
func wantsRestart(p *api.RestartPolicy, failure bool) bool {
	switch p.GetCondition() {
	case api.RestartPolicy_CONDITION_NONE:
		return false
	case api.RestartPolicy_CONDITION_ON_FAILURE:
		return failure
	default: // CONDITION_ANY, also when there is no policy
		return true
	}
}

// attemptsUsed counts the restarts that count against max_attempts: those
// within the window, or all of them (the status keeps that count, so it
// survives a restart of the agent) when there is no window.
func attemptsUsed(p *api.RestartPolicy, st *api.TaskStatus, rs *runState, now time.Time) uint64 {
	window := p.GetWindow().AsDuration()
	if p.GetWindow() == nil || window <= 0 {
		return uint64(st.GetRestartCount())
	}
	var n uint64
	kept := rs.restarts[:0]
	for _, at := range rs.restarts {
		if now.Sub(at) < window {
			kept = append(kept, at)
			n++
		}
	}
	rs.restarts = kept
	return n
}

// nextDelay is the back-off before the next restart: the policy's delay,
// doubling per restart up to the cap, and back to the start once the
// container ran longer than resetAfter.
func (rs *runState) nextDelay(p *api.RestartPolicy, exit runtime.Exit, cfg restartConfig) time.Duration {
	base := cfg.delay
	if d := p.GetDelay().AsDuration(); p.GetDelay() != nil && d > 0 {
		base = d
	}
	if !rs.startedAt.IsZero() && exit.At.Sub(rs.startedAt) > cfg.resetAfter {
		rs.backoff = 0
	}
	limit := max(cfg.maxDelay, base)
	d := base
	for i := 0; i < rs.backoff && d < limit; i++ {
		d *= 2
	}
	rs.backoff++
	return min(d, limit)
}

// finished is the end of a task whose container will not run again. cause
// is why the agent ended it, if it did; why is appended to the message.
func finished(st *api.TaskStatus, last *api.ExitInfo, now time.Time, cause, why string) *api.TaskStatus {
	code := int(last.GetExitCode())
	var next *api.TaskStatus
	switch {
	case cause != "":
		next = advance(st, api.TaskState_TASK_STATE_FAILED, cause+why, now)
		next.Err = cause
	case code == 0:
		next = advance(st, api.TaskState_TASK_STATE_COMPLETE, "exited with code 0"+why, now)
	default:
		next = advance(st, api.TaskState_TASK_STATE_FAILED, "container "+last.GetReason()+why, now)
		next.Err = fmt.Sprintf("container exited with code %d%s", code, signalNote(code))
		if code == exitGone {
			next.Err = "the container disappeared"
		}
	}
	next.LastExit, next.Pid = last, 0
	return next
}

func exitInfo(code int, at time.Time) *api.ExitInfo {
	return &api.ExitInfo{ExitCode: int32(code), At: timestamppb.New(at), Reason: exitReason(code)}
}

// exitReason says, for a person, how a container ended.
func exitReason(code int) string {
	switch code {
	case 137:
		return "killed (SIGKILL)"
	case 143:
		return "terminated (SIGTERM)"
	case exitGone:
		return "disappeared"
	}
	return fmt.Sprintf("exited with code %d", code)
}

// exitSummary is the short form used in a restart message.
func exitSummary(code int) string {
	if code == exitGone {
		return "the container disappeared"
	}
	return fmt.Sprintf("exit code %d%s", code, signalNote(code))
}

// signalNote names the usual signals behind an exit code.
func signalNote(code int) string {
	switch code {
	case 137:
		return " (killed)"
	case 143:
		return " (terminated)"
	}
	return ""
}

// advance returns a copy of st in state s with a new message and time;
// the error and progress of the previous state do not carry over.
func advance(st *api.TaskStatus, s api.TaskState, msg string, now time.Time) *api.TaskStatus {
	next := &api.TaskStatus{
		State:        s,
		Timestamp:    timestamppb.New(now),
		Message:      msg,
		ContainerId:  st.GetContainerId(),
		Pid:          st.GetPid(),
		RestartCount: st.GetRestartCount(),
		LastExit:     st.GetLastExit(),
	}
	return next
}
