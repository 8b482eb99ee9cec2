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
	cases := []struct {
		name     string
		policy   *api.RestartPolicy
		restarts uint32
		code     int
		state    api.TaskState
		count    uint32
		message  string
		err      string
	}{
		{"no policy restarts", nil, 0, 0, stStarting, 1, "restarting after exit code 0; attempt 1", ""},
		{"any restarts on kill", &api.RestartPolicy{Condition: anyExit}, 3, 137, stStarting, 4, "restarting after exit code 137 (killed); attempt 4", ""},
		{"on-failure restarts on failure", &api.RestartPolicy{Condition: onFailure}, 0, 1, stStarting, 1, "restarting after exit code 1; attempt 1", ""},
		{"on-failure completes on 0", &api.RestartPolicy{Condition: onFailure}, 0, 0, stComplete, 0, "exited with code 0", ""},
		{"none fails", &api.RestartPolicy{Condition: none}, 0, 143, stFailed, 0, "container terminated (SIGTERM)", "container exited with code 143"},
		{"limit reached", &api.RestartPolicy{Condition: anyExit, MaxAttempts: 2}, 2, 1, stFailed, 2,
			"container exited with code 1; restart limit of 2 reached", "container exited with code 1"},
		{"limit reached on success", &api.RestartPolicy{Condition: anyExit, MaxAttempts: 2}, 2, 0, stComplete, 2,
			"exited with code 0; restart limit of 2 reached", ""},
		{"under the limit", &api.RestartPolicy{Condition: anyExit, MaxAttempts: 2}, 1, 1, stStarting, 2, "restarting after exit code 1; attempt 2", ""},
		{"window forgets old restarts", &api.RestartPolicy{Condition: anyExit, MaxAttempts: 1, Window: durationpb.New(time.Minute)}, 5, 1, stStarting, 6,
			"restarting after exit code 1; attempt 6", ""},
		{"container gone", nil, 0, exitGone, stStarting, 1, "restarting after the container disappeared; attempt 1", ""},
	}
	now := time.Unix(10000, 0)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			task := testTask("t1")
			task.Spec.Restart = c.policy
			st := &api.TaskStatus{State: stRunning, RestartCount: c.restarts, ContainerId: "t1", Pid: 7}
			rs := &runState{restarts: []time.Time{now.Add(-2 * time.Minute)}}
			next, _ := afterExit(task, st, runtime.Exit{Code: c.code, At: now}, rs, now, restartConfig{delay: time.Millisecond, maxDelay: time.Second, resetAfter: time.Second})
			if next.GetState() != c.state || next.GetRestartCount() != c.count || next.GetMessage() != c.message || next.GetErr() != c.err {
				t.Fatalf("next = (%v, #%d, %q, err %q), want (%v, #%d, %q, err %q)",
					next.GetState(), next.GetRestartCount(), next.GetMessage(), next.GetErr(), c.state, c.count, c.message, c.err)
			}
			if next.GetLastExit().GetExitCode() != int32(c.code) || next.GetPid() != 0 || next.GetContainerId() != "t1" {
				t.Fatalf("next = %v, want last exit %d, no pid, container kept", next, c.code)
			}
		})
	}
}

func TestRestartBackoff(t *testing.T) {
	cfg := restartConfig{delay: 100 * time.Millisecond, maxDelay: time.Second, resetAfter: 10 * time.Second}
	start := time.Unix(1000, 0)
	cases := []struct {
		name   string
		policy *api.RestartPolicy
		ran    []time.Duration // how long each run lasted before its exit
		want   []time.Duration // the delay before each restart
	}{
		{"doubles up to the cap", nil,
			[]time.Duration{time.Second, time.Second, time.Second, time.Second, time.Second},
			[]time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond, time.Second}},
		{"a long run resets it", nil,
			[]time.Duration{time.Second, time.Second, time.Minute, time.Second},
			[]time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond}},
		{"policy delay", &api.RestartPolicy{Delay: durationpb.New(300 * time.Millisecond)},
			[]time.Duration{time.Second, time.Second, time.Second},
			[]time.Duration{300 * time.Millisecond, 600 * time.Millisecond, time.Second}},
		{"policy delay above the cap is kept", &api.RestartPolicy{Delay: durationpb.New(5 * time.Second)},
			[]time.Duration{time.Second, time.Second},
			[]time.Duration{5 * time.Second, 5 * time.Second}},
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
	r.forget("t2")
	r.resendAll()
	if all := r.take(10); len(all) != 1 || all[0].GetTaskId() != "t1" {
		t.Fatalf("after reconnect took %v, want t1 again (t2 forgotten)", all)
	}
}
