package main

import (
	"context"
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

func TestServiceCreateSendsSpec(t *testing.T) {
	fake, host := fakeManager(t)
	r := warren(t, host, "service", "create", "web", "--image", "nginx:1.27", "--replicas", "2",
		"-e", "A=1", "--env", "B=x,y", "--command", "/bin/sh -c", "--workdir", "/srv", "--user", "app",
		"--limit-cpu", "0.5", "--limit-memory", "256M", "--reserve-cpu", "0.25", "--reserve-memory", "128m",
		"--constraint", "node.role==manager", "--label", "team=web", "--container-label", "x=y",
		"--restart-condition", "on-failure", "--restart-delay", "5s", "--restart-max-attempts", "3", "--restart-window", "1m",
		"--stop-grace-period", "20s", "--update-parallelism", "2", "--update-delay", "10s",
		"--network", "host", "--max-replicas-per-node", "1", "--log-max-size", "1M", "--log-max-files", "2",
		"--", "-c", "echo hello").wantOK(t)

	reqs := fake.Requests("CreateService")
	if len(reqs) != 1 {
		t.Fatalf("%d CreateService calls; want 1", len(reqs))
	}
	want := &api.ServiceSpec{
		Name:   "web",
		Labels: map[string]string{"team": "web"},
		Mode:   &api.ServiceSpec_Replicated{Replicated: &api.ReplicatedService{Replicas: 2}},
		Task: &api.TaskSpec{
			Container: &api.ContainerSpec{
				Image: "nginx:1.27", Command: []string{"/bin/sh", "-c"}, Args: []string{"-c", "echo hello"},
				Env: []string{"A=1", "B=x,y"}, Workdir: "/srv", User: "app", Labels: map[string]string{"x": "y"},
				StopGracePeriod: durationpb.New(20 * time.Second), Network: "host",
				LogMaxSize: 1 << 20, LogMaxFiles: 2,
			},
			Resources: &api.ResourceRequirements{
				Limits:       &api.Resources{NanoCpus: 5e8, MemoryBytes: 256 << 20},
				Reservations: &api.Resources{NanoCpus: 25e7, MemoryBytes: 128 << 20},
			},
			Restart: &api.RestartPolicy{
				Condition: api.RestartPolicy_CONDITION_ON_FAILURE, Delay: durationpb.New(5 * time.Second),
				MaxAttempts: 3, Window: durationpb.New(time.Minute),
			},
			Placement: &api.Placement{Constraints: []string{"node.role==manager"}, MaxReplicasPerNode: 1},
		},
		Update: &api.UpdateConfig{Parallelism: 2, Delay: durationpb.New(10 * time.Second)},
	}
	if got := reqs[0].(*api.CreateServiceRequest).GetSpec(); !proto.Equal(got, want) {
		t.Fatalf("spec sent:\n%v\nwant:\n%v", got, want)
	}
	lines := strings.Split(strings.TrimSpace(r.out), "\n")
	svcID := fake.Tasks()[0].GetServiceId()
	if lines[0] != svcID {
		t.Errorf("first line %q; want the service ID %s", lines[0], svcID)
	}
	if last := lines[len(lines)-1]; last != "verify: service web converged" {
		t.Errorf("last line %q; want the convergence note", last)
	}
	if !strings.Contains(r.out, "overall progress: 2 out of 2 tasks") || !strings.Contains(r.out, "1/2: running") {
		t.Errorf("progress lacks the final state:\n%s", r.out)
	}
}

func TestServiceCreateDefaults(t *testing.T) {
	fake, host := fakeManager(t)
	warren(t, host, "service", "create", "web", "--image", "nginx", "-d").wantOK(t)
	want := &api.ServiceSpec{
		Name: "web",
		Mode: &api.ServiceSpec_Replicated{Replicated: &api.ReplicatedService{Replicas: 1}},
		Task: &api.TaskSpec{Container: &api.ContainerSpec{Image: "nginx"}},
	}
	got := fake.Requests("CreateService")[0].(*api.CreateServiceRequest).GetSpec()
	if !proto.Equal(got, want) {
		t.Fatalf("spec sent:\n%v\nwant:\n%v", got, want)
	}
	if n := len(fake.Requests("ListTasks")); n != 0 {
		t.Errorf("%d ListTasks calls with --detach; want none", n)
	}
}

func TestServiceCreateRejectsBadInput(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"bad name", []string{"Foo Bar", "--image", "nginx"}, `invalid service name "Foo Bar": use letters, digits, '-', '_' or '.', starting with a letter or digit, at most 63 characters`},
		{"no image", []string{"web"}, "--image is required"},
		{"bad env", []string{"web", "--image", "nginx", "-e", "NOVALUE"}, `invalid environment variable "NOVALUE"`},
		{"bad memory", []string{"web", "--image", "nginx", "--limit-memory", "lots"}, `--limit-memory: invalid memory size "lots"`},
		{"reservation above limit", []string{"web", "--image", "nginx", "--limit-cpu", "1", "--reserve-cpu", "2"}, "the CPU reservation (2) is more than the CPU limit (1)"},
		{"bad restart", []string{"web", "--image", "nginx", "--restart-condition", "always"}, `invalid restart condition "always"`},
		{"global with replicas", []string{"web", "--image", "nginx", "--mode", "global", "--replicas", "2"}, "--replicas applies to replicated services"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake, host := fakeManager(t)
			warren(t, host, append([]string{"service", "create"}, tt.args...)...).wantError(t, tt.want)
			if calls := fake.Calls(); len(calls) != 0 {
				t.Fatalf("the manager got %d calls; want none", len(calls))
			}
		})
	}
}

func TestServiceCreateShowsFailuresAndStopsOnInterrupt(t *testing.T) {
	fake, host := fakeManager(t)
	fake.Reject("bad:1", "pull bad:1: not found")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	done := make(chan result)
	go func() { done <- warrenCtx(ctx, t, "warren", host, "service", "create", "web", "--image", "bad:1") }()

	// Interrupt once the CLI has asked past a state holding a rejection:
	// by then it has printed it. Cancelling the context is what Ctrl-C does.
	var rejectedAt uint64
	waitFor(t, "a task rejected", func() bool {
		if hasRejected(fake) {
			rejectedAt = fake.Index()
		}
		return rejectedAt > 0
	})
	waitFor(t, "the CLI waiting past the rejection", func() bool {
		for _, r := range fake.Requests("ListTasks") {
			if r.(*api.ListTasksRequest).GetMinIndex() >= rejectedAt {
				return true
			}
		}
		return false
	})
	cancel()
	r := <-done
	if r.code != 130 || !strings.Contains(r.err, `service web is still converging: see "warren service ps web"`) {
		t.Fatalf("exit code %d, stderr %q; want 130 and a note", r.code, r.err)
	}
	if !strings.Contains(r.out, "(web.1) rejected on node-1: pull bad:1: not found") {
		t.Fatalf("output lacks the rejection:\n%s", r.out)
	}
}

// waitFor polls cond until it holds, failing the test if it never does.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s never happened", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func hasRejected(f *clienttest.Fake) bool {
	for _, t := range f.Tasks() {
		if t.GetStatus().GetState() == api.TaskState_TASK_STATE_REJECTED {
			return true
		}
	}
	return false
}

func TestServiceLs(t *testing.T) {
	_, host := fakeManager(t)
	warren(t, host, "service", "create", "web", "--image", "nginx", "--replicas", "2").wantOK(t)
	warren(t, host, "service", "create", "db", "--image", "postgres", "-d").wantOK(t)

	r := warren(t, host, "service", "ls", "--format", "json").wantOK(t)
	var services []map[string]any
	if err := json.Unmarshal([]byte(r.out), &services); err != nil {
		t.Fatalf("service ls --format json is not JSON: %v\n%s", err, r.out)
	}
	if len(services) != 2 || services[0]["spec"].(map[string]any)["name"] != "db" {
		t.Fatalf("services %v; want db and web, by name", services)
	}

	r = warren(t, host, "service", "ls").wantOK(t)
	lines := strings.Split(strings.TrimSpace(r.out), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "ID") || !strings.Contains(lines[2], "2/2") || !strings.Contains(lines[2], "replicated") {
		t.Fatalf("service ls:\n%s\nwant a header, db, then web with 2/2", r.out)
	}

	r = warren(t, host, "service", "list", "--format", "{{.Name}} {{.Image}}").wantOK(t)
	if r.out != "db postgres\nweb nginx\n" {
		t.Fatalf("template output %q", r.out)
	}
}

func TestServiceInspect(t *testing.T) {
	_, host := fakeManager(t)
	warren(t, host, "service", "create", "web", "--image", "nginx", "-d").wantOK(t)
	r := warren(t, host, "service", "inspect", "web").wantOK(t)
	var got []map[string]any
	if err := json.Unmarshal([]byte(r.out), &got); err != nil || len(got) != 1 {
		t.Fatalf("inspect output is not a JSON array of one: %v\n%s", err, r.out)
	}
	if !strings.Contains(r.out, "\n        \"id\": ") {
		t.Errorf("inspect output is not indented:\n%s", r.out)
	}
	r = warren(t, host, "service", "inspect", "web", "--format", "{{.Spec.Name}} {{.Spec.Task.Container.Image}}").wantOK(t)
	if r.out != "web nginx\n" {
		t.Errorf("template output %q", r.out)
	}
	r = warren(t, host, "service", "inspect", "web", "nope")
	r.wantError(t, "service nope not found")
	if !strings.Contains(r.out, `"name": "web"`) {
		t.Errorf("the service found was not printed:\n%s", r.out)
	}
}

func TestServicePsShowsHistory(t *testing.T) {
	fake := clienttest.New()
	host := clienttest.Start(t, fake)
	node := fake.Nodes()[0]
	// No replicas, and no stepping: the test writes the tasks itself.
	svcID := strings.TrimSpace(warren(t, host, "service", "create", "web", "--image", "nginx:1", "--replicas", "0", "-d").wantOK(t).out)
	now := time.Now()
	task := func(id string, slot uint64, desired, state api.TaskState, age time.Duration, err string) *api.Task {
		at := timestamppb.New(now.Add(-age))
		return &api.Task{
			Id: id, ServiceId: svcID, ServiceName: "web", Slot: slot, NodeId: node.GetId(),
			Meta: &api.Meta{CreatedAt: at}, DesiredState: desired,
			Spec:   &api.TaskSpec{Container: &api.ContainerSpec{Image: "nginx:1"}},
			Status: &api.TaskStatus{State: state, Timestamp: at, Err: err, RestartCount: 2},
		}
	}
	run, shut := api.TaskState_TASK_STATE_RUNNING, api.TaskState_TASK_STATE_SHUTDOWN
	for _, tk := range []*api.Task{
		task("old1aaaaaaaaaaaaaaaaaaaa", 1, shut, api.TaskState_TASK_STATE_FAILED, time.Hour, "exit status 1: a very long error message that goes on"),
		task("cur1aaaaaaaaaaaaaaaaaaaa", 1, run, run, 5*time.Second, ""),
		task("cur2aaaaaaaaaaaaaaaaaaaa", 2, run, api.TaskState_TASK_STATE_PREPARING, 3*time.Minute, ""),
		task("old2aaaaaaaaaaaaaaaaaaaa", 2, shut, shut, 2*time.Hour, ""),
	} {
		fake.PutTask(tk)
	}
	r := warren(t, host, "service", "ps", "web").wantOK(t)
	lines := strings.Split(strings.TrimSpace(r.out), "\n")
	if len(lines) != 5 {
		t.Fatalf("service ps:\n%s\nwant a header and 4 tasks", r.out)
	}
	wantRows := [][]string{
		{"cur1aaaaaaaa", "web.1", "nginx:1", "node-1", "Running", "Running 5 seconds ago", "2"},
		{"old1aaaaaaaa", `\_ web.1`, "Shutdown", "Failed about an hour ago", "exit status 1: a very long error messag…"},
		{"cur2aaaaaaaa", "web.2", "Running", "Preparing 3 minutes ago"},
		{"old2aaaaaaaa", `\_ web.2`, "Shutdown", "Shutdown 2 hours ago"},
	}
	for i, want := range wantRows {
		for _, cell := range want {
			if !strings.Contains(lines[i+1], cell) {
				t.Errorf("row %d %q lacks %q", i+1, lines[i+1], cell)
			}
		}
	}
	r = warren(t, host, "service", "ps", "web", "--no-trunc", "--format", "{{.ID}} {{.Error}}").wantOK(t)
	if !strings.Contains(r.out, "old1aaaaaaaaaaaaaaaaaaaa exit status 1: a very long error message that goes on\n") {
		t.Errorf("--no-trunc output:\n%s", r.out)
	}
}
