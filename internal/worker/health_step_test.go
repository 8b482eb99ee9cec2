package worker

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/internal/runtime"
	"github.com/warren-project/warren/internal/runtime/fake"
	"github.com/warren-project/warren/internal/state"
)

// stepper takes the steps of one task as its runner would, on the wall
// clock (probes run on timers), keeping every status reported.
type stepper struct {
	t    *testing.T
	x    *taskExec
	rt   *fake.Executor
	task *api.Task
	st   *api.TaskStatus
	rs   runState
	seen []*api.TaskStatus
}

func newStepper(t *testing.T, task *api.Task) *stepper {
	rt := fake.New()
	rt.AddImage("busybox")
	x := &taskExec{
		rt: rt, nodeID: "n1", now: time.Now, stopGrace: time.Second,
		restart: restartConfig{delay: time.Millisecond, maxDelay: 10 * time.Millisecond, resetAfter: 10 * time.Second},
	}
	return &stepper{t: t, x: x, rt: rt, task: task, st: task.GetStatus()}
}

// until steps until cond holds for the latest status.
func (s *stepper) until(what string, cond func(*api.TaskStatus) bool) *api.TaskStatus {
	s.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond(s.st) {
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		res, err := s.x.step(ctx, s.task, s.st, &s.rs, func(*api.TaskStatus) {})
		cancel()
		if err != nil || res.idle {
			s.t.Fatalf("never saw %s (step: %v, idle %v); statuses:\n%s", what, err, res.idle, s.history())
		}
		if res.status != nil {
			if state.StatusLess(res.status, s.st) {
				s.t.Fatalf("status went back from %v to %v", s.st, res.status)
			}
			s.st = res.status
			s.seen = append(s.seen, res.status)
		}
	}
	return s.st
}

func (s *stepper) history() string {
	var b strings.Builder
	for _, st := range s.seen {
		fmt.Fprintf(&b, "  #%d %v health=%v/%d %q\n", st.GetRestartCount(), st.GetState(), st.GetHealth().GetState(), st.GetHealth().GetFailingStreak(), st.GetMessage())
	}
	return b.String()
}

func is(restarts uint32, s api.TaskState, h api.Health_State) func(*api.TaskStatus) bool {
	return func(st *api.TaskStatus) bool {
		return st.GetRestartCount() == restarts && st.GetState() == s && st.GetHealth().GetState() == h
	}
}

func execCheckTask(cmd string, interval time.Duration, retries uint32) *api.Task {
	task := testTask("t1")
	task.Spec.Container.Healthcheck = &api.HealthCheck{
		Probe:    &api.HealthCheck_Exec{Exec: &api.HealthExec{Command: []string{cmd}}},
		Interval: durationpb.New(interval), Timeout: durationpb.New(time.Second), Retries: retries,
	}
	return task
}

// probes plays the health command: it fails while failing is set.
type probes struct{ failing atomic.Bool }

func (p *probes) exec(context.Context, string, []string) (int, []byte, error) {
	if p.failing.Load() {
		return 1, []byte("not ready\nsecond line"), nil
	}
	return 0, []byte("ready"), nil
}

func TestHealthStartingUntilHealthyThenRestartedWhenUnhealthy(t *testing.T) {
	s := newStepper(t, execCheckTask("test -f /ready", 5*time.Millisecond, 3))
	p := &probes{}
	p.failing.Store(true)
	s.rt.SetExec(p.exec)

	st := s.until("STARTING, waiting for the health check", is(0, stStarting, healthStarting))
	if st.GetMessage() != "started; waiting for the health check" || st.GetPid() == 0 {
		t.Fatalf("status once started = %v", st)
	}
	st = s.until("a failing streak of 2 while starting", func(st *api.TaskStatus) bool { return st.GetHealth().GetFailingStreak() == 2 })
	if st.GetState() != stStarting || st.GetHealth().GetLastOutput() != "not ready\nsecond line" {
		t.Fatalf("status while failing = %v", st)
	}
	p.failing.Store(false)
	st = s.until("RUNNING and healthy", is(0, stRunning, healthHealthy))
	if st.GetMessage() != "started; the health check passed" || st.GetHealth().GetFailingStreak() != 0 || st.GetHealth().GetLastOutput() != "ready" {
		t.Fatalf("healthy status = %v", st)
	}
	if cmds := s.rt.Execs("t1"); !slices.Equal(cmds[0], []string{"/bin/sh", "-c", "test -f /ready"}) {
		t.Fatalf("probe ran %q, want it under /bin/sh -c", cmds[0])
	}

	p.failing.Store(true)
	const reason = "health check failed 3 times: exit code 1: not ready"
	st = s.until("unhealthy", is(0, stRunning, healthUnhealthy))
	if st.GetMessage() != reason+"; stopping the container" {
		t.Fatalf("unhealthy status = %v", st)
	}
	st = s.until("a restart", func(st *api.TaskStatus) bool { return st.GetRestartCount() == 1 })
	if st.GetState() != stStarting || st.GetMessage() != "restarting after "+reason+"; attempt 1" ||
		st.GetLastExit().GetReason() != reason || st.GetLastExit().GetExitCode() != 143 || st.GetHealth() != nil {
		t.Fatalf("status after the unhealthy verdict = %v", st)
	}
	s.until("STARTING again, waiting for the check", is(1, stStarting, healthStarting))
	p.failing.Store(false)
	s.until("RUNNING and healthy after the restart", is(1, stRunning, healthHealthy))
}

func TestUnhealthyTaskFailsUnderItsPolicy(t *testing.T) {
	task := execCheckTask("check", 2*time.Millisecond, 2)
	task.Spec.Restart = &api.RestartPolicy{Condition: api.RestartPolicy_CONDITION_ON_FAILURE, MaxAttempts: 1}
	s := newStepper(t, task)
	s.rt.SetExec(func(context.Context, string, []string) (int, []byte, error) {
		return -1, nil, errors.New(`exec "check": executable file not found in $PATH`)
	})
	st := s.until("FAILED", func(st *api.TaskStatus) bool { return st.GetState() >= stComplete })
	const reason = `health check failed 2 times: exec "check": executable file not found in $PATH`
	if st.GetState() != stFailed || st.GetRestartCount() != 1 || st.GetErr() != reason ||
		st.GetMessage() != reason+"; restart limit of 1 reached" || st.GetLastExit().GetReason() != reason {
		t.Fatalf("final status = %v", st)
	}
	if h := st.GetHealth(); h.GetState() != healthUnhealthy || h.GetFailingStreak() != 2 || !strings.Contains(h.GetLastOutput(), "executable file not found") {
		t.Fatalf("final health = %v, want the unhealthy verdict kept", h)
	}
	if act, _ := decide(task, st, nil, true, time.Now()); act != actIdle {
		t.Fatalf("a failed task's next action is %v, want idle", act)
	}
}

func TestHealthStartPeriodRespected(t *testing.T) {
	task := execCheckTask("check", 5*time.Millisecond, 1)
	const period = 150 * time.Millisecond
	task.Spec.Container.Healthcheck.StartPeriod = durationpb.New(period)
	task.Spec.Restart = &api.RestartPolicy{Condition: api.RestartPolicy_CONDITION_NONE}
	s := newStepper(t, task)
	p := &probes{}
	p.failing.Store(true)
	s.rt.SetExec(p.exec)
	s.until("STARTING, waiting for the health check", is(0, stStarting, healthStarting))
	c, err := s.rt.Inspect(context.Background(), "t1")
	if err != nil {
		t.Fatal(err)
	}
	st := s.until("unhealthy", is(0, stStarting, healthUnhealthy))
	if probed := st.GetHealth().GetLastProbe().AsTime(); probed.Before(c.StartedAt.Add(period)) {
		t.Fatalf("unhealthy after a probe %v after the start, inside the %v start period", probed.Sub(c.StartedAt), period)
	}
	if n := len(s.rt.Execs("t1")); n < 2 {
		t.Fatalf("%d probes, want several inside the start period (a probe every 5ms)", n)
	}
	st = s.until("FAILED", is(0, stFailed, healthUnhealthy))
	if st.GetErr() != "health check failed 1 times: exit code 1: not ready" {
		t.Fatalf("err = %q", st.GetErr())
	}
}

func TestImageHealthcheck(t *testing.T) {
	hc := &runtime.Healthcheck{Test: []string{"CMD", "/bin/check"}, Interval: 2 * time.Millisecond}
	t.Run("used when the spec has none", func(t *testing.T) {
		s := newStepper(t, testTask("t1"))
		s.rt.SetImageHealthcheck("busybox", hc)
		s.until("RUNNING and healthy", is(0, stRunning, healthHealthy))
		if cmds := s.rt.Execs("t1"); len(cmds) == 0 || !slices.Equal(cmds[0], []string{"/bin/check"}) {
			t.Fatalf("probes ran %q, want the image's /bin/check", cmds)
		}
	})
	t.Run("ignored when disabled", func(t *testing.T) {
		task := testTask("t1")
		task.Spec.Container.Healthcheck = &api.HealthCheck{Disabled: true}
		s := newStepper(t, task)
		s.rt.SetImageHealthcheck("busybox", hc)
		st := s.until("RUNNING", func(st *api.TaskStatus) bool { return st.GetState() == stRunning })
		if st.GetHealth() != nil || st.GetMessage() != "started" || len(s.rt.Execs("t1")) != 0 {
			t.Fatalf("status %v after %d probes, want RUNNING without health", st, len(s.rt.Execs("t1")))
		}
	})
}

func TestExitWhileStartingIsAnOrdinaryRestart(t *testing.T) {
	s := newStepper(t, execCheckTask("check", time.Hour, 3))
	s.until("STARTING, waiting for the health check", is(0, stStarting, healthStarting))
	if err := s.rt.Exit("t1", 2); err != nil {
		t.Fatal(err)
	}
	st := s.until("a restart", func(st *api.TaskStatus) bool { return st.GetRestartCount() == 1 })
	if st.GetMessage() != "restarting after exit code 2; attempt 1" || st.GetLastExit().GetReason() != "exited with code 2" {
		t.Fatalf("status after the exit = %v", st)
	}
	s.until("started again", is(1, stStarting, healthStarting))
}

func TestProbeExec(t *testing.T) {
	rt := fake.New()
	rt.AddImage("busybox")
	ctx := context.Background()
	if err := rt.Create(ctx, runtime.Spec{ID: "t1", Image: "busybox"}); err != nil {
		t.Fatal(err)
	}
	hc := &healthCheck{kind: probeExec, command: []string{"/bin/sh", "-c", "check"}, timeout: time.Minute}
	if r := probeWith(t, hc, rt); r.ok || !strings.Contains(r.reason, "not running") {
		t.Fatalf("probe of a stopped container = %+v, want a failure saying it does not run", r)
	}
	if err := rt.Start(ctx, "t1"); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name    string
		fn      fake.ExecFunc
		timeout time.Duration
		ok      bool
		reason  string
	}{
		{"exit 0", func(context.Context, string, []string) (int, []byte, error) { return 0, []byte("ok"), nil }, time.Minute, true, ""},
		{"exit 1 with output", func(context.Context, string, []string) (int, []byte, error) {
			return 1, []byte("\n  disk full \nmore"), nil
		}, time.Minute, false, "exit code 1: disk full"},
		{"exit 2 without output", func(context.Context, string, []string) (int, []byte, error) { return 2, nil, nil }, time.Minute, false, "exit code 2"},
		{"hangs", func(ctx context.Context, _ string, _ []string) (int, []byte, error) {
			<-ctx.Done()
			return -1, nil, ctx.Err()
		}, 20 * time.Millisecond, false, "timed out after 20ms"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rt.SetExec(c.fn)
			hc.timeout = c.timeout
			if r := probeWith(t, hc, rt); r.ok != c.ok || r.reason != c.reason {
				t.Fatalf("probe = %+v, want ok %v, reason %q", r, c.ok, c.reason)
			}
		})
	}
}

func TestDecideWithHealthCheck(t *testing.T) {
	running := &runtime.Container{ID: "t1", State: runtime.StateRunning, Pid: 42}
	stopped := &runtime.Container{ID: "t1", State: runtime.StateStopped, ExitCode: 1}
	starting := &api.Health{State: healthStarting}
	cases := []struct {
		name      string
		state     api.TaskState
		health    *api.Health
		container *runtime.Container
		act       action
		next      api.TaskState
		health2   api.Health_State
	}{
		{"starts into STARTING", stStarting, nil, stopped, actStart, stStarting, healthStarting},
		{"started waits for health", stStarting, starting, running, actWait, 0, healthNone},
		{"started waits for the exit of its container", stStarting, starting, stopped, actWait, 0, healthNone},
		{"started waits though its container is gone", stStarting, starting, nil, actWait, 0, healthNone},
		{"adopts into STARTING", stPreparing, nil, running, actAdopt, stStarting, healthStarting},
		{"a restart round adopts a running container", stStarting, nil, running, actAdopt, stStarting, healthStarting},
		{"running waits", stRunning, &api.Health{State: healthHealthy}, running, actWait, 0, healthNone},
	}
	now := time.Unix(1000, 0)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st := &api.TaskStatus{State: c.state, RestartCount: 1, Health: c.health}
			act, next := decide(testTask("t1"), st, c.container, true, now)
			if act != c.act || next.GetState() != c.next || next.GetHealth().GetState() != c.health2 {
				t.Fatalf("decide = (%v, %v, health %v), want (%v, %v, health %v)", act, next.GetState(), next.GetHealth().GetState(), c.act, c.next, c.health2)
			}
			if next != nil && (next.GetRestartCount() != 1 || !strings.HasSuffix(next.GetMessage(), "; waiting for the health check")) {
				t.Fatalf("next = %v, want round 1 waiting for the health check", next)
			}
		})
	}
}
