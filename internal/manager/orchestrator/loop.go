package orchestrator

import (
	"context"
	"time"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/internal/state"
)

// loop is Run's state: which services need a reconcile now (dirty) or
// later (wakes, for back-offs and update delays), and the timers for both.
type loop struct {
	o     *Orchestrator
	dirty map[string]struct{}
	wakes map[string]time.Time
	quiet *time.Timer // fires when a burst of events is over
	armed bool        // quiet is running
	first time.Time   // when the pending burst began
	wake  *time.Timer // fires at the earliest of wakes
	seen  uint64      // index of the last event handled
}

func newLoop(o *Orchestrator) *loop {
	l := &loop{o: o, dirty: map[string]struct{}{}, wakes: map[string]time.Time{},
		quiet: time.NewTimer(time.Hour), wake: time.NewTimer(time.Hour)}
	l.quiet.Stop()
	l.wake.Stop()
	return l
}

// mark asks for a reconcile of a service; tasks of no service are ignored.
func (l *loop) mark(serviceID string) {
	if serviceID != "" {
		l.dirty[serviceID] = struct{}{}
	}
}

func (l *loop) close() {
	l.quiet.Stop()
	l.wake.Stop()
}

// markAll marks every service, and every service that tasks still name
// (one removed while this manager was not looking).
func (l *loop) markAll(tx state.ReadTx) {
	for _, s := range tx.ListServices() {
		l.mark(s.GetId())
	}
	for _, t := range tx.ListTasks(state.All) {
		l.mark(t.GetServiceId())
	}
}

// handle marks the services an event concerns and (re)arms the quiet timer.
func (l *loop) handle(ev state.Event) {
	l.seen = max(l.seen, ev.Index)
	if !relevant(ev) {
		return
	}
	switch o := ev.Object.(type) {
	case *api.Service:
		l.mark(o.GetId())
	case *api.Task:
		l.mark(o.GetServiceId())
	case *api.Node:
		l.o.store.View(func(tx state.ReadTx) { l.markNode(tx, o.GetId()) })
	default: // a restore, or the cluster object (the history limit)
		l.o.store.View(l.markAll)
	}
	l.arm(time.Now())
}

// markNode marks the services with tasks on a node, and every global
// service (which may want a task there, or no longer).
func (l *loop) markNode(tx state.ReadTx, nodeID string) {
	for _, t := range tx.ListTasks(state.ByNode(nodeID)) {
		l.mark(t.GetServiceId())
	}
	for _, s := range tx.ListServices() {
		if s.GetSpec().GetGlobal() != nil {
			l.mark(s.GetId())
		}
	}
}

// relevant drops the changes that cannot matter to the orchestrator, such
// as a task's pull progress or a node's address.
func relevant(ev state.Event) bool {
	if ev.Kind != state.EventUpdate {
		return true
	}
	switch o := ev.Object.(type) {
	case *api.Task:
		old, ok := ev.Old.(*api.Task)
		return !ok || o.GetDesiredState() != old.GetDesiredState() ||
			observed(o) != observed(old) || o.GetNodeId() != old.GetNodeId()
	case *api.Node:
		old, ok := ev.Old.(*api.Node)
		return !ok || o.GetStatus().GetState() != old.GetStatus().GetState() ||
			o.GetSpec().GetAvailability() != old.GetSpec().GetAvailability()
	}
	return true
}

// arm sets the quiet timer: QuietPeriod after the last event, but no later
// than MaxDelay after the first one of the burst.
func (l *loop) arm(now time.Time) {
	if !l.armed {
		l.armed, l.first = true, now
	}
	l.quiet.Reset(flushDelay(l.first, now, l.o.cfg.QuietPeriod, l.o.cfg.MaxDelay))
}

func flushDelay(first, now time.Time, quiet, maxDelay time.Duration) time.Duration {
	return max(0, min(quiet, first.Add(maxDelay).Sub(now)))
}

// due moves the services whose wake time has come to dirty.
func (l *loop) due() {
	now := time.Now()
	for id, at := range l.wakes {
		if !at.After(now) {
			l.mark(id)
			delete(l.wakes, id)
		}
	}
}

// flush reconciles every dirty service, one write each, and notes when each
// wants to be looked at again.
func (l *loop) flush(ctx context.Context) {
	l.quiet.Stop()
	l.armed = false
	for id := range l.dirty {
		wake, err := l.o.reconcile(ctx, id)
		if ctx.Err() != nil {
			return
		}
		delete(l.dirty, id)
		if err != nil {
			l.o.log.Warn("reconcile failed; will retry", "service.id", id, "err", err, "retry.in", l.o.cfg.RetryInterval)
			wake = time.Now().Add(l.o.cfg.RetryInterval)
		}
		if wake.IsZero() {
			delete(l.wakes, id)
		} else {
			l.wakes[id] = wake
		}
	}
	l.rearmWake()
}

func (l *loop) rearmWake() {
	var next time.Time
	for _, at := range l.wakes {
		if next.IsZero() || at.Before(next) {
			next = at
		}
	}
	if next.IsZero() {
		l.wake.Stop()
		return
	}
	l.wake.Reset(max(0, time.Until(next)))
}

// publish records, when nothing is pending, that every event seen so far
// has been reconciled.
func (l *loop) publish() {
	if len(l.dirty) == 0 && !l.armed {
		l.o.synced.Store(l.seen)
	}
}
