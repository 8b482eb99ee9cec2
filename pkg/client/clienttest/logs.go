package clienttest

import (
	"fmt"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/warren-project/warren/api"
)

// LogsEpoch is when the fake's tasks "print" their lines: task i (in ID
// order) prints at LogsEpoch + i seconds and + i+10 seconds.
var LogsEpoch = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)

// Logs makes up the output of the service's tasks (or of the one task)
// that are placed on a node: each prints "hello from TASK ID" on stdout,
// then "bye from TASK ID" on stderr, in time order across tasks. A task on
// a node that is not READY gets a notice instead, as the real manager
// gives. It honours tail and since; with follow it then waits for the
// call to end.
func (f *Fake) Logs(req *api.LogsRequest, stream grpc.ServerStreamingServer[api.LogMessage]) error {
	msgs, err := f.logs(req)
	if err != nil {
		return err
	}
	for _, m := range msgs {
		if err := stream.Send(m); err != nil {
			return err
		}
	}
	if req.GetFollow() {
		<-stream.Context().Done()
	}
	return nil
}

func (f *Fake) logs(req *api.LogsRequest) ([]*api.LogMessage, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	serviceID := ""
	if req.GetTask() == "" {
		svc, err := f.resolveService(req.GetService())
		if err != nil {
			return nil, err
		}
		serviceID = svc.GetId()
	} else if _, ok := f.tasks[req.GetTask()]; !ok {
		return nil, status.Errorf(codes.NotFound, "task %s not found", req.GetTask())
	}
	var notices, hello, bye []*api.LogMessage
	for i, t := range f.sortedTasks() {
		if t.GetNodeId() == "" || (serviceID != "" && t.GetServiceId() != serviceID) || (req.GetTask() != "" && t.GetId() != req.GetTask()) {
			continue
		}
		if n := f.node(t.GetNodeId()); n.GetStatus().GetState() != api.NodeState_NODE_STATE_READY {
			notices = append(notices, &api.LogMessage{NodeId: t.GetNodeId(), Notice: fmt.Sprintf("node %s is down: logs of its tasks are not available", n.GetDescription().GetHostname())})
			continue
		}
		line := func(text, stream string, sec int) *api.LogMessage {
			return &api.LogMessage{TaskId: t.GetId(), NodeId: t.GetNodeId(), Stream: stream,
				Time: timestamppb.New(LogsEpoch.Add(time.Duration(sec) * time.Second)), Line: fmt.Appendf(nil, "%s from %s", text, t.GetId())}
		}
		if req.GetTail() <= 0 || req.GetTail() > 1 {
			hello = append(hello, line("hello", "stdout", i))
		}
		bye = append(bye, line("bye", "stderr", i+10))
	}
	var out []*api.LogMessage
	for _, m := range append(hello, bye...) {
		if req.GetSince() == nil || !m.GetTime().AsTime().Before(req.GetSince().AsTime()) {
			out = append(out, m)
		}
	}
	return append(notices, out...), nil
}

func (f *Fake) node(id string) *api.Node {
	for _, n := range f.nodes {
		if n.GetId() == id {
			return n
		}
	}
	return nil
}
