package worker

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/internal/runtime"
	"github.com/warren-project/warren/internal/runtime/fake"
)

const (
	stAssigned  = api.TaskState_TASK_STATE_ASSIGNED
	stAccepted  = api.TaskState_TASK_STATE_ACCEPTED
	stPreparing = api.TaskState_TASK_STATE_PREPARING
	stReady     = api.TaskState_TASK_STATE_READY
	stStarting  = api.TaskState_TASK_STATE_STARTING
	stRunning   = api.TaskState_TASK_STATE_RUNNING
	stComplete  = api.TaskState_TASK_STATE_COMPLETE
	stShutdown  = api.TaskState_TASK_STATE_SHUTDOWN
	stFailed    = api.TaskState_TASK_STATE_FAILED
	stRejected  = api.TaskState_TASK_STATE_REJECTED
	stRemove    = api.TaskState_TASK_STATE_REMOVE
)

func testTask(id string) *api.Task {
	return &api.Task{
		Id: id, ServiceId: "svc1", ServiceName: "web", Slot: 2, NodeId: "n1",
		DesiredState: stRunning,
		Status:       &api.TaskStatus{State: stAssigned},
		Spec: &api.TaskSpec{
			Container: &api.ContainerSpec{
				Image: "busybox", Command: []string{"sleep"}, Args: []string{"60"}, Env: []string{"A=1"},
				Workdir: "/w", User: "nobody", Labels: map[string]string{"team": "edge", LabelNodeID: "forged"},
			},
			Resources: &api.ResourceRequirements{Limits: &api.Resources{NanoCpus: 5e8, MemoryBytes: 64 << 20}},
		},
	}
}

func TestDecide(t *testing.T) {
	running := &runtime.Container{ID: "t1", State: runtime.StateRunning, Pid: 42}
	stopped := &runtime.Container{ID: "t1", State: runtime.StateStopped, ExitCode: 1}
	cases := []struct {
		name      string
		desired   api.TaskState
		state     api.TaskState
		container *runtime.Container
		act       action
		next      api.TaskState
	}{
		{"assigned is accepted", stRunning, stAssigned, nil, actReport, stAccepted},
		{"accepted prepares", stRunning, stAccepted, nil, actReport, stPreparing},
		{"preparing pulls and creates", stRunning, stPreparing, nil, actPrepare, stReady},
		{"ready starts", stRunning, stReady, nil, actReport, stStarting},
		{"starting runs", stRunning, stStarting, stopped, actStart, stRunning},
		{"running waits", stRunning, stRunning, running, actWait, 0},
		{"running with exited container waits (for the exit)", stRunning, stRunning, stopped, actWait, 0},
		{"running container is adopted", stRunning, stPreparing, running, actAdopt, stRunning},
		{"shutdown stops", stShutdown, stRunning, running, actStop, stShutdown},
		{"remove stops", stRemove, stStarting, nil, actStop, stShutdown},
		{"remove deletes the stopped container", stRemove, stShutdown, stopped, actRemove, stRemove},
		{"remove deletes a failed task's container", stRemove, api.TaskState_TASK_STATE_FAILED, stopped, actRemove, stRemove},
		{"removed is idle", stRemove, stRemove, nil, actIdle, 0},
		{"shutdown before start", stShutdown, stAssigned, nil, actStop, stShutdown},
		{"complete stays", stRunning, stComplete, stopped, actIdle, 0},
		{"failed stays when shut down", stShutdown, stFailed, stopped, actIdle, 0},
		{"rejected stays", stRunning, stRejected, nil, actIdle, 0},
	}
	now := time.Unix(1000, 0)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			task := testTask("t1")
			task.DesiredState = c.desired
			st := &api.TaskStatus{State: c.state, RestartCount: 2}
			act, next := decide(task, st, c.container, false, now)
			if act != c.act || next.GetState() != c.next {
				t.Fatalf("decide = (%v, %v), want (%v, %v)", act, next.GetState(), c.act, c.next)
			}
			if next != nil && next.GetRestartCount() != 2 {
				t.Fatalf("restart count went from 2 to %d", next.GetRestartCount())
			}
			if act == actAdopt && (next.GetPid() != 42 || next.GetContainerId() != "t1") {
				t.Fatalf("adopted status = %v, want pid 42 of container t1", next)
			}
		})
	}
}

// testExec is a taskExec on a fake executor with a clock the test moves.
func testExec(rt runtime.Executor, now *time.Time) *taskExec {
	return &taskExec{
		rt: rt, nodeID: "n1", logDir: "", now: func() time.Time { return *now },
		progressEvery: 500 * time.Millisecond, stopGrace: time.Second,
		restart: restartConfig{delay: 100 * time.Millisecond, maxDelay: 10 * time.Second, resetAfter: 10 * time.Second},
	}
}

func mustStep(t *testing.T, x *taskExec, task *api.Task, st *api.TaskStatus, rs *runState) stepResult {
	t.Helper()
	res, err := x.step(context.Background(), task, st, rs, func(*api.TaskStatus) {})
	if err != nil {
		t.Fatalf("step from %v: %v", st.GetState(), err)
	}
	return res
}

func TestStepsToRunningAndRestart(t *testing.T) {
	rt := fake.New()
	now := time.Unix(1000, 0)
	x := testExec(rt, &now)
	task := testTask("t1")
	st, rs := task.GetStatus(), &runState{}
	for _, want := range []api.TaskState{stAccepted, stPreparing, stReady, stStarting, stRunning} {
		res := mustStep(t, x, task, st, rs)
		if res.status.GetState() != want {
			t.Fatalf("step from %v gave %v (%s), want %v", st.GetState(), res.status.GetState(), res.status.GetErr(), want)
		}
		st = res.status
	}
	c, err := rt.Inspect(context.Background(), "t1")
	if err != nil || c.State != runtime.StateRunning || st.GetPid() != c.Pid || st.GetContainerId() != "t1" {
		t.Fatalf("container %+v (%v), status %v", c, err, st)
	}

	now = now.Add(time.Second)
	if err := rt.Exit("t1", 137); err != nil {
		t.Fatal(err)
	}
	res := mustStep(t, x, task, st, rs)
	want := "restarting after exit code 137 (killed); attempt 1"
	if res.status.GetState() != stStarting || res.status.GetRestartCount() != 1 || res.status.GetMessage() != want || res.delay != 100*time.Millisecond {
		t.Fatalf("after exit: %v, delay %v; want STARTING #1 %q after 100ms", res.status, res.delay, want)
	}
	if le := res.status.GetLastExit(); le.GetExitCode() != 137 || le.GetReason() != "killed (SIGKILL)" {
		t.Fatalf("last exit = %v", le)
	}
	res = mustStep(t, x, task, res.status, rs)
	if res.status.GetState() != stRunning || res.status.GetRestartCount() != 1 || res.status.GetPid() == c.Pid {
		t.Fatalf("after restart: %v, want RUNNING #1 with a new pid", res.status)
	}
}

func TestStepFailures(t *testing.T) {
	cases := []struct {
		name  string
		setup func(rt *fake.Executor)
		from  api.TaskState
		want  api.TaskState
		err   string
	}{
		{"pull fails", func(rt *fake.Executor) { rt.SetPullError("busybox", errors.New("manifest unknown")) },
			stPreparing, stRejected, "image busybox not found: manifest unknown"},
		{"container exists: adopted", func(rt *fake.Executor) {
			rt.AddImage("busybox")
			_ = rt.Create(context.Background(), runtime.Spec{ID: "t1", Image: "busybox"})
		}, stPreparing, stReady, ""},
		{"missing container is made again", func(rt *fake.Executor) { rt.AddImage("busybox") }, stStarting, stRunning, ""},
		{"start fails: the restart policy retries", func(rt *fake.Executor) {
			rt.AddImage("busybox")
			rt.FailNext("Start", errors.New("no such file: /bin/sleep"))
		}, stStarting, stStarting, ""},
		{"container gone while running", func(*fake.Executor) {}, stRunning, stStarting, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rt := fake.New()
			c.setup(rt)
			now := time.Unix(1000, 0)
			res := mustStep(t, testExec(rt, &now), testTask("t1"), &api.TaskStatus{State: c.from}, &runState{})
			if res.status.GetState() != c.want || res.status.GetErr() != c.err {
				t.Fatalf("step = %v (err %q), want %v (err %q)", res.status.GetState(), res.status.GetErr(), c.want, c.err)
			}
		})
	}
}

func TestStepStop(t *testing.T) {
	rt := fake.New()
	rt.AddImage("busybox")
	ctx := context.Background()
	if err := rt.Create(ctx, runtime.Spec{ID: "t1", Image: "busybox"}); err != nil {
		t.Fatal(err)
	}
	if err := rt.Start(ctx, "t1"); err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1000, 0)
	task := testTask("t1")
	task.DesiredState = stShutdown
	task.Spec.Container.StopGracePeriod = durationpb.New(3 * time.Second)
	res := mustStep(t, testExec(rt, &now), task, &api.TaskStatus{State: stRunning, Pid: 9}, &runState{})
	st := res.status
	if st.GetState() != stShutdown || st.GetMessage() != "stopped by manager" || st.GetPid() != 0 || st.GetLastExit().GetExitCode() != 143 {
		t.Fatalf("status = %v, want SHUTDOWN stopped by manager, exit 143", st)
	}
	if c, _ := rt.Inspect(ctx, "t1"); c.State != runtime.StateStopped {
		t.Fatalf("container %v after stop", c.State)
	}
}

// progressExec pulls slowly: ten progress reports, 100 ms apart.
type progressExec struct {
	*fake.Executor
	now *time.Time
}

func (p progressExec) PullImage(ctx context.Context, ref string, auth *runtime.RegistryAuth, progress func(runtime.PullProgress)) error {
	for i := range 10 {
		progress(runtime.PullProgress{Ref: ref, Done: int64(i) << 20, Total: 10 << 20, Status: "downloading"})
		*p.now = p.now.Add(100 * time.Millisecond)
	}
	return p.Executor.PullImage(ctx, ref, auth, nil)
}

func TestPullProgressIsThrottled(t *testing.T) {
	now := time.Unix(1000, 0)
	x := testExec(progressExec{Executor: fake.New(), now: &now}, &now)
	var reports []*api.TaskStatus
	st := &api.TaskStatus{State: stPreparing, Message: "preparing"}
	res, err := x.step(context.Background(), testTask("t1"), st, &runState{}, func(s *api.TaskStatus) { reports = append(reports, s) })
	if err != nil || res.status.GetState() != stReady {
		t.Fatalf("step = %v, %v; want READY", res.status, err)
	}
	if len(reports) != 2 {
		t.Fatalf("%d progress reports in 1s of pulling, want 2 (one per 500ms)", len(reports))
	}
	if p := reports[1].GetProgress(); reports[1].GetState() != stPreparing || !strings.Contains(p, "5.0 of 10.0 MiB") {
		t.Fatalf("second report = %v", reports[1])
	}
}

func TestContainerSpec(t *testing.T) {
	spec := containerSpec(testTask("t1"), "n1", "docker.io/library/busybox:latest", "/data/logs/t1.log")
	want := map[string]string{
		LabelTaskID: "t1", LabelServiceID: "svc1", LabelServiceName: "web", LabelNodeID: "n1", LabelSlot: "2", "team": "edge",
	}
	for k, v := range want {
		if spec.Labels[k] != v {
			t.Errorf("label %s = %q, want %q", k, spec.Labels[k], v)
		}
	}
	if spec.ID != "t1" || spec.Image != "docker.io/library/busybox:latest" || spec.Args[0] != "60" || spec.WorkDir != "/w" ||
		spec.User != "nobody" || spec.NanoCPUs != 5e8 || spec.MemoryBytes != 64<<20 || spec.LogPath != "/data/logs/t1.log" {
		t.Fatalf("spec = %+v", spec)
	}
}

// A container that cannot start is a failed run: retried by policy "any"
// (with the reason kept), final under "none".
func TestStepStartFailureFollowsRestartPolicy(t *testing.T) {
	for _, tc := range []struct {
		cond     api.RestartPolicy_Condition
		want     api.TaskState
		restarts uint32
	}{
		{api.RestartPolicy_CONDITION_ANY, stStarting, 1},
		{api.RestartPolicy_CONDITION_NONE, stFailed, 0},
	} {
		rt := fake.New()
		rt.AddImage("busybox")
		rt.FailNext("Start", errors.New("no cgroup mount found"))
		now := time.Unix(1000, 0)
		task := testTask("t1")
		task.Spec.Restart = &api.RestartPolicy{Condition: tc.cond}
		res := mustStep(t, testExec(rt, &now), task, &api.TaskStatus{State: stStarting}, &runState{})
		st := res.status
		if st.GetState() != tc.want || st.GetRestartCount() != tc.restarts || !strings.Contains(st.GetMessage(), "start container: no cgroup mount found") {
			t.Errorf("%v: status %v restarts %d %q; want %v, %d restarts, the start error in the message", tc.cond, st.GetState(), st.GetRestartCount(), st.GetMessage(), tc.want, tc.restarts)
		}
	}
}
