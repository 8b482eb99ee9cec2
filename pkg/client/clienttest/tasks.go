package clienttest

import (
	"context"
	"sort"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/warren-project/warren/api"
)

// ListTasks filters tasks by service, node and desired state. With
// min_index set it blocks until the index passes it, the wait runs out, or
// the call ends, like the real server.
func (f *Fake) ListTasks(ctx context.Context, req *api.ListTasksRequest) (*api.ListTasksResponse, error) {
	if err := f.block(ctx, req.GetMinIndex(), req.GetWait().AsDuration()); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	serviceID := ""
	if ref := req.GetService(); ref != "" {
		svc, err := f.resolveService(ref)
		if err != nil {
			return nil, err
		}
		serviceID = svc.GetId()
	}
	resp := &api.ListTasksResponse{Index: f.index}
	for _, t := range f.sortedTasks() {
		if (serviceID != "" && t.GetServiceId() != serviceID) || (req.GetNode() != "" && t.GetNodeId() != req.GetNode()) {
			continue
		}
		if len(req.GetDesiredStates()) > 0 && !containsState(req.GetDesiredStates(), t.GetDesiredState()) {
			continue
		}
		resp.Tasks = append(resp.Tasks, proto.Clone(t).(*api.Task))
	}
	return resp, nil
}

func (f *Fake) block(ctx context.Context, minIndex uint64, wait time.Duration) error {
	if minIndex == 0 {
		return nil
	}
	if wait <= 0 {
		wait = 5 * time.Minute
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		f.mu.Lock()
		idx, changed := f.index, f.changed
		f.mu.Unlock()
		if idx > minIndex {
			return nil
		}
		select {
		case <-changed:
		case <-timer.C:
			return nil
		case <-ctx.Done():
			return status.FromContextError(ctx.Err()).Err()
		}
	}
}

func containsState(list []api.TaskState, s api.TaskState) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// GetTask returns one task by ID.
func (f *Fake) GetTask(_ context.Context, req *api.GetTaskRequest) (*api.GetTaskResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	t, ok := f.tasks[req.GetTask()]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "task %s not found", req.GetTask())
	}
	return &api.GetTaskResponse{Task: proto.Clone(t).(*api.Task)}, nil
}

// PutTask stores a copy of t as it is (creating or replacing it by ID), for
// tests that need a precise history.
func (f *Fake) PutTask(t *api.Task) {
	f.mu.Lock()
	defer f.mu.Unlock()
	t = proto.Clone(t).(*api.Task)
	if t.Meta == nil {
		t.Meta = f.meta(0)
	}
	t.Meta.Version = f.bump()
	f.tasks[t.GetId()] = t
}

// Tasks returns copies of every task, ordered by ID.
func (f *Fake) Tasks() []*api.Task {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*api.Task
	for _, t := range f.sortedTasks() {
		out = append(out, proto.Clone(t).(*api.Task))
	}
	return out
}

func (f *Fake) sortedTasks() []*api.Task {
	out := make([]*api.Task, 0, len(f.tasks))
	for _, t := range f.tasks {
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].GetId() < out[j].GetId() })
	return out
}

// AutoStep calls Step every period until the test ends.
func (f *Fake) AutoStep(t testing.TB, period time.Duration) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(period)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				f.Step()
			}
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
}
