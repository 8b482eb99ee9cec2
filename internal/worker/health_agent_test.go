package worker_test

import (
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/internal/state"
)

// An HTTP check probed by the agent on the host, against a server of the
// test's: the task runs only once healthy, health changes reach the store
// at once (heartbeats here are a minute apart), and an unhealthy task is
// restarted in place with the reason.
func TestHealthDrivesTaskState(t *testing.T) {
	var failing atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if failing.Load() {
			http.Error(w, "broken", http.StatusInternalServerError)
			return
		}
		_, _ = w.Write([]byte("ok"))
	}))
	defer srv.Close()
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	n, _ := strconv.Atoi(port)

	c := newCluster(t)
	c.dispConf.HeartbeatPeriod, c.dispConf.NodeDownAfter = time.Minute, 10*time.Minute
	c.startManager()
	c.startAgent(agentConfig("n1", c.rt, c.dial))
	failing.Store(true)
	c.update(func(tx state.Tx) error {
		return tx.Create(&api.Task{
			Id: "t1", Meta: &api.Meta{}, ServiceId: "svc1", ServiceName: "web", Slot: 1, NodeId: "n1",
			DesiredState: running,
			Status:       &api.TaskStatus{State: api.TaskState_TASK_STATE_ASSIGNED},
			Spec: &api.TaskSpec{Container: &api.ContainerSpec{Image: "busybox", Healthcheck: &api.HealthCheck{
				Probe:    &api.HealthCheck_Http{Http: &api.HealthHTTP{Path: "/healthz", Port: uint32(n)}},
				Interval: durationpb.New(10 * time.Millisecond), Retries: 3, StartPeriod: durationpb.New(time.Hour),
			}}},
		})
	})

	// Failing inside the start period: STARTING, its health starting.
	st := c.waitStatus("t1", 0, api.TaskState_TASK_STATE_STARTING)
	waitFor(t, "the started task's health", func() bool {
		st = c.task("t1").GetStatus()
		return st.GetHealth().GetState() == api.Health_STATE_STARTING
	})
	if st.GetMessage() != "started; waiting for the health check" {
		t.Fatalf("starting status = %v", st)
	}
	failing.Store(false)
	st = c.waitStatus("t1", 0, running)
	if st.GetHealth().GetState() != api.Health_STATE_HEALTHY || !strings.Contains(st.GetHealth().GetLastOutput(), "HTTP 200 OK") {
		t.Fatalf("running status = %v, want healthy", st)
	}

	// Unhealthy: restarted in place. The new round starts within its start
	// period, so it waits, failing, for the server to recover.
	failing.Store(true)
	st = c.waitStatus("t1", 1, api.TaskState_TASK_STATE_STARTING)
	const reason = "health check failed 3 times: HTTP 500 Internal Server Error"
	if st.GetLastExit().GetReason() != reason {
		t.Fatalf("status after the verdict = %v, want the reason %q", st, reason)
	}
	failing.Store(false)
	st = c.waitStatus("t1", 1, running)
	if st.GetHealth().GetState() != api.Health_STATE_HEALTHY || st.GetLastExit().GetReason() != reason {
		t.Fatalf("status after the restart = %v, want healthy, last exit %q", st, reason)
	}
}
