package e2e

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/internal/ociimage"
	"github.com/warren-project/warren/internal/testutil"
)

// A service's whole life: create, self-healing after SIGKILL, scale up and
// to zero, delete — checked against containerd itself.
func TestServiceLifecycle(t *testing.T) {
	c := newCluster(t)
	c.importBusybox(testImage)

	out := c.mustWarren("service", "create", "sleeper", "--image", testImage, "--replicas", "3", "--", "sleep", "100000")
	if !strings.Contains(out, "3") {
		t.Errorf("create output does not show progress to 3 replicas:\n%s", out)
	}
	if n := len(c.running("sleeper")); n != 3 {
		t.Fatalf("%d containers running after create returned, want 3", n)
	}

	// SIGKILL one container's process: the node restarts it in place.
	victim := c.running("sleeper")[0]
	if err := syscall.Kill(int(victim.Pid), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 30*time.Second, "killed container restarted", func() bool {
		for _, task := range c.tasks("sleeper") {
			st := task.GetStatus()
			if task.GetId() == victim.ID && st.GetRestartCount() >= 1 && st.GetState() == api.TaskState_TASK_STATE_RUNNING {
				return st.GetPid() != victim.Pid && alive(st.GetPid())
			}
		}
		return false
	})
	for _, task := range c.tasks("sleeper") {
		if task.GetId() == victim.ID && task.GetStatus().GetLastExit().GetExitCode() != 137 {
			t.Errorf("last exit = %v, want code 137", task.GetStatus().GetLastExit())
		}
	}
	ps := c.mustWarren("service", "ps", "sleeper")
	if !strings.Contains(ps, "sleeper.") {
		t.Errorf("service ps does not name the tasks:\n%s", ps)
	}

	c.mustWarren("service", "scale", "sleeper=5")
	if n := len(c.running("sleeper")); n != 5 {
		t.Fatalf("%d containers running after scale to 5, want 5", n)
	}
	c.mustWarren("service", "scale", "sleeper=0")
	testutil.WaitFor(t, 30*time.Second, "no container left after scale to 0", func() bool {
		return len(c.containers("sleeper")) == 0
	})

	c.mustWarren("service", "scale", "sleeper=2")
	c.mustWarren("service", "rm", "sleeper")
	if n := len(c.tasks("sleeper")); n != 0 {
		t.Fatalf("%d tasks left after service rm returned", n)
	}
	// rm returns once the node has deleted every container.
	if n := len(c.containers("sleeper")); n != 0 {
		t.Fatalf("%d containers left after service rm returned", n)
	}
}

// Restarting the manager on its data dir resumes the cluster and adopts
// the running containers: the same tasks, the same processes.
func TestManagerRestartAdoptsContainers(t *testing.T) {
	c := newCluster(t)
	c.importBusybox(testImage)
	c.mustWarren("service", "create", "keeper", "--image", testImage, "--replicas", "2", "--", "sleep", "100000")
	before := map[string]uint32{}
	for _, ctr := range c.running("keeper") {
		before[ctr.ID] = ctr.Pid
	}
	if len(before) != 2 {
		t.Fatalf("%d containers running, want 2", len(before))
	}

	c.stop()
	for id, pid := range before {
		if !alive(pid) {
			t.Fatalf("container %s (pid %d) died when the manager stopped", id, pid)
		}
	}
	c.start()

	testutil.WaitFor(t, 30*time.Second, "both tasks reported running again", func() bool {
		n := 0
		for _, task := range c.tasks("keeper") {
			if task.GetStatus().GetState() == api.TaskState_TASK_STATE_RUNNING {
				n++
			}
		}
		return n == 2
	})
	tasks := c.tasks("keeper")
	if len(tasks) != 2 {
		t.Fatalf("%d tasks after restart, want the same 2", len(tasks))
	}
	for _, task := range tasks {
		pid, ok := before[task.GetId()]
		if !ok {
			t.Errorf("task %s is new: the old ones were not adopted", task.GetId())
			continue
		}
		if st := task.GetStatus(); st.GetPid() != pid || st.GetRestartCount() != 0 {
			t.Errorf("task %s: pid %d restarts %d, want pid %d and no restart", task.GetId(), st.GetPid(), st.GetRestartCount(), pid)
		}
	}
	if n := len(c.containers("keeper")); n != 2 {
		t.Fatalf("%d containers after restart, want 2", n)
	}
}

// An image that is not on the node is pulled from its registry: here
// Debian's docker-registry on loopback, with the test's own image pushed.
func TestPullFromLocalRegistry(t *testing.T) {
	c := newCluster(t)
	reg := testutil.StartRegistry(t)
	ref := reg + "/warren/e2e:v1"
	ctx := context.Background()
	if _, err := c.exec.ImportImage(ctx, strings.NewReader(string(testutil.BusyboxImage(t, ref, ociimage.Config{})))); err != nil {
		t.Fatal(err)
	}
	if err := c.exec.PushImage(ctx, ref, nil); err != nil {
		t.Fatalf("push to %s: %v", reg, err)
	}
	if err := c.exec.DeleteImage(ctx, ref); err != nil {
		t.Fatal(err)
	}

	c.mustWarren("service", "create", "pulled", "--image", ref, "--", "sleep", "100000")
	if n := len(c.running("pulled")); n != 1 {
		t.Fatalf("%d containers running, want 1", n)
	}
	if ok, err := c.exec.HasImage(ctx, ref); err != nil || !ok {
		t.Fatalf("image not on the node after the pull: %v %v", ok, err)
	}
}

// Bad input gets one clear line and a non-zero exit, and changes nothing.
func TestBadInputChangesNothing(t *testing.T) {
	c := newCluster(t)
	c.importBusybox(testImage)
	c.mustWarren("service", "create", "web", "--image", testImage, "--", "sleep", "100000")
	info := func() *api.GetClusterInfoResponse {
		resp, err := c.client.GetClusterInfo(context.Background(), &api.GetClusterInfoRequest{})
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	before := info()

	cases := []struct {
		name string
		args []string
		want string
	}{
		{"invalid name", []string{"service", "create", "Bad Name", "--image", testImage}, "invalid service name"},
		{"negative replicas", []string{"service", "create", "x", "--image", testImage, "--replicas", "-1"}, "replicas"},
		{"image nowhere", []string{"service", "create", "x", "--image", "127.0.0.1:1/nothing:v1"}, "127.0.0.1:1/nothing:v1"},
		{"name taken", []string{"service", "create", "web", "--image", testImage}, "web"},
		{"unknown flag", []string{"service", "create", "x", "--image", testImage, "--replica", "2"}, "unknown flag"},
		{"no such service", []string{"service", "scale", "nope=2"}, "nope"},
		{"bad memory", []string{"service", "create", "x", "--image", testImage, "--limit-memory", "lots"}, "memory"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, errOut, err := c.warren(tc.args...)
			if err == nil {
				t.Fatalf("warren %v succeeded", tc.args)
			}
			lines := strings.Split(strings.TrimSpace(errOut), "\n")
			if !strings.Contains(lines[0], tc.want) {
				t.Errorf("error %q does not mention %q", errOut, tc.want)
			}
			if len(lines) > 2 {
				t.Errorf("error is %d lines, want one clear line (plus a hint):\n%s", len(lines), errOut)
			}
		})
	}

	t.Run("dead manager socket", func(t *testing.T) {
		out, errOut, err := c.warren("-H", "unix:///tmp/no-warren-here.sock", "service", "ls")
		_ = out
		if err == nil || !strings.Contains(errOut, "/tmp/no-warren-here.sock") {
			t.Fatalf("err = %v, stderr %q: want a failure naming the socket", err, errOut)
		}
	})

	after := info()
	if after.GetServices() != before.GetServices() || after.GetTasks() != before.GetTasks() {
		t.Fatalf("bad input changed the state: %d services/%d tasks, was %d/%d",
			after.GetServices(), after.GetTasks(), before.GetServices(), before.GetTasks())
	}
}

// `service update` replaces the tasks one at a time with the new spec; the
// old tasks stay visible as history in `service ps`.
func TestServiceUpdateRollsOneAtATime(t *testing.T) {
	c := newCluster(t)
	c.importBusybox(testImage)
	script := `trap "exit 0" TERM; echo "v=$V in $PWD"; sleep 100000 & wait`
	c.mustWarren("service", "create", "roller", "--image", testImage, "--replicas", "3",
		"--env", "V=1", "--workdir", "/tmp", "--", "sh", "-c", script)
	c.mustWarren("service", "update", "roller", "--env-add", "V=2")

	var current, history []*api.Task
	for _, task := range c.tasks("roller") {
		if task.GetDesiredState() == api.TaskState_TASK_STATE_RUNNING {
			current = append(current, task)
		} else {
			history = append(history, task)
		}
	}
	if len(current) != 3 || len(history) != 3 {
		t.Fatalf("%d current and %d earlier tasks, want 3 and 3", len(current), len(history))
	}
	for _, task := range current {
		if task.GetSpecVersion() != 2 || task.GetStatus().GetState() != api.TaskState_TASK_STATE_RUNNING {
			t.Errorf("task %s: spec version %d, state %v; want 2, running", task.GetId(), task.GetSpecVersion(), task.GetStatus().GetState())
		}
		logPath := filepath.Join(c.dir, "data", "logs", task.GetId()+".log")
		testutil.WaitFor(t, 10*time.Second, "new task logs v=2 in /tmp", func() bool {
			data, _ := os.ReadFile(logPath)
			return strings.Contains(string(data), "v=2 in /tmp")
		})
	}
	// One at a time: each new task was made only once the one before it ran.
	sort.Slice(current, func(i, j int) bool {
		return current[i].GetMeta().GetCreatedAt().AsTime().Before(current[j].GetMeta().GetCreatedAt().AsTime())
	})
	for i := 1; i < len(current); i++ {
		prevRunning := current[i-1].GetStatus().GetTimestamp().AsTime()
		if created := current[i].GetMeta().GetCreatedAt().AsTime(); created.Before(prevRunning) {
			t.Errorf("task %d was created at %v, before task %d ran (%v)", i, created, i-1, prevRunning)
		}
	}
	// Earlier tasks stop once drained out of load balancing (1 s).
	testutil.WaitFor(t, 30*time.Second, "the earlier tasks stopped", func() bool {
		for _, task := range c.tasks("roller") {
			if task.GetDesiredState() != api.TaskState_TASK_STATE_RUNNING && task.GetStatus().GetState() < api.TaskState_TASK_STATE_COMPLETE {
				return false
			}
		}
		return true
	})
	if ps := c.mustWarren("service", "ps", "roller"); strings.Count(ps, `\_`) != 3 {
		t.Errorf("service ps does not show the 3 earlier tasks as history:\n%s", ps)
	}
}
