package main

import (
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/internal/spec"
)

func lastUpdate(t *testing.T, reqs []proto.Message) *api.UpdateServiceRequest {
	t.Helper()
	if len(reqs) == 0 {
		t.Fatal("no UpdateService call")
	}
	return reqs[len(reqs)-1].(*api.UpdateServiceRequest)
}

func TestServiceScale(t *testing.T) {
	tests := []struct {
		name      string
		args      []string
		conflicts int
	}{
		{"pair", []string{"web=3"}, 0},
		{"two words", []string{"web", "3"}, 0},
		{"retries a conflict once", []string{"web=3"}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake, host := fakeManager(t)
			warren(t, host, "service", "create", "web", "--image", "nginx", "-d").wantOK(t)
			fake.ConflictUpdates(tt.conflicts)
			r := warren(t, host, append([]string{"service", "scale"}, tt.args...)...).wantOK(t)
			if !strings.HasPrefix(r.out, "web scaled to 3\n") || !strings.Contains(r.out, "overall progress: 3 out of 3 tasks") {
				t.Fatalf("scale output:\n%s", r.out)
			}
			reqs := fake.Requests("UpdateService")
			if len(reqs) != tt.conflicts+1 {
				t.Fatalf("%d UpdateService calls; want %d", len(reqs), tt.conflicts+1)
			}
			up := lastUpdate(t, reqs)
			if up.GetSpec().GetReplicated().GetReplicas() != 3 || up.GetServiceVersion() == 0 {
				t.Fatalf("update %v: want 3 replicas, based on the version read", up)
			}
		})
	}
}

func TestServiceScaleTwoConflictsFail(t *testing.T) {
	fake, host := fakeManager(t)
	warren(t, host, "service", "create", "web", "--image", "nginx", "-d").wantOK(t)
	fake.ConflictUpdates(2)
	warren(t, host, "service", "scale", "web=2", "-d").wantError(t, "service web changed since it was read")
}

func TestServiceScaleGlobal(t *testing.T) {
	_, host := fakeManager(t)
	warren(t, host, "service", "create", "agent", "--image", "nginx", "--mode", "global", "-d").wantOK(t)
	warren(t, host, "service", "scale", "agent=2").wantError(t, "service agent is global: it runs one task per node and cannot be scaled")
}

func TestServiceUpdate(t *testing.T) {
	fake, host := fakeManager(t)
	warren(t, host, "service", "create", "web", "--image", "nginx:1", "-e", "A=1", "-e", "B=2", "-d").wantOK(t)
	r := warren(t, host, "service", "update", "web", "--image", "nginx:2", "--env-add", "A=9", "--env-add", "C=3",
		"--env-rm", "B", "--args", "serve --port 80", "--limit-memory", "1g").wantOK(t)
	if !strings.HasPrefix(r.out, "web\n") || !strings.HasSuffix(r.out, "verify: service web converged\n") {
		t.Fatalf("update output:\n%s", r.out)
	}
	up := lastUpdate(t, fake.Requests("UpdateService"))
	ctr := up.GetSpec().GetTask().GetContainer()
	if ctr.GetImage() != "nginx:2" || strings.Join(ctr.GetEnv(), " ") != "A=9 C=3" || strings.Join(ctr.GetArgs(), " ") != "serve --port 80" {
		t.Fatalf("container spec sent: %v", ctr)
	}
	if up.GetSpec().GetTask().GetResources().GetLimits().GetMemoryBytes() != 1<<30 {
		t.Fatalf("resources sent: %v", up.GetSpec().GetTask().GetResources())
	}
	for _, tk := range fake.Tasks() {
		if tk.GetDesiredState() == api.TaskState_TASK_STATE_RUNNING && tk.GetSpec().GetContainer().GetImage() != "nginx:2" {
			t.Errorf("task %s still meant to run %s", tk.GetId(), tk.GetSpec().GetContainer().GetImage())
		}
	}
}

func TestServiceRemove(t *testing.T) {
	fake, host := fakeManager(t)
	warren(t, host, "service", "create", "web", "--image", "nginx", "--replicas", "2").wantOK(t)
	r := warren(t, host, "service", "rm", "web", "nope")
	r.wantError(t, "service nope not found")
	if r.out != "web\n" {
		t.Errorf("rm output %q; want the removed name", r.out)
	}
	if n := len(fake.Tasks()); n != 0 {
		t.Fatalf("%d tasks remain after service rm returned; want it to wait for them", n)
	}
}

func TestServiceUpdatePorts(t *testing.T) {
	fake, host := fakeManager(t)
	warren(t, host, "service", "create", "web", "--image", "nginx", "-p", "8080:80", "-p", "53:53/udp", "-d").wantOK(t)
	warren(t, host, "service", "update", "web", "--publish-rm", "8080", "--publish-add", "9090:80", "--publish-add", "53:5353/udp", "-d").wantOK(t)
	var got []string
	for _, p := range lastUpdate(t, fake.Requests("UpdateService")).GetSpec().GetEndpoint().GetPorts() {
		got = append(got, spec.FormatPort(p))
	}
	if strings.Join(got, " ") != "9090->80/tcp 53->5353/udp" {
		t.Fatalf("ports sent: %v", got)
	}
	warren(t, host, "service", "update", "web", "--publish-rm", "7000").wantError(t, "does not publish 7000/tcp")
}
