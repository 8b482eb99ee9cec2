package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/pkg/client"
)

func progressOf(states ...api.TaskState) client.ServiceProgress {
	p := client.ServiceProgress{Desired: len(states)}
	for i, s := range states {
		done := s == api.TaskState_TASK_STATE_RUNNING
		if done {
			p.Running++
		}
		p.Slots = append(p.Slots, client.SlotProgress{Slot: uint64(i + 1), State: s, Done: done})
	}
	return p
}

func TestProgressViewLines(t *testing.T) {
	var buf bytes.Buffer
	v := &progressView{w: &buf, name: "web", hosts: map[string]string{"n1": "node-1"}, last: map[string]string{}}
	pending, running := api.TaskState_TASK_STATE_PENDING, api.TaskState_TASK_STATE_RUNNING
	v.update(progressOf(pending, pending))
	v.update(progressOf(pending, pending)) // nothing changed: nothing printed
	p := progressOf(running, pending)
	p.Failures = []client.TaskFailure{{TaskID: "abcdefabcdefabcdef", NodeID: "n1", Slot: 2, State: api.TaskState_TASK_STATE_FAILED, Err: "exit 1"}}
	v.update(p)
	want := "overall progress: 0 out of 2 tasks\n1/2: pending\n2/2: pending\n" +
		"task abcdefabcdef (web.2) failed on node-1: exit 1\noverall progress: 1 out of 2 tasks\n1/2: running\n"
	if buf.String() != want {
		t.Fatalf("output:\n%q\nwant:\n%q", buf.String(), want)
	}
}

func TestProgressViewRedrawsOnATerminal(t *testing.T) {
	var buf bytes.Buffer
	v := &progressView{w: &buf, tty: true, name: "web", last: map[string]string{}}
	v.update(progressOf(api.TaskState_TASK_STATE_PENDING, api.TaskState_TASK_STATE_PENDING))
	first := buf.Len()
	v.update(progressOf(api.TaskState_TASK_STATE_RUNNING, api.TaskState_TASK_STATE_RUNNING))
	second := buf.String()[first:]
	if !strings.HasPrefix(second, "\x1b[3A\x1b[2Koverall progress: 2 out of 2 tasks\n") {
		t.Fatalf("redraw %q: want the cursor moved up over the 3-line block, then the block", second)
	}
	if strings.Count(second, "\n") != 3 {
		t.Fatalf("redraw %q: want 3 lines", second)
	}
}

func TestProgressViewShowsPullProgress(t *testing.T) {
	var buf bytes.Buffer
	v := &progressView{w: &buf, name: "web", hosts: map[string]string{}, last: map[string]string{}}
	p := progressOf(api.TaskState_TASK_STATE_PREPARING)
	p.Slots[0].Progress = "pulling docker.io/library/nginx:latest: 12.5 of 40.0 MiB"
	v.update(p)
	if !strings.Contains(buf.String(), "1/1: preparing (pulling docker.io/library/nginx:latest: 12.5 of 40.0 MiB)") {
		t.Fatalf("output does not show the pull:\n%s", buf.String())
	}
}
