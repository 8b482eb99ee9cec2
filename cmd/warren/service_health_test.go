package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/pkg/client/clienttest"
)

func TestServiceCreateHealthFlags(t *testing.T) {
	sec := func(n int) *durationpb.Duration { return durationpb.New(time.Duration(n) * time.Second) }
	tests := []struct {
		name string
		args []string
		want *api.HealthCheck
	}{
		{"none", nil, nil},
		{"command with timings", []string{"--health-cmd", "test -f /ready", "--health-interval", "2s", "--health-timeout", "1s", "--health-retries", "5", "--health-start-period", "10s"},
			&api.HealthCheck{Probe: &api.HealthCheck_Exec{Exec: &api.HealthExec{Command: []string{"test -f /ready"}}},
				Interval: sec(2), Timeout: sec(1), Retries: 5, StartPeriod: sec(10)}},
		{"http", []string{"--health-http", "/healthz", "--health-port", "8080"},
			&api.HealthCheck{Probe: &api.HealthCheck_Http{Http: &api.HealthHTTP{Path: "/healthz", Port: 8080}}}},
		{"tcp", []string{"--health-tcp", "5432", "--health-interval", "1s"},
			&api.HealthCheck{Probe: &api.HealthCheck_Tcp{Tcp: &api.HealthTCP{Port: 5432}}, Interval: sec(1)}},
		{"timings for the image's check", []string{"--health-retries", "2"}, &api.HealthCheck{Retries: 2}},
		{"off", []string{"--no-healthcheck"}, &api.HealthCheck{Disabled: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake, host := fakeManager(t)
			warren(t, host, append([]string{"service", "create", "web", "--image", "nginx", "-d"}, tt.args...)...).wantOK(t)
			got := fake.Requests("CreateService")[0].(*api.CreateServiceRequest).GetSpec().GetTask().GetContainer().GetHealthcheck()
			if !proto.Equal(got, tt.want) {
				t.Fatalf("health check sent: %v\nwant: %v", got, tt.want)
			}
		})
	}
}

func TestServiceCreateRejectsBadHealthFlags(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"off with a probe", []string{"--no-healthcheck", "--health-cmd", "true"}, "--no-healthcheck turns health checks off: it cannot be given with --health-cmd"},
		{"off with a timing", []string{"--no-healthcheck", "--health-interval", "1s"}, "it cannot be given with --health-interval"},
		{"two probes", []string{"--health-cmd", "true", "--health-tcp", "80"}, "give one health check, not both --health-cmd and --health-tcp"},
		{"http without a port", []string{"--health-http", "/"}, "--health-http needs --health-port"},
		{"a port alone", []string{"--health-port", "80"}, "--health-port goes with --health-http"},
		{"tcp port 0", []string{"--health-tcp", "0"}, "the TCP health check needs a port from 1 to 65535"},
		{"relative path", []string{"--health-http", "healthz", "--health-port", "80"}, `invalid health check path "healthz"`},
		{"tiny interval", []string{"--health-tcp", "80", "--health-interval", "1us"}, "the health check interval (1µs) is too short"},
		{"empty command", []string{"--health-cmd", ""}, "the health check command is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake, host := fakeManager(t)
			warren(t, host, append([]string{"service", "create", "web", "--image", "nginx"}, tt.args...)...).wantError(t, tt.want)
			if calls := fake.Calls(); len(calls) != 0 {
				t.Fatalf("the manager got %d calls; want none", len(calls))
			}
		})
	}
}

func TestServiceUpdateHealth(t *testing.T) {
	fake, host := fakeManager(t)
	warren(t, host, "service", "create", "web", "--image", "nginx", "--health-http", "/a", "--health-port", "80", "--health-retries", "4", "-d").wantOK(t)
	steps := []struct {
		args []string
		want *api.HealthCheck
	}{
		{[]string{"--health-port", "81"}, &api.HealthCheck{Probe: &api.HealthCheck_Http{Http: &api.HealthHTTP{Path: "/a", Port: 81}}, Retries: 4}},
		{[]string{"--health-http", "/b", "--health-interval", "3s"},
			&api.HealthCheck{Probe: &api.HealthCheck_Http{Http: &api.HealthHTTP{Path: "/b", Port: 81}}, Retries: 4, Interval: durationpb.New(3 * time.Second)}},
		{[]string{"--no-healthcheck"}, &api.HealthCheck{Disabled: true}},
		{[]string{"--health-cmd", "check"}, &api.HealthCheck{Probe: &api.HealthCheck_Exec{Exec: &api.HealthExec{Command: []string{"check"}}}}},
		{[]string{"--env-add", "A=1"}, &api.HealthCheck{Probe: &api.HealthCheck_Exec{Exec: &api.HealthExec{Command: []string{"check"}}}}},
	}
	for _, s := range steps {
		warren(t, host, append([]string{"service", "update", "web", "-d"}, s.args...)...).wantOK(t)
		got := lastUpdate(t, fake.Requests("UpdateService")).GetSpec().GetTask().GetContainer().GetHealthcheck()
		if !proto.Equal(got, s.want) {
			t.Fatalf("after update %q the check is %v\nwant %v", s.args, got, s.want)
		}
	}
	warren(t, host, "service", "update", "web", "-d", "--health-port", "82").wantError(t, "--health-port goes with --health-http")
}

func TestServicePsShowsHealth(t *testing.T) {
	fake := clienttest.New()
	host := clienttest.Start(t, fake)
	node := fake.Nodes()[0]
	svcID := strings.TrimSpace(warren(t, host, "service", "create", "web", "--image", "nginx:1", "--replicas", "0", "-d").wantOK(t).out)
	now := time.Now()
	task := func(id string, slot uint64, state api.TaskState, age time.Duration, h api.Health_State) *api.Task {
		at := timestamppb.New(now.Add(-age))
		var health *api.Health
		if h != api.Health_STATE_NONE {
			health = &api.Health{State: h, FailingStreak: 1, LastOutput: "GET /: HTTP 200 OK", LastProbe: at}
		}
		return &api.Task{
			Id: id, ServiceId: svcID, ServiceName: "web", Slot: slot, NodeId: node.GetId(),
			Meta: &api.Meta{CreatedAt: at}, DesiredState: api.TaskState_TASK_STATE_RUNNING,
			Spec:   &api.TaskSpec{Container: &api.ContainerSpec{Image: "nginx:1"}},
			Status: &api.TaskStatus{State: state, Timestamp: at, Health: health},
		}
	}
	for _, tk := range []*api.Task{
		task("run1aaaaaaaaaaaaaaaaaaaa", 1, api.TaskState_TASK_STATE_RUNNING, 5*time.Second, api.Health_STATE_HEALTHY),
		task("sta2aaaaaaaaaaaaaaaaaaaa", 2, api.TaskState_TASK_STATE_STARTING, 3*time.Second, api.Health_STATE_STARTING),
		task("unh3aaaaaaaaaaaaaaaaaaaa", 3, api.TaskState_TASK_STATE_RUNNING, time.Minute, api.Health_STATE_UNHEALTHY),
		task("fai4aaaaaaaaaaaaaaaaaaaa", 4, api.TaskState_TASK_STATE_FAILED, time.Minute, api.Health_STATE_UNHEALTHY),
		task("plain5aaaaaaaaaaaaaaaaaa", 5, api.TaskState_TASK_STATE_RUNNING, time.Minute, api.Health_STATE_NONE),
	} {
		fake.PutTask(tk)
	}
	r := warren(t, host, "service", "ps", "web").wantOK(t)
	lines := strings.Split(strings.TrimSpace(r.out), "\n")
	want := []string{"Running 5 seconds ago (healthy)", "Starting 3 seconds ago (health: starting)", "Running about a minute ago (unhealthy)", "Failed about a minute ago", "Running about a minute ago"}
	if len(lines) != len(want)+1 {
		t.Fatalf("service ps:\n%s\nwant a header and %d tasks", r.out, len(want))
	}
	for i, w := range want {
		if !strings.Contains(lines[i+1], w+"   ") {
			t.Errorf("row %d %q lacks %q", i+1, lines[i+1], w)
		}
	}
	r = warren(t, host, "service", "ps", "web", "--format", "{{.Name}} {{.Health}}").wantOK(t)
	if r.out != "web.1 healthy\nweb.2 starting\nweb.3 unhealthy\nweb.4 unhealthy\nweb.5 \n" {
		t.Errorf("template output %q", r.out)
	}
	r = warren(t, host, "service", "ps", "web", "--format", "json").wantOK(t)
	var tasks []struct {
		Status struct {
			Health struct {
				State         string `json:"state"`
				FailingStreak int    `json:"failingStreak"`
				LastOutput    string `json:"lastOutput"`
				LastProbe     string `json:"lastProbe"`
			} `json:"health"`
		} `json:"status"`
	}
	if err := json.Unmarshal([]byte(r.out), &tasks); err != nil {
		t.Fatalf("ps --format json is not JSON: %v\n%s", err, r.out)
	}
	if h := tasks[0].Status.Health; h.State != "STATE_HEALTHY" || h.FailingStreak != 1 || h.LastOutput != "GET /: HTTP 200 OK" || h.LastProbe == "" {
		t.Errorf("first task's health in JSON = %+v\n%s", h, r.out)
	}
}

func TestServiceInspectShowsHealthCheck(t *testing.T) {
	_, host := fakeManager(t)
	warren(t, host, "service", "create", "web", "--image", "nginx", "-d", "--health-http", "/healthz", "--health-port", "8080", "--health-interval", "2s").wantOK(t)
	r := warren(t, host, "service", "inspect", "web", "--format", "{{json .Spec.Task.Container.Healthcheck}}").wantOK(t)
	if strings.TrimSpace(r.out) != `{"http":{"path":"/healthz","port":8080},"interval":"2s"}` {
		t.Errorf("inspect shows the check as %s", r.out)
	}
}
