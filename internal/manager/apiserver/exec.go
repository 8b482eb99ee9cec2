package apiserver

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/internal/state"
)

// ExecSource runs commands in the tasks of nodes: the dispatcher.
type ExecSource interface {
	// Exec runs req on node nodeID, passing the caller's input from recv
	// and the command's output to send, up to the exit code; its errors
	// are gRPC statuses for the caller.
	Exec(ctx context.Context, nodeID string, req *api.ExecRequest, recv func() (*api.ExecInput, error), send func(*api.ExecOutput) error) error
}

// Exec runs a command in a running task (named by ID or prefix), or in the
// running task of a service with the lowest slot. The first message in is
// the start; the first out names the task, and the last carries the exit
// code. It returns InvalidArgument for a bad start, NotFound for an unknown
// task or service, FailedPrecondition when the task does not run or its
// node is down (at once: it never waits for a node that is gone),
// DeadlineExceeded when the node does not answer, and Unavailable when this
// manager cannot reach the nodes.
func (s *Server) Exec(stream api.Control_ExecServer) error {
	if s.cfg.Exec == nil {
		return status.Error(codes.Unavailable, "this manager cannot reach the nodes for exec")
	}
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	if leader, err := s.leaderControl(stream.Context()); err != nil || leader != nil {
		if err != nil {
			return toStatus(err)
		}
		return proxyExec(leader, first, stream)
	}
	start := first.GetStart()
	switch {
	case start == nil:
		return status.Error(codes.InvalidArgument, "the first message of an exec must be its start")
	case len(start.GetCommand()) == 0 || start.GetCommand()[0] == "":
		return status.Error(codes.InvalidArgument, "exec: no command")
	}
	task, err := s.execTarget(start.GetTask())
	if err != nil {
		return toStatus(err)
	}
	if err := stream.Send(&api.ExecOutput{Msg: &api.ExecOutput_StartedTaskId{StartedTaskId: task.GetId()}}); err != nil {
		return err
	}
	s.log.Info("exec", "task.id", task.GetId(), "node.id", task.GetNodeId(), "exec.tty", start.GetTty())
	req := &api.ExecRequest{TaskId: task.GetId(), Start: start}
	return s.cfg.Exec.Exec(stream.Context(), task.GetNodeId(), req, stream.Recv, stream.Send)
}

// execTarget finds the task ref names: a service's exact name first (a
// name may also be a task ID prefix), then a task, then a service by ID.
func (s *Server) execTarget(ref string) (*api.Task, error) {
	if ref == "" {
		return nil, invalid("name a task or a service to exec in")
	}
	var task *api.Task
	var err error
	s.cfg.Store.View(func(tx state.ReadTx) {
		if svc := tx.GetServiceByName(ref); svc != nil {
			task, err = runningTaskOf(tx, svc)
			return
		}
		task, err = tx.LookupTask(ref)
		if errors.Is(err, state.ErrNotFound) {
			var svc *api.Service
			if svc, err = tx.LookupService(ref); err == nil {
				task, err = runningTaskOf(tx, svc)
			} else if errors.Is(err, state.ErrNotFound) {
				err = fmt.Errorf("no task or service %q: %w", ref, state.ErrNotFound)
			}
		}
	})
	if err != nil {
		return nil, err
	}
	if st := task.GetStatus().GetState(); st != api.TaskState_TASK_STATE_RUNNING {
		return nil, precondition("task %s is not running (state: %s)", execTaskName(task), stateName(st))
	}
	return task, nil
}

// runningTaskOf is the service's running task with the lowest slot.
func runningTaskOf(tx state.ReadTx, svc *api.Service) (*api.Task, error) {
	var best *api.Task
	for _, t := range tx.ListTasks(state.ByService(svc.GetId())) {
		if t.GetStatus().GetState() != api.TaskState_TASK_STATE_RUNNING || t.GetDesiredState() != api.TaskState_TASK_STATE_RUNNING {
			continue
		}
		if best == nil || t.GetSlot() < best.GetSlot() || (t.GetSlot() == best.GetSlot() && t.GetId() < best.GetId()) {
			best = t
		}
	}
	if best == nil {
		return nil, precondition("service %s has no running task", svc.GetSpec().GetName())
	}
	return best, nil
}

// execTaskName is how people know a task: web.1, or its ID.
func execTaskName(t *api.Task) string {
	if t.GetServiceName() != "" && t.GetSlot() > 0 {
		return fmt.Sprintf("%s.%d", t.GetServiceName(), t.GetSlot())
	}
	return t.GetId()
}

func stateName(s api.TaskState) string {
	return strings.ToLower(strings.TrimPrefix(s.String(), "TASK_STATE_"))
}
