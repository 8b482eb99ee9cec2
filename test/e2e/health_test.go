package e2e

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/internal/testutil"
)

// freePort is a host port free right now: containers share the host's
// network, so a service listens on one of these.
func freePort(t *testing.T) string {
	t.Helper()
	_, port, err := net.SplitHostPort(testutil.FreeAddr(t))
	if err != nil {
		t.Fatal(err)
	}
	return port
}

// waitTask polls the service's tasks until one satisfies cond, and returns it.
func (c *cluster) waitTask(service, what string, timeout time.Duration, cond func(*api.Task) bool) *api.Task {
	c.t.Helper()
	var found *api.Task
	testutil.WaitFor(c.t, timeout, service+": "+what, func() bool {
		for _, task := range c.tasks(service) {
			if cond(task) {
				found = task
				return true
			}
		}
		return false
	})
	return found
}

// runningHealthy matches a task RUNNING and healthy after restarts restarts.
func runningHealthy(restarts uint32) func(*api.Task) bool {
	return func(t *api.Task) bool {
		st := t.GetStatus()
		return st.GetState() == api.TaskState_TASK_STATE_RUNNING && st.GetRestartCount() == restarts &&
			st.GetHealth().GetState() == api.Health_STATE_HEALTHY
	}
}

// exec runs cmd in task id's container through the cluster's containerd.
func (c *cluster) execIn(id string, cmd ...string) {
	c.t.Helper()
	code, out, err := c.exec.Exec(context.Background(), id, cmd, 10*time.Second)
	if err != nil || code != 0 {
		c.t.Fatalf("exec %q in %s: code %d, %v: %s", cmd, id, code, err, out)
	}
}

// busybox httpd behind an HTTP check: healthy, then unhealthy once its page
// is gone, and restarted in place (the command puts the page back). The
// shell in front of httpd ends on SIGTERM, as a well-behaved app does:
// httpd as PID 1 would ignore it and cost the stop grace period.
func TestHealthHTTPCheckRestartsUnhealthyTask(t *testing.T) {
	c := newCluster(t)
	c.importBusybox(testImage)
	port := freePort(t)
	c.mustWarren("service", "create", "web", "--image", testImage,
		"--health-http", "/index.html", "--health-port", port, "--health-interval", "1s", "--health-retries", "3",
		"--", "sh", "-c", "echo ok > /www/index.html; trap 'exit 0' TERM; httpd -f -p "+port+" -h /www & wait")
	task := c.waitTask("web", "running and healthy", 30*time.Second, runningHealthy(0))
	if out := c.mustWarren("service", "ps", "web"); !strings.Contains(out, "(healthy)") {
		t.Errorf("service ps does not show the task healthy:\n%s", out)
	}

	failedAt := time.Now()
	c.execIn(task.GetId(), "rm", "/www/index.html")
	const reason = "health check failed 3 times: HTTP 404 Not Found"
	restarted := c.waitTask("web", "restarted in place and healthy", 60*time.Second, runningHealthy(1))
	st := restarted.GetStatus()
	if restarted.GetId() != task.GetId() || st.GetLastExit().GetReason() != reason {
		t.Fatalf("after the page went: task %s, status %v; want task %s restarted for %q", restarted.GetId(), st, task.GetId(), reason)
	}
	if n := len(c.tasks("web")); n != 1 {
		t.Errorf("%d tasks, want the one restarted in place", n)
	}
	exited, running := st.GetLastExit().GetAt().AsTime(), st.GetTimestamp().AsTime()
	t.Logf("FIGURE health: from the check starting to fail to the replacement running: %v (interval 1s, retries 3): "+
		"%v to the verdict and the container's exit, %v to the restarted one's first healthy probe",
		running.Sub(failedAt).Round(10*time.Millisecond), exited.Sub(failedAt).Round(10*time.Millisecond), running.Sub(exited).Round(10*time.Millisecond))
}

// TCP and exec checks, and a start period, on one node.
func TestHealthTCPExecAndStartPeriod(t *testing.T) {
	c := newCluster(t)
	c.importBusybox(testImage)

	t.Run("tcp", func(t *testing.T) {
		port := freePort(t)
		// httpd daemonizes; the shell stays as the main process.
		c.mustWarren("service", "create", "tcp", "--image", testImage,
			"--health-tcp", port, "--health-interval", "500ms", "--health-retries", "2", "--stop-grace-period", "1s",
			"--", "sh", "-c", "httpd -p "+port+" -h /www; exec sleep 100000")
		task := c.waitTask("tcp", "running and healthy", 30*time.Second, runningHealthy(0))
		c.execIn(task.GetId(), "killall", "httpd")
		task = c.waitTask("tcp", "restarted and healthy", 60*time.Second, runningHealthy(1))
		if r := task.GetStatus().GetLastExit().GetReason(); r != "health check failed 2 times: connection refused" {
			t.Fatalf("last exit reason %q", r)
		}
	})

	t.Run("exec", func(t *testing.T) {
		c.mustWarren("service", "create", "exec", "--image", testImage,
			"--health-cmd", "test -f /tmp/ok", "--health-interval", "500ms", "--health-retries", "2", "--stop-grace-period", "1s",
			"--", "sh", "-c", "touch /tmp/ok; exec sleep 100000")
		task := c.waitTask("exec", "running and healthy", 30*time.Second, runningHealthy(0))
		c.execIn(task.GetId(), "rm", "/tmp/ok")
		task = c.waitTask("exec", "restarted and healthy", 60*time.Second, runningHealthy(1))
		if r := task.GetStatus().GetLastExit().GetReason(); r != "health check failed 2 times: exit code 1" {
			t.Fatalf("last exit reason %q", r)
		}
	})

	t.Run("start period", func(t *testing.T) {
		// Ready after 2s; probes every 200ms that fail once would kill it,
		// but not inside the 4s start period.
		start := time.Now()
		c.mustWarren("service", "create", "slow", "--image", testImage,
			"--health-cmd", "test -f /tmp/ready", "--health-interval", "200ms", "--health-retries", "1", "--health-start-period", "4s",
			"--", "sh", "-c", "sleep 2; touch /tmp/ready; exec sleep 100000")
		task := c.waitTask("slow", "running and healthy", 30*time.Second, func(t *api.Task) bool {
			return t.GetStatus().GetState() == api.TaskState_TASK_STATE_RUNNING
		})
		st := task.GetStatus()
		if st.GetRestartCount() != 0 || st.GetHealth().GetState() != api.Health_STATE_HEALTHY {
			t.Fatalf("status %v; want healthy without a restart", st)
		}
		if took := st.GetTimestamp().AsTime().Sub(start); took < 2*time.Second {
			t.Fatalf("RUNNING %v after create, before the app was ready", took)
		}
	})
}

// Restart policies on a real node: on-failure gives up after its attempts
// (for exits and for failed health checks alike), and a clean exit under
// on-failure is complete, for good.
func TestRestartPoliciesEndTasks(t *testing.T) {
	c := newCluster(t)
	c.importBusybox(testImage)
	ended := func(t *api.Task) bool { return t.GetStatus().GetState() >= api.TaskState_TASK_STATE_COMPLETE }
	cases := []struct {
		name     string
		args     []string
		state    api.TaskState
		restarts uint32
		err      string
	}{
		{"exit-code", []string{"--restart-condition", "on-failure", "--restart-max-attempts", "2", "--restart-delay", "100ms", "--", "sh", "-c", "exit 3"},
			api.TaskState_TASK_STATE_FAILED, 2, "container exited with code 3"},
		{"unhealthy", []string{"--restart-condition", "on-failure", "--restart-max-attempts", "1", "--restart-delay", "100ms",
			"--health-cmd", "false", "--health-interval", "200ms", "--health-retries", "2", "--stop-grace-period", "1s", "--", "sleep", "100000"},
			api.TaskState_TASK_STATE_FAILED, 1, "health check failed 2 times: exit code 1"},
		{"clean-exit", []string{"--restart-condition", "on-failure", "--", "sh", "-c", "exit 0"},
			api.TaskState_TASK_STATE_COMPLETE, 0, ""},
	}
	for _, tc := range cases {
		c.mustWarren(append([]string{"service", "create", tc.name, "--image", testImage, "-d"}, tc.args...)...)
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			task := c.waitTask(tc.name, "ended", 60*time.Second, ended)
			st := task.GetStatus()
			if st.GetState() != tc.state || st.GetRestartCount() != tc.restarts || st.GetErr() != tc.err {
				t.Fatalf("ended as %v after %d restarts, err %q; want %v after %d, err %q",
					st.GetState(), st.GetRestartCount(), st.GetErr(), tc.state, tc.restarts, tc.err)
			}
		})
	}
	// It stays so: no restart in place, no replacement task. The node and
	// the orchestrator act within milliseconds; two seconds is plenty.
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		for _, tc := range cases {
			tasks := c.tasks(tc.name)
			if len(tasks) != 1 || tasks[0].GetStatus().GetState() != tc.state || tasks[0].GetStatus().GetRestartCount() != tc.restarts {
				t.Fatalf("%s changed after it ended: %v", tc.name, tasks)
			}
		}
		if n := len(c.running("")); n != 0 {
			t.Fatalf("%d containers running after every task ended", n)
		}
		time.Sleep(100 * time.Millisecond) // observing that nothing happens, up to the deadline
	}
}
