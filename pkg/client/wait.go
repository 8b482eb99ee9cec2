package client

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/warren-project/warren/api"
)

// ServiceProgress is how far a service is from its desired state, as
// WaitForService sees it after each change.
type ServiceProgress struct {
	Service *api.Service
	// Desired is the number of replicas wanted (for a global service, the
	// nodes that have a task to run); Running how many of them run the
	// current spec.
	Desired, Running int
	// Slots has one entry per wanted replica, in slot order (per node, in
	// node ID order, for a global service).
	Slots []SlotProgress
	// Failures are the tasks of the current spec that failed or were
	// rejected since the previous report; each is reported once.
	Failures []TaskFailure
	// Converged is true when every wanted replica runs the current spec.
	Converged bool
}

// SlotProgress is the current task of one replica.
type SlotProgress struct {
	Slot   uint64 // 0 for a global service
	NodeID string
	TaskID string // empty while the orchestrator has made no task yet
	State  api.TaskState
	// Message says why the task is in its state; Err is set on failure.
	Message, Err string
	// Progress describes a long step under way, such as an image pull.
	Progress string
	// Done is true when this slot runs the current spec.
	Done bool
}

// TaskFailure is a failed or rejected task.
type TaskFailure struct {
	TaskID, NodeID string
	Slot           uint64
	State          api.TaskState
	Err            string
}

// WaitForService blocks until every wanted replica of the service runs a
// task of its current spec (desired RUNNING, spec_version equal to the
// service's or a task spec equal to its, observed RUNNING). It follows the state with blocking
// ListTasks calls, so it costs a call per change, not per tick, and calls
// onProgress (if not nil) after each. It fails when the service is removed
// meanwhile, and returns ctx's error when ctx ends first.
func (c *Client) WaitForService(ctx context.Context, ref string, onProgress func(ServiceProgress)) error {
	got, err := c.GetService(ctx, &api.GetServiceRequest{Service: ref})
	if err != nil {
		return err
	}
	svc := got.GetService()
	reported := map[string]bool{}
	var index uint64
	for first := true; ; first = false {
		resp, err := c.ListTasks(ctx, &api.ListTasksRequest{Service: svc.GetId(), MinIndex: index, Wait: durationpb.New(c.cfg.pollWait)})
		if err != nil {
			return c.waitError(ctx, ref, err)
		}
		changed := first || resp.GetIndex() != index
		if index, err = c.advance(ctx, index, resp.GetIndex()); err != nil {
			return err
		}
		if !changed {
			continue
		}
		if !first {
			// The spec may have moved on (another update) or gone.
			if got, err = c.GetService(ctx, &api.GetServiceRequest{Service: svc.GetId()}); err != nil {
				return c.waitError(ctx, ref, err)
			}
			svc = got.GetService()
		}
		p := BuildProgress(svc, resp.GetTasks(), reported)
		if onProgress != nil {
			onProgress(p)
		}
		if p.Converged {
			return nil
		}
	}
}

// WaitForServiceRemoved blocks until no task of the service remains. Pass
// the service's ID when you have it: once the service is gone, a name is
// matched against the tasks' service names, and a new service of the same
// name would keep the wait going.
func (c *Client) WaitForServiceRemoved(ctx context.Context, ref string) error {
	match := func(t *api.Task) bool { return t.GetServiceId() == ref || t.GetServiceName() == ref }
	got, err := c.GetService(ctx, &api.GetServiceRequest{Service: ref})
	switch {
	case err == nil:
		id := got.GetService().GetId()
		match = func(t *api.Task) bool { return t.GetServiceId() == id }
	case Code(err) != codes.NotFound:
		return err
	}
	var index uint64
	for {
		// All tasks: a filter by service would fail once the service is gone.
		resp, err := c.ListTasks(ctx, &api.ListTasksRequest{MinIndex: index, Wait: durationpb.New(c.cfg.pollWait)})
		if err != nil {
			return c.waitError(ctx, ref, err)
		}
		if !anyTask(resp.GetTasks(), match) {
			return nil
		}
		if index, err = c.advance(ctx, index, resp.GetIndex()); err != nil {
			return err
		}
	}
}

func anyTask(tasks []*api.Task, match func(*api.Task) bool) bool {
	for _, t := range tasks {
		if match(t) {
			return true
		}
	}
	return false
}

// advance returns the index to wait past next. When the server answered
// without the index moving (its wait ran out), it pauses briefly first so
// that a server ignoring min_index cannot make the loop spin.
func (c *Client) advance(ctx context.Context, prev, got uint64) (uint64, error) {
	if got > prev {
		return got, nil
	}
	t := time.NewTimer(min(time.Second, c.cfg.pollWait))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return prev, ctx.Err()
	case <-t.C:
		return prev, nil
	}
}

func (c *Client) waitError(ctx context.Context, ref string, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if Code(err) == codes.NotFound {
		return fmt.Errorf("service %s was removed while waiting for it", ref)
	}
	return err
}
