package apiserver

import (
	"context"
	"slices"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/internal/logfile"
	"github.com/warren-project/warren/internal/state"
)

// LogSource asks nodes for the logs of their tasks: the dispatcher.
type LogSource interface {
	// Logs asks node nodeID for the lines of req's tasks. The channel
	// closes when the node has sent them all (following: when ctx ends or
	// the node goes). A node that cannot answer gives a notice, not an
	// error; an error means no node can be asked through this manager.
	Logs(ctx context.Context, nodeID string, req *api.LogRequest) (<-chan *api.LogMessage, error)
}

// logTarget is what a Logs call reads: a service's tasks, or one task.
type logTarget struct {
	serviceID string // set for a service
	taskID    string // set for one task
	tasks     []*api.Task
}

// concerns filters store events down to the target's tasks, and the
// removal of its service.
func (t logTarget) concerns(ev state.Event) bool {
	switch o := ev.Object.(type) {
	case *api.Task:
		if t.taskID != "" {
			return o.GetId() == t.taskID
		}
		return o.GetServiceId() == t.serviceID
	case *api.Service:
		return t.taskID == "" && o.GetId() == t.serviceID && ev.Kind == state.EventDelete
	}
	return false
}

func (t logTarget) list(tx state.ReadTx) []*api.Task {
	if t.taskID != "" {
		if task := tx.GetTask(t.taskID); task != nil {
			return []*api.Task{task}
		}
		return nil
	}
	return tx.ListTasks(state.ByService(t.serviceID))
}

// Logs streams the lines of a service's tasks (or of one task) from the
// nodes they ran on, wherever they still have their logs. Without follow
// the lines come in time order across tasks; with follow they come as the
// nodes send them, and the tasks that replace others are followed too.
// A node that cannot answer gets a notice, and the rest goes on. It
// returns InvalidArgument without a service or task, NotFound for an
// unknown one, and Unavailable when this manager cannot reach the nodes.
func (s *Server) Logs(req *api.LogsRequest, stream api.Control_LogsServer) error {
	if leader, err := s.leaderControl(stream.Context()); err != nil || leader != nil {
		if err != nil {
			return toStatus(err)
		}
		return proxyLogs(leader, req, stream)
	}
	if s.cfg.Logs == nil {
		return status.Error(codes.Unavailable, "this manager cannot reach the nodes for logs")
	}
	target, err := s.logTarget(req)
	if err != nil {
		return toStatus(err)
	}
	if req.GetFollow() {
		return toStatus(s.followLogs(stream.Context(), req, target, stream.Send))
	}
	return toStatus(s.logsOnce(stream.Context(), req, target.tasks, stream.Send))
}

func (s *Server) logTarget(req *api.LogsRequest) (logTarget, error) {
	var t logTarget
	var err error
	s.cfg.Store.View(func(tx state.ReadTx) {
		switch {
		case req.GetTask() != "":
			var task *api.Task
			if task, err = tx.LookupTask(req.GetTask()); err != nil {
				return
			}
			if req.GetService() != "" {
				svc, lerr := tx.LookupService(req.GetService())
				if lerr != nil || svc.GetId() != task.GetServiceId() {
					err = invalid("task %s is not a task of service %s", task.GetId(), req.GetService())
					return
				}
			}
			t = logTarget{taskID: task.GetId(), tasks: []*api.Task{task}}
		case req.GetService() != "":
			var svc *api.Service
			if svc, err = tx.LookupService(req.GetService()); err != nil {
				return
			}
			t = logTarget{serviceID: svc.GetId(), tasks: tx.ListTasks(state.ByService(svc.GetId()))}
		default:
			err = invalid("name a service or a task")
		}
	})
	return t, err
}

// nodeRequest is what one node is asked for.
func nodeRequest(req *api.LogsRequest, taskIDs []string, tail int64) *api.LogRequest {
	return &api.LogRequest{TaskIds: taskIDs, Follow: req.GetFollow(), Tail: tail, Since: req.GetSince()}
}

// byNode groups the IDs of the tasks placed on a node, nodes in order.
func byNode(tasks []*api.Task) (nodes []string, ids map[string][]string) {
	ids = map[string][]string{}
	for _, t := range tasks {
		n := t.GetNodeId()
		if n == "" {
			continue // never placed: no logs anywhere
		}
		if _, ok := ids[n]; !ok {
			nodes = append(nodes, n)
		}
		ids[n] = append(ids[n], t.GetId())
	}
	slices.Sort(nodes)
	return nodes, ids
}

// logsOnce sends what the nodes hold now, merged in time order. Each node
// sends its tasks' lines in time order, so merging needs one line per node
// at a time: memory stays bounded whatever the logs' size.
func (s *Server) logsOnce(ctx context.Context, req *api.LogsRequest, tasks []*api.Task, send func(*api.LogMessage) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // stops the nodes when sending fails
	nodes, ids := byNode(tasks)
	ins := make([]<-chan *api.LogMessage, 0, len(nodes))
	for _, n := range nodes {
		ch, err := s.cfg.Logs.Logs(ctx, n, nodeRequest(req, ids[n], req.GetTail()))
		if err != nil {
			return err
		}
		ins = append(ins, ch)
	}
	for m := range logfile.MergeByTime(ctx, ins, messageTime) {
		if err := send(m); err != nil {
			return err
		}
	}
	return ctx.Err()
}

func messageTime(m *api.LogMessage) (time.Time, bool) {
	return m.GetTime().AsTime(), m.GetNotice() == "" && m.GetTime() != nil
}
