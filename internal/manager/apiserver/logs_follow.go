package apiserver

import (
	"context"
	"sync"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/internal/state"
)

// follower is one following Logs call: the nodes asked so far, and the
// lines they send, passed on as they come.
type follower struct {
	s      *Server
	ctx    context.Context
	req    *api.LogsRequest
	asked  map[string]bool // task IDs
	lines  chan *api.LogMessage
	ended  chan struct{} // one value per node stream that ended
	open   int           // node streams not ended yet
	pumps  sync.WaitGroup
	target logTarget
}

// followLogs asks the nodes of the target's tasks to follow their logs,
// then watches the store: a task placed later (a replacement, a new
// replica) has its node asked too. It ends when ctx ends, or when nothing
// more can come: every node done, and the service removed (or the one
// task's log ended).
func (s *Server) followLogs(ctx context.Context, req *api.LogsRequest, target logTarget, send func(*api.LogMessage) error) error {
	ctx, cancel := context.WithCancel(ctx)
	f := &follower{
		s: s, ctx: ctx, req: req, target: target, asked: map[string]bool{},
		lines: make(chan *api.LogMessage, 256), ended: make(chan struct{}),
	}
	defer f.pumps.Wait()
	defer cancel() // first: the pumps and the nodes' streams end with ctx
	var tasks []*api.Task
	sub := s.cfg.Store.ViewAndWatch(target.concerns, func(tx state.ReadTx) { tasks = target.list(tx) })
	defer sub.Cancel()
	// The tasks there when the call came get the tail asked for; later
	// ones are new: all their lines.
	if err := f.ask(tasks, req.GetTail()); err != nil {
		return err
	}
	gone := false // the service was removed, or the task
	for {
		if f.open == 0 && (gone || (target.taskID != "" && len(f.asked) > 0)) {
			return f.flush(send)
		}
		select {
		case m := <-f.lines:
			if err := send(m); err != nil {
				return err
			}
		case <-f.ended:
			f.open--
		case ev, ok := <-sub.C:
			if !ok {
				return nil
			}
			var err error
			if gone, err = f.observe(ev, gone); err != nil {
				return err
			}
		case <-ctx.Done():
			return nil
		}
	}
}

// observe asks for the logs of tasks an event shows placed, and tells
// whether the target is gone.
func (f *follower) observe(ev state.Event, gone bool) (bool, error) {
	var tasks []*api.Task
	switch o := ev.Object.(type) {
	case nil: // a restore: everything may have changed
		f.s.cfg.Store.View(func(tx state.ReadTx) { tasks = f.target.list(tx) })
		if f.target.taskID == "" {
			f.s.cfg.Store.View(func(tx state.ReadTx) { gone = tx.GetService(f.target.serviceID) == nil })
		}
	case *api.Service:
		return true, nil
	case *api.Task:
		if ev.Kind == state.EventDelete {
			return gone || f.target.taskID != "", nil
		}
		tasks = []*api.Task{o}
	}
	return gone, f.ask(tasks, 0)
}

// ask asks the nodes of the tasks not asked yet to follow their logs. A
// task is asked for once its node has taken it (the node reported on it):
// a node asked before then would not know the task, and tell so.
func (f *follower) ask(tasks []*api.Task, tail int64) error {
	var fresh []*api.Task
	for _, t := range tasks {
		taken := t.GetStatus().GetState() >= api.TaskState_TASK_STATE_ACCEPTED
		if t.GetNodeId() != "" && taken && !f.asked[t.GetId()] {
			f.asked[t.GetId()] = true
			fresh = append(fresh, t)
		}
	}
	nodes, ids := byNode(fresh)
	for _, n := range nodes {
		ch, err := f.s.cfg.Logs.Logs(f.ctx, n, nodeRequest(f.req, ids[n], tail))
		if err != nil {
			return err
		}
		f.open++
		f.pumps.Add(1)
		go f.pump(ch)
	}
	return nil
}

// pump passes one node's lines on, then says it ended.
func (f *follower) pump(ch <-chan *api.LogMessage) {
	defer f.pumps.Done()
	for {
		select {
		case m, ok := <-ch:
			if !ok {
				select {
				case f.ended <- struct{}{}:
				case <-f.ctx.Done():
				}
				return
			}
			select {
			case f.lines <- m:
			case <-f.ctx.Done():
				return
			}
		case <-f.ctx.Done():
			return
		}
	}
}

// flush sends the lines still queued: a node stream's lines are queued
// before it says it ended.
func (f *follower) flush(send func(*api.LogMessage) error) error {
	for {
		select {
		case m := <-f.lines:
			if err := send(m); err != nil {
				return err
			}
		default:
			return nil
		}
	}
}
