package worker

import (
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/internal/runtime"
)

func TestAfterExit(t *testing.T) {
	anyExit := api.RestartPolicy_CONDITION_ANY
	onFailure := api.RestartPolicy_CONDITION_ON_FAILURE
	none := api.RestartPolicy_CONDITION_NONE
	window := durationpb.New(time.Minute)
	const unhealthy = "health check failed 3 times: connection refused"
	cases := []struct {
		name     string
		policy   *api.RestartPolicy
		restarts uint32
		earlier  []time.Duration // how long ago this agent restarted the task before (default: once, 2 min ago)
		code     int
		cause    string
		state    api.TaskState
		count    uint32
		message  string
		err      string
	}{
		{"no policy restarts", nil, 0, nil, 0, "", stStarting, 1, "restarting after exit code 0; attempt 1", ""},
		{"any restarts on kill", &api.RestartPolicy{Condition: anyExit}, 3, nil, 137, "", stStarting, 4, "restarting after exit code 137 (killed); attempt 4", ""},
		{"on-failure restarts on failure", &api.RestartPolicy{Condition: onFailure}, 0, nil, 1, "", stStarting, 1, "restarting after exit code 1; attempt 1", ""},
		{"on-failure completes on 0", &api.RestartPolicy{Condition: onFailure}, 0, nil, 0, "", stComplete, 0, "exited with code 0", ""},
		{"none fails", &api.RestartPolicy{Condition: none}, 0, nil, 143, "", stFailed, 0, "container terminated (SIGTERM)", "container exited with code 143 (terminated)"},
		{"none fails on kill, readably", &api.RestartPolicy{Condition: none}, 0, nil, 137, "", stFailed, 0, "container killed (SIGKILL)", "container exited with code 137 (killed)"},
		{"limit reached", &api.RestartPolicy{Condition: anyExit, MaxAttempts: 2}, 2, nil, 1, "",
			stFailed, 2, "container exited with code 1; restart limit of 2 reached", "container exited with code 1"},
		{"limit reached on success", &api.RestartPolicy{Condition: anyExit, MaxAttempts: 2}, 2, nil, 0, "",
			stComplete, 2, "exited with code 0; restart limit of 2 reached", ""},
		{"under the limit", &api.RestartPolicy{Condition: anyExit, MaxAttempts: 2}, 1, nil, 1, "", stStarting, 2, "restarting after exit code 1; attempt 2", ""},
		{"window forgets old restarts", &api.RestartPolicy{Condition: anyExit, MaxAttempts: 1, Window: window}, 5, nil, 1, "", stStarting, 6,
			"restarting after exit code 1; attempt 6", ""},
		{"window counts recent restarts", &api.RestartPolicy{Condition: anyExit, MaxAttempts: 2, Window: window}, 5,
			[]time.Duration{90 * time.Second, 30 * time.Second, 10 * time.Second}, 1, "", stFailed, 5,
			"container exited with code 1; restart limit of 2 reached", "container exited with code 1"},
		{"window with room left", &api.RestartPolicy{Condition: anyExit, MaxAttempts: 2, Window: window}, 5,
			[]time.Duration{90 * time.Second, 80 * time.Second, 10 * time.Second}, 1, "", stStarting, 6, "restarting after exit code 1; attempt 6", ""},
		{"container gone", nil, 0, nil, exitGone, "", stStarting, 1, "restarting after the container disappeared; attempt 1", ""},
		{"unhealthy restarts", nil, 0, nil, 143, unhealthy, stStarting, 1, "restarting after " + unhealthy + "; attempt 1", ""},
		{"unhealthy is a failure even on exit 0", &api.RestartPolicy{Condition: onFailure}, 0, nil, 0, unhealthy, stStarting, 1,
			"restarting after " + unhealthy + "; attempt 1", ""},
		{"unhealthy under none fails with the reason", &api.RestartPolicy{Condition: none}, 0, nil, 137, unhealthy, stFailed, 0, unhealthy, unhealthy},
		{"unhealthy at the limit fails with the reason", &api.RestartPolicy{Condition: onFailure, MaxAttempts: 1}, 1, nil, 0, unhealthy,
			stFailed, 1, unhealthy + "; restart limit of 1 reached", unhealthy},
	}
	now := time.Unix(10000, 0)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			task := testTask("t1")
			task.Spec.Restart = c.policy
			st := &api.TaskStatus{State: stRunning, RestartCount: c.restarts, ContainerId: "t1", Pid: 7}
			rs := &runState{restarts: []time.Time{now.Add(-2 * time.Minute)}}
			if c.earlier != nil {
				rs.restarts = nil
				for _, ago := range c.earlier {
					rs.restarts = append(rs.restarts, now.Add(-ago))
				}
			}
			cfg := restartConfig{delay: time.Millisecond, maxDelay: time.Second, resetAfter: time.Second}
			next, _ := afterExit(task, st, runtime.Exit{Code: c.code, At: now}, rs, now, cfg, c.cause)
			if next.GetState() != c.state || next.GetRestartCount() != c.count || next.GetMessage() != c.message || next.GetErr() != c.err {
				t.Fatalf("next = (%v, #%d, %q, err %q), want (%v, #%d, %q, err %q)",
					next.GetState(), next.GetRestartCount(), next.GetMessage(), next.GetErr(), c.state, c.count, c.message, c.err)
			}
			if next.GetLastExit().GetExitCode() != int32(c.code) || next.GetPid() != 0 || next.GetContainerId() != "t1" {
				t.Fatalf("next = %v, want last exit %d, no pid, container kept", next, c.code)
			}
			if c.cause != "" && next.GetLastExit().GetReason() != c.cause {
				t.Fatalf("last exit reason = %q, want %q", next.GetLastExit().GetReason(), c.cause)
			}
		})
	}
}

// A policy's window slides: max_attempts counts only the restarts within
// it, so a task that fails rarely restarts for ever, and one that fails in
// a burst gives up.
func TestRestartWindowSlides(t *testing.T) {
	policy := &api.RestartPolicy{MaxAttempts: 2, Window: durationpb.New(10 * time.Second)}
	cases := []struct {
		name  string
		exits []time.Duration // when each run exits, from the first start
		final api.TaskState
	}{
		{"a burst gives up on the third failure", []time.Duration{1 * time.Second, 2 * time.Second, 3 * time.Second}, stFailed},
		{"spaced failures go on", []time.Duration{1 * time.Second, 2 * time.Second, 13 * time.Second, 14 * time.Second, 25 * time.Second}, stStarting},
		{"a burst after a quiet spell gives up", []time.Duration{1 * time.Second, 20 * time.Second, 21 * time.Second, 22 * time.Second}, stFailed},
	}
	start := time.Unix(1000, 0)
	cfg := restartConfig{delay: time.Millisecond, maxDelay: time.Second, resetAfter: time.Minute}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			task := testTask("t1")
			task.Spec.Restart = policy
			st, rs := &api.TaskStatus{State: stRunning}, &runState{}
			for _, at := range c.exits {
				if st.GetState() != stRunning && st.GetState() != stStarting {
					t.Fatalf("the task ended (%v: %s) before its exit at %v", st.GetState(), st.GetMessage(), at)
				}
				st, _ = afterExit(task, st, runtime.Exit{Code: 1, At: start.Add(at)}, rs, start.Add(at), cfg, "")
			}
			if st.GetState() != c.final {
				t.Fatalf("after exits at %v: %v (%s), want %v", c.exits, st.GetState(), st.GetMessage(), c.final)
			}
		})
	}
}

func TestRestartBackoff(t *testing.T) {
	cfg := restartConfig{delay: 100 * time.Millisecond, maxDelay: time.Second, resetAfter: 10 * time.Second}
	start := time.Unix(1000, 0)
	ms := time.Millisecond
	cases := []struct {
		name   string
		policy *api.RestartPolicy
		ran    []time.Duration // how long each run lasted before its exit
		want   []time.Duration // the delay before each restart
	}{
		{"doubles up to the cap", nil,
			[]time.Duration{time.Second, time.Second, time.Second, time.Second, time.Second},
			[]time.Duration{100 * ms, 200 * ms, 400 * ms, 800 * ms, time.Second}},
		{"stays at the cap", nil,
			[]time.Duration{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
			[]time.Duration{100 * ms, 200 * ms, 400 * ms, 800 * ms, time.Second, time.Second, time.Second, time.Second, time.Second, time.Second,
				time.Second, time.Second, time.Second, time.Second, time.Second, time.Second, time.Second, time.Second, time.Second, time.Second}},
		{"a long run resets it", nil,
			[]time.Duration{time.Second, time.Second, time.Minute, time.Second},
			[]time.Duration{100 * ms, 200 * ms, 100 * ms, 200 * ms}},
		{"a run just under the reset time does not", nil,
			[]time.Duration{time.Second, 10 * time.Second, time.Second},
			[]time.Duration{100 * ms, 200 * ms, 400 * ms}},
		{"policy delay", &api.RestartPolicy{Delay: durationpb.New(300 * ms)},
			[]time.Duration{time.Second, time.Second, time.Second},
			[]time.Duration{300 * ms, 600 * ms, time.Second}},
		{"policy delay above the cap is kept", &api.RestartPolicy{Delay: durationpb.New(5 * time.Second)},
			[]time.Duration{time.Second, time.Second},
			[]time.Duration{5 * time.Second, 5 * time.Second}},
		{"zero policy delay takes the agent's", &api.RestartPolicy{Delay: durationpb.New(0)},
			[]time.Duration{time.Second, time.Second},
			[]time.Duration{100 * ms, 200 * ms}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rs := &runState{}
			at := start
			for i, ran := range c.ran {
				rs.startedAt = at
				at = at.Add(ran)
				if got := rs.nextDelay(c.policy, runtime.Exit{At: at}, cfg); got != c.want[i] {
					t.Fatalf("delay before restart %d = %v, want %v", i+1, got, c.want[i])
				}
			}
		})
	}
}

func TestReporterCoalesces(t *testing.T) {
	r := newReporter()
	r.report("t1", &api.TaskStatus{State: stStarting})
	r.report("t1", &api.TaskStatus{State: stRunning})
	r.report("t1", &api.TaskStatus{State: stPreparing, Progress: "late"}) // older: dropped
	r.report("t2", &api.TaskStatus{State: stAccepted})
	got := r.take(10)
	if len(got) != 2 || got[0].GetTaskId() != "t1" || got[0].GetStatus().GetState() != stRunning {
		t.Fatalf("took %v, want t1 RUNNING and t2", got)
	}
	if again := r.take(10); len(again) != 0 {
		t.Fatalf("took %v again, want nothing until a change", again)
	}
	// A health change keeps the state and round: of equal order, it is sent.
	r.report("t1", &api.TaskStatus{State: stRunning, Health: &api.Health{State: api.Health_STATE_HEALTHY}})
	if got := r.take(10); len(got) != 1 || got[0].GetStatus().GetHealth().GetState() != api.Health_STATE_HEALTHY {
		t.Fatalf("took %v, want t1's health change", got)
	}
	r.forget("t2")
	r.resendAll()
	if all := r.take(10); len(all) != 1 || all[0].GetTaskId() != "t1" {
		t.Fatalf("after reconnect took %v, want t1 again (t2 forgotten)", all)
	}
}
