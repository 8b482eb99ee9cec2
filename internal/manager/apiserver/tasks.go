package apiserver

import (
	"context"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/internal/state"
)

// ListTasks answers at once, or, given min_index, once the state has moved
// past it (a blocking query), so clients wait for changes without polling.
func (s *Server) ListTasks(ctx context.Context, req *api.ListTasksRequest) (*api.ListTasksResponse, error) {
	if min := req.GetMinIndex(); min > 0 {
		wait := req.GetWait().AsDuration()
		if wait <= 0 || wait > s.cfg.MaxWait {
			wait = s.cfg.MaxWait
		}
		wctx, cancel := context.WithTimeout(ctx, wait)
		s.cfg.Store.WaitForIndex(wctx, min)
		cancel()
		if err := ctx.Err(); err != nil {
			return nil, toStatus(err)
		}
	}
	desired := map[api.TaskState]bool{}
	for _, d := range req.GetDesiredStates() {
		desired[d] = true
	}
	resp := &api.ListTasksResponse{}
	var err error
	s.cfg.Store.View(func(tx state.ReadTx) {
		resp.Index = tx.Index()
		filter := state.All
		switch {
		case req.GetService() != "":
			filter = state.ByService(req.GetService())
			// Tasks outlive their service while they stop: an ID of a
			// removed service still selects them.
			if svc, lerr := tx.LookupService(req.GetService()); lerr == nil {
				filter = state.ByService(svc.GetId())
			}
		case req.GetNode() != "":
			node, lerr := tx.LookupNode(req.GetNode())
			if lerr != nil {
				err = lerr
				return
			}
			filter = state.ByNode(node.GetId())
		}
		for _, t := range tx.ListTasks(filter) {
			if len(desired) > 0 && !desired[t.GetDesiredState()] {
				continue
			}
			if req.GetNode() != "" && req.GetService() != "" && t.GetNodeId() != req.GetNode() {
				continue
			}
			resp.Tasks = append(resp.Tasks, t)
		}
	})
	if err != nil {
		return nil, toStatus(err)
	}
	return resp, nil
}

// GetTask finds a task by ID or ID prefix.
func (s *Server) GetTask(_ context.Context, req *api.GetTaskRequest) (*api.GetTaskResponse, error) {
	var t *api.Task
	var err error
	s.cfg.Store.View(func(tx state.ReadTx) { t, err = tx.LookupTask(req.GetTask()) })
	if err != nil {
		return nil, toStatus(err)
	}
	return &api.GetTaskResponse{Task: t}, nil
}
