package worker

import (
	"context"
	"errors"
	"time"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/internal/runtime"
	"github.com/warren-project/warren/internal/spec"
)

// Network is the node's overlay as the agent drives it (an
// overlay.Controller): the map from managers goes in, and each overlay
// task gets a network namespace before its container is made.
type Network interface {
	// Registration is the node's WireGuard key and endpoint, for managers.
	Registration() *api.NodeNetwork
	// Apply configures the node for a map from managers.
	Apply(*api.NetworkMap)
	// Attach prepares task t's namespace (idempotent).
	Attach(ctx context.Context, t *api.Task) (*runtime.NetworkAttachment, error)
	// Detach releases a task's namespace; an unknown task is fine.
	Detach(taskID string) error
	// Attached lists the tasks holding a namespace.
	Attached() ([]string, error)
	// MeshStatus is the node's view of its WireGuard peers.
	MeshStatus() *api.MeshStatus
}

// errNoOverlay rejects overlay tasks on a node that runs without one.
var errNoOverlay = errors.New("this node runs without the overlay network (started with --overlay=false, or it failed to start: see its log); use --network host or a constraint to keep the service off it")

// onOverlay tells whether task t's container lives on the overlay.
func onOverlay(t *api.Task) bool {
	return t.GetAddress() != "" && t.GetSpec().GetContainer().GetNetwork() == spec.NetworkOverlay
}

// attach gives an overlay task its namespace, to put in its container spec.
func (x *taskExec) attach(ctx context.Context, t *api.Task) (*runtime.NetworkAttachment, error) {
	if !onOverlay(t) {
		return nil, nil
	}
	if x.net == nil {
		return nil, errNoOverlay
	}
	return x.net.Attach(ctx, t)
}

// detach releases task id's namespace once its container is gone or has
// stopped for good: managers reuse the address once told so.
func (x *taskExec) detach(id string) error {
	if x.net == nil {
		return nil
	}
	return x.net.Detach(id)
}

// drain waits, before a running overlay task is signalled, for every node
// to stop sending it new connections: managers took it out of the network
// map when they asked it to stop.
func (x *taskExec) drain(ctx context.Context, t *api.Task) error {
	if !onOverlay(t) || x.net == nil {
		return nil
	}
	d := x.drainPeriod
	if p := t.GetSpec().GetContainer().GetDrainPeriod(); p != nil {
		d = p.AsDuration()
	}
	if d <= 0 {
		return nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// sweepNetworks releases the namespaces of tasks the node no longer holds.
func (a *Agent) sweepNetworks() {
	if a.cfg.Network == nil {
		return
	}
	ids, err := a.cfg.Network.Attached()
	if err != nil {
		a.log.Warn("cannot list task namespaces to find orphans", "err", err)
		return
	}
	for _, id := range ids {
		a.mu.Lock()
		_, held := a.runners[id]
		a.mu.Unlock()
		if held {
			continue
		}
		if err := a.cfg.Network.Detach(id); err != nil {
			a.log.Warn("cannot release an orphan task namespace", "task.id", id, "err", err)
		}
	}
}
