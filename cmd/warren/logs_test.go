package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/pkg/client/clienttest"
)

// logsFake is a fake manager with service web: task aaa… (slot 1) on
// node-1, task bbb… (slot 2) on edge-2, and task ccc… (slot 3) on down-3,
// which is down.
func logsFake(t *testing.T) (*clienttest.Fake, string) {
	t.Helper()
	fake := clienttest.New()
	host := clienttest.Start(t, fake)
	svcID := strings.TrimSpace(warren(t, host, "service", "create", "web", "--image", "nginx:1", "--replicas", "0", "-d").wantOK(t).out)
	nodes := []*api.Node{fake.Nodes()[0], fake.AddNode("edge-2", api.NodeRole_NODE_ROLE_WORKER), fake.AddNode("down-3", api.NodeRole_NODE_ROLE_WORKER)}
	if err := fake.SetNodeStatus("down-3", &api.NodeStatus{State: api.NodeState_NODE_STATE_DOWN}); err != nil {
		t.Fatal(err)
	}
	for i, id := range []string{"aaaaaaaaaaaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbbbbbbbbbbb", "ccccccccccccccccccccccccc"} {
		fake.PutTask(&api.Task{Id: id, ServiceId: svcID, ServiceName: "web", Slot: uint64(i + 1), NodeId: nodes[i].GetId(),
			Meta: &api.Meta{}, DesiredState: api.TaskState_TASK_STATE_RUNNING, Status: &api.TaskStatus{State: api.TaskState_TASK_STATE_RUNNING}})
	}
	return fake, host
}

func TestServiceLogs(t *testing.T) {
	_, host := logsFake(t)
	a, b := "aaaaaaaaaaaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbbbbbbbbbbb"
	for _, tt := range []struct {
		name     string
		args     []string
		out, err []string
	}{
		{"names and streams", []string{"service", "logs", "web"},
			[]string{
				"web.1.aaaaaaaaaaaa@node-1 | hello from " + a,
				"web.2.bbbbbbbbbbbb@edge-2 | hello from " + b,
			},
			[]string{
				"node down-3 is down: logs of its tasks are not available",
				"web.1.aaaaaaaaaaaa@node-1 | bye from " + a,
				"web.2.bbbbbbbbbbbb@edge-2 | bye from " + b,
			}},
		{"without task IDs, with times", []string{"service", "logs", "web", "--no-task-ids", "-t", "--tail", "1"},
			nil,
			[]string{
				"node down-3 is down: logs of its tasks are not available",
				"2025-01-02T03:04:15.000000000Z web.1@node-1 | bye from " + a,
				"2025-01-02T03:04:16.000000000Z web.2@edge-2 | bye from " + b,
			}},
		{"since", []string{"service", "logs", "web", "--since", "2025-01-02T03:04:16Z"},
			nil,
			[]string{
				"node down-3 is down: logs of its tasks are not available",
				"web.2.bbbbbbbbbbbb@edge-2 | bye from " + b,
			}},
		{"one task", []string{"logs", b},
			[]string{"web.2.bbbbbbbbbbbb@edge-2 | hello from " + b},
			[]string{"web.2.bbbbbbbbbbbb@edge-2 | bye from " + b}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := warren(t, host, tt.args...).wantOK(t)
			if got := lines(r.out); strings.Join(got, "\n") != strings.Join(tt.out, "\n") {
				t.Errorf("stdout:\n%s\nwant:\n%s", r.out, strings.Join(tt.out, "\n"))
			}
			if got := lines(r.err); strings.Join(got, "\n") != strings.Join(tt.err, "\n") {
				t.Errorf("stderr:\n%s\nwant:\n%s", r.err, strings.Join(tt.err, "\n"))
			}
		})
	}
}

func lines(s string) []string {
	s = strings.TrimSuffix(s, "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

func TestServiceLogsBadInput(t *testing.T) {
	_, host := logsFake(t)
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"service", "logs", "nope"}, "nope"},
		{[]string{"service", "logs", "web", "--tail", "some"}, `invalid --tail "some"`},
		{[]string{"service", "logs", "web", "--since", "yesterday"}, `invalid --since "yesterday"`},
		{[]string{"logs"}, "requires exactly 1 argument"},
	} {
		warren(t, host, tt.args...).wantError(t, tt.want)
	}
}

func TestServiceLogsFollowEndsCleanly(t *testing.T) {
	fake, host := logsFake(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	done := make(chan result, 1)
	go func() { done <- warrenCtx(ctx, t, "warren", host, "service", "logs", "-f", "web") }()
	waitFor(t, "the CLI following", func() bool { return len(fake.Requests("Logs")) > 0 })
	cancel() // what Ctrl-C does
	if r := <-done; r.code != 0 || strings.Contains(r.err, "Error") {
		t.Fatalf("exit code %d, stderr %q; want 0 and no error after Ctrl-C", r.code, r.err)
	}
}

func TestLogsRequestFromFlags(t *testing.T) {
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		name  string
		o     logsOpts
		tail  int64
		since time.Time
	}{
		{"defaults", logsOpts{tail: "all"}, 0, time.Time{}},
		{"tail", logsOpts{tail: "5"}, 5, time.Time{}},
		{"tail 0 is from now on", logsOpts{tail: "0"}, 0, now},
		{"since a duration", logsOpts{tail: "all", since: "90m"}, 0, now.Add(-90 * time.Minute)},
		{"since a time", logsOpts{tail: "all", since: "2025-05-31T10:00:00Z"}, 0, time.Date(2025, 5, 31, 10, 0, 0, 0, time.UTC)},
		{"since a unix time", logsOpts{tail: "all", since: "1748736000"}, 0, time.Unix(1748736000, 0)},
		{"tail 0 after a since", logsOpts{tail: "0", since: "1h"}, 0, now},
	} {
		t.Run(tt.name, func(t *testing.T) {
			req := &api.LogsRequest{}
			if err := tt.o.request(req, now); err != nil {
				t.Fatal(err)
			}
			var since time.Time
			if req.GetSince() != nil {
				since = req.GetSince().AsTime()
			}
			if req.GetTail() != tt.tail || !since.Equal(tt.since) {
				t.Fatalf("tail %d, since %v; want %d, %v", req.GetTail(), since, tt.tail, tt.since)
			}
		})
	}
}
